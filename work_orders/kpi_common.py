"""What the KPI reference query (kpis.py) and the daily rollup (kpi_rollup.py) share: the counts, their SQL over
work_orders, and the columns a breakdown groups by (formulas: work_orders/KPIS.md)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func

from work_orders.models import Satisfaction, Status, WorkOrder

W = WorkOrder
GROUP_COLUMNS = {"department": W.department_code, "category": W.category_code, "district": W.district_code}
COUNTS = (
    "orders", "dispatched", "response_due", "responded_on_time", "resolved", "resolved_on_time",
    "completion_base", "completed", "returned", "rated", "solved", "satisfied", "repeat",
)


def count_columns(now: dt.datetime) -> list[Any]:
    dispatched = W.dispatched_at.is_not(None)
    done = (Status.resolved.value, Status.closed.value)
    return [
        func.count(),
        func.count().filter(dispatched),
        func.count().filter(dispatched & (W.accepted_at.is_not(None) | (
            (W.response_due <= now) & (W.status != Status.withdrawn.value)))),
        func.count().filter(W.accepted_at.is_not(None) & (W.accepted_at <= W.response_due)),
        func.count().filter(W.resolved_at.is_not(None)),
        func.count().filter(W.resolved_at.is_not(None) & (W.resolved_at <= W.resolution_due)),
        func.count().filter(W.status != Status.withdrawn.value),
        func.count().filter(W.status.in_(done)),
        func.count().filter(W.return_count > 0),
        func.count().filter(W.satisfaction.is_not(None)),
        func.count().filter(W.solved.is_(True)),
        func.count().filter(
            W.satisfaction.in_([Satisfaction.satisfied.value, Satisfaction.basically_satisfied.value])
        ),
        func.count().filter(W.urge_count > 0),
    ]
