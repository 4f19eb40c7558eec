"""An agent, through the seat API, puts the caller on hold and back, then warm-transfers the call to a department's
hotline from the directory: the caller holds while the agent consults, the caller then talks to the department
and the agent is free (wrap-up). Real Asterisk, SIP phones for the citizen, the seat and the department."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import numpy as np
import pytest

from hotline.app import create_app
from hotline.container import Container
from telephony.models import Call
from tests.support.g711 import rms
from tests.support.sip_caller import SipCall, SipCaller, SipPhone
from tests.conftest import PASSWORD
from work_orders.taxonomy import seed_work_orders

from .conftest import CITIZEN_PORT, Bot, Handover, add_agent, until

CALLER = "13900000051"


@pytest.fixture
async def seat_api(seats: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(seats.settings, container=seats)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://seat") as client:
        yield client


def loud_ms(call: SipCall, since: float) -> int:
    return 20 * sum(1 for p in call.received if p.arrival >= since and rms(p.pcm) > 300)


async def test_hold_then_warm_transfer_to_a_department(seats: Container, bot: Bot,
                                                       seat_api: httpx.AsyncClient) -> None:
    svc = seats.handoff
    await seed_work_orders(seats)
    agent = await add_agent(seats, 1)
    token = (await seat_api.post("/v1/auth/token", data={"username": agent.username, "password": PASSWORD})).json()
    h = {"Authorization": f"Bearer {token['access_token']}"}
    bot.plans = {CALLER: Handover(context={"category": "housing.property"})}
    tone = (8000 * np.sin(np.arange(8000 * 2) * 2 * np.pi * 440 / 8000)).astype(np.int16)  # 2 s of "speech"

    async with SipPhone(local_port=5071, answer_after=0.2, user="agent1") as seat_phone, \
            SipPhone(local_port=CITIZEN_PORT, answer_after=0.5, user="dept") as dept_phone, \
            SipCaller(user=CALLER) as citizen:
        assert (await seat_api.post("/v1/agents/me/login", json={}, headers=h)).status_code == 200
        r = await seat_api.post("/v1/agents/me/state", json={"state": "available"}, headers=h)
        assert r.status_code == 200, r.text
        call = await citizen.dial("12345")
        seat = await seat_phone.wait_call(20)
        await seat.wait_answered(5)
        call_id = bot.call_ids[CALLER]
        await until(lambda: _entry_state(svc, call_id, "connected"), 10, "connected")

        # hold: the caller leaves the bridge and hears hold music; the seat hears nothing of the caller
        assert (await seat_api.post("/v1/agents/me/call/hold", headers=h)).status_code == 204
        assert (await svc.store.entry(call_id)).state == "held"
        t_hold = time.monotonic()
        t_seat = seat.received[-1].arrival if seat.received else 0.0
        await call.play(tone)
        # Music on hold starts within a second on an idle machine; under the full suite's load it took longer.
        async def music() -> bool:
            return loud_ms(call, t_hold) >= 1000

        await until(music, 8, "hold music")
        assert loud_ms(seat, t_seat + 0.3) < 400, "the agent heard the caller while on hold"
        r = await seat_api.post("/v1/agents/me/call/unhold", headers=h)
        assert r.status_code == 204, r.text
        assert (await svc.store.entry(call_id)).state == "connected"
        t_back = seat.received[-1].arrival
        await call.play(tone)
        await until(lambda: heard(seat, t_back), 5, "agent hears the caller again")

        # warm transfer: the department's hotline (from the directory) rings while the caller holds
        lines = (await seat_api.get("/v1/agents/directory", headers=h)).json()
        housing = next(d for d in lines if d["code"] == "housing")
        r = await seat_api.post("/v1/agents/me/call/transfer", json={"department": "housing"}, headers=h)
        assert r.status_code == 202 and r.json()["number"] == housing["hotline"], r.text
        r = await seat_api.post("/v1/agents/me/call/transfer", json={"department": "housing"}, headers=h)
        assert r.status_code == 409, r.text  # one transfer at a time
        dept = await dept_phone.wait_call(15)
        for _ in range(3):  # a line also gets other calls (here: an earlier test's unanswered INVITE, resent)
            if "04786612001" in dept.invite.start:
                break
            dept = await dept_phone.wait_call(15)
        assert "04786612001" in dept.invite.start
        await dept.wait_answered(5)
        await until(lambda: _transfer_answered(svc, call_id), 10, "department on the line")
        r = await seat_api.post("/v1/agents/me/call/unhold", headers=h)
        assert r.status_code == 409, r.text  # complete or cancel the transfer first

        assert (await seat_api.post("/v1/agents/me/call/transfer/complete", headers=h)).status_code == 204
        assert await seat.wait_hangup(5)
        await until(lambda: _agent_state(svc, agent.id, "wrap_up"), 5, "agent in wrap-up")
        assert (await svc.store.entry(call_id)).state == "external"
        t_dept = dept.received[-1].arrival if dept.received else 0.0
        await call.play(tone)
        await until(lambda: heard(dept, t_dept), 5, "department hears the caller")

        await dept.hangup()  # the department finishes: the citizen's call ends too
        assert await call.wait_hangup(10)
    await until(lambda: _record_done(seats, call_id), 10, "call record closed")
    async with seats.db.session() as s:
        rec = await s.get(Call, call_id)
    assert rec is not None and rec.context["transferred_to"] == "housing", rec
    assert (await seat_api.post("/v1/agents/me/call/hold", headers=h)).status_code == 404  # no call any more


async def _entry_state(svc, call_id: str, state: str) -> bool:  # type: ignore[no-untyped-def]
    e = await svc.store.entry(call_id)
    return e is not None and e.state == state


async def _transfer_answered(svc, call_id: str) -> bool:  # type: ignore[no-untyped-def]
    e = await svc.store.entry(call_id)
    if e is None or not e.transfer_channel or not e.bridge_id:
        return False
    bridge = next((b for b in await svc.ari.list_bridges() if b.id == e.bridge_id), None)
    return bridge is not None and e.transfer_channel in bridge.channels


async def _agent_state(svc, agent_id: int, state: str) -> bool:  # type: ignore[no-untyped-def]
    a = await svc.store.get_agent(agent_id)
    return a is not None and a.state == state


async def heard(call: SipCall, since: float) -> bool:
    return loud_ms(call, since) >= 1000


async def _record_done(c: Container, call_id: str) -> bool:
    async with c.db.session() as s:
        rec = await s.get(Call, call_id)
        return rec is not None and rec.ended_at is not None
