"""Intake (the `create` of `WorkOrderService`): routing by the responsibility list, repeat-call linking, hotspot
grouping, idempotency keys; on PostgreSQL one statement each for the lookup and the write (pg_statements.py)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import audit
from core.db import as_loaded, driver_fetch, utcnow
from core.errors import BadRequest, Conflict
from core.logging import mask_phone
from work_orders.models import Complexity, Status, Urgency, WorkOrder, WorkOrderEvent
from work_orders.pg_statements import candidates_sql, candidates_statement, create_statement
from work_orders.routing import Taxonomy, normalize_address
from work_orders.schemas import WorkOrderCreate
from work_orders.service_base import OPEN_VALUES, CreatedOrder, WorkOrderBase
from work_orders.tickets import next_ticket, sequence_name, speakable, ticket_day

log = logging.getLogger(__name__)


class Intake(WorkOrderBase):
    """Intake: `create`."""

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
        sql, names = create_statement(day, len(events), master is not None)
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
            compiled = candidates_sql(*shape)
            if compiled is None:
                return None, None, None
            sql, names, fixed = compiled
            args = [params[n] if n in params else fixed[n] for n in names]
            rows = [SimpleNamespace(**dict(r)) for r in await driver_fetch(session, sql, args)]
        else:
            stmt = candidates_statement(*shape)
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


class _TicketSequenceMissing(Exception):
    pass


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
