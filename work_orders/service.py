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

import json
from functools import lru_cache
from types import SimpleNamespace

from sqlalchemy import JSON, Boolean, Float, Integer, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from config.settings import Settings
from core import audit
from core.audit import AuditLog
from core.db import Database, UTCDateTime, as_loaded, driver_fetch, utcnow
from core.errors import BadRequest, Conflict, NotFound
from core.logging import mask_phone
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
from work_orders.tickets import (
    TICKET_RE, TicketSequences, next_ticket, sequence_name, speakable, ticket_day, ticket_sql,
)

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
        try:
            for attempt in range(3):
                try:
                    return await self._create(session, actor, data, idempotency_key)
                except (Conflict, _TicketSequenceMissing):  # a repeat call urged an order someone changed at
                    if attempt == 2:                          # the same moment, or the day's sequence was gone
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
        district = data.district or tax.locate(data.address)
        place = tax.place(data.address, district)
        now = self.clock()
        urgency = Urgency(data.urgency or (cat.urgency if cat else Urgency.normal.value))
        complexity = Complexity(data.complexity or (cat.complexity if cat else Complexity.simple.value))
        closed_on_call = complexity is Complexity.easy and bool(data.answer)
        if complexity is Complexity.easy and not closed_on_call:
            complexity = Complexity.simple  # 易 but not settled on the call: handled like any simple order

        replay, repeat, master = await self._candidates(
            session, data, district, place, now, key,
            repeat_wanted=bool(data.link_repeats and data.caller_phone), master_wanted=bool(place and not closed_on_call),
        )
        if replay is not None:  # the same Idempotency-Key again: the order it made, whatever the body says now
            existing = await session.get(WorkOrder, replay.id)
            assert existing is not None
            return self._created(tax, existing, "replayed")
        if cat is None or not cat.active:
            raise BadRequest(f"unknown category {data.category!r}; see GET /v1/taxonomy/categories")
        if data.district is not None and data.district not in tax.districts:
            raise BadRequest(f"unknown district {data.district!r}; see GET /v1/taxonomy/districts")
        if data.department is not None:
            dept = tax.departments.get(data.department)
            if dept is None or not dept.active:
                raise BadRequest(f"unknown department {data.department!r}")
        if repeat is not None:
            order = await session.get(WorkOrder, repeat.id)
            assert order is not None
            # Looked for after loading the order: an urge by this call committed after the load makes our
            # urge fail on the order's version, and the retry finds it.
            if key and await self._urged_with(session, order.id, key):  # this call, sent again
                await session.refresh(order)
                return self._created(tax, order, "replayed")
            await self._urge(session, actor, order, "重复来电：" + data.description[:200], repeat_call=True,
                             idempotency_key=key)
            await self._commit(session)
            return self._created(tax, order, "linked_repeat")

        decision = tax.route(data.category, district, f"{data.description} {data.address}")
        department = data.department or decision.department_code
        if master is not None and master.department_code:
            department = master.department_code
        response_due, resolution_due = self.deadlines(urgency.value, now)
        row: dict[str, Any] = dict(
            status=Status.created.value, category_code=data.category, district_code=district,
            department_code=department,
            routing_rule_id=decision.rule_id if department == decision.department_code else None,
            description=data.description, address=data.address, place=place, lat=data.lat, lon=data.lon,
            caller_phone=data.caller_phone, caller_name=data.caller_name, channel=data.channel, call_ref=data.call_ref,
            idempotency_key=key, urgency=urgency.value, complexity=complexity.value, created_at=now, updated_at=now,
            created_by=actor.username, response_due=response_due, resolution_due=resolution_due, dispatched_at=None,
            accepted_at=None, resolved_at=None, closed_at=None, result_note=None, public_note=None, urge_count=0,
            return_count=0, reopen_count=0, escalation_level=0, escalated_at=None,
            master_id=master.id if master is not None else None, merged_into_id=None, satisfaction=None, solved=None,
        )
        # The order is written once, in its final state, with its history: the same rows as the transitions
        # created → (closed on the call | dispatched) → (grouped under a hotspot) would have left.
        events = [self._event_row(actor, "create", None, Status.created, f"受理渠道：{data.channel}",
                                  public_text="您的诉求已受理", routing=decision.level, rule_id=decision.rule_id)]
        outcome = "created"
        if closed_on_call:
            row.update(status=Status.closed.value, closed_at=now, resolved_at=now, result_note=data.answer,
                       public_note=data.answer)
            events.append(self._event_row(actor, "close_on_call", Status.created, Status.closed, data.answer or "",
                                          public_text=data.answer or ""))
            outcome = "closed_on_call"
        elif data.dispatch and department:
            row.update(status=Status.dispatched.value, dispatched_at=now)
            events.append(self._event_row(actor, "dispatch", Status.created, Status.dispatched, "",
                                          public_text=f"已转交{tax.department_name(department)}办理",
                                          department=department))
        if master is not None:
            outcome = "hotspot_child"
            events.append(self._event_row(actor, "hotspot", None, None, f"归并至热点主工单 {master.ticket}",
                                          master=master.ticket))
        audit_detail = dict(outcome=outcome, category=data.category, department=department, channel=data.channel)
        if self.single_statement_create and session.bind.dialect.name == "postgresql":
            order = await self._insert_pg(session, actor, row, events, master, audit_detail)
        else:
            order = WorkOrder(**row)
            order.ticket = await next_ticket(session, now, self.tz)  # last, so the counter row lock is short
            session.add(order)
            await session.flush()
            for event in events:
                session.add(WorkOrderEvent(order_id=order.id, **event))
            if master is not None:  # no write to the master row: concurrent reports about one hotspot must not
                session.add(WorkOrderEvent(  # conflict
                    order_id=master.id, **self._event_row(actor, "hotspot_join", None, None,
                                                          f"同一地点新增诉求 {order.ticket}", child=order.ticket)))
            audit.record(session, actor, "work_order.create", "work_order", order.ticket, **audit_detail)
        await self._commit(session)
        log.info("order %s created (%s) by %s phone=%s", order.ticket, outcome, actor.username,
                 mask_phone(order.caller_phone or "-"))
        return self._created(tax, order, outcome)

    async def _insert_pg(
        self, session: AsyncSession, actor: Any, row: dict[str, Any], events: list[dict[str, Any]],
        master: Any, audit_detail: dict[str, Any],
    ) -> WorkOrder:
        """PostgreSQL: the order (ticket from the day's sequence), its history rows, the master's hotspot_join
        row and the audit row in one statement, the intake's only write; returns the order as a persistent,
        loaded object of the session. Usually no statement before it went through SQLAlchemy (the user and the
        lookup went straight to the driver), so no transaction was begun and the statement commits by itself;
        otherwise (the taxonomy was just reloaded) it commits with the transaction in `_commit`."""
        day = ticket_day(row["created_at"], self.tz)
        await self.ticket_sequences.ensure(self.db.url, day, self.tz)
        params: dict[str, Any] = {f"o_{k}": v for k, v in row.items()}
        for i, event in enumerate(events):
            params.update({f"e{i}_{k}": v for k, v in event.items()})
        if master is not None:
            join = self._event_row(actor, "hotspot_join", None, None, "同一地点新增诉求 ", child="")
            params.update({f"m_{k}": v for k, v in join.items() if k not in ("note", "detail")})
            params.update(m_order_id=master.id, m_note="同一地点新增诉求 ")
        params.update(a_at=utcnow(), a_user_id=getattr(actor, "id", None),
                      a_username=getattr(actor, "username", str(actor)), a_detail=audit_detail)
        sql, names = _create_statement(day, len(events), master is not None)
        args = [json.dumps(params[n]) if n.endswith("_detail") else params[n] for n in names]
        try:
            order_id, ticket = (await driver_fetch(session, sql, args))[0]
        except DBAPIError as exc:
            if isinstance(exc, IntegrityError) or sequence_name(day) not in str(exc.orig):
                raise
            await session.rollback()  # the day's sequence was dropped meanwhile (by hand): create it, try again
            self.ticket_sequences.forget()
            raise _TicketSequenceMissing() from exc
        order = as_loaded(WorkOrder, {"id": order_id, "ticket": ticket, "version": 1, **row})
        session.add(order)
        return order

    async def _candidates(
        self, session: AsyncSession, data: WorkOrderCreate, district: str | None, place: str | None,
        now: dt.datetime, key: str | None, repeat_wanted: bool, master_wanted: bool,
    ) -> tuple[Any, Any, Any]:
        """In one query: the order already made with this Idempotency-Key (replayed); the caller's open order
        this call repeats (same phone and category within the repeat window, same or nearby address: linked
        instead of a new order); otherwise the hotspot master (another caller's open order of the same category
        at the same gazetteer place within the hotspot window). Returns (replay, repeat, master) rows."""
        repeat_since = now - dt.timedelta(days=self.settings.repeat_window_days)
        master_since = now - dt.timedelta(days=self.settings.wo_nearby_hotspot_days)
        shape = (repeat_wanted, master_wanted, bool(master_wanted and district),
                 bool(master_wanted and data.caller_phone), bool(key))
        params = {"category": data.category, "phone": data.caller_phone, "repeat_since": repeat_since,
                  "place": place, "master_since": master_since, "district": district, "key": key}
        rows: list[Any]
        if self.single_statement_create and session.bind.dialect.name == "postgresql":
            compiled = _candidates_sql(*shape)
            if compiled is None:
                return None, None, None
            sql, names, fixed = compiled
            args = [params[n] if n in params else fixed[n] for n in names]
            rows = [SimpleNamespace(**dict(r)) for r in await driver_fetch(session, sql, args)]
        else:
            stmt = _candidates_statement(*shape)
            if stmt is None:
                return None, None, None
            rows = list((await session.execute(stmt, params)).all())
        if key:
            for o in rows:
                if o.idempotency_key == key:
                    return o, None, None
        rows = [o for o in rows if o.category_code == data.category and o.status in OPEN_VALUES]
        if repeat_wanted:  # the newest of the caller's orders that is near
            for o in reversed(rows):
                if o.caller_phone == data.caller_phone and o.created_at >= repeat_since \
                        and near(o, district, place, data.address):
                    return None, o, None
        if master_wanted:  # the oldest master candidate
            for o in rows:
                if o.place == place and o.master_id is None and o.created_at >= master_since \
                        and (not district or o.district_code == district) \
                        and (not data.caller_phone or o.caller_phone is None or o.caller_phone != data.caller_phone):
                    return None, None, o
        return None, None, None

    async def _urged_with(self, session: AsyncSession, order_id: int, key: str) -> bool:
        """Whether a repeat call with this Idempotency-Key urged the order already (the order's own urge events:
        a linked repeat call is rare, and this lookup is made only then)."""
        return await session.scalar(select(WorkOrderEvent.id).where(
            WorkOrderEvent.order_id == order_id, WorkOrderEvent.action == "urge",
            WorkOrderEvent.detail["idempotency_key"].as_string() == key).limit(1)) is not None

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


