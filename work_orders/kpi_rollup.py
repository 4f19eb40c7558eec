"""KPI rollup: exact KPIs over millions of orders without scanning them (formulas: work_orders/KPIS.md).

Three tables (work_orders/models.py, migration 0005):

- ``wo_kpi_deltas``: an append-only change log written by database triggers on ``work_orders`` in the same
  transaction as every order write (service, escalation worker, raw SQL alike): each insert adds the new row's
  contribution to the counts (+1 per count it satisfies), each delete subtracts the old row's, and an update of
  any counted field does both. Inserting never waits on another writer (no shared counter row is updated).
- ``wo_kpi_daily``: the deltas summed per local day of creation (city time zone), per grouping dimension
  (department / category / district) and key. ``compact()`` folds the log into it (one atomic statement on
  PostgreSQL, run every minute by the worker); ``rebuild()`` recomputes it from ``work_orders``.
- ``wo_kpi_rollup_state``: present once built, with the time zone its days are in.

A report over whole local days [a, b) sums, in one SQL statement (one snapshot, so concurrent writes and a
concurrent compaction are seen either entirely or not at all):

    daily rows of those days + deltas created in [a, b) not yet folded
    − the awaiting-response orders in [a, b) whose response deadline is still ahead of "now"
    + the reference query over any partial day at either end.

The only count that depends on "now" is ``response_due`` (dispatched orders accepted, or past their response
deadline while not withdrawn). The rollup stores it as ``resp_accepted + resp_waiting`` (waiting: dispatched,
not accepted, not withdrawn) and the query subtracts the waiting orders whose deadline is after "now"; those
few rows are found through the partial index ``ix_work_orders_awaiting_response``. Every figure is therefore
identical to ``kpis.compute_raw`` at any "now" (tests/work_orders/test_kpi_rollup.py checks this on both
backends).

Orders without a rollup state row (fresh migration, reset database, changed time zone) are served by the
reference query until ``compact()`` rebuilds the rollup; `hotline kpi-rollup [--rebuild]` does it by hand
(needed only after editing work_orders with triggers disabled).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, case, cast, delete, func, literal_column, or_, select, text, union_all
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Database, utcnow
from work_orders.kpi_common import COUNTS, GROUP_COLUMNS, count_columns
from work_orders.models import (
    ROLLUP_COUNTS,
    KpiDaily,
    KpiDelta,
    KpiRollupState,
    Satisfaction,
    Status,
    WorkOrder,
)

log = logging.getLogger(__name__)
W = WorkOrder
D = KpiDaily.__table__
X = KpiDelta.__table__
DIMS = {"department": "department_code", "category": "category_code", "district": "district_code"}
TOTAL_DIM = "category"  # every order has a category: the total is the sum over the category rows
KEYS = ("created_at", "department_code", "category_code", "district_code")
ADVISORY_LOCK = 0x12345_4B5049  # serializes compact/rebuild across processes (PostgreSQL)
COMPACT_INTERVAL_SECONDS = 60.0

# One order's contribution, as predicates over work_orders (merged orders contribute nothing). The triggers in
# migration 0005 compute the same from OLD/NEW rows; kpi_common.count_columns (the reference query's counts) is
# what these must agree with.
_DONE = (Status.resolved.value, Status.closed.value)
_SATISFIED = (Satisfaction.satisfied.value, Satisfaction.basically_satisfied.value)
ROW_FLAGS: dict[str, Any] = {
    "orders": None,
    "dispatched": W.dispatched_at.is_not(None),
    "resp_accepted": W.dispatched_at.is_not(None) & W.accepted_at.is_not(None),
    "resp_waiting": W.dispatched_at.is_not(None) & W.accepted_at.is_(None) & (W.status != Status.withdrawn.value),
    "responded_on_time": W.accepted_at.is_not(None) & (W.accepted_at <= W.response_due),
    "resolved": W.resolved_at.is_not(None),
    "resolved_on_time": W.resolved_at.is_not(None) & (W.resolved_at <= W.resolution_due),
    "completion_base": W.status != Status.withdrawn.value,
    "completed": W.status.in_(_DONE),
    "returned": W.return_count > 0,
    "rated": W.satisfaction.is_not(None),
    "solved": W.solved.is_(True),
    "satisfied": W.satisfaction.in_(_SATISFIED),
    "repeat": W.urge_count > 0,
}
assert tuple(ROW_FLAGS) == ROLLUP_COUNTS


def _flag_columns() -> list[Any]:
    return [
        (literal_column("1") if pred is None else case((pred, 1), else_=0)).label(name)
        for name, pred in ROW_FLAGS.items()
    ]


# -- maintenance ------------------------------------------------------------------------------------------
async def built_tz(session: AsyncSession) -> str | None:
    return await session.scalar(select(KpiRollupState.tz).where(KpiRollupState.id == 1))


async def compact(db: Database, tz: ZoneInfo) -> int:
    """Fold the change log into the daily rollup (rebuilding it first when it is missing or in another time
    zone). Returns the number of log rows folded (or of orders read, for a rebuild). Safe to run anywhere at
    any time, concurrently too: each log row is deleted and added in one transaction, exactly once."""
    async with db.session() as session:
        await _lock(session)
        if await built_tz(session) != tz.key:
            n = await _rebuild(session, tz)
        else:
            if session.bind.dialect.name == "postgresql":
                n = await _fold_pg(session, _DRAIN_LOG, tz)
            else:
                rows = (await session.execute(
                    delete(KpiDelta).returning(*(X.c[k] for k in KEYS + ROLLUP_COUNTS)))).all()
                n = await _fold_py(session, rows, tz)
            await session.execute(
                KpiRollupState.__table__.update().where(KpiRollupState.id == 1).values(compacted_at=utcnow()))
        await session.commit()
    if n:
        log.debug("kpi rollup: folded %d rows", n)
    return n


async def rebuild(db: Database, tz: ZoneInfo) -> int:
    """Recompute the daily rollup from work_orders (writers wait meanwhile). Returns the orders counted."""
    async with db.session() as session:
        await _lock(session)
        n = await _rebuild(session, tz)
        await session.commit()
    return n


async def _lock(session: AsyncSession) -> None:
    if session.bind.dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(ADVISORY_LOCK)))


async def _rebuild(session: AsyncSession, tz: ZoneInfo) -> int:
    pg = session.bind.dialect.name == "postgresql"
    if pg:  # no order changes until commit: the deltas deleted here are exactly those already in work_orders
        await session.execute(text("LOCK TABLE work_orders IN SHARE MODE"))
    await session.execute(delete(KpiDelta))  # SQLite: the first write takes the database's write lock
    await session.execute(delete(KpiDaily))
    source = select(*(W.__table__.c[k] for k in KEYS), *_flag_columns()).where(W.status != Status.merged.value)
    if pg:
        sql = source.compile(dialect=session.bind.dialect, compile_kwargs={"literal_binds": True})
        n = await _fold_pg(session, str(sql), tz)
    else:
        n = await _fold_py(session, (await session.execute(source)).all(), tz)
    now = utcnow()
    insert = pg_insert if pg else sqlite_insert
    stmt = insert(KpiRollupState).values(id=1, tz=tz.key, rebuilt_at=now, compacted_at=now)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[KpiRollupState.id], set_={"tz": tz.key, "rebuilt_at": now, "compacted_at": now}))
    log.info("kpi rollup rebuilt from %d orders (time zone %s)", n, tz.key)
    return n


_COLS = ", ".join(ROLLUP_COUNTS)
_SUMS = ", ".join(f"sum({c}) AS {c}" for c in ROLLUP_COUNTS)
_ADD = ", ".join(f"{c} = wo_kpi_daily.{c} + EXCLUDED.{c}" for c in ROLLUP_COUNTS)
_FOLD_PG = f"""
WITH src AS ({{source}}),
d AS (SELECT (created_at AT TIME ZONE :tz)::date AS day, department_code, category_code, district_code, {_COLS}
      FROM src),
