"""Queue order, skill routing, wrap-up and pause, announcements, no-answer and hangups - real calls."""

from __future__ import annotations

import asyncio


from sqlalchemy import select

from agent_handoff.models import AgentState, AgentStateEvent
from hotline.container import Container
from telephony.models import Call
from tests.support.g711 import rms
from tests.support.sip_caller import SipCaller, SipPhone

from .conftest import Bot, Handover, add_agent, until


async def state(c: Container, agent_id: int) -> str:
    a = await c.handoff.store.get_agent(agent_id)
    return a.state if a else "logged_out"


async def test_priority_order_then_skill_routing(seats: Container, bot: Bot) -> None:
    svc = seats.handoff
    a1 = await add_agent(seats, 1, "综合")
    a2 = await add_agent(seats, 2, "劳动保障:3,综合")
    bot.plans = {
        "13900000001": Handover(priority="normal"),
        "13900000002": Handover(priority="urgent"),
        "13900000003": Handover(priority="emergency"),
    }
    await svc.agents.login(a1, ready=False)
    async with SipPhone(local_port=5071, answer_after=0.2, user="agent1") as p1, \
            SipCaller(user="13900000001") as c1, SipCaller(user="13900000002") as c2, \
            SipCaller(user="13900000003") as c3:
        for caller in (c1, c2, c3):  # arrive in this order, one after the other
            asyncio.create_task(caller.dial("12345"))
            await until(lambda n=caller.user: _queued(svc, bot, n), 10, f"{caller.user} queued")
        ids = await svc.store.queued_ids()
        assert ids == [bot.call_ids["13900000003"], bot.call_ids["13900000002"], bot.call_ids["13900000001"]]
        assert await svc.position(bot.call_ids["13900000001"]) == 3

        await svc.agents.request(a1.id, AgentState.available)  # one seat: emergency first
        first = await p1.wait_call(10)
        assert "13900000003" in first.invite.get("from")
        await first.wait_answered(5)
        await until(lambda: _state_is(seats, a1.id, "on_call"), 5, "agent1 on call")
        entry = await svc.store.entry(bot.call_ids["13900000003"])
        assert entry and entry.state == "connected" and entry.agent_id == a1.id
        await first.hangup()
        await until(lambda: _state_is(seats, a1.id, "wrap_up"), 5, "agent1 wrap-up")

        # wrap-up respected: the next call waits although agent1 is the only seat
        await asyncio.sleep(1.0)
        assert (await svc.store.entry(bot.call_ids["13900000002"])).state == "waiting"
        second = await p1.wait_call(6)  # wrap-up (2 s) over → urgent before normal
        assert "13900000002" in second.invite.get("from")
        await second.wait_answered(5)
        await until(lambda: _state_is(seats, a1.id, "on_call"), 5, "agent1 on call again")
        await second.hangup()
        await until(lambda: _state_is(seats, a1.id, "wrap_up"), 5)
        await svc.agents.request(a1.id, AgentState.paused, "休息")
        third = asyncio.create_task(p1.wait_call(3.5))
        await asyncio.sleep(3.0)  # paused: no call even after wrap-up would have ended
        assert not third.done()
        third.cancel()
        assert await state(seats, a1.id) == "paused"
        await c3.hangup()

    async with seats.db.session() as s:
        rows = (await s.scalars(select(AgentStateEvent).where(AgentStateEvent.agent_id == a1.id)
                                .order_by(AgentStateEvent.id))).all()
    states = [r.state for r in rows]
    assert states[:5] == ["paused", "available", "ringing", "on_call", "wrap_up"]
    assert states[-1] == "paused" and rows[-1].reason == "休息"


