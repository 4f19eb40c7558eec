"""The lifecycle actions of `WorkOrderService` (dispatch, accept, start, return, resolve, withdraw, urge, reopen,
merge, close): each checked against the transition table (lifecycle.py), written with its history, one
transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import BadRequest, Conflict
from work_orders import lifecycle
from work_orders.models import CallbackTask, Status, WorkOrder
from work_orders.routing import Taxonomy
from work_orders.service_base import OPEN_VALUES, WorkOrderBase, role_of


class LifecycleActions(WorkOrderBase):
    """The lifecycle actions, each one transaction."""

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

    async def reopen(self, session: AsyncSession, actor: Any, ref: str | int, note: str) -> WorkOrder:
        if not note.strip():
            raise BadRequest("reopening needs a reason")
        order = await self._transition(session, actor, ref, "reopen", note, public_text="已重新交办")
        self._reopened(order)
        return await self._done(session, actor, order, "reopen")

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
