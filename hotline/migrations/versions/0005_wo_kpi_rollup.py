"""work-order KPI rollup: change log written by triggers, daily rollup, awaiting-response index

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 10:00:00

The triggers append each order's KPI contribution (see work_orders/kpi_rollup.py and KPIS.md) to
wo_kpi_deltas: +1 × the new row on insert, -1 × the old row on delete, both on an update that changes a
counted field. The SQL here is frozen on purpose (a migration must not follow later code); the tests compare
trigger-maintained KPIs with the reference query on both backends.
"""
from alembic import op
import sqlalchemy as sa
import core.db


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

COUNTS = [
    ("orders", "1 = 1"),
    ("dispatched", "{r}.dispatched_at IS NOT NULL"),
    ("resp_accepted", "{r}.dispatched_at IS NOT NULL AND {r}.accepted_at IS NOT NULL"),
    ("resp_waiting", "{r}.dispatched_at IS NOT NULL AND {r}.accepted_at IS NULL AND {r}.status <> 'withdrawn'"),
    ("responded_on_time", "{r}.accepted_at IS NOT NULL AND {r}.accepted_at <= {r}.response_due"),
    ("resolved", "{r}.resolved_at IS NOT NULL"),
    ("resolved_on_time", "{r}.resolved_at IS NOT NULL AND {r}.resolved_at <= {r}.resolution_due"),
    ("completion_base", "{r}.status <> 'withdrawn'"),
    ("completed", "{r}.status IN ('resolved', 'closed')"),
    ("returned", "{r}.return_count > 0"),
    ("rated", "{r}.satisfaction IS NOT NULL"),
    ("solved", "{r}.solved IS TRUE"),
    ("satisfied", "{r}.satisfaction IN ('satisfied', 'basically_satisfied')"),
    ("repeat", "{r}.urge_count > 0"),
]
# Every field a count or a grouping depends on: an update touching none of them writes nothing.
WATCHED = ["status", "created_at", "department_code", "category_code", "district_code", "dispatched_at",
           "accepted_at", "response_due", "resolved_at", "resolution_due", "return_count", "satisfaction", "solved",
           "urge_count"]
KEYS = ["created_at", "department_code", "category_code", "district_code"]
COLUMNS = ", ".join(KEYS + [name for name, _ in COUNTS])


def _values(r: str, sign: int) -> str:
    counts = [f"CASE WHEN {cond.format(r=r)} THEN {sign} ELSE 0 END" for _, cond in COUNTS]
    return ", ".join([f"{r}.{k}" for k in KEYS] + counts)


PG_FUNCTIONS = [
    # Inserts: statement level, so a bulk import logs its rows in one INSERT … SELECT.
    f"""
CREATE OR REPLACE FUNCTION wo_kpi_delta_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO wo_kpi_deltas ({COLUMNS}) SELECT {_values('n', 1)} FROM new_rows n WHERE n.status <> 'merged';
    RETURN NULL;
END
$$
""",
    # Updates (only of a watched field, see the trigger's WHEN) and deletes: row level.
    f"""
CREATE OR REPLACE FUNCTION wo_kpi_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'merged' THEN
        INSERT INTO wo_kpi_deltas ({COLUMNS}) VALUES ({_values('OLD', -1)});
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.status <> 'merged' THEN
        INSERT INTO wo_kpi_deltas ({COLUMNS}) VALUES ({_values('NEW', 1)});
    END IF;
    RETURN NULL;
END
$$
""",
]
PG_TRIGGERS = [
    "CREATE TRIGGER wo_kpi_delta_ins AFTER INSERT ON work_orders REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION wo_kpi_delta_inserted()",
    "CREATE TRIGGER wo_kpi_delta_del AFTER DELETE ON work_orders FOR EACH ROW EXECUTE FUNCTION wo_kpi_delta()",
    "CREATE TRIGGER wo_kpi_delta_upd AFTER UPDATE ON work_orders FOR EACH ROW WHEN (("
    + ", ".join(f"OLD.{c}" for c in WATCHED) + ") IS DISTINCT FROM ("
    + ", ".join(f"NEW.{c}" for c in WATCHED) + ")) EXECUTE FUNCTION wo_kpi_delta()",
]
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER wo_kpi_delta_ins AFTER INSERT ON work_orders WHEN NEW.status <> 'merged' BEGIN
        INSERT INTO wo_kpi_deltas ({COLUMNS}) SELECT {_values('NEW', 1)};
    END""",
    f"""CREATE TRIGGER wo_kpi_delta_del AFTER DELETE ON work_orders WHEN OLD.status <> 'merged' BEGIN
        INSERT INTO wo_kpi_deltas ({COLUMNS}) SELECT {_values('OLD', -1)};
    END""",
    f"""CREATE TRIGGER wo_kpi_delta_upd AFTER UPDATE ON work_orders
    WHEN {' OR '.join(f'OLD.{c} IS NOT NEW.{c}' for c in WATCHED)} BEGIN
        INSERT INTO wo_kpi_deltas ({COLUMNS}) SELECT {_values('OLD', -1)} WHERE OLD.status <> 'merged';
        INSERT INTO wo_kpi_deltas ({COLUMNS}) SELECT {_values('NEW', 1)} WHERE NEW.status <> 'merged';
    END""",
]


def upgrade() -> None:
    count_columns = [sa.Column(name, sa.SmallInteger(), nullable=False) for name, _ in COUNTS]
    op.create_table('wo_kpi_deltas',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('department_code', sa.String(length=64), nullable=True),
    sa.Column('category_code', sa.String(length=64), nullable=False),
    sa.Column('district_code', sa.String(length=64), nullable=True),
    *count_columns,
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wo_kpi_deltas'))
    )
    op.create_table('wo_kpi_daily',
    sa.Column('dim', sa.String(length=12), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    *[sa.Column(name, sa.Integer(), nullable=False) for name, _ in COUNTS],
    sa.PrimaryKeyConstraint('dim', 'day', 'key', name=op.f('pk_wo_kpi_daily'))
    )
    op.create_table('wo_kpi_rollup_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tz', sa.String(length=64), nullable=False),
    sa.Column('rebuilt_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('compacted_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wo_kpi_rollup_state'))
    )
    where = sa.text("dispatched_at IS NOT NULL AND accepted_at IS NULL")
    op.create_index('ix_work_orders_awaiting_response', 'work_orders', ['response_due'], unique=False,
                    postgresql_where=where, sqlite_where=where)
    if op.get_bind().dialect.name == "postgresql":
        for statement in PG_FUNCTIONS:
            op.execute(statement)
        for statement in PG_TRIGGERS:
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)
    # No backfill here: the first kpi_rollup.compact() (worker, or `hotline kpi-rollup`) sees no state row and
    # rebuilds from work_orders; until then KPIs come from the reference query.


def downgrade() -> None:
    for name in ("wo_kpi_delta_ins", "wo_kpi_delta_del", "wo_kpi_delta_upd"):
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON work_orders")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS wo_kpi_delta()")
        op.execute("DROP FUNCTION IF EXISTS wo_kpi_delta_inserted()")
    op.drop_index('ix_work_orders_awaiting_response', table_name='work_orders')
    op.drop_table('wo_kpi_rollup_state')
    op.drop_table('wo_kpi_daily')
    op.drop_table('wo_kpi_deltas')
