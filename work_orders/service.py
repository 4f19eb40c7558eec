"""Work-order logic (no HTTP): intake with routing, repeat-call linking and hotspots, the lifecycle, callbacks.

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
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from config.settings import Settings
from hotline import audit
from hotline.db import Database, utcnow
from hotline.errors import BadRequest, Conflict, NotFound
from hotline.logging import mask_phone
from work_orders import lifecycle
from work_orders.models import (
    OPEN_STATUSES,
    URGENCY_ORDER,
    CallbackTask,
    Complexity,
    Satisfaction,
    Status,
    Urgency,
    WorkOrder,
    WorkOrderEvent,
)
from work_orders.routing import CategoryInfo, RouteDecision, Taxonomy, TaxonomyCache, normalize_address
from work_orders.schemas import WorkOrderCreate
from work_orders.tickets import TICKET_RE, next_ticket, speakable

log = logging.getLogger(__name__)
OPEN_VALUES = [s.value for s in OPEN_STATUSES]


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


class WorkOrderService:
    def __init__(self, db: Database, settings: Settings, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.tz = ZoneInfo(settings.timezone)
        self.taxonomy = TaxonomyCache()
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
        elif ref.isdigit() and len(ref) < 12:
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

    # -- intake --------------------------------------------------------------------------------
    async def create(
        self, session: AsyncSession, actor: Any, data: WorkOrderCreate, idempotency_key: str | None = None
    ) -> CreatedOrder:
        if idempotency_key:
            existing = await session.scalar(select(WorkOrder).where(WorkOrder.idempotency_key == idempotency_key))
            if existing is not None:
                return self._created(await self.tax(session), existing, "replayed")
        try:
            for attempt in range(3):
                try:
                    return await self._create(session, actor, data, idempotency_key)
                except Conflict:  # a repeat call urged an order someone changed at the same moment: try again
                    if attempt == 2:
                        raise
                    await self._refresh_actor(session, actor)
            raise AssertionError("unreachable")
        except IntegrityError:
            await session.rollback()
            await self._refresh_actor(session, actor)
            if idempotency_key:  # a concurrent retry with the same key won the race: hand back its order
                existing = await session.scalar(
                    select(WorkOrder).where(WorkOrder.idempotency_key == idempotency_key)
                )
                if existing is not None:
                    return self._created(await self.tax(session), existing, "replayed")
            raise

    async def _create(
        self, session: AsyncSession, actor: Any, data: WorkOrderCreate, key: str | None
    ) -> CreatedOrder:
        tax = await self.tax(session)
        cat = tax.categories.get(data.category)
        if cat is None or not cat.active:
            raise BadRequest(f"unknown category {data.category!r}; see GET /v1/taxonomy/categories")
        if data.district is not None and data.district not in tax.districts:
            raise BadRequest(f"unknown district {data.district!r}; see GET /v1/taxonomy/districts")
        if data.department is not None:
            dept = tax.departments.get(data.department)
            if dept is None or not dept.active:
                raise BadRequest(f"unknown department {data.department!r}")
        district = data.district or tax.locate(data.address)
        place = tax.place(data.address, district)
        now = self.clock()

        if data.link_repeats and data.caller_phone:
            repeat = await self._find_repeat(session, data, district, place, now)
            if repeat is not None:
                await self._urge(session, actor, repeat, "重复来电：" + data.description[:200], repeat_call=True)
                await self._commit(session)
                return self._created(tax, repeat, "linked_repeat")

        urgency = Urgency(data.urgency or cat.urgency)
        complexity = Complexity(data.complexity or cat.complexity)
        closed_on_call = complexity is Complexity.easy and bool(data.answer)
        if complexity is Complexity.easy and not closed_on_call:
            complexity = Complexity.simple  # 易 but not settled on the call: handled like any simple order
        text = f"{data.description} {data.address}"
        decision = tax.route(data.category, district, text)
        department = data.department or decision.department_code
        master = None
        if place and not closed_on_call:
            master = await self._find_master(session, data, district, place, now)
            if master is not None and master.department_code:
                department = master.department_code
        response_due, resolution_due = self.deadlines(urgency.value, now)
        order = WorkOrder(
            status=Status.created.value,
            category_code=data.category,
            district_code=district,
            department_code=department,
            routing_rule_id=decision.rule_id if department == decision.department_code else None,
            description=data.description,
            address=data.address,
            place=place,
            lat=data.lat,
            lon=data.lon,
            caller_phone=data.caller_phone,
            caller_name=data.caller_name,
            channel=data.channel,
            call_ref=data.call_ref,
            idempotency_key=key,
            urgency=urgency.value,
            complexity=complexity.value,
            created_at=now,
            updated_at=now,
            created_by=actor.username,
            response_due=response_due,
            resolution_due=resolution_due,
            master_id=master.id if master is not None else None,
        )
        order.ticket = await next_ticket(session, now, self.tz)  # last, so the counter row lock is short
        session.add(order)
        await session.flush()
        self._event(session, actor, order, "create", None, Status.created, f"受理渠道：{data.channel}",
                    public_text="您的诉求已受理", routing=decision.level, rule_id=decision.rule_id)
        outcome = "created"
        if closed_on_call:
            order.status, order.closed_at, order.resolved_at = Status.closed.value, now, now
            order.result_note = order.public_note = data.answer
            self._event(session, actor, order, "close_on_call", Status.created, Status.closed, data.answer or "",
                        public_text=data.answer or "")
            outcome = "closed_on_call"
        elif data.dispatch and department:
            self._dispatch(session, actor, order, department, tax, "")
        if master is not None:
            outcome = "hotspot_child"
            self._event(session, actor, order, "hotspot", None, None, f"归并至热点主工单 {master.ticket}",
                        master=master.ticket)
            self._event(session, actor, master, "hotspot_join", None, None, f"同一地点新增诉求 {order.ticket}",
                        touch=False, child=order.ticket)  # no write to the master row: concurrent reports
                                                          # about one hotspot must not conflict
        audit.record(session, actor, "work_order.create", "work_order", order.ticket, outcome=outcome,
                     category=order.category_code, department=order.department_code, channel=order.channel)
        await self._commit(session)
        log.info("order %s created (%s) by %s phone=%s", order.ticket, outcome, actor.username,
                 mask_phone(order.caller_phone or "-"))
        return self._created(tax, order, outcome)

    async def _refresh_actor(self, session: AsyncSession, actor: Any) -> None:
        if hasattr(actor, "_sa_instance_state") and actor in session:
            await session.refresh(actor)  # a rollback expired the caller's user row

    def _created(self, tax: Taxonomy, order: WorkOrder, outcome: str) -> CreatedOrder:
        return CreatedOrder(
            order=order, outcome=outcome, ticket=order.ticket, spoken_ticket=speakable(order.ticket),
            status=order.status, department_code=order.department_code,
            department_name=tax.department_name(order.department_code),
            response_due=order.response_due, resolution_due=order.resolution_due, urgency=order.urgency,
        )

    async def _find_repeat(
        self, session: AsyncSession, data: WorkOrderCreate, district: str | None, place: str | None, now: dt.datetime
    ) -> WorkOrder | None:
        since = now - dt.timedelta(days=self.settings.repeat_window_days)
        rows = await session.scalars(
            select(WorkOrder)
            .where(
                WorkOrder.caller_phone == data.caller_phone,
                WorkOrder.category_code == data.category,
                WorkOrder.created_at >= since,
                WorkOrder.status.in_(OPEN_VALUES),
            )
            .order_by(WorkOrder.id.desc())
        )
        for o in rows.all():
            if near(o, district, place, data.address):
                return o
        return None

    async def _find_master(
        self, session: AsyncSession, data: WorkOrderCreate, district: str | None, place: str, now: dt.datetime
    ) -> WorkOrder | None:
        since = now - dt.timedelta(days=self.settings.wo_nearby_hotspot_days)
        q = select(WorkOrder).where(
            WorkOrder.category_code == data.category,
            WorkOrder.place == place,
            WorkOrder.master_id.is_(None),
            WorkOrder.created_at >= since,
            WorkOrder.status.in_(OPEN_VALUES),
        )
        if district:
            q = q.where(WorkOrder.district_code == district)
        if data.caller_phone:
            q = q.where(or_(WorkOrder.caller_phone.is_(None), WorkOrder.caller_phone != data.caller_phone))
        return await session.scalar(q.order_by(WorkOrder.id).limit(1))

    # -- lifecycle -----------------------------------------------------------------------------
    async def dispatch(
        self, session: AsyncSession, actor: Any, ref: str | int, department: str | None = None, note: str = ""
    ) -> WorkOrder:
        order = await self.get(session, actor, ref)
        lifecycle.check("dispatch", order.status, role_of(actor))
        tax = await self.tax(session)
        if department is None:
            department = tax.route(order.category_code, order.district_code,
                                   f"{order.description} {order.address}").department_code
            if department is None:
                raise BadRequest("the responsibility list names no department for this order; choose one")
        dept = tax.departments.get(department)
        if dept is None or not dept.active:
            raise BadRequest(f"unknown department {department!r}")
        if order.status == Status.returned.value:  # the new department gets a fresh response window
            order.response_due = max(order.response_due, self.clock() + dt.timedelta(
                minutes=self.settings.wo_response_minutes[order.urgency]))
        self._dispatch(session, actor, order, department, tax, note)
        return await self._done(session, actor, order, "dispatch", department=department)

    def _dispatch(
        self, session: AsyncSession, actor: Any, order: WorkOrder, department: str, tax: Taxonomy, note: str
    ) -> None:
        before = Status(order.status)
        order.department_code, order.dispatched_at = department, self.clock()
        order.status = Status.dispatched.value
        self._event(session, actor, order, "dispatch", before, Status.dispatched, note,
                    public_text=f"已转交{tax.department_name(department)}办理", department=department)

    async def accept(self, session: AsyncSession, actor: Any, ref: str | int, note: str = "") -> WorkOrder:
        order = await self._transition(session, actor, ref, "accept", note, public_text="承办单位已签收")
        if order.accepted_at is None:
            order.accepted_at = self.clock()
        return await self._done(session, actor, order, "accept")

    async def start(self, session: AsyncSession, actor: Any, ref: str | int, note: str = "") -> WorkOrder:
        order = await self._transition(session, actor, ref, "start", note, public_text="正在处理")
        return await self._done(session, actor, order, "start")

    async def return_(self, session: AsyncSession, actor: Any, ref: str | int, reason: str) -> WorkOrder:
        if not reason.strip():
            raise BadRequest("a return needs a reason (为何不属于本单位)")
        order = await self._transition(session, actor, ref, "return", reason)
        order.return_count += 1
        return await self._done(session, actor, order, "return", reason=reason)

    async def resolve(
        self, session: AsyncSession, actor: Any, ref: str | int, result_note: str, public_note: str | None = None
    ) -> WorkOrder:
        if not result_note.strip():
            raise BadRequest("resolving needs a result note (办理结果)")
        order = await self._transition(session, actor, ref, "resolve", result_note,
                                       public_text=public_note or result_note)
        self._resolved(session, actor, order, result_note, public_note)
        for child in (await session.scalars(select(WorkOrder).where(
                WorkOrder.master_id == order.id, WorkOrder.status.in_(OPEN_VALUES)))).all():
            before = Status(child.status)
            child.status = Status.resolved.value
            self._event(session, actor, child, "resolve", before, Status.resolved,
                        f"随热点主工单 {order.ticket} 办结：{result_note}", public_text=public_note or result_note)
            self._resolved(session, actor, child, result_note, public_note)
        return await self._done(session, actor, order, "resolve")

    def _resolved(
        self, session: AsyncSession, actor: Any, order: WorkOrder, note: str, public_note: str | None
    ) -> None:
        """Queue the callback; an order without a phone number cannot be called back and closes at once."""
        now = self.clock()
        order.resolved_at, order.result_note = now, note
        order.public_note = public_note or note
        delay = dt.timedelta(minutes=self.settings.wo_callback_delay_minutes)
        if order.caller_phone:
            session.add(CallbackTask(order_id=order.id, due_at=now + delay, created_at=now))
        else:
            order.status, order.closed_at = Status.closed.value, now
            self._event(session, actor, order, "close", Status.resolved, Status.closed, "无联系电话，免回访",
                        public_text="已结案")

    async def withdraw(self, session: AsyncSession, actor: Any, ref: str | int, note: str = "") -> WorkOrder:
        order = await self._transition(session, actor, ref, "withdraw", note or "市民撤单", public_text="已按您的要求撤单")
        return await self._done(session, actor, order, "withdraw")

    async def urge(self, session: AsyncSession, actor: Any, ref: str | int, note: str = "") -> WorkOrder:
        order = await self.get(session, actor, ref)
        lifecycle.check("urge", order.status, role_of(actor))
        await self._urge(session, actor, order, note or "市民催办")
        return await self._done(session, actor, order, "urge", urge_count=order.urge_count)

    async def _urge(
        self, session: AsyncSession, actor: Any, order: WorkOrder, note: str, repeat_call: bool = False
    ) -> None:
        order.urge_count += 1
        detail: dict[str, Any] = {"urge_count": order.urge_count, "repeat_call": repeat_call}
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

    async def reopen(self, session: AsyncSession, actor: Any, ref: str | int, note: str) -> WorkOrder:
        if not note.strip():
            raise BadRequest("reopening needs a reason")
        order = await self._transition(session, actor, ref, "reopen", note, public_text="已重新交办")
        self._reopened(order)
        return await self._done(session, actor, order, "reopen")

    def _reopened(self, order: WorkOrder) -> None:
        now = self.clock()
        order.reopen_count += 1
        order.resolved_at = order.closed_at = None
        order.resolution_due = self.deadlines(order.urgency, now)[1]

    async def merge(self, session: AsyncSession, actor: Any, ref: str | int, into: str | int, note: str = "") -> WorkOrder:
        order = await self.get(session, actor, ref)
        lifecycle.check("merge", order.status, role_of(actor))
        target = await self.get(session, actor, into)
        if target.id == order.id:
            raise BadRequest("an order cannot be merged into itself")
        if not target.is_open or target.merged_into_id is not None:
            raise Conflict(f"order {target.ticket} is {target.status}; merge only into an open order")
        order = await self._transition(session, actor, order, "merge", note or f"与 {target.ticket} 重复",
                                       public_text=f"与工单 {target.ticket} 合并办理", into=target.ticket)
        order.merged_into_id = target.id
        self._event(session, actor, target, "merge_in", None, None, f"并入重复工单 {order.ticket}", merged=order.ticket)
        return await self._done(session, actor, order, "merge", into=target.ticket)

    async def close(self, session: AsyncSession, actor: Any, ref: str | int, note: str) -> WorkOrder:
        """Close a resolved order without a rating (e.g. the citizen could not be reached for the callback)."""
        order = await self._transition(session, actor, ref, "close", note, public_text="已结案")
        order.closed_at = self.clock()
        await self._cancel_callbacks(session, order.id)
        return await self._done(session, actor, order, "close")

    # -- callbacks (回访) ------------------------------------------------------------------------
    async def record_callback(
        self, session: AsyncSession, actor: Any, ref: str | int, result: Satisfaction,
        solved: bool | None = None, comment: str = "",
    ) -> WorkOrder:
        order = await self.get(session, actor, ref)
        lifecycle.check("callback", order.status, role_of(actor))
        now = self.clock()
        result = Satisfaction(result)
        solved = (result is not Satisfaction.dissatisfied) if solved is None else solved
        task = await session.scalar(select(CallbackTask).where(
            CallbackTask.order_id == order.id, CallbackTask.status == "pending").order_by(CallbackTask.id))
        if task is None:
            task = CallbackTask(order_id=order.id, due_at=now, created_at=now)
            session.add(task)
        task.status, task.completed_at, task.result, task.solved = "done", now, result.value, solved
        task.comment, task.recorded_by = comment, actor.username
        task.attempts += 1
        order.satisfaction, order.solved = result.value, solved
        before = Status(order.status)
        if result is Satisfaction.dissatisfied:
            order.status = Status.reopened.value
            self._reopened(order)
            public = "回访不满意，已重新交办"
        else:
            order.status, order.closed_at = Status.closed.value, now
            public = "回访完成，已结案"
        self._event(session, actor, order, "callback", before, Status(order.status), comment, public_text=public,
                    result=result.value, solved=solved)
        return await self._done(session, actor, order, "callback", result=result.value)

    async def callbacks(
        self, session: AsyncSession, status: str = "pending", due_before: dt.datetime | None = None, limit: int = 50
    ) -> list[tuple[CallbackTask, WorkOrder]]:
        q = select(CallbackTask, WorkOrder).join(WorkOrder, WorkOrder.id == CallbackTask.order_id)
        q = q.where(CallbackTask.status == status)
        if due_before is not None:
            q = q.where(CallbackTask.due_at <= due_before)
        rows = await session.execute(q.order_by(CallbackTask.due_at, CallbackTask.id).limit(limit))
        return [(t, o) for t, o in rows.all()]

    async def callback_unanswered(self, session: AsyncSession, actor: Any, task_id: int) -> CallbackTask:
        """One unanswered callback attempt; after the configured maximum the order is closed without a rating."""
        task = await session.get(CallbackTask, task_id)
        if task is None:
            raise NotFound(f"callback task {task_id} not found")
        if task.status != "pending":
            raise Conflict(f"callback task {task_id} is {task.status}", allowed=[])
        task.attempts += 1
        order = await session.get(WorkOrder, task.order_id)
        assert order is not None
        if task.attempts >= self.settings.wo_callback_max_attempts:
            task.status, task.completed_at = "done", self.clock()
            task.comment = "多次回访未接通"
            if order.status == Status.resolved.value:
                order.status, order.closed_at = Status.closed.value, self.clock()
                self._event(session, actor, order, "close", Status.resolved, Status.closed, task.comment,
                            public_text="已结案")
        else:
            task.due_at = self.clock() + dt.timedelta(hours=2)
        audit.record(session, actor, "work_order.callback_unanswered", "work_order", order.ticket,
                     attempts=task.attempts)
        await self._commit(session)
        return task

    async def _cancel_callbacks(self, session: AsyncSession, order_id: int) -> None:
        for task in (await session.scalars(select(CallbackTask).where(
                CallbackTask.order_id == order_id, CallbackTask.status == "pending"))).all():
            task.status = "cancelled"

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
        now = self.clock()
        if touch:
            order.updated_at = now
        if public_text is not None:
            detail["public_text"] = public_text
        session.add(WorkOrderEvent(
            order_id=order.id, at=now, actor=actor.username, actor_role=role_of(actor), action=action,
            from_status=before.value if before else None, to_status=after.value if after else None,
            note=note or "", public=public_text is not None, detail=detail,
        ))

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


def near(order: WorkOrder, district: str | None, place: str | None, address: str) -> bool:
    """Same or nearby address: same gazetteer place, or one normalised address contains the other."""
    if district and order.district_code and district != order.district_code:
        return False
    if place and order.place:
        return place == order.place
    a, b = normalize_address(address), normalize_address(order.address)
    if not a or not b:
        return not a and not b
    return a in b or b in a
