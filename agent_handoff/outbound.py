"""Outbound calls over ARI: callbacks to citizens (asked for, or abandoned in the queue) and the
satisfaction survey robot (回访). Both respect quiet hours (default 21:00–08:00 local time)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from agent_handoff import media
from agent_handoff.models import PRIORITY_RANK, AgentState, CallbackRequest, CallbackStatus, Priority, SurveyAttempt
from agent_handoff.store import QueueEntry
from telephony.ari import AriError, Channel
from telephony.models import CallOutcome
from ivr.speech.text_norm import read_ticket

if TYPE_CHECKING:
    from agent_handoff.service import HandoffService

log = logging.getLogger(__name__)
SURVEY_KEYS = {"1": "satisfied", "2": "basically_satisfied", "3": "dissatisfied"}
_CAUSES = {17: "busy", 18: "no_answer", 19: "no_answer", 21: "rejected"}


def in_quiet_hours(when: dt.datetime, tz: str, window: tuple[str, str]) -> bool:
    local = when.astimezone(ZoneInfo(tz)).time()
    start, end = (dt.time.fromisoformat(w) for w in window)
    return (local >= start or local < end) if start > end else (start <= local < end)


class Outbound:
    def __init__(self, svc: "HandoffService") -> None:
        self.svc = svc
        self.settings = svc.settings
        self._digits: dict[str, asyncio.Queue[str | None]] = {}

    def quiet(self) -> bool:
        return in_quiet_hours(self.svc.clock(), self.settings.timezone, self.settings.handoff_quiet_hours)

    async def tick(self) -> None:
        if self.quiet():
            return
        await self.dial_callbacks()
        await self.dial_surveys()

    # ================================================================== callbacks
    async def request(self, *, phone: str, reason: str, queue: str, skill: str | None, priority: str,
                      queued_at: dt.datetime, origin_call_id: str | None) -> CallbackRequest | None:
        """One open callback per number: a second request keeps the earlier place in line."""
        async with self.svc.db.session() as s:
            open_ = await s.scalar(select(CallbackRequest).where(
                CallbackRequest.phone == phone,
                CallbackRequest.status.in_([CallbackStatus.pending.value, CallbackStatus.dialing.value,
                                            CallbackStatus.connected.value])))
            if open_ is not None:
                return None
            now = self.svc.clock()
            cb = CallbackRequest(phone=phone, reason=reason, queue=queue, skill=skill, priority=priority,
                                 queued_at=queued_at, created_at=now, next_attempt_at=now,
                                 max_attempts=self.settings.handoff_callback_max_attempts,
                                 origin_call_id=origin_call_id, status=CallbackStatus.pending.value)
            s.add(cb)
            await s.commit()
        await self.svc.store.publish_supervisors({"type": "callback", "id": cb.id, "event": "created"})
        return cb

    async def abandoned(self, entry: QueueEntry) -> None:
        if entry.kind == "callback" and entry.callback_id:
            await self._retry(entry.callback_id, "hung_up_waiting")
        elif entry.caller:
            await self.request(phone=entry.caller, reason="abandoned", queue=entry.queue, skill=entry.skill,
                               priority=entry.priority, origin_call_id=entry.call_id,
                               queued_at=dt.datetime.fromtimestamp(entry.queued_at, dt.timezone.utc))

    async def callback_instead(self, call_id: str) -> None:
        """The caller pressed 1 after the callback offer: confirm, register, hang up."""
        svc = self.svc
        async with svc.lock(call_id):
            entry = await svc.store.entry(call_id)
            if entry is None or entry.state not in ("entering", "waiting") or not entry.callback_offered:
                return
            await svc.store.drop_entry(call_id)
            await svc.store.take_channel(entry.channel_id)
        task = svc._announcers.pop(call_id, None)
        if task:
            task.cancel()
        await svc.quiet(entry.channel_id)
        await self.request(phone=entry.caller, reason="requested", queue=entry.queue, skill=entry.skill,
                           priority=entry.priority, origin_call_id=call_id,
                           queued_at=dt.datetime.fromtimestamp(entry.queued_at, dt.timezone.utc))
        await svc.calls.update(call_id, context={"queue_result": "callback_requested"})
        await svc.calls.finish(call_id, CallOutcome.transferred)
        await svc.play(entry.channel_id, media.CALLBACK_CONFIRMED, timeout=20)
        await svc._safe(svc.ari.hangup(entry.channel_id))
        svc.wake()

    async def dial_callbacks(self) -> int:
        svc = self.svc
        # This node's seats and queue only: a callback is dialled from, and answered on, this node.
        agents = await svc.store.agents()
        free = sum(1 for a in agents if a.state == AgentState.available.value and a.node == svc.node)
        waiting = sum(1 for e in await svc.store.entries(await svc.store.queued_ids()) if e.node == svc.node)
        async with svc.db.session() as s:
            busy = await s.scalar(select(func.count()).select_from(CallbackRequest).where(
                CallbackRequest.status.in_([CallbackStatus.dialing.value, CallbackStatus.connected.value])))
            slots = free - waiting - int(busy or 0)
            if slots <= 0:
                return 0
            due = list((await s.scalars(select(CallbackRequest).where(
                CallbackRequest.status == CallbackStatus.pending.value,
                CallbackRequest.next_attempt_at <= svc.clock()).order_by(CallbackRequest.queued_at).limit(50)
                # another node's dispatcher picking callbacks at the same moment skips these rows (PostgreSQL)
                .with_for_update(skip_locked=True))).all())
            due.sort(key=lambda c: (PRIORITY_RANK[Priority(c.priority)], c.queued_at))
            chosen = due[:slots]
            for cb in chosen:
                cb.status, cb.attempts = CallbackStatus.dialing.value, cb.attempts + 1
                cb.call_id = f"ah-cb-{uuid.uuid4().hex[:16]}"
            await s.commit()
        for cb in chosen:
            await svc.store.map_channel(cb.call_id, "callback", str(cb.id))  # type: ignore[arg-type]
            try:
                await svc.ari.originate(self.settings.handoff_outbound_dial.format(number=cb.phone), app=svc.app,
                                        app_args=f"callback,{cb.id}", caller_id="12345", channel_id=cb.call_id,
                                        timeout=30)
            except AriError as exc:
                log.warning("callback %s: dial failed: %s", cb.id, exc)
                await svc.store.take_channel(cb.call_id)  # type: ignore[arg-type]
                await self._retry(cb.id, "dial_failed")
        return len(chosen)

    async def _update_callback(self, cb_id: int, **fields: Any) -> CallbackRequest | None:
        async with self.svc.db.session() as s:
            cb = await s.get(CallbackRequest, cb_id)
            if cb is None:
                return None
            for k, v in fields.items():
                setattr(cb, k, v)
            await s.commit()
            return cb

    async def _retry(self, cb_id: int, result: str) -> None:
        async with self.svc.db.session() as s:
            cb = await s.get(CallbackRequest, cb_id)
            if cb is None or cb.status in (CallbackStatus.done.value, CallbackStatus.cancelled.value):
                return
            cb.last_result = result
            now = self.svc.clock()
            if cb.attempts >= cb.max_attempts:
                cb.status, cb.completed_at = CallbackStatus.failed.value, now
            else:
                cb.status = CallbackStatus.pending.value
                cb.next_attempt_at = now + dt.timedelta(seconds=self.settings.handoff_callback_retry_seconds)
            await s.commit()

    async def callback_connected(self, cb_id: int, agent_id: int) -> None:
        await self._update_callback(cb_id, status=CallbackStatus.done.value, last_result="connected",
                                    agent_id=agent_id, completed_at=self.svc.clock())

    async def _callback_answered(self, cb_id: int, ch: Channel) -> None:
        svc = self.svc
        cb = await self._update_callback(cb_id, status=CallbackStatus.connected.value, last_result="answered")
        if cb is None:
            await svc._safe(svc.ari.hangup(ch.id))
            return
        await svc.calls.start(ch.id, cb.phone, direction="out", node=svc.node)
        await svc.calls.answered(ch.id)
        await svc.play(ch.id, media.GREETING_CALLBACK, timeout=20)
        if await svc.store.channel(ch.id) is None:  # hung up during the greeting
            return
        await svc.enqueue(ch.id, ch.id, queue=cb.queue, priority=cb.priority, skill=cb.skill, caller=cb.phone,
                          context={"callback_id": cb.id, "origin_call_id": cb.origin_call_id},
                          kind="callback", callback_id=cb.id, queued_at=cb.queued_at, move=False)

    # ================================================================== events
    async def answered(self, role: str, ref: int, ch: Channel) -> None:
        if role == "callback":
            await self._callback_answered(ref, ch)
        else:
            self.svc.spawn(self._survey_robot(ref, ch))

    async def gone(self, role: str, ref: int, chan: str, cause: int) -> None:
        if role == "callback":
            async with self.svc.db.session() as s:
                cb = await s.get(CallbackRequest, ref)
            if cb is not None and cb.status in (CallbackStatus.dialing.value, CallbackStatus.connected.value):
                answered = cb.status == CallbackStatus.connected.value
                await self._retry(ref, "hung_up" if answered else _CAUSES.get(cause, f"failed_{cause}"))
                if answered:
                    await self.svc.calls.finish(chan, CallOutcome.abandoned)
            self.svc.wake()
        else:
            q = self._digits.get(chan)
            if q is not None:
                q.put_nowait(None)  # the robot is talking: tell it the line is gone
            else:
                await self._survey_unanswered(ref, "no_answer")

    def digit(self, channel_id: str, digit: str) -> None:
        q = self._digits.get(channel_id)
        if q is not None:
            q.put_nowait(digit)

    # ================================================================== surveys (回访)
    def _survey_key(self, task_id: int) -> str:
        return f"ah:survey:{task_id}"

    async def dial_surveys(self) -> int:
        wo = self.svc.work_orders
        if wo is None:
            return 0
        svc = self.svc
        async with svc.db.session() as s:
            rows = await wo.callbacks(s, "pending", due_before=svc.clock(), limit=10)
        n = 0
        for task, order in rows:
            if not order.caller_phone or await svc.store.r.exists(self._survey_key(task.id)):
                continue
            chan = f"ah-sv-{uuid.uuid4().hex[:16]}"
            # Taken first (every node's dispatcher looks at the same due tasks): only the winner records an attempt.
            if not await svc.store.r.set(self._survey_key(task.id), json.dumps({"chan": chan}), nx=True, ex=600):
                continue
            async with svc.db.session() as s:
                attempt = SurveyAttempt(task_id=task.id, order_id=order.id, phone=order.caller_phone,
                                        started_at=svc.clock(), call_id=chan)
                s.add(attempt)
                await s.commit()
            info = {"attempt": attempt.id, "order": order.id, "ticket": order.ticket, "chan": chan}
            await svc.store.r.set(self._survey_key(task.id), json.dumps(info), ex=600)
            await svc.store.map_channel(chan, "survey", str(task.id))
            try:
                await svc.ari.originate(self.settings.handoff_outbound_dial.format(number=order.caller_phone),
                                        app=svc.app, app_args=f"survey,{task.id}", caller_id="12345",
                                        channel_id=chan, timeout=30)
                n += 1
            except AriError as exc:
                log.warning("survey %s: dial failed: %s", task.id, exc)
                await svc.store.take_channel(chan)
                await self._survey_unanswered(task.id, "failed")
        return n

    async def _survey_info(self, task_id: int) -> dict[str, Any] | None:
        raw = await self.svc.store.r.get(self._survey_key(task_id))
        return json.loads(raw) if raw else None

    async def _finish_attempt(self, attempt_id: int, outcome: str, result: str | None = None,
                              via: str | None = None) -> None:
        async with self.svc.db.session() as s:
            a = await s.get(SurveyAttempt, attempt_id)
            if a is not None:
                a.outcome, a.result, a.via, a.ended_at = outcome, result, via, self.svc.clock()
                await s.commit()

    async def _survey_unanswered(self, task_id: int, outcome: str) -> None:
        from work_orders.service import SYSTEM

        info = await self._survey_info(task_id)
        if info:
            await self._finish_attempt(info["attempt"], outcome)
        async with self.svc.db.session() as s:
            try:
                await self.svc.work_orders.callback_unanswered(s, SYSTEM, task_id)
            except Exception as exc:  # noqa: BLE001 - task already done/cancelled elsewhere
                log.info("survey %s: %s", task_id, exc)
        # keep the key a little: the work-order service has moved due_at on, nothing to redial now
        await self.svc.store.r.expire(self._survey_key(task_id), 5)

    async def _survey_robot(self, task_id: int, ch: Channel) -> None:
        from work_orders.models import Satisfaction
        from work_orders.service import SYSTEM

        svc = self.svc
        info = await self._survey_info(task_id)
        if info is None:
            await svc._safe(svc.ari.hangup(ch.id))
            return
        q: asyncio.Queue[str | None] = asyncio.Queue()
        self._digits[ch.id] = q
        await self._finish_attempt(info["attempt"], "answered")
        result: str | None = None
        try:
            for _ in range(2):
                await svc.play(ch.id, media.survey_prompt(read_ticket(info["ticket"])))
                try:
                    while result is None:
                        digit = await asyncio.wait_for(q.get(), 8.0)
                        if digit is None:
                            raise ConnectionAbortedError
                        result = SURVEY_KEYS.get(digit)
                except asyncio.TimeoutError:
                    continue
                break
            if result is None:
                await self._survey_unanswered(task_id, "no_input")
                await svc.play(ch.id, media.SURVEY_NO_INPUT, timeout=15)
            else:
                async with svc.db.session() as s:
                    await svc.work_orders.record_callback(s, SYSTEM, info["order"], Satisfaction(result),
                                                          comment="电话回访机器人（按键）")
                await self._finish_attempt(info["attempt"], "answered", result, "dtmf")
                await svc.play(ch.id, media.SURVEY_THANKS, timeout=15)
        except ConnectionAbortedError:
            if result is None:
                await self._survey_unanswered(task_id, "hung_up")
        finally:
            self._digits.pop(ch.id, None)
            await svc.store.take_channel(ch.id)
            await svc._safe(svc.ari.hangup(ch.id))
            await svc.store.r.delete(self._survey_key(task_id))
