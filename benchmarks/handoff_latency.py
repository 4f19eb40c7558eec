"""Handoff latency on the real stack: from the bot's handoff decision (`HandoffService.enqueue`) to
(a) the agent's SIP phone receiving the INVITE and (b) the screen pop arriving on the agent websocket.

Run by hand: `.venv/bin/python benchmarks/handoff_latency.py [N]` (default 20 calls, one after another).
Needs PostgreSQL, Redis and the Asterisk chroot (started if not running). Prints p50/p95 in milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from hotline.app import create_app  # noqa: E402
from core.auth.models import Role, User  # noqa: E402
from hotline.container import Container  # noqa: E402
from hotline.migrate import upgrade  # noqa: E402
from hotline.services.asterisk import AsteriskService  # noqa: E402
from telephony.ari import AriClient, Event  # noqa: E402
from tests.support.sip_caller import SipCaller, SipPhone  # noqa: E402
from tests import services  # noqa: E402
from tests.agent_handoff.conftest import seat_settings  # noqa: E402
from tests.conftest import PASSWORD, add_user, make_settings, reset_database  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def main(n: int) -> None:
    services.ensure_postgres()
    services.ensure_redis()
    url, dbname = await services.create_pg_database("hotline_bench")
    await asyncio.to_thread(upgrade, url)
    asterisk = AsteriskService.from_settings()
    await asyncio.to_thread(asterisk.start)
    settings = seat_settings(make_settings(url, f"redis://127.0.0.1:{services.REDIS_PORT}/8"), asterisk,
                             handoff_wrap_up_seconds=0.2, handoff_announce_seconds=60.0)
    c = Container.build(settings)
    await reset_database(c.db)
    await c.redis.flushdb()
    await c.start()
    await c.handoff.start()
    user = await add_user(c, "bench_agent", Role.agent)
    async with c.db.session() as s:
        u = await s.get(User, user.id)
        u.sip_endpoint, u.skills = "PJSIP/agent1", "综合"  # type: ignore[union-attr]
        await s.commit()

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, container=c), host="127.0.0.1", port=port,
                                           log_level="warning"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    api = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        r = await http.post("/v1/auth/token", data={"username": "bench_agent", "password": PASSWORD})
        token = r.json()["access_token"]
        r = await http.post("/v1/agents/me/login", json={}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text

    enqueued: dict[str, float] = {}

    async def on_start(ev: Event) -> None:  # the stand-in controller: answer, record, hand over
        ch = ev.channel  # type: ignore[attr-defined]
        if getattr(ev, "args", None):
            return
        await bot.answer(ch.id)
        await c.handoff.calls.start(ch.id, ch.caller.number)
        await c.handoff.calls.add_turn(ch.id, speaker="caller", transcript="我想咨询一下社保卡丢了怎么补办",
                                       intent="ask_kb", category="social_security", action="handoff")
        enqueued[ch.id] = time.monotonic()
        await c.handoff.enqueue(ch.id, ch.id, context={"intent": "ask_kb", "category": "social_security",
                                                       "slots": {"description": "社保卡丢失补办"}})

    ring_ms: list[float] = []
    pop_ms: list[float] = []
    bot = AriClient(asterisk.ari_url, asterisk.ari_user, asterisk.ari_password, app="hotline")
    async with bot, SipPhone(local_port=5071, answer_after=0.1, user="agent1") as phone, \
            connect(f"ws://127.0.0.1:{port}/v1/agents/ws?token={token}") as ws:
        await bot.events.wait_connected(10)
        bot.events.on("StasisStart", on_start)
        await ws.recv()  # hello
        for i in range(n):
            async with SipCaller(user=f"1390000{i:04d}") as caller:
                dial = asyncio.create_task(caller.dial("12345"))
                call = await phone.wait_call(15)
                t_ring = time.monotonic()
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if msg.get("type") == "offer":
                        t_pop = time.monotonic()
                        break
                t0 = enqueued[msg["call_id"]]
                ring_ms.append((t_ring - t0) * 1000)
                pop_ms.append((t_pop - t0) * 1000)
                await dial
                await call.wait_answered(5)
                await asyncio.sleep(0.3)
                await call.hangup()
                await asyncio.sleep(0.6)  # wrap-up (0.2 s) over
    print(f"handoff latency over {n} calls (enqueue → agent phone INVITE / screen pop on websocket):")
    print(f"  ringing     p50 {statistics.median(ring_ms):6.1f} ms   p95 {pct(ring_ms, 95):6.1f} ms   "
          f"max {max(ring_ms):6.1f} ms")
    print(f"  screen pop  p50 {statistics.median(pop_ms):6.1f} ms   p95 {pct(pop_ms, 95):6.1f} ms   "
          f"max {max(pop_ms):6.1f} ms")
    server.should_exit = True
    await api
    await c.close()
    await services.drop_pg_database(dbname)


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
