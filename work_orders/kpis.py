"""KPIs over orders created in a period (formulas: work_orders/KPIS.md).

`compute_raw` is the reference: one GROUP BY over work_orders. With the city's time zone given, `compute` reads
the same figures from the daily rollup (work_orders/kpi_rollup.py) when it is built, which stays fast over
millions of orders; the results are identical.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from work_orders.kpi_common import COUNTS, GROUP_COLUMNS, W, count_columns
from work_orders.models import Status
from work_orders.routing import Taxonomy

RATES = {  # name: (numerator, denominator)
    "response_rate": ("responded_on_time", "response_due"),
    "resolution_rate": ("solved", "rated"),
    "on_time_rate": ("resolved_on_time", "resolved"),
    "completion_rate": ("completed", "completion_base"),
    "return_rate": ("returned", "dispatched"),
    "satisfaction_rate": ("satisfied", "rated"),
    "repeat_call_rate": ("repeat", "orders"),
}
ContainmentSource = Callable[[AsyncSession, dt.datetime, dt.datetime], Awaitable[float | None]]


def rates(counts: dict[str, int]) -> dict[str, float | None]:
    return {
        name: (round(counts[num] / counts[den], 4) if counts[den] else None) for name, (num, den) in RATES.items()
    }


async def raw_rows(
    session: AsyncSession, start: dt.datetime, end: dt.datetime, group_by: str | None, now: dt.datetime
) -> list[Any]:
    """The reference query: rows of ([key,] *COUNTS) over orders created in [start, end)."""
    key = GROUP_COLUMNS[group_by] if group_by else None
    cols = count_columns(now)
    q = select(*([key] if key is not None else []), *cols).where(
        W.created_at >= start, W.created_at < end, W.status != Status.merged.value
    )
    if key is not None:
        q = q.group_by(key).order_by(key)
    return list((await session.execute(q)).all())


async def compute(
    session: AsyncSession,
    tax: Taxonomy,
    start: dt.datetime,
    end: dt.datetime,
    group_by: str | None,
    now: dt.datetime,
    containment: ContainmentSource | None = None,
    tz: ZoneInfo | None = None,
) -> dict[str, Any]:
    """KPIs for orders created in [start, end). With `tz` (the city's time zone) the daily rollup serves the
    whole days of the range when it is built; otherwise, and as the reference, the raw query does."""
    rows = None
    if tz is not None:
        from work_orders import kpi_rollup

        rows = await kpi_rollup.count_rows(session, start, end, group_by, now, tz)
    if rows is None:
        rows = await raw_rows(session, start, end, group_by, now)
    return await _result(session, tax, start, end, group_by, rows, containment)


async def compute_raw(
    session: AsyncSession,
    tax: Taxonomy,
    start: dt.datetime,
    end: dt.datetime,
    group_by: str | None,
    now: dt.datetime,
    containment: ContainmentSource | None = None,
) -> dict[str, Any]:
    return await _result(session, tax, start, end, group_by, await raw_rows(session, start, end, group_by, now),
                         containment)


async def _result(
    session: AsyncSession,
    tax: Taxonomy,
    start: dt.datetime,
    end: dt.datetime,
    group_by: str | None,
    rows: list[Any],
    containment: ContainmentSource | None,
) -> dict[str, Any]:
    total = dict.fromkeys(COUNTS, 0)
    groups = []
    for row in rows:
        values = list(row)
        k = values.pop(0) if group_by else None
        counts = dict(zip(COUNTS, (int(v or 0) for v in values)))
        for name, v in counts.items():
            total[name] += v
        if group_by:
            groups.append({"key": k, "name": _name(tax, group_by, k), **counts, **rates(counts)})
    source = containment or no_containment
    return {
        "from": start,
        "to": end,
        "group_by": group_by,
        "total": {**total, **rates(total), "bot_containment_rate": await source(session, start, end)},
        "groups": groups,
    }


def _name(tax: Taxonomy, group_by: str | None, code: str | None) -> str | None:
    if code is None:
        return None
    if group_by == "department":
        return tax.department_name(code)
    if group_by == "category":
        return tax.category_name(code)
    d = tax.districts.get(code)
    return d.name if d else code


async def no_containment(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> float | None:
    """Without call records there is no containment figure (rather than a wrong one)."""
    return None


def to_csv(result: dict[str, Any]) -> str:
    fields = ["key", "name", *COUNTS, *RATES, "bot_containment_rate"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for g in result["groups"]:
        writer.writerow({**g, "bot_containment_rate": ""})
    writer.writerow({"key": "TOTAL", "name": "合计", **result["total"]})
    return buf.getvalue()
