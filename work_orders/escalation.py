"""Three-level escalation (三级预警, after the Shenzhen rules), computed from deadlines stored in the database.

- level 1 (hotline supervisors, 催办): an ordinary (普通) order is overdue;
- level 2 (督察): an urgent (加急) order is overdue, or the citizen has urged it `urges_to_raise_urgency` times;
- level 3 (leadership): an extra-urgent (特急) order is overdue, or it is still unsolved `wo_level3_after_hours`
  after reaching level 2.

"Overdue": the response deadline passed before the department accepted it, or the resolution deadline passed
before it was resolved. The worker only ever raises a level, and each raise is a conditional update
(optimistic version check), so running it twice, after a restart, or in two processes at once gives the
same single event per level.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm.exc import StaleDataError

from core import audit
from work_orders.models import Status, Urgency, WorkOrder
from work_orders.service import OPEN_VALUES, SYSTEM, WorkOrderService
from work_orders.views import RESPONSE_PENDING

log = logging.getLogger(__name__)

LEVEL_FOR_URGENCY = {Urgency.normal.value: 1, Urgency.urgent.value: 2, Urgency.critical.value: 3}
LEVEL_NAMES = {1: "一级预警（热线督办）", 2: "二级预警（督察）", 3: "三级预警（领导督办）"}


def target_level(order: WorkOrder, now: dt.datetime, urges: int, level3_after: dt.timedelta) -> tuple[int, str]:
    level, reason = 0, ""
    response_late = order.status in RESPONSE_PENDING and order.response_due <= now
    resolution_late = order.resolution_due <= now
    if response_late or resolution_late:
        level = LEVEL_FOR_URGENCY.get(order.urgency, 1)
        reason = "超过响应时限未签收" if response_late and not resolution_late else "超过办理时限未办结"
    if urges > 0 and order.urge_count >= urges and level < 2:
        level, reason = 2, f"群众催办{order.urge_count}次"
    if order.escalation_level >= 2 and order.escalated_at and now - order.escalated_at >= level3_after:
        level, reason = 3, "二级预警后仍未解决"
    return level, reason


async def run_escalation(service: WorkOrderService, now: dt.datetime | None = None, batch: int = 500) -> int:
    """One pass: raise every open order to the level its deadlines call for. Returns the number of raises."""
    now = now or service.clock()
    settings = service.settings
    urges = settings.urges_to_raise_urgency
    level3_after = dt.timedelta(hours=settings.wo_level3_after_hours)
    due = or_(
        WorkOrder.resolution_due <= now,
        and_(WorkOrder.status.in_(list(RESPONSE_PENDING)), WorkOrder.response_due <= now),
        and_(WorkOrder.escalation_level < 2, WorkOrder.urge_count >= max(urges, 1)) if urges > 0 else false(),
        and_(WorkOrder.escalation_level == 2, WorkOrder.escalated_at <= now - level3_after),
    )
    raised = 0
    last_id = 0
    while True:
        async with service.db.session() as session:
            orders = (await session.scalars(
                select(WorkOrder)
                .where(WorkOrder.status.in_(OPEN_VALUES), WorkOrder.escalation_level < 3, due, WorkOrder.id > last_id)
                .order_by(WorkOrder.id)
                .limit(batch)
            )).all()
            if not orders:
                return raised
            restart = False
            for order in orders:
                last_id = order.id
                level, reason = target_level(order, now, urges, level3_after)
                if level <= order.escalation_level:
                    continue
                if not await _raise(service, session, order, level, reason, now):
                    restart = True  # rolled back: the rest of this batch is expired, query again
                    break
                raised += 1
        if not restart and len(orders) < batch:
            return raised


async def _raise(service: WorkOrderService, session: Any, order: WorkOrder, level: int, reason: str,
                 now: dt.datetime) -> bool:
    before = order.escalation_level
    order.escalation_level, order.escalated_at = level, now
    service._event(session, SYSTEM, order, "escalate", None, None, f"{LEVEL_NAMES[level]}：{reason}",
                   level=level, from_level=before, reason=reason)
    audit.record(session, SYSTEM, "work_order.escalate", "work_order", order.ticket, level=level, reason=reason)
    try:
        await session.commit()
    except StaleDataError:  # someone changed the order meanwhile (another worker, a transition): next pass
        await session.rollback()
        return False
    log.warning("order %s escalated to level %d: %s", order.ticket, level, reason)
    return True


__all__ = ["run_escalation", "target_level", "LEVEL_NAMES", "Status"]