async def test_skill_routing_and_widening(seats: Container, bot: Bot) -> None:
    svc = seats.handoff
    a3 = await add_agent(seats, 3, "综合")
    a4 = await add_agent(seats, 4, "劳动保障:5")
    await svc.agents.login(a4)
    await asyncio.sleep(0.05)
    await svc.agents.login(a3)  # a4 idles longer, but only a3... no: a4 has the skill; a3 is general
    bot.plans = {"13900000011": Handover(skill="劳动保障", context={"intent": "wage_arrears"}),
                 "13900000012": Handover(skill="住建")}
    async with SipPhone(local_port=5073, answer_after=0.2, user="agent3") as p3, \
            SipPhone(local_port=5074, answer_after=0.2, user="agent4") as p4, \
            SipCaller(user="13900000011") as c1, SipCaller(user="13900000012") as c2:
        asyncio.create_task(c1.dial("12345"))
        call = await p4.wait_call(10)  # the skilled agent, not the other free one
        assert "13900000011" in call.invite.get("from")
        # nobody has 住建: it waits until widen_after, then anyone free takes it
        svc.settings.handoff_widen_after_seconds = 2.0
        asyncio.create_task(c2.dial("12345"))
        other = await p3.wait_call(10)
        assert "13900000012" in other.invite.get("from")
        entry_wait = await svc.store.entry(bot.call_ids["13900000012"])
        assert entry_wait is not None and entry_wait.waited(svc.now()) >= 2.0
        await c1.hangup()
        await c2.hangup()


async def test_announcement_is_played(seats: Container, bot: Bot) -> None:
    svc = seats.handoff
    async with SipCaller(user="13900000021") as c1:
        call = await c1.dial("12345")
        await until(lambda: _announced(svc, bot, "13900000021"), 60, "first announcement")
        anns = await svc.store.announcements(bot.call_ids["13900000021"])
        assert "您是下一位" in anns[0]["text"]
        await asyncio.sleep(4.0)
        heard = [p for p in call.received if rms(p.pcm) > 300]
        assert len(heard) * 20 > 1000, "caller heard less than a second of prompt/hold audio"
        media = svc.sounds.path_for(anns[0]["text"])
        assert media.exists() and media.stat().st_size > 8000
        # Redis lost while the citizen waits: the running runtime rebuilds the queue from the call records
        cid = bot.call_ids["13900000021"]
        await seats.redis.flushdb()

        async def queued_again() -> bool:
            return await svc.store.position(cid) == 1

        await until(queued_again, 5, "the queue rebuilt after Redis was emptied")
        assert await svc.rebuild() == 0  # nothing missing any more
        await c1.hangup()


async def test_agent_no_answer_goes_to_next_agent(seats: Container, bot: Bot) -> None:
    svc = seats.handoff
    a1 = await add_agent(seats, 1)
    a2 = await add_agent(seats, 2)
    await svc.agents.login(a1)
    await asyncio.sleep(0.05)
    await svc.agents.login(a2)
    async with SipPhone(local_port=5071, answer_after=None, user="agent1") as p1, \
            SipPhone(local_port=5072, answer_after=0.2, user="agent2") as p2, \
            SipCaller(user="13900000031") as c1:
        asyncio.create_task(c1.dial("12345"))
        ringing = await p1.wait_call(10)  # longest idle first
        got = await p2.wait_call(10)  # ring timeout (4 s) → next agent
        await got.wait_answered(5)
        assert await ringing.wait_hangup(5)
        assert await state(seats, a1.id) == "paused"
        assert (await svc.store.get_agent(a1.id)).reason == "未接听"
        await until(lambda: _state_is(seats, a2.id, "on_call"), 5)
        # agent hangs up: caller is released, agent goes to wrap-up, the record says who ended it
        await got.hangup()
        assert await c1.call.wait_hangup(5) == "remote-bye"
        await until(lambda: _state_is(seats, a2.id, "wrap_up"), 5)
    call_id = bot.call_ids["13900000031"]
    await until(lambda: _ended(seats, call_id), 5)
    async with seats.db.session() as s:
        rec = await s.get(Call, call_id)
        assert rec.outcome == "transferred" and rec.agent_id == a2.id and rec.context["ended_by"] == "agent"
        assert rec.agent_answered_at is not None and rec.queued_at is not None
    await until(lambda: _state_is(seats, a2.id, "available"), 5, "wrap-up ends")


async def _queued(svc, bot: Bot, number: str) -> bool:  # type: ignore[no-untyped-def]
    cid = bot.call_ids.get(number)
    return bool(cid) and cid in await svc.store.queued_ids()


async def _announced(svc, bot: Bot, number: str) -> bool:  # type: ignore[no-untyped-def]
    cid = bot.call_ids.get(number)
    return bool(cid) and bool(await svc.store.announcements(cid))


async def _state_is(c: Container, agent_id: int, want: str) -> bool:
    return await state(c, agent_id) == want


async def _ended(c: Container, call_id: str) -> bool:
    async with c.db.session() as s:
        rec = await s.get(Call, call_id)
        return rec is not None and rec.outcome != "in_progress"



