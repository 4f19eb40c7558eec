"""One queued call meeting an agent: offer (ring), answer (bridge), no-answer, hangups, hold, transfers.

Offers and ARI events run in the seats runtime of the call's node (`svc.ari` is that node); the agent actions
(REST) may run in any API process and reach the call's node with `svc.ari_for(entry.node)`."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from typing import TYPE_CHECKING

from agent_handoff.models import AgentState
from agent_handoff.store import AgentLive, QueueEntry
from core.errors import BadRequest, Conflict, NotFound
from telephony.ari import AriError
from telephony.models import CallOutcome

if TYPE_CHECKING:
    from agent_handoff.service import HandoffService

log = logging.getLogger(__name__)
CONNECTED = ("connected", "held")


class CallControl:
    def __init__(self, svc: "HandoffService") -> None:
        self.svc = svc

    @property
    def store(self):  # type: ignore[no-untyped-def]
        return self.svc.store

    # ------------------------------------------------------------------ ringing an agent
    async def offer(self, entry: QueueEntry, agent: AgentLive) -> None:
        svc = self.svc
        chan = f"ah-{uuid.uuid4().hex[:20]}"
        async with svc.lock(entry.call_id):
            current = await self.store.entry(entry.call_id)
            if current is None or current.state not in ("entering", "waiting"):
                await svc.agents.set_state(agent.id, AgentState.available)
                return
            current.state, current.agent_id, current.agent_channel = "offered", agent.id, chan
            current.offered_at = svc.now()
            await self.store.save_entry(current)
            await self.store.leave_queue(entry.call_id)
            await self.store.map_channel(chan, "agent", entry.call_id)
        try:
            await svc.ari.originate(
                agent.endpoint, app=svc.app, app_args=f"agent,{entry.call_id},{agent.id}",
                caller_id=f'"12345" <{entry.caller or "12345"}>', channel_id=chan,
                timeout=int(svc.settings.handoff_ring_seconds) + 5,
            )
        except AriError as exc:
            log.warning("cannot ring %s: %s", agent.endpoint, exc)
            await self.store.take_channel(chan)
            await self.no_answer(entry.call_id, chan, reason="话机故障")
            return
        await svc.agents.set_state(agent.id, AgentState.ringing, call_id=entry.call_id)
        svc._ring_timers[chan] = asyncio.create_task(self._ring_timeout(entry.call_id, chan))
        svc.spawn(self._pop(current, agent.id, "offer"))

    async def _pop(self, entry: QueueEntry, agent_id: int, kind: str) -> None:
        pop = await self.svc.popups.build(entry, self.svc.now())
        pop["type"] = kind
        await self.store.set_pop(agent_id, pop)
        await self.store.publish_agent(agent_id, pop)

    async def _ring_timeout(self, call_id: str, chan: str) -> None:
        await asyncio.sleep(self.svc.settings.handoff_ring_seconds)
        self.svc._ring_timers.pop(chan, None)
        entry = await self.store.entry(call_id)
        if entry and entry.state == "offered" and entry.agent_channel == chan:
            await self.store.take_channel(chan)
            await self.svc._safe(self.svc.ari.hangup(chan, "no_answer"))
            await self.no_answer(call_id, chan)

    async def no_answer(self, call_id: str, chan: str, reason: str = "未接听") -> None:
        svc = self.svc
        timer = svc._ring_timers.pop(chan, None)
        if timer and timer is not asyncio.current_task():
            timer.cancel()
        async with svc.lock(call_id):
            entry = await self.store.entry(call_id)
            if entry is None or entry.agent_channel != chan or entry.state != "offered":
                return
            agent_id = entry.agent_id
            entry.state, entry.agent_id, entry.agent_channel = "waiting", None, None
            if agent_id is not None:
                entry.tried.append(agent_id)
            await self.store.save_entry(entry)
            await self.store.requeue(entry)
        if agent_id is not None:
            await self.store.set_pop(agent_id, None)
            await self.store.publish_agent(agent_id, {"type": "offer_cancelled", "call_id": call_id,
                                                      "reason": reason})
            pause = svc.settings.handoff_pause_on_no_answer
            await svc.agents.set_state(agent_id, AgentState.paused if pause else AgentState.available,
                                       reason=reason if pause else "")
        svc.wake()

    async def cancel_offer(self, entry: QueueEntry) -> None:
        """The caller left while an agent's phone was ringing: stop ringing, the agent is free again."""
        if entry.state != "offered" or not entry.agent_channel:
            return
        timer = self.svc._ring_timers.pop(entry.agent_channel, None)
        if timer:
            timer.cancel()
        await self.store.take_channel(entry.agent_channel)
        await self.svc._safe(self.svc.ari.hangup(entry.agent_channel))
        if entry.agent_id is not None:
            await self.store.set_pop(entry.agent_id, None)
            await self.store.publish_agent(entry.agent_id, {"type": "offer_cancelled", "call_id": entry.call_id,
                                                            "reason": "来电已挂断"})
            await self.svc.agents.set_state(entry.agent_id, AgentState.available)

    # ------------------------------------------------------------------ answered
    async def agent_answered(self, call_id: str, chan: str, agent_id: int) -> None:
        svc = self.svc
        timer = svc._ring_timers.pop(chan, None)
        if timer:
            timer.cancel()
        async with svc.lock(call_id):
            entry = await self.store.entry(call_id)
            if entry is None or entry.state != "offered" or entry.agent_channel != chan:
                await self.store.take_channel(chan)
                await svc._safe(svc.ari.hangup(chan))
                agent = await self.store.get_agent(agent_id)
                if agent and agent.state == AgentState.ringing.value and agent.call_id == call_id:
                    await svc.agents.set_state(agent_id, AgentState.available)
                return
            task = svc._announcers.pop(call_id, None)
            if task:
                task.cancel()
            await svc.quiet(entry.channel_id)
            bridge = await svc.ari.create_bridge("mixing", bridge_id=f"ah-{call_id}"[:60])
            try:
                await svc.ari.add_channel(bridge.id, [entry.channel_id, chan])
            except AriError as exc:  # one side hung up in this very moment: its own hangup event cleans up
                log.info("bridging %s failed: %s", call_id, exc)
                await svc._safe(svc.ari.destroy_bridge(bridge.id))
                return
            entry.state, entry.bridge_id, entry.answered_at = "connected", bridge.id, svc.now()
            await self.store.save_entry(entry)
        # The record first: a Redis stall in the agent's live state must not leave the call without its agent.
        await svc.calls.update(call_id, agent_id=agent_id, agent_answered_at=svc.clock(),
                               context={"queue_result": "answered"})
        await svc.agents.set_state(agent_id, AgentState.on_call, call_id=call_id)
        if entry.kind == "callback" and entry.callback_id:
            await svc.outbound.callback_connected(entry.callback_id, agent_id)
        await self.store.publish_agent(agent_id, {"type": "connected", "call_id": call_id})
        await self.store.publish_supervisors({"type": "queue", "call_id": call_id, "event": "answered"})

    async def agent_gone(self, call_id: str, chan: str, cause: int) -> None:
        entry = await self.store.entry(call_id)
        if entry is None or entry.agent_channel != chan:
            return
        if entry.state == "offered":
            await self.no_answer(call_id, chan, reason="拒接" if cause in (17, 21) else "未接听")
        elif entry.state in CONNECTED:
            async with self.svc.lock(call_id):
                await self.store.drop_entry(call_id)
            await self.store.take_channel(entry.channel_id)
            await self.svc._safe(self.svc.ari.hangup(entry.channel_id))
            await self.end_connected(entry, by="agent")

    async def end_connected(self, entry: QueueEntry, *, by: str) -> None:
        """The conversation is over (caller, agent or department hung up): clean up, agent → wrap-up."""
        svc = self.svc
        for chan in (entry.agent_channel, entry.transfer_channel):
            if chan:
                await self.store.take_channel(chan)
                await svc._safe(svc.ari.hangup(chan))
        if entry.bridge_id:
            await svc._safe(svc.ari.destroy_bridge(entry.bridge_id))
        if entry.agent_id is not None and entry.agent_channel:
            await self._release_agent(entry)
        await svc.calls.update(entry.call_id, context={"ended_by": by})
        await svc.calls.finish(entry.call_id, CallOutcome.transferred)

    async def _release_agent(self, entry: QueueEntry) -> None:
        if entry.answered_at:
            await self.store.push_handle_time(entry.queue, self.svc.now() - entry.answered_at)
        await self.store.set_pop(entry.agent_id, None)  # type: ignore[arg-type]
        await self.store.publish_agent(entry.agent_id, {"type": "ended", "call_id": entry.call_id})  # type: ignore[arg-type]
        await self.svc.agents.set_state(entry.agent_id, AgentState.wrap_up, call_id=entry.call_id)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ agent actions (REST)
    async def current(self, agent_id: int) -> QueueEntry:
        agent = await self.svc.agents.get(agent_id)
        entry = await self.store.entry(agent.call_id) if agent.call_id else None
        if entry is None or entry.agent_id != agent_id or entry.state not in CONNECTED:
            raise NotFound("no call in progress")
        return entry

    async def hangup(self, agent_id: int) -> None:
        entry = await self.current(agent_id)
        await self.svc._safe(self.svc.ari_for(entry.node).hangup(entry.agent_channel))  # type: ignore[arg-type]

    async def hold(self, agent_id: int, on: bool) -> QueueEntry:
        svc = self.svc
        entry = await self.current(agent_id)
        ari = svc.ari_for(entry.node)
        async with svc.lock(entry.call_id):
            if on and entry.state == "connected":
                await ari.remove_channel(entry.bridge_id, entry.channel_id)  # type: ignore[arg-type]
                await svc._safe(ari.moh_start(entry.channel_id, "default"))
                entry.state = "held"
            elif not on and entry.state == "held":
                if entry.transfer_channel:
                    raise Conflict("a department is on the line: complete or cancel the transfer first")
                await svc.quiet(entry.channel_id, ari)
                await ari.add_channel(entry.bridge_id, entry.channel_id)  # type: ignore[arg-type]
                entry.state = "connected"
            await self.store.save_entry(entry)
        return entry

    async def transfer_queue(self, agent_id: int, queue: str, skill: str | None, priority: str | None) -> QueueEntry:
        """Back into a (possibly different) queue, keeping the caller's original place in line."""
        svc = self.svc
        entry = await self.current(agent_id)
        async with svc.lock(entry.call_id):
            old = QueueEntry(**{**entry.__dict__})
            ari = svc.ari_for(entry.node)
            await svc._safe(ari.remove_channel(entry.bridge_id, entry.channel_id))  # type: ignore[arg-type]
            entry.state, entry.queue, entry.skill = "waiting", queue, skill
            entry.priority = priority or entry.priority
            entry.agent_id = entry.agent_channel = entry.bridge_id = None
            entry.answered_at = entry.offered_at = None
            entry.tried = [agent_id]
            await self.store.save_entry(entry)
            await self.store.requeue(entry)
        await self.end_agent_leg(old)
        await svc.calls.update(entry.call_id, queue=queue, context={"transferred_from_agent": agent_id})
        await svc.waiting_again(entry)
        return entry

    async def end_agent_leg(self, old: QueueEntry) -> None:
        ari = self.svc.ari_for(old.node)
        if old.agent_channel:
            await self.store.take_channel(old.agent_channel)
            await self.svc._safe(ari.hangup(old.agent_channel))
        if old.bridge_id:
            await self.svc._safe(ari.destroy_bridge(old.bridge_id))
        await self._release_agent(old)

    async def transfer_department(self, agent_id: int, number: str, code: str) -> QueueEntry:
        """Warm transfer, step 1: the caller holds, the department's hotline rings, the agent talks to it."""
        svc = self.svc
        entry = await self.current(agent_id)
        if entry.transfer_channel:
            raise Conflict("a transfer is already in progress")
        if entry.state == "connected":
            entry = await self.hold(agent_id, True)
        digits = re.sub(r"\D", "", number)
        if not digits:
            raise BadRequest(f"no number for department {code}")
        chan = f"ah-d-{uuid.uuid4().hex[:16]}"
        await self.store.map_channel(chan, "dept", entry.call_id)
        entry.transfer_channel, entry.transferred_to = chan, code
        await self.store.save_entry(entry)
        try:
            await svc.ari_for(entry.node).originate(
                svc.settings.handoff_outbound_dial.format(number=digits), app=svc.app,
                app_args=f"dept,{entry.call_id}", caller_id="12345", channel_id=chan, timeout=30)
        except AriError as exc:
            await self.store.take_channel(chan)
            entry.transfer_channel = None
            await self.store.save_entry(entry)
            raise Conflict(f"could not call {code}: {exc.message}") from None
        return entry

    async def department_answered(self, call_id: str, chan: str) -> None:
        entry = await self.store.entry(call_id)
        if entry is None or entry.transfer_channel != chan:
            await self.svc._safe(self.svc.ari.hangup(chan))
            return
        await self.svc.ari.add_channel(entry.bridge_id, chan)  # type: ignore[arg-type]
        if entry.agent_id is not None:
            await self.store.publish_agent(entry.agent_id, {"type": "transfer_answered", "call_id": call_id,
                                                            "department": entry.transferred_to})

    async def department_gone(self, call_id: str, chan: str) -> None:
        svc = self.svc
        entry = await self.store.entry(call_id)
        if entry is None or entry.transfer_channel != chan:
            return
        if entry.state == "external":  # caller and department were talking: the call is over
            async with svc.lock(call_id):
                await self.store.drop_entry(call_id)
            await self.store.take_channel(entry.channel_id)
            await svc._safe(svc.ari.hangup(entry.channel_id))
            entry.transfer_channel = None
            await self.end_connected(entry, by="department")
            return
        entry.transfer_channel = None
        await self.store.save_entry(entry)
        if entry.agent_id is not None:
            await self.store.publish_agent(entry.agent_id, {"type": "transfer_failed", "call_id": call_id,
                                                            "department": entry.transferred_to})

    async def complete_transfer(self, agent_id: int) -> None:
        """Step 2: the caller joins the department, the agent leaves (→ wrap-up)."""
        svc = self.svc
        entry = await self.current(agent_id)
        if not entry.transfer_channel:
            raise Conflict("no department on the line")
        async with svc.lock(entry.call_id):
            old = QueueEntry(**{**entry.__dict__})
            ari = svc.ari_for(entry.node)
            await svc.quiet(entry.channel_id, ari)
            await ari.add_channel(entry.bridge_id, entry.channel_id)  # type: ignore[arg-type]
            await svc._safe(ari.remove_channel(entry.bridge_id, entry.agent_channel))  # type: ignore[arg-type]
            entry.state, entry.agent_channel = "external", None
            await self.store.save_entry(entry)
        old.bridge_id = None
        await self.end_agent_leg(old)
        await svc.calls.update(entry.call_id, context={"transferred_to": entry.transferred_to})

    async def cancel_transfer(self, agent_id: int) -> QueueEntry:
        entry = await self.current(agent_id)
        if entry.transfer_channel:
            await self.store.take_channel(entry.transfer_channel)
            await self.svc._safe(self.svc.ari_for(entry.node).hangup(entry.transfer_channel))
            entry.transfer_channel = None
            await self.store.save_entry(entry)
        return await self.hold(agent_id, False)
