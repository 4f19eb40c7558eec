"""The IVR controller: the `hotline` Stasis application. One CallSession per caller channel.

Start-up (also after a crash): hand back the calls a dead controller left in Stasis (→ the dialplan →
the human queue) and finalise their records, *then* register the app, so nothing is handled twice.
Each new channel is claimed in Redis (live.py) before it is touched.

Scale-out: one controller per Asterisk node (`node` = that Asterisk's systemname, checked at start). A call is
pinned to the node holding its channel: only that node's controller gets its events, its record carries the
node, and a restarting controller only settles the calls of its own node.

    controller = IvrController(ari=..., calls=..., understanding=..., synthesizer=..., live=..., handover=...)
    await controller.start()
    ...
    await controller.stop()     # live callers are handed to the seats, not dropped
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from telephony.ari import AriClient, Channel, Event, hand_back_orphans
from telephony.calls import CallRecords
from ivr.controller import metrics, prompts
from ivr.controller.events import CallEvent, Dtmf, Hangup, Shutdown
from ivr.controller.handover import ARI_ERRORS, Handover
from ivr.controller.live import LiveCalls
from ivr.controller.media import CallMedia
from ivr.controller.session import ASTERISK_GONE, CallInfo, CallSession, CallTimeouts
from ivr.controller.stages import Speaker, Understanding
from telephony.models import CallOutcome
from ivr.speech.base import Synthesizer

log = logging.getLogger(__name__)


SOFTHANGUP_SHUTDOWN = 4  # Asterisk's AST_SOFTHANGUP_SHUTDOWN: the `cause` of the soft hang-ups it makes as it stops


def default_controller_id() -> str:
    return f"ivr-{socket.gethostname()}-{os.getpid()}"


def _hangup_reason(ev: Event) -> str:
    """Why a caller channel is going: it left our app, Asterisk is stopping (and hangs up every channel first),
    or anything else - the caller hung up."""
    if ev.type == "StasisEnd":
        return "left"
    shutting_down = getattr(ev, "soft", None) and getattr(ev, "cause", None) == SOFTHANGUP_SHUTDOWN
    if ev.type == "ChannelHangupRequest" and shutting_down:
        return ASTERISK_GONE
    return "hangup"


class _Call:
    """A caller channel we handle: its event queue exists from StasisStart on."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.events: asyncio.Queue[CallEvent] = asyncio.Queue()
        self.session: CallSession | None = None
        self.task: asyncio.Task[None] | None = None


