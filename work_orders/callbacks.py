"""Callbacks (回访) of `WorkOrderService`: the survey result closes or reopens the order; unanswered attempts
are counted, and after the configured maximum the order closes without a rating."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import audit
from core.errors import Conflict, NotFound
from work_orders import lifecycle
from work_orders.models import CallbackTask, Satisfaction, Status, WorkOrder
from work_orders.service_base import WorkOrderBase, role_of


class Callbacks(WorkOrderBase):
    """The callback survey (回访)."""

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
