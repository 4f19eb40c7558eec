"""Seats on the real stack: PostgreSQL, Redis, Asterisk (chroot), SIP test phones as agents and citizens.

`bot` stands in for the IVR controller: it registers the `hotline` Stasis app, answers every call to 12345,
writes the call record with a transcript and the bot's slots, and hands the call over with
`HandoffService.enqueue` - exactly the API the controller uses.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from agent_handoff.service import HandoffService
from config.settings import Settings
from core.auth.models import Role, User
from hotline.container import Container
from hotline.services.asterisk import SETUP_SCRIPT, AsteriskService
from telephony.ari import AriClient, Event, StasisStart
from tests.conftest import add_user, make_settings, reset_database

CITIZEN_PORT = 5090


@pytest.fixture(scope="session")
def asterisk() -> Iterator[AsteriskService]:
    subprocess.run(["bash", str(SETUP_SCRIPT)], check=True)
    svc = AsteriskService.from_settings()
    already = svc.ari_ready()
    svc.start()
    yield svc
    if not already:
        svc.stop()


def seat_settings(base: Settings, asterisk: AsteriskService, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        ari_url=asterisk.ari_url, ari_user=asterisk.ari_user, ari_password=asterisk.ari_password,
        handoff_ring_seconds=4.0, handoff_wrap_up_seconds=2.0, handoff_widen_after_seconds=30.0,
        handoff_announce_seconds=30.0, handoff_callback_offer_seconds=3600.0,
        handoff_outbound_dial=f"PJSIP/caller/sip:{{number}}@127.0.0.1:{CITIZEN_PORT}",
        handoff_callback_retry_seconds=1.0, handoff_quiet_hours=("23:59", "00:00"),
    )
    values.update(overrides)
    return base.model_copy(update=values)


@pytest.fixture
def seat_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def seats(pg_url: str, redis_url: str, asterisk: AsteriskService,
                seat_overrides: dict[str, Any]) -> AsyncIterator[Container]:
    settings = seat_settings(make_settings(pg_url, redis_url), asterisk, **seat_overrides)
    c = Container.build(settings)
    await reset_database(c.db)
    await c.redis.flushdb()
    await c.start()
    await c.handoff.start()
    yield c
    # Bounded teardown: a stuck ARI call or websocket close must fail loudly, not hang the suite.
    for name, step in (("clean asterisk", _clean_asterisk(c.handoff)), ("close container", c.close())):
        try:
            await asyncio.wait_for(step, 20)
        except TimeoutError:
            print(f"seats fixture teardown: {name} took over 20 s")
            raise


async def _clean_asterisk(svc: HandoffService) -> None:
    for ch in await svc.ari.list_channels():
        try:
            await svc.ari.hangup(ch.id)
        except Exception:  # noqa: BLE001
            pass
    for br in await svc.ari.list_bridges():
        try:
            await svc.ari.destroy_bridge(br.id)
        except Exception:  # noqa: BLE001
            pass


async def add_agent(c: Container, n: int, skills: str = "综合") -> User:
    user = await add_user(c, f"agent{n}", Role.agent)
    async with c.db.session() as s:
        u = await s.get(User, user.id)
        assert u is not None
        u.sip_endpoint, u.skills, u.display_name = f"PJSIP/agent{n}", skills, f"坐席{n}"
        await s.commit()
        return u


@dataclass
class Handover:
    priority: str = "normal"
    skill: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    transcript: list[str] = field(default_factory=list)


@dataclass
class Bot:
    """The stand-in controller. `plans[caller_number]` says how to hand each caller over."""

    ari: AriClient
    svc: HandoffService
    plans: dict[str, Handover] = field(default_factory=dict)
    enqueued: dict[str, float] = field(default_factory=dict)  # caller -> time.monotonic() of enqueue
    call_ids: dict[str, str] = field(default_factory=dict)

    async def on_start(self, ev: Event) -> None:
        assert isinstance(ev, StasisStart)
        ch = ev.channel
        if ev.args:  # not a citizen call
            return
        await self.ari.answer(ch.id)
        plan = self.plans.get(ch.caller.number, Handover())
        await self.svc.calls.start(ch.id, ch.caller.number)
        for text in plan.transcript:
            await self.svc.calls.add_turn(ch.id, speaker="caller", transcript=text, intent=plan.context.get("intent"),
                                          category=plan.context.get("category"), action="handoff", reply="")
        self.call_ids[ch.caller.number] = ch.id
        self.enqueued[ch.caller.number] = time.monotonic()
        await self.svc.enqueue(ch.id, ch.id, priority=plan.priority, skill=plan.skill, context=plan.context)


@pytest.fixture
async def bot(seats: Container, asterisk: AsteriskService) -> AsyncIterator[Bot]:
    client = AriClient(asterisk.ari_url, asterisk.ari_user, asterisk.ari_password, app="hotline")
    await client.__aenter__()
    try:
        await client.events.wait_connected(10)
        b = Bot(client, seats.handoff)
        client.events.on("StasisStart", b.on_start)
        yield b
    finally:
        try:
            await asyncio.wait_for(client.__aexit__(None, None, None), 20)
        except TimeoutError:
            print("bot fixture teardown: closing the ARI client took over 20 s")
            raise


async def until(cond: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or cond}")
