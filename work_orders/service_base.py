"""Work orders (no HTTP), the shared part of `WorkOrderService` (work_orders/service.py): state, taxonomy helpers,
reading, public tracking, and the write steps intake, the lifecycle and callbacks have in common.

Every public write method is one transaction and commits before returning, so a ticket number handed back
to the caller (bot, IVR, agent, intake channel) is already durable.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from config.settings import Settings
from core import audit
from core.db import Database, utcnow
from core.errors import BadRequest, Conflict, NotFound
from work_orders import lifecycle
from work_orders.models import (
    OPEN_VALUES,
    URGENCY_ORDER,
    CallbackTask,
    Status,
    Urgency,
    WorkOrder,
    WorkOrderEvent,
)
from work_orders.routing import CategoryInfo, RouteDecision, Taxonomy, TaxonomyCache
from work_orders.tickets import TICKET_RE, TicketSequences

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SystemActor:
    """Actor for in-process callers without a user (worker, seeder). role 'system' may do every action."""

    username: str = "system"
    role: str = "system"
    id: None = None
    department_code: None = None


SYSTEM = SystemActor()


@dataclass(frozen=True)
class CreatedOrder:
    """What the bot/IVR/agent tells the caller. outcome: created | closed_on_call | linked_repeat (an open order
    of this caller was urged instead) | hotspot_child (grouped under a master order) | replayed (same key)."""

    order: WorkOrder
    outcome: str
    ticket: str
    spoken_ticket: str
    status: str
    department_code: str | None
    department_name: str | None
    response_due: dt.datetime
    resolution_due: dt.datetime
    urgency: str


def role_of(actor: Any) -> str:
    return getattr(actor, "role", None) or "system"


class WorkOrderBase:
    """What every part of the service shares: its state, the taxonomy helpers, reading, public tracking and the
    steps the writes have in common (history events, audit and commit, urging, reopening, cancelling callbacks).
    """

    def __init__(self, db: Database, settings: Settings, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.tz = ZoneInfo(settings.timezone)
        self.taxonomy = TaxonomyCache()
        self.ticket_sequences = TicketSequences()
        # PostgreSQL: look up and write a new order with its history and audit row in one statement each, through
        # the driver (_candidates, _insert_pg); False → through the ORM as on SQLite (tests compare the two).
        self.single_statement_create = True
        # Bot containment for the KPIs: the calls package may register its own source (see kpis.py).
        self.containment: Any = None

    # -- taxonomy helpers (also the bot's API) ------------------------------------------------
    async def tax(self, session: AsyncSession) -> Taxonomy:
        return await self.taxonomy.get(session)

    async def categories(self, session: AsyncSession) -> list[CategoryInfo]:
        return [c for c in (await self.tax(session)).categories.values() if c.active]

    async def route(self, session: AsyncSession, category: str, district: str | None, text: str) -> RouteDecision:
        tax = await self.tax(session)
        if category not in tax.categories:
            raise BadRequest(f"unknown category {category!r}")
        if district is not None and district not in tax.districts:
            raise BadRequest(f"unknown district {district!r}")
        return tax.route(category, district, text)

    async def locate(self, session: AsyncSession, address: str) -> str | None:
        return (await self.tax(session)).locate(address)

    def deadlines(self, urgency: str, start: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        try:
            resp = self.settings.wo_response_minutes[urgency]
            res = self.settings.wo_resolution_hours[urgency]
        except KeyError:
            raise BadRequest(f"no deadlines configured for urgency {urgency!r}") from None
        return start + dt.timedelta(minutes=resp), start + dt.timedelta(hours=res)

    # -- reading -------------------------------------------------------------------------------
    async def get_by_ticket(self, session: AsyncSession, ticket: str) -> WorkOrder | None:
        return await session.scalar(select(WorkOrder).where(WorkOrder.ticket == ticket))

    async def get(self, session: AsyncSession, actor: Any, ref: str | int) -> WorkOrder:
        """By id or ticket; a department user gets 404 for any order not dispatched to its department."""
        ref = str(ref).strip()
        order: WorkOrder | None = None
        if TICKET_RE.match(ref):
            order = await self.get_by_ticket(session, ref)
        elif ref.isascii() and ref.isdigit() and len(ref) < 12:  # "¹".isdigit() is True, int("¹") fails
            order = await session.get(WorkOrder, int(ref))
        if order is None or (role_of(actor) == "department" and order.department_code != actor.department_code):
            raise NotFound(f"work order {ref} not found")
        return order

    async def open_orders_for_phone(self, session: AsyncSession, phone: str) -> list[WorkOrder]:
        rows = await session.scalars(
            select(WorkOrder)
            .where(WorkOrder.caller_phone == phone, WorkOrder.status.in_(OPEN_VALUES + [Status.resolved.value]))
            .order_by(WorkOrder.id.desc())
        )
        return list(rows.all())

    async def history(self, session: AsyncSession, order_id: int) -> list[WorkOrderEvent]:
        rows = await session.scalars(
            select(WorkOrderEvent).where(WorkOrderEvent.order_id == order_id).order_by(WorkOrderEvent.id)
        )
        return list(rows.all())

    async def children(self, session: AsyncSession, order_id: int) -> list[str]:
        rows = await session.scalars(
            select(WorkOrder.ticket).where(WorkOrder.master_id == order_id).order_by(WorkOrder.id)
        )
        return list(rows.all())

    async def list(
        self,
        session: AsyncSession,
        actor: Any,
        *,
        status: list[str] | None = None,
        category: str | None = None,
        department: str | None = None,
        district: str | None = None,
        overdue: bool | None = None,
        escalation_level: int | None = None,
        phone: str | None = None,
        created_from: dt.datetime | None = None,
        created_to: dt.datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[WorkOrder], int]:
        q = select(WorkOrder)
        if role_of(actor) == "department":
            q = q.where(WorkOrder.department_code == actor.department_code)
        if status:
            q = q.where(WorkOrder.status.in_(status))
        if category:
            q = q.where(or_(WorkOrder.category_code == category, WorkOrder.category_code.like(f"{category}.%")))
        if department:
            q = q.where(WorkOrder.department_code == department)
        if district:
            q = q.where(WorkOrder.district_code == district)
        if escalation_level is not None:
            q = q.where(WorkOrder.escalation_level >= escalation_level)
        if phone:
            q = q.where(WorkOrder.caller_phone == phone)
        if created_from:
            q = q.where(WorkOrder.created_at >= created_from)
        if created_to:
            q = q.where(WorkOrder.created_at < created_to)
        if overdue is not None:
            now = self.clock()
            late = WorkOrder.status.in_(OPEN_VALUES) & (
                (WorkOrder.resolution_due <= now)
                | (
                    WorkOrder.status.in_([Status.created.value, Status.dispatched.value, Status.returned.value])
                    & (WorkOrder.response_due <= now)
                )
            )
            q = q.where(late if overdue else ~late)
        total = await session.scalar(select(func.count()).select_from(q.subquery()))
        rows = await session.scalars(q.order_by(WorkOrder.id.desc()).limit(limit).offset(offset))
        return list(rows.all()), int(total or 0)

    # -- public tracking -----------------------------------------------------------------------
    async def track(self, session: AsyncSession, ticket: str, phone_last4: str) -> tuple[WorkOrder, list[WorkOrderEvent]]:
        """Same NotFound for a missing ticket and for wrong digits, so the endpoint reveals nothing."""
        order = await self.get_by_ticket(session, ticket) if TICKET_RE.match(ticket) else None
        if order is None or not order.caller_phone or order.caller_phone[-4:] != phone_last4:
            raise NotFound("没有找到这个工单，请核对工单号和手机号后四位")
        return order, await self.history(session, order.id)

    # -- internals -----------------------------------------------------------------------------
    async def _transition(
        self, session: AsyncSession, actor: Any, ref: str | int | WorkOrder, action: str, note: str,
        public_text: str | None = None, **detail: Any,
    ) -> WorkOrder:
        order = ref if isinstance(ref, WorkOrder) else await self.get(session, actor, ref)
        t = lifecycle.check(action, order.status, role_of(actor))
        before = Status(order.status)
        assert t.target is not None
        order.status = t.target.value
        self._event(session, actor, order, action, before, t.target, note, public_text=public_text, **detail)
        return order

    def _event(
        self, session: AsyncSession, actor: Any, order: WorkOrder, action: str, before: Status | None,
        after: Status | None, note: str, public_text: str | None = None, touch: bool = True, **detail: Any,
    ) -> None:
        row = self._event_row(actor, action, before, after, note, public_text, **detail)
        if touch:
            order.updated_at = row["at"]
        session.add(WorkOrderEvent(order_id=order.id, **row))

    def _event_row(
        self, actor: Any, action: str, before: Status | None, after: Status | None, note: str,
        public_text: str | None = None, **detail: Any,
    ) -> dict[str, Any]:
        if public_text is not None:
            detail["public_text"] = public_text
        return dict(
            at=self.clock(), actor=actor.username, actor_role=role_of(actor), action=action,
            from_status=before.value if before else None, to_status=after.value if after else None,
            note=note or "", public=public_text is not None, detail=detail,
        )

    async def _done(self, session: AsyncSession, actor: Any, order: WorkOrder, action: str, **detail: Any) -> WorkOrder:
        audit.record(session, actor, f"work_order.{action}", "work_order", order.ticket, status=order.status, **detail)
        await self._commit(session)
        return order

    async def _commit(self, session: AsyncSession) -> None:
        try:
            await session.commit()
        except StaleDataError:
            await session.rollback()
            raise Conflict("the order was changed by someone else at the same time; reload and try again") from None

    # -- write steps shared by intake, the lifecycle and callbacks -------------------------------
    async def _urge(
        self, session: AsyncSession, actor: Any, order: WorkOrder, note: str, repeat_call: bool = False,
        idempotency_key: str | None = None,
    ) -> None:
        order.urge_count += 1
        detail: dict[str, Any] = {"urge_count": order.urge_count, "repeat_call": repeat_call}
        if idempotency_key:  # a linked repeat call stores no order of its own: its key is kept here
            detail["idempotency_key"] = idempotency_key
        n = self.settings.urges_to_raise_urgency
        current = URGENCY_ORDER.index(Urgency(order.urgency))
        if n > 0 and order.urge_count % n == 0 and current < len(URGENCY_ORDER) - 1:
            raised = URGENCY_ORDER[current + 1]
            resp, res = self.deadlines(raised.value, order.created_at)
            order.urgency = raised.value
            order.response_due, order.resolution_due = min(order.response_due, resp), min(order.resolution_due, res)
            detail["urgency_raised_to"] = raised.value
        order.updated_at = self.clock()
        self._event(session, actor, order, "urge", None, None, note, **detail)

    def _reopened(self, order: WorkOrder) -> None:
        now = self.clock()
        order.reopen_count += 1
        order.resolved_at = order.closed_at = None
        order.resolution_due = self.deadlines(order.urgency, now)[1]

    async def _cancel_callbacks(self, session: AsyncSession, order_id: int) -> None:
        for task in (await session.scalars(select(CallbackTask).where(
                CallbackTask.order_id == order_id, CallbackTask.status == "pending"))).all():
            task.status = "cancelled"