class IvrController:
    def __init__(self, *, ari: AriClient, calls: CallRecords, understanding: Understanding,
                 synthesizer: Synthesizer, live: LiveCalls, handover: Handover,
                 timeouts: CallTimeouts = CallTimeouts(), record_dir: Path | None = None,
                 controller_id: str | None = None, end_dialogue: Callable[[str], Any] | None = None,
                 node: str = "") -> None:
        self.ari = ari
        self.node = node
        self.calls = calls
        self.understanding = understanding
        self.synthesizer = synthesizer
        self.live = live
        self.handover = handover
        self.timeouts = timeouts
        self.record_dir = record_dir  # None: caller audio is never written to disk
        self.controller_id = controller_id or live.controller_id
        self.end_dialogue = end_dialogue
        self.active: dict[str, _Call] = {}
        self.finished: dict[str, CallSession] = {}  # last few sessions (tests, debugging)
        self._media_waiters: dict[str, asyncio.Future[None]] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        self.recovered: list[str] = []

    # ================================================================== lifecycle
    async def start(self, prerender: bool = True) -> None:
        if prerender and hasattr(self.synthesizer, "prerender"):
            n = await self.synthesizer.prerender(prompts.FIXED_PROMPTS)  # type: ignore[attr-defined]
            log.info("prompts pre-rendered (%d new)", n)
        await self.check_node()
        await self.live.heartbeat()
        await self.recover()
        ev = self.ari.events
        ev.on("*", self._dispatch)
        ev.on_connect(self._on_connect)
        await ev.start()
        await ev.wait_connected(15)
        self._heartbeat = asyncio.create_task(self._beat(), name="ivr-heartbeat")
        log.info("IVR controller %s serving app %s", self.controller_id, self.ari.app)

    async def stop(self) -> None:
        """Hand live callers to the seats (dialplan queue), then disconnect."""
        for call in list(self.active.values()):
            call.events.put_nowait(Shutdown())
        tasks = [c.task for c in self.active.values() if c.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        if self._heartbeat:
            self._heartbeat.cancel()
        await self.ari.events.stop()

    async def check_node(self) -> None:
        """Refuse to serve an Asterisk other than the configured node: its calls would be recorded (and settled
        after a restart) as another node's."""
        info = await self.ari.info()
        name = str((info.config or {}).get("name") or "")
        if name != self.node:
            raise RuntimeError(f"ARI {self.ari.base_url} is Asterisk node {name!r} (its systemname), but this "
                               f"controller is configured for node {self.node!r} (HOTLINE_NODE)")

    async def _beat(self) -> None:
        while True:
            await self.live.heartbeat()
            await asyncio.sleep(5)

    async def recover(self) -> list[str]:
        """Calls left in Stasis by a dead controller go to the seats; their records are finalised."""
        handed = await hand_back_orphans(self.ari)
        for channel_id in handed:
            await self._finish_record(channel_id, CallOutcome.transferred, {"fallback": "orphaned"})
            await self.live.release(channel_id)
        present = {c.id for c in await self.ari.list_channels()}
        for call in await self.calls.in_progress():
            if call.node != self.node:  # another node's channels are not in `present`: not ours to judge
                continue
            if not call.controller.startswith("ivr-") or call.id in present or call.queue:
                continue
            if call.controller != self.controller_id and await self.live.alive(call.controller):
                continue  # another live controller's call (on another node)
            await self._finish_record(call.id, CallOutcome.failed, {"fallback": "lost_while_down"})
        self.recovered = handed
        return handed

    async def _on_connect(self, count: int) -> None:
        if count <= 1:
            return
        # Reconnected (Asterisk restart?): calls whose channels vanished are over.
        try:
            present = {c.id for c in await self.ari.list_channels()}
        except ARI_ERRORS:
            return
        for channel_id, call in list(self.active.items()):
            if channel_id not in present:
                call.events.put_nowait(Hangup(ASTERISK_GONE))

    # ================================================================== ARI events
    def _dispatch(self, ev: Event) -> None:
        """Route an event (synchronously, so per-call order is kept)."""
        channel = getattr(ev, "channel", None)
        if ev.type == "ApplicationReplaced":
            log.error("another controller took over app %s", self.ari.app)
            return
        if not isinstance(channel, Channel):  # no channel, or an untyped event (raw dict)
            return
        if ev.type == "StasisStart":
            if channel.name.startswith("UnicastRTP/"):
                waiter = self._media_waiters.get(channel.id)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                return
            if channel.id in self.active or channel.name.startswith(("Snoop/", "Local/", "Announcer/")):
                return
            call = _Call(channel)
            self.active[channel.id] = call
            metrics.ACTIVE.inc()
            call.task = asyncio.create_task(self._run_call(call), name=f"call-{channel.id}")
            return
        call = self.active.get(channel.id)
        if call is None:
            return
        if ev.type in ("StasisEnd", "ChannelHangupRequest", "ChannelDestroyed"):
            call.events.put_nowait(Hangup(_hangup_reason(ev)))
        elif ev.type == "ChannelDtmfReceived":
            call.events.put_nowait(Dtmf(ev.digit))  # type: ignore[attr-defined]

    async def _wait_media(self, channel_id: str) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._media_waiters[channel_id] = fut
        try:
            await fut
        finally:
            self._media_waiters.pop(channel_id, None)

    # ================================================================== one call
    async def _run_call(self, call: _Call) -> None:
        ch = call.channel
        caller = ch.caller.number if ch.caller.number.isdigit() else None
        info = CallInfo(ch.id, caller, self.controller_id)
        outcome, ticket, handed_to = CallOutcome.failed, None, None
        if not await self.live.claim(ch.id, caller or ""):
            self.active.pop(ch.id, None)
            metrics.ACTIVE.dec()
            return
        try:
            await self.calls.start(ch.id, caller or "", node=self.node, controller=self.controller_id)
            await self.ari.answer(ch.id)
            await self.calls.answered(ch.id)
            media = CallMedia(self.ari, ch.id, self._wait_media)
            try:
                await media.setup()
            except Exception:
                log.exception("media set-up failed for %s; caller goes to the seats", ch.id)
                await media.teardown()
                handed_to = await self.handover.to_dialplan(info)
                outcome = CallOutcome.transferred if handed_to else CallOutcome.failed
                return
            session = CallSession(
                info, media=media, understanding=self.understanding, calls=self.calls, handover=self.handover,
                speaker_factory=lambda rtp, sink: Speaker(self.synthesizer, rtp, sink), timeouts=self.timeouts,
                on_state=lambda state: self.live.set_state(ch.id, state),
                record_dir=(self.record_dir / ch.id) if self.record_dir else None, events=call.events,
            )
            call.session = session
            outcome = await session.run()
            ticket, handed_to = session.ticket, session.handed_to
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("call %s failed", ch.id)
            handed_to = await self.handover.to_dialplan(info)
            outcome = CallOutcome.transferred if handed_to else CallOutcome.failed
        finally:
            self.active.pop(ch.id, None)
            metrics.ACTIVE.dec()
            if call.session is not None:
                self.finished[ch.id] = call.session
                while len(self.finished) > 50:
                    self.finished.pop(next(iter(self.finished)))
            if handed_to != "seats":  # the seats finish the records of calls they took
                extra = {"handed_to": handed_to} if handed_to else {}
                if call.session is not None and call.session.end_reason == ASTERISK_GONE:
                    extra["fallback"] = ASTERISK_GONE
                await self._finish_record(ch.id, outcome, extra, ticket)
            metrics.CALLS.labels(outcome.value).inc()
            await self.live.release(ch.id)
            if self.end_dialogue is not None:
                try:
                    await self.end_dialogue(ch.id)
                except Exception:  # noqa: BLE001
                    log.debug("dialogue end failed for %s", ch.id)

    async def _finish_record(self, call_id: str, outcome: CallOutcome, context: dict[str, Any],
                             ticket: str | None = None) -> None:
        try:
            if context:
                await self.calls.update(call_id, context=context)
            await self.calls.finish(call_id, outcome, ticket)
        except Exception as exc:  # noqa: BLE001 - NotFound (no record yet), DB blip
            log.info("could not finish call record %s: %s", call_id, exc)