@lru_cache(maxsize=64)
def _candidates_statement(repeat: bool, master: bool, by_district: bool, other_phone: bool, by_key: bool) -> Any:
    """The query of WorkOrderService._candidates for one combination of what is looked for, built once (building
    SQL expressions costs more CPU than running the query)."""
    W = WorkOrder
    arms = []
    if repeat:
        arms.append((W.caller_phone == bindparam("phone")) & (W.created_at >= bindparam("repeat_since")))
    if master:
        arm = (W.place == bindparam("place")) & W.master_id.is_(None) & (W.created_at >= bindparam("master_since"))
        if by_district:
            arm &= W.district_code == bindparam("district")
        if other_phone:
            arm &= or_(W.caller_phone.is_(None), W.caller_phone != bindparam("phone"))
        arms.append(arm)
    # Each arm of the OR is indexable on its own (caller_phone+created_at; the hotspot partial index; the key).
    same = (W.category_code == bindparam("category")) & W.status.in_(OPEN_VALUES)
    conditions = [same & arm for arm in arms]
    if by_key:
        conditions.append(W.idempotency_key == bindparam("key"))
    if not conditions:
        return None
    return (select(W.id, W.ticket, W.caller_phone, W.created_at, W.place, W.master_id, W.district_code, W.address,
                   W.department_code, W.idempotency_key, W.category_code, W.status)
            .where(or_(*conditions)).order_by(W.id))


