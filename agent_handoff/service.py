"""Human seats: the queue, routing to agents over ARI, and the call once a person has it.

API for the IVR controller (same process or another; it only needs Redis, the database and ARI REST):

    entry = await handoff.enqueue(call_id, channel_id, queue="hotline", priority="normal",
                                  skill="劳动保障", context={"intent": ..., "category": ..., "slots": {...},
                                                             "summary": "...", "handoff_reason": "..."})
        call_id     the `calls` row id (the controller has written it with CallRecords.start)
        channel_id  the caller's channel: answered, in the `hotline` Stasis app, out of any bridge
        priority    "emergency" | "urgent" | "normal" (emergencies first, then by waiting time)
        skill       the skill wanted first; after `handoff_widen_after_seconds` any agent may take it
        context     merged into calls.context (shown to the agent in the screen pop and the order form)
      Returns the QueueEntry (entry.call_id, position via `await handoff.position(call_id)`).
      From then on the seat side owns the channel: it is moved to the Stasis app `seats_ari_app`
      (`hotline-seats`), so the controller gets StasisEnd for it and must not touch it again.

    await handoff.publish_transcript(call_id, speaker, text)   # live transcript lines for the agent console

`start()` (in exactly one process per Asterisk node: `hotline worker` or `hotline run`) connects the node's
`hotline-seats` events socket and runs the dispatcher: routing, ringing timeouts, announcements, wrap-up expiry,
callbacks and surveys. A node's dispatcher offers only the calls held on its node (`QueueEntry.node`) to the
seats whose phones are on it (`AgentLive.node`); Redis and the database are shared by all nodes. Agent actions
through any API process reach the call's node with `ari_for(node)` (`HOTLINE_ARI_NODES`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import math
import time
import uuid
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from agent_handoff import media
from agent_handoff.agents import AgentService
from agent_handoff.media import SoundLibrary
from agent_handoff.models import AgentState, Priority
from agent_handoff.screenpop import ScreenPop
from core.tasks import cancel_and_wait, wait_event
from agent_handoff.store import AgentLive, QueueEntry, SeatStore
from config.settings import Settings
from core.db import Database, utcnow
from core.errors import BadRequest, Conflict, NotFound
from telephony.ari import AriClient, AriError, Event
from telephony.calls import CallRecords
from telephony.models import CallOutcome

log = logging.getLogger(__name__)
WAITING = ("entering", "waiting")


class HandoffService:
    def __init__(self, settings: Settings, db: Database, redis: aioredis.Redis, *, kb: Any = None,
                 work_orders: Any = None, sounds: SoundLibrary | None = None,
                 clock: Any = utcnow) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.store = SeatStore(redis)
        self.calls = CallRecords(db, clock)
        self.agents = AgentService(db, self.store, wrap_up_seconds=settings.handoff_wrap_up_seconds, clock=clock,
                                   node=settings.node)
        self.agents.on_change.append(lambda _a: self.wake())
        self.sounds = sounds or SoundLibrary(settings.asterisk_sounds_dir)
        self.popups = ScreenPop(db, kb, work_orders)
        self.work_orders = work_orders
        self.app = settings.seats_ari_app
        self.node = settings.node  # the Asterisk node of `ari` (settings.ari_url)
        self.ari = AriClient(settings.ari_url, settings.ari_user, settings.ari_password, app=self.app,
                             start_events=False)
        self._node_aris: dict[str, AriClient] = {}  # other nodes' ARI (REST only), for agent actions
        from agent_handoff.control import CallControl
        from agent_handoff.outbound import Outbound

        self.control = CallControl(self)
        self.outbound = Outbound(self)
        self._wake = asyncio.Event()
        self._locks: dict[str, asyncio.Lock] = {}
        self._playbacks: dict[str, asyncio.Future[None]] = {}
        self._playing: dict[str, str] = {}  # channel -> playback id
        self._announcers: dict[str, asyncio.Task[None]] = {}
        self._ring_timers: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._requests_task: asyncio.Task[None] | None = None

    # ================================================================== lifecycle
    def now(self) -> float:
        return self.clock().timestamp()

    async def start(self) -> None:
        if self._loop_task is not None:
            return
        # Load TTS before taking calls: importing TensorFlow holds the GIL for seconds and would stall the loop.
        await self.sounds.warm_up([media.position_text(1, 0, False), media.CALLBACK_CONFIRMED,
                                   media.GREETING_CALLBACK, media.SURVEY_THANKS, media.SURVEY_NO_INPUT])
        await self.popups.warm()
        ev = self.ari.events
        ev.on("StasisStart", self._on_start)
        ev.on("StasisEnd", self._on_end)
        ev.on("ChannelDestroyed", self._on_end)
        ev.on("ChannelDtmfReceived", self._on_dtmf)
        ev.on("PlaybackFinished", self._on_playback_finished)
        await ev.start()
        await ev.wait_connected(10)
        if await asyncio.to_thread(media.ensure_hold_music, self.settings.asterisk_moh_dir):
            try:  # pick up the new file without touching the Asterisk config
                await self.ari.request("PUT", "/asterisk/modules/res_musiconhold.so")
            except AriError as exc:
                log.warning("MOH reload failed: %s", exc)
        await self.rebuild()
        await self.store.mark_alive(self.node)
        if self._requests_task is None:
            self._requests_task = asyncio.create_task(self._node_requests(), name="handoff-node-requests")
        self._loop_task = asyncio.create_task(self._dispatcher(), name="handoff-dispatcher")

    async def rebuild(self) -> int:
        """Queued calls the database knows but Redis doesn't (Redis lost, seats runtime restarted) rejoin the
        queue in their original order, if their channel still exists."""
        n = 0
        for call in await self.calls.in_progress():
            if call.node != self.node:  # another node's channel: that node's runtime rebuilds it
                continue
            if call.queued_at is None or call.agent_answered_at is not None or await self.store.entry(call.id):
                continue
            try:
                await self.ari.get_channel(call.id)
            except AriError:
                await self.calls.finish(call.id, CallOutcome.abandoned)
                continue
            entry = QueueEntry(call_id=call.id, channel_id=call.id, caller=call.caller,
                               queue=call.queue or self.settings.handoff_default_queue,
                               priority=call.priority or Priority.normal.value,
                               skill=(call.context or {}).get("handoff_skill"),
                               queued_at=call.queued_at.timestamp(), state="waiting", node=self.node)
            await self.store.map_channel(call.id, "caller", call.id)  # mapped before the queue shows it
            await self.store.add_waiting(entry)
            await self._start_waiting(entry)
            n += 1
        return n

    async def stop(self) -> None:
        tasks = [t for t in [self._loop_task, self._requests_task, *self._announcers.values(),
                             *self._ring_timers.values(), *self._tasks] if t is not None]
        await cancel_and_wait(tasks)
        self._loop_task = self._requests_task = None
        await self.ari.close()
        for client in self._node_aris.values():
            await client.close()
        self._node_aris.clear()

    def wake(self) -> None:
        self._wake.set()

    # ================================================================== nodes
    def known_nodes(self) -> set[str]:
        """The Asterisk nodes this process can reach: `ari_nodes`, and its own (`node`, the only one by default)."""
        own = {self.node} if self.node or not self.settings.ari_nodes else set()
        return set(self.settings.ari_nodes) | own

    def seat_node(self, requested: str | None) -> str:
        """The node of a seat logging in: as given, else this process's own node."""
        node = self.node if requested is None else requested
        known = self.known_nodes()
        if node not in known:
            raise BadRequest(f"unknown Asterisk node {node!r}: the seat phone is on one of {sorted(known)}")
        return node

    def ari_for(self, node: str) -> AriClient:
        """REST client of the Asterisk node holding a call (an agent's action may come through any process)."""
        if node == self.node:
            return self.ari
        client = self._node_aris.get(node)
        if client is None:
            url = self.settings.ari_nodes.get(node)
            if url is None:
                raise Conflict(f"the call is on Asterisk node {node!r}, which this process cannot reach "
                               "(HOTLINE_ARI_NODES)")
            s = self.settings
            client = self._node_aris[node] = AriClient(url, s.ari_user, s.ari_password, app=self.app,
                                                       start_events=False)
        return client

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("handoff task failed", exc_info=task.exception())

    def lock(self, call_id: str) -> asyncio.Lock:
        return self._locks.setdefault(call_id, asyncio.Lock())

    # ================================================================== the controller's API
    async def enqueue(self, call_id: str, channel_id: str, *, queue: str | None = None,
                      priority: str | Priority = Priority.normal, skill: str | None = None,
                      context: dict[str, Any] | None = None, caller: str | None = None,
                      kind: str = "inbound", callback_id: int | None = None,
                      queued_at: dt.datetime | None = None, move: bool = True) -> QueueEntry:
        try:
            priority = Priority(priority)
        except ValueError:
            raise BadRequest(f"priority must be one of {[p.value for p in Priority]}") from None
        queue = queue or self.settings.handoff_default_queue
        call = await self.calls.start(call_id, caller or "", node=self.node)
        when = queued_at or self.clock()
        # node: the channel is on this process's Asterisk (it is moved/held through `self.ari`); rebuild() relies on it
        await self.calls.update(call_id, queue=queue, priority=priority.value, queued_at=call.queued_at or when,
                                node=self.node, context=dict(context or {}) | {"handoff_skill": skill})
        entry = QueueEntry(call_id=call_id, channel_id=channel_id, caller=caller or call.caller, queue=queue,
                           priority=priority.value, skill=skill or None, queued_at=when.timestamp(), kind=kind,
                           callback_id=callback_id, state="entering" if move else "waiting", node=self.node)
        await self.store.map_channel(channel_id, "caller", call_id)  # mapped before the queue shows it
        await self.store.add_waiting(entry)
        if move:
            try:
                await self.ari.request("POST", f"/channels/{channel_id}/move",
                                       params={"app": self.app, "appArgs": "caller"})
            except AriError as exc:
                log.warning("could not take over channel %s: %s", channel_id, exc)
                await self.caller_gone(call_id)
                raise NotFound(f"channel {channel_id} is gone") from None
        else:
            await self._start_waiting(entry)
        await self.store.publish_supervisors({"type": "queue", "call_id": call_id, "event": "joined"})
        self.wake()
        return entry

    async def publish_transcript(self, call_id: str, speaker: str, text: str) -> None:
        entry = await self.store.entry(call_id)
        msg = {"type": "transcript", "call_id": call_id, "speaker": speaker, "text": text,
               "at": self.clock().isoformat()}
        await self.store.r.publish(f"ah:ev:call:{call_id}", json.dumps(msg, ensure_ascii=False))
        if entry and entry.agent_id:
            await self.store.publish_agent(entry.agent_id, msg)

    async def position(self, call_id: str) -> int | None:
        return await self.store.position(call_id)

    async def estimated_wait(self, entry: QueueEntry, position: int) -> float:
        agents = [a for a in await self.store.agents()
                  if a.state != AgentState.paused.value and a.node == entry.node]
        skilled = [a for a in agents if a.has_skill(entry.skill)] or agents
        aht = await self.store.handle_time(entry.queue, self.settings.handoff_default_handle_seconds)
        return math.ceil(position / max(1, len(skilled))) * aht

    # ================================================================== ARI events
    async def _on_start(self, ev: Event) -> None:
        ch = ev.channel  # type: ignore[attr-defined]
        args = list(getattr(ev, "args", []) or [])
        role = args[0] if args else ""
        if role == "caller":
            mapped = await self.store.channel(ch.id)
            entry = await self.store.entry(mapped[1]) if mapped else None
            if entry is None:
                await self._safe(self.ari.hangup(ch.id))
                return
            await self._start_waiting(entry)
        elif role == "agent" and len(args) >= 3:
            await self.control.agent_answered(args[1], ch.id, int(args[2]))
        elif role == "dept" and len(args) >= 2:
            await self.control.department_answered(args[1], ch.id)
        elif role in ("callback", "survey") and len(args) >= 2:
            await self.outbound.answered(role, int(args[1]), ch)

    async def _on_end(self, ev: Event) -> None:
        ch = ev.channel  # type: ignore[attr-defined]
        taken = await self.store.take_channel(ch.id)
        if taken is None:
            return
        role, ref = taken
        cause = getattr(ev, "cause", 0) or 0
        if role == "caller":
            await self.caller_gone(ref)
        elif role == "agent":
            await self.control.agent_gone(ref, ch.id, cause)
        elif role == "dept":
            await self.control.department_gone(ref, ch.id)
        elif role in ("callback", "survey"):
            await self.outbound.gone(role, int(ref), ch.id, cause)

    async def _on_dtmf(self, ev: Event) -> None:
        ch, digit = ev.channel, ev.digit  # type: ignore[attr-defined]
        mapped = await self.store.channel(ch.id)
        if mapped is None:
            return
        role, ref = mapped
        if role == "caller" and digit == "1":
            await self.outbound.callback_instead(ref)
        elif role == "survey":
            self.outbound.digit(ch.id, digit)

    async def _on_playback_finished(self, ev: Event) -> None:
        pb = ev.playback  # type: ignore[attr-defined]
        fut = self._playbacks.pop(pb.id, None)
        if fut and not fut.done():
            fut.set_result(None)

    async def play(self, channel_id: str, text: str, *, timeout: float = 60.0) -> bool:
        """Say `text` on the channel and wait until it has been played; False if the channel went away."""
        uri = await self.sounds.media(text)
        pid = uuid.uuid4().hex
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._playbacks[pid] = fut
        self._playing[channel_id] = pid
        try:
            await self.ari.play(channel_id, uri, playback_id=pid)
            await asyncio.wait_for(fut, timeout)
            return True
        except (AriError, asyncio.TimeoutError):
            return False
        finally:
            self._playbacks.pop(pid, None)
            if self._playing.get(channel_id) == pid:
                del self._playing[channel_id]

    async def quiet(self, channel_id: str, ari: AriClient | None = None) -> None:
        """Stop any prompt and hold music on a channel (before bridging it); `ari`: the channel's node."""
        ari = ari or self.ari
        pid = self._playing.pop(channel_id, None)
        if pid:
            await self._safe(ari.stop_playback(pid))
        await self._safe(ari.moh_stop(channel_id))

    @staticmethod
    async def _safe(coro: Any) -> None:
        try:
            await coro
        except AriError as exc:
            log.debug("ARI: %s", exc)

    # ================================================================== waiting
    async def waiting_again(self, entry: QueueEntry) -> None:
        """A call back in the queue (an agent transferred it): hold music and announcements come from the seats
        runtime of its node - this process if it is that runtime, else that runtime is asked over Redis."""
        if self._loop_task is not None and entry.node == self.node:
            await self._start_waiting(entry)
        else:
            await self.store.tell_node(entry.node, {"type": "waiting", "call_id": entry.call_id})
        self.wake()

    async def _node_requests(self) -> None:
        """What other processes ask of this node's runtime (waiting_again); resubscribes after a Redis blip."""
        while True:
            pubsub = self.store.r.pubsub()
            try:
                await pubsub.subscribe(self.store.node_channel_name(self.node))
                while True:
                    m = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if not m or m.get("type") != "message":
                        continue
                    request = json.loads(m["data"])
                    entry = await self.store.entry(str(request.get("call_id")))
                    if request.get("type") == "waiting" and entry is not None and entry.node == self.node \
                            and entry.state in WAITING:
                        await self._start_waiting(entry)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis gone for a moment, a malformed request: carry on
                log.exception("seats node requests: listening again in 1 s")
                await asyncio.sleep(1.0)
            finally:
                await pubsub.aclose()

    async def _start_waiting(self, entry: QueueEntry) -> None:
        async with self.lock(entry.call_id):
            current = await self.store.entry(entry.call_id)
            if current is None:
                return
            if current.state == "entering":
                current.state = "waiting"
                await self.store.save_entry(current)
        await self._safe(self.ari.moh_start(entry.channel_id, "default"))
        old = self._announcers.pop(entry.call_id, None)
        if old:
            old.cancel()
        self._announcers[entry.call_id] = asyncio.create_task(self._announcer(entry.call_id))
        self.wake()

    async def _announcer(self, call_id: str) -> None:
        await asyncio.sleep(1.0)  # hold music first, then where they stand
        try:
            while True:
                entry = await self.store.entry(call_id)
                if entry is None or entry.state not in (*WAITING, "offered"):
                    return
                if entry.state in WAITING:
                    await self.announce(entry)
                    await asyncio.sleep(self.settings.handoff_announce_seconds)
                else:
                    await asyncio.sleep(0.5)
        except asyncio.CancelledError:
            pass
        finally:
            if self._announcers.get(call_id) is asyncio.current_task():
                del self._announcers[call_id]

    async def announce(self, entry: QueueEntry) -> None:
        position = await self.store.position(entry.call_id) or 1
        wait = await self.estimated_wait(entry, position)
        offer = (entry.kind == "inbound" and bool(entry.caller)
                 and wait > self.settings.handoff_callback_offer_seconds)
        text = media.position_text(position, wait, offer)
        async with self.lock(entry.call_id):
            current = await self.store.entry(entry.call_id)
            if current is None or current.state not in WAITING:
                return
            current.callback_offered = current.callback_offered or offer
            current.announced_at = self.now()
            await self.store.save_entry(current)
        await self.store.note_announcement(entry.call_id, text, self.now())
        if await self.play(entry.channel_id, text):
            current = await self.store.entry(entry.call_id)
            if current is not None and current.state in WAITING:
                await self._safe(self.ari.moh_start(entry.channel_id, "default"))

    # ================================================================== routing
    async def _dispatcher(self) -> None:
        last_outbound = 0.0
        redis_down = False
        while True:
            await wait_event(self._wake, 0.5)
            self._wake.clear()
            try:
                if not await self.store.marked_alive(self.node):
                    n = await self.rebuild()
                    await self.store.mark_alive(self.node)
                    log.warning("seats: Redis came back empty; %d waiting call(s) back in the queue", n)
                await self.agents.expire_wrap_ups()
                await self.dispatch_once()
                if time.monotonic() - last_outbound > 2.0:
                    last_outbound = time.monotonic()
                    await self.outbound.tick()
            except asyncio.CancelledError:
                raise
            except RedisError as exc:  # once per outage, not a traceback every tick
                if not redis_down:
                    log.warning("seats dispatcher: Redis unavailable (%s); retrying", exc)
                redis_down = True
                continue
            except Exception:  # noqa: BLE001 - keep routing; DB blips are retried next tick
                log.exception("dispatcher tick failed")
            if redis_down:
                log.info("seats dispatcher: Redis reachable again")
                redis_down = False

    async def dispatch_once(self) -> int:
        now = self.now()
        free = [a for a in await self.store.agents()
                if a.state == AgentState.available.value and a.node == self.node]
        if not free:
            return 0
        offered = 0
        for entry in await self.store.entries(await self.store.queued_ids()):
            if entry.node != self.node or entry.state not in WAITING or not free:
                continue
            agent = self.pick(entry, free, now)
            if agent is None:
                continue
            if await self.store.claim(agent.id, entry.call_id, now):
                free.remove(agent)
                await self.control.offer(entry, agent)
                offered += 1
            else:
                free.remove(agent)
        return offered

    def pick(self, entry: QueueEntry, free: list[AgentLive], now: float) -> AgentLive | None:
        """Longest-idle agent with the skill (higher level breaks ties); anyone once the wait is long."""
        untried = [a for a in free if a.id not in entry.tried] or free
        wide = entry.waited(now) >= self.settings.handoff_widen_after_seconds
        fit = [a for a in untried if a.has_skill(entry.skill)] or (untried if wide else [])
        if not fit:
            return None
        return min(fit, key=lambda a: (a.idle_since, -a.skills.get(entry.skill or "", 0), a.id))

    # ================================================================== the end of a queued call
    async def caller_gone(self, call_id: str) -> None:
        async with self.lock(call_id):
            entry = await self.store.entry(call_id)
            if entry is None:
                return
            await self.store.drop_entry(call_id)
        task = self._announcers.pop(call_id, None)
        if task:
            task.cancel()
        if entry.state in (*WAITING, "offered"):
            await self.control.cancel_offer(entry)
            await self.calls.update(call_id, context={"queue_result": "abandoned"})
            await self.calls.finish(call_id, CallOutcome.abandoned)
            await self.outbound.abandoned(entry)
        else:
            await self.control.end_connected(entry, by="caller")
        await self.store.publish_supervisors({"type": "queue", "call_id": call_id, "event": "left"})
        self._locks.pop(call_id, None)
        self.wake()

    async def ensure_running(self) -> None:
        """Periodic job in `hotline worker`: start the seats runtime once, restart the dispatcher if it died."""
        if self._loop_task is not None and self._loop_task.done():
            self._loop_task = None
        await self.start()
