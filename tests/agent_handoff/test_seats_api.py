"""Seat and supervisor APIs without telephony: login, states and their history, rules, Redis loss,
the console websocket, the directory, and the contact-centre statistics on a hand-checked dataset."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agent_handoff.agents import parse_skills
from agent_handoff.models import AgentState, AgentStateEvent
from hotline.app import create_app
from core.auth.models import Role, User
from hotline.container import Container
from core.errors import BadRequest
from telephony.models import Call
from tests.conftest import add_user, login

UTC = dt.timezone.utc


async def seat_user(c: Container, name: str, endpoint: str, skills: str = "综合") -> User:
    u = await add_user(c, name, Role.agent)
    async with c.db.session() as s:
        row = await s.get(User, u.id)
        row.sip_endpoint, row.skills = endpoint, skills  # type: ignore[union-attr]
        await s.commit()
    return u


async def test_login_states_and_history(client: httpx.AsyncClient, container: Container,
                                        headers: dict[str, dict[str, str]]) -> None:
    await seat_user(container, "zhang", "PJSIP/agent1", "综合:2,劳动保障:4")
    h = await login(client, "zhang")
    r = await client.post("/v1/agents/me/login", json={}, headers=h)
    assert r.status_code == 200 and r.json()["state"] == "available"
    assert r.json()["skills"] == {"综合": 2, "劳动保障": 4}
    r = await client.post("/v1/agents/me/state", json={"state": "paused"}, headers=h)
    assert r.status_code == 400 and "reason" in r.json()["detail"]
    r = await client.post("/v1/agents/me/state", json={"state": "paused", "reason": "培训"}, headers=h)
    assert r.json()["state"] == "paused" and r.json()["reason"] == "培训"
    r = await client.post("/v1/agents/me/state", json={"state": "on_call"}, headers=h)
    assert r.status_code == 422
    r = await client.get("/v1/agents/me/call", headers=h)
    assert r.status_code == 404

    # a second agent cannot take the same seat; an agent without a phone must name one
    await seat_user(container, "li", "PJSIP/agent1")
    h2 = await login(client, "li")
    r = await client.post("/v1/agents/me/login", json={}, headers=h2)
    assert r.status_code == 409 and "zhang" in r.json()["detail"]
    r = await client.post("/v1/agents/me/login", json={"endpoint": "PJSIP/agent2"}, headers=h2)
    assert r.status_code == 200 and r.json()["endpoint"] == "PJSIP/agent2"

    # supervisors see agents by state; agents may not
    r = await client.get("/v1/seats", headers=headers["supervisor"])
    body = r.json()
    assert [a["username"] for a in body["agents_by_state"]["paused"]] == ["zhang"]
    assert [a["username"] for a in body["agents_by_state"]["available"]] == ["li"]
    assert (await client.get("/v1/seats", headers=h)).status_code == 403

    # losing Redis loses live state, never the history
    await container.redis.flushdb()
    assert (await client.get("/v1/agents/me", headers=h)).status_code == 404
    async with container.db.session() as s:
        rows = (await s.scalars(select(AgentStateEvent).order_by(AgentStateEvent.id))).all()
    assert [(r.state, r.reason) for r in rows if r.previous is not None][:2] == [("available", "login"),
                                                                                 ("paused", "培训")]
    assert all(r.at.tzinfo is not None for r in rows)
    r = await client.post("/v1/agents/me/login", json={}, headers=h)
    assert r.status_code == 200
    r = await client.post("/v1/agents/me/logout", headers=h)
    assert r.status_code == 204


def test_parse_skills() -> None:
    assert parse_skills("综合:3, 劳动保障，法律:9") == {"综合": 3, "劳动保障": 1, "法律": 9}
    with pytest.raises(BadRequest):
        parse_skills("综合:x")


async def test_directory_lists_department_hotlines(client: httpx.AsyncClient, container: Container,
                                                   headers: dict[str, dict[str, str]]) -> None:
    from work_orders.taxonomy import seed_work_orders

    await seed_work_orders(container)
    r = await client.get("/v1/agents/directory", headers=headers["agent"])
    lines = {d["code"]: d for d in r.json()}
    assert lines["labor_inspection"]["hotline"] == "0478-6612008"
    assert (await client.get("/v1/agents/directory", headers=headers["dept_a"])).status_code == 403


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_agent_websocket_relays_pops_and_refuses_bad_tokens(container: Container) -> None:
    u = await seat_user(container, "wang", "PJSIP/agent3")
    port = _port()
    server = uvicorn.Server(uvicorn.Config(create_app(container.settings, container=container), host="127.0.0.1",
                                           port=port, log_level="warning"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            token = (await login(http, "wang"))["Authorization"].split()[1]
            await http.post("/v1/agents/me/login", json={}, headers={"Authorization": f"Bearer {token}"})
        with pytest.raises((ConnectionClosed, InvalidStatus)):  # refused before the handshake
            async with connect(f"ws://127.0.0.1:{port}/v1/agents/ws?token=forged") as ws:
                await ws.recv()
        async with connect(f"ws://127.0.0.1:{port}/v1/agents/ws?token={token}") as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            await container.handoff.store.publish_agent(u.id, {"type": "offer", "call_id": "c1"})
            assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"type": "offer", "call_id": "c1"}
            await container.handoff.agents.request(u.id, AgentState.paused, "会议")
            msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert msg["type"] == "state" and msg["state"] == "paused"
    finally:
        server.should_exit = True
        await task


async def test_call_statistics(client: httpx.AsyncClient, container: Container,
                               headers: dict[str, dict[str, str]]) -> None:
    base = dt.datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai

    def call(i: int, caller: str, minutes: int, *, outcome: str, queued: float | None = None,
             answered: float | None = None, talk: float = 0, acw: float | None = None,
             result: str | None = None) -> Call:
        start = base + dt.timedelta(minutes=minutes)
        q = start + dt.timedelta(seconds=queued) if queued is not None else None
        a = q + dt.timedelta(seconds=answered) if q and answered is not None else None
        end = (a or q or start) + dt.timedelta(seconds=talk or 30)
        return Call(id=f"s{i}", caller=caller, direction="in", started_at=start, ended_at=end, outcome=outcome,
                    queued_at=q, agent_answered_at=a, wrap_up_seconds=acw,
                    context={"queue_result": result} if result else {})

    async with container.db.session() as s:
        s.add_all([
            call(1, "13800000001", 0, outcome="answered"),  # bot only
            call(2, "13800000002", 5, outcome="work_order"),  # bot raised an order
            call(3, "13800000003", 10, outcome="transferred", queued=40, answered=10, talk=120, acw=30),  # in SL
            call(4, "13800000004", 15, outcome="transferred", queued=40, answered=50, talk=60, acw=10),  # late
            call(5, "13800000005", 20, outcome="abandoned", queued=40),  # gave up
            call(6, "13800000001", 70, outcome="transferred", queued=30, result="callback_requested"),  # repeat
            Call(id="o1", caller="13800000005", direction="out", started_at=base, outcome="transferred"),
        ])
        await s.commit()
    r = await client.get("/v1/stats/calls?from=2026-11-24&to=2026-11-24&bucket=hour", headers=headers["supervisor"])
    assert r.status_code == 200, r.text
    t = r.json()["total"]
    assert (t["offered"], t["bot_contained"], t["transferred"], t["answered"], t["abandoned"],
            t["callback_requested"]) == (6, 1, 4, 2, 1, 1)
    assert t["abandon_rate"] == 0.25
    assert t["average_speed_of_answer_s"] == 30.0
    assert t["service_level"] == round(1 / 3, 4)
    assert t["average_handle_s"] == 90.0 and t["average_after_call_work_s"] == 20.0
    assert t["transfer_to_human_rate"] == round(4 / 6, 4)
    assert t["bot_containment_rate"] == round(1 / 6, 4)
    assert t["repeat_caller_rate"] == round(1 / 6, 4)
    hours = r.json()["buckets"]
    assert [b["start"][11:16] for b in hours] == ["09:00", "10:00"] and hours[1]["offered"] == 1
    assert (await client.get("/v1/stats/calls", headers=headers["agent"])).status_code == 403
    bad = await client.get("/v1/stats/calls?from=2026-11-25&to=2026-11-24", headers=headers["supervisor"])
    assert bad.status_code == 400