agg AS (
    SELECT 'department' AS dim, day, COALESCE(department_code, '') AS key, {_SUMS} FROM d GROUP BY 2, 3
    UNION ALL
    SELECT 'category', day, category_code, {_SUMS} FROM d GROUP BY 2, 3
    UNION ALL
    SELECT 'district', day, COALESCE(district_code, ''), {_SUMS} FROM d GROUP BY 2, 3
),
ins AS (
    INSERT INTO wo_kpi_daily (dim, day, key, {_COLS}) SELECT dim, day, key, {_COLS} FROM agg
    ON CONFLICT (dim, day, key) DO UPDATE SET {_ADD}
)
SELECT count(*) FROM src
"""
_DRAIN_LOG = f"DELETE FROM wo_kpi_deltas RETURNING created_at, department_code, category_code, district_code, {_COLS}"


async def _fold_pg(session: AsyncSession, source: str, tz: ZoneInfo) -> int:
    """One statement: the source rows (the drained log, or the orders) summed per day × dimension × key and
    added to the daily rows."""
    return int(await session.scalar(text(_FOLD_PG.format(source=source)), {"tz": tz.key}) or 0)


async def _fold_py(session: AsyncSession, rows: Iterable[Sequence[Any]], tz: ZoneInfo) -> int:
    """The same in Python (SQLite cannot convert time zones)."""
    sums: dict[tuple[str, dt.date, str], list[int]] = {}
    n = 0
    width = len(ROLLUP_COUNTS)
    for row in rows:
        n += 1
        created, dept, cat, district = row[0], row[1], row[2], row[3]
        day = created.astimezone(tz).date()
        values = row[4:]
        for dim, key in (("department", dept), ("category", cat), ("district", district)):
            acc = sums.setdefault((dim, day, key or ""), [0] * width)
            for i in range(width):
                acc[i] += values[i]
    items = [{"dim": d, "day": day, "key": k, **dict(zip(ROLLUP_COUNTS, v))} for (d, day, k), v in sums.items()]
    for i in range(0, len(items), 500):
        stmt = sqlite_insert(KpiDaily).values(items[i:i + 500])
        stmt = stmt.on_conflict_do_update(
            index_elements=[KpiDaily.dim, KpiDaily.day, KpiDaily.key],
            set_={c: D.c[c] + stmt.excluded[c] for c in ROLLUP_COUNTS},
        )
        await session.execute(stmt)
    return n


# -- reading ----------------------------------------------------------------------------------------------
def whole_days(start: dt.datetime, end: dt.datetime, tz: ZoneInfo) -> tuple[dt.date, dt.date, dt.datetime, dt.datetime]:
    """The local days lying wholly in [start, end): first, last + 1, and their bounds [a, b)."""
    first = start.astimezone(tz).date()
    a = dt.datetime.combine(first, dt.time(), tz)
    if a < start:
        first += dt.timedelta(days=1)
        a = dt.datetime.combine(first, dt.time(), tz)
    stop = end.astimezone(tz).date()
    b = dt.datetime.combine(stop, dt.time(), tz)
    return first, stop, a, b


async def count_rows(
    session: AsyncSession, start: dt.datetime, end: dt.datetime, group_by: str | None, now: dt.datetime,
    tz: ZoneInfo,
) -> list[Sequence[Any]] | None:
    """Rows shaped like the reference query's ([key,] *COUNTS), or None when the rollup cannot serve this
    (not built, other time zone, or no whole day in the range: the reference query is cheap then)."""
    first, stop, a, b = whole_days(start, end, tz)
    if first >= stop or await built_tz(session) != tz.key:
        return None
    dim = group_by or TOTAL_DIM
    column = DIMS[dim]
    zero, minus_one = literal_column("0"), literal_column("-1")

    def counts(t: Any) -> list[Any]:  # COUNTS from a table with the rollup columns
        return [(t.c.resp_accepted + t.c.resp_waiting if c == "response_due" else t.c[c]).label(c) for c in COUNTS]

    def keyed(key: Any, cols: list[Any]) -> list[Any]:
        return [key.label("k"), *cols] if group_by else cols

    parts = [
        select(*keyed(func.nullif(D.c.key, ""), counts(D))).where(D.c.dim == dim, D.c.day >= first, D.c.day < stop),
        select(*keyed(X.c[column], counts(X))).where(X.c.created_at >= a, X.c.created_at < b),
        select(*keyed(W.__table__.c[column], [(minus_one if c == "response_due" else zero).label(c) for c in COUNTS]))
        .where(W.dispatched_at.is_not(None), W.accepted_at.is_(None), W.response_due > now,
               W.status.not_in([Status.withdrawn.value, Status.merged.value]),
               W.created_at >= a, W.created_at < b),
    ]
    edges = [(x, y) for x, y in ((start, a), (b, end)) if x < y]
    if edges:
        raw = select(*keyed(GROUP_COLUMNS[group_by] if group_by else None,
                            [col.label(c) for col, c in zip(count_columns(now), COUNTS)]))
        raw = raw.where(or_(*((W.created_at >= x) & (W.created_at < y) for x, y in edges)),
                        W.status != Status.merged.value)
        parts.append(raw.group_by(GROUP_COLUMNS[group_by]) if group_by else raw)
    u = union_all(*parts).subquery("u")
    sums = [func.sum(u.c[c]) for c in COUNTS]
    if group_by:
        q = select(u.c.k, *sums).group_by(u.c.k).having(func.sum(u.c.orders) > 0).order_by(u.c.k)
    else:
        q = select(*sums)
    return list((await session.execute(q)).all())
