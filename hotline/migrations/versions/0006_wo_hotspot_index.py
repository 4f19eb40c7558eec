"""work-order intake: partial index for the hotspot master lookup

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 12:00:00

The intake query (work_orders/intake.py, _candidates) looks up, in one statement, the caller's open orders
(ix_work_orders_phone_created), the order already made with the Idempotency-Key (its unique index), and the
hotspot master: an open order of the same category at the same gazetteer place that is no one's child. This
index serves the last so that it stays an index probe over millions of orders.
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    where = sa.text("master_id IS NULL AND place IS NOT NULL")
    op.create_index('ix_work_orders_hotspot', 'work_orders', ['category_code', 'place', 'created_at'], unique=False,
                    postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    op.drop_index('ix_work_orders_hotspot', table_name='work_orders')