class _TicketSequenceMissing(Exception):
    pass


_EVENT_COLUMNS = ("at", "actor", "actor_role", "action", "from_status", "to_status", "note", "public", "detail")
_AUDIT_COLUMNS = ("at", "user_id", "username", "action", "object_type", "object_id", "detail")


def _sql_type(column: Any) -> str:
    t = column.type
    if isinstance(t, UTCDateTime):
        return "TIMESTAMP WITH TIME ZONE"
    if isinstance(t, JSON):
        return "JSON"
    if isinstance(t, Boolean):
        return "BOOLEAN"
    if isinstance(t, Float):
        return "DOUBLE PRECISION"
    if isinstance(t, Integer):
        return "INTEGER"
    return "TEXT"


class _Positional:
    """SQL with $1, $2 … placeholders for the driver, and the parameter name of each."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, name: str, sql_type: str) -> str:
        self.names.append(name)
        return f"CAST(${len(self.names)} AS {sql_type})"


@lru_cache(maxsize=64)
def _create_statement(day: str, n_events: int, with_master: bool) -> tuple[str, tuple[str, ...]]:
    """WITH o AS (INSERT the order RETURNING id, ticket), e AS (INSERT its events [+ the master's hotspot_join]),
    a AS (INSERT the audit row) SELECT id, ticket FROM o — one round trip (PostgreSQL). Returns the SQL and the
    parameter names in placeholder order."""
    p = _Positional()
    order_cols = [c for c in WorkOrder.__table__.columns if c.name not in ("id", "ticket", "version")]
    events = WorkOrderEvent.__table__
    order_values = ", ".join(p(f"o_{c.name}", _sql_type(c)) for c in order_cols)
    selects = []
    for i in range(n_events):
        values = ", ".join(p(f"e{i}_{c}", _sql_type(events.c[c])) for c in _EVENT_COLUMNS)
        selects.append(f"SELECT o.id, {values} FROM o")
    if with_master:
        special = {"note": lambda: p("m_note", "TEXT") + " || o.ticket",
                   "detail": lambda: "json_build_object('child', o.ticket)"}
        order_id = p("m_order_id", "INTEGER")
        values = ", ".join(special[c]() if c in special else p(f"m_{c}", _sql_type(events.c[c]))
                           for c in _EVENT_COLUMNS)
        selects.append(f"SELECT {order_id}, {values} FROM o")
    audit_values = (f"{p('a_at', 'TIMESTAMP WITH TIME ZONE')}, {p('a_user_id', 'INTEGER')}, "
                    f"{p('a_username', 'TEXT')}, 'work_order.create', 'work_order', o.ticket, {p('a_detail', 'JSON')}")
    assert set(_AUDIT_COLUMNS) == {c.name for c in AuditLog.__table__.columns} - {"id"}
    sql = f"""
WITH o AS (
    INSERT INTO work_orders (ticket, version, {", ".join(c.name for c in order_cols)})
    VALUES ({ticket_sql(day)}, 1, {order_values})
    RETURNING id, ticket
), e AS (
    INSERT INTO work_order_events (order_id, {", ".join(_EVENT_COLUMNS)})
    {" UNION ALL ".join(selects)}
), a AS (
    INSERT INTO audit_log ({", ".join(_AUDIT_COLUMNS)}) SELECT {audit_values} FROM o
)
SELECT id, ticket FROM o"""
    return sql, tuple(p.names)


@lru_cache(maxsize=64)
def _candidates_sql(*shape: bool) -> tuple[str, tuple[str, ...], dict[str, Any]] | None:
    """_candidates_statement compiled once for PostgreSQL, for the driver: (SQL, parameter names, the values of
    the fixed parameters such as the open statuses)."""
    stmt = _candidates_statement(*shape)
    if stmt is None:
        return None
    placeholders = dict.fromkeys(("category", "phone", "repeat_since", "place", "master_since", "district", "key"))
    compiled = stmt.params(**placeholders).compile(dialect=pg_asyncpg.dialect(),
                                                   compile_kwargs={"render_postcompile": True})
    return str(compiled), tuple(compiled.positiontup or ()), compiled.construct_params()


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
