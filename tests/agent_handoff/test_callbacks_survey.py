"""Callbacks (asked for, and after abandoning the queue) and the satisfaction survey robot, end to end:
outbound calls through Asterisk to a SIP test phone standing in for the citizen."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from agent_handoff.models import CallbackRequest, SurveyAttempt
from agent_handoff.outbound import in_quiet_hours
from hotline.container import Container
from telephony.models import Call
from tests.support.sip_caller import SipCaller, SipPhone
from work_orders.models import CallbackTask, WorkOrder
from work_orders.schemas import WorkOrderCreate
from work_orders.service import SYSTEM
from work_orders.taxonomy import seed_work_orders

from .conftest import CITIZEN_PORT, Bot, add_agent, until

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


async def callbacks(c: Container) -> list[CallbackRequest]:
    async with c.db.session() as s:
        return list((await s.scalars(select(CallbackRequest).order_by(CallbackRequest.id))).all())


async def test_abandoned_call_is_called_back_and_connected_to_an_agent(seats: Container, bot: Bot) -> None:
    svc = seats.handoff
    a1 = await add_agent(seats, 1)
    async with SipCaller(user="13900000041") as caller:
        await caller.dial("12345")
        await until(lambda: _has_entry(svc, bot, "13900000041"), 10, "queued")
        await asyncio.sleep(0.5)
        await caller.hangup()  # nobody logged in: the citizen gives up
    call_id = bot.call_ids["13900000041"]
    await until(lambda: _callback_count(seats, 1), 10, "callback task")
    cb = (await callbacks(seats))[0]
    assert (cb.reason, cb.phone, cb.status, cb.origin_call_id) == ("abandoned", "13900000041", "pending", call_id)
    async with seats.db.session() as s:
        rec = await s.get(Call, call_id)
        assert rec.outcome == "abandoned" and rec.context["queue_result"] == "abandoned"

    # an agent becomes free → the dialer calls the citizen, who answers and is put through
    async with SipPhone(local_port=CITIZEN_PORT, answer_after=0.3, user="citizen") as citizen, \
            SipPhone(local_port=5071, answer_after=0.3, user="agent1") as p1:
        await svc.agents.login(a1)
        out = await citizen.wait_call(15)
        assert "13900000041" in out.invite.start
        seat = await p1.wait_call(20)  # after the Mandarin greeting
        await seat.wait_answered(5)
        await until(lambda: _callback_status(seats, cb.id, "done"), 10, "callback done")
        done = (await callbacks(seats))[0]
        assert done.last_result == "connected" and done.agent_id == a1.id and done.attempts == 1
        await out.hangup()
        assert await seat.wait_hangup(5)


async def test_callback_instead_of_waiting_and_retry_when_unanswered(seats: Container, bot: Bot) -> None:
    svc = seats.handoff
    svc.settings.handoff_callback_offer_seconds = 0.0  # any wait is "too long": offer the callback
    svc.settings.handoff_callback_max_attempts = 2
    svc.settings.handoff_callback_retry_seconds = 3.0
    a2 = await add_agent(seats, 2)
    async with SipCaller(user="13900000051") as caller:
        call = await caller.dial("12345")
        await until(lambda: _announced(svc, bot, "13900000051"), 30, "announcement with the offer")
        text = (await svc.store.announcements(bot.call_ids["13900000051"]))[0]["text"]
        assert "请按1" in text
        await call.send_dtmf("1")
        assert await call.wait_hangup(20) == "remote-bye"  # after "已为您登记回电"
    cb = (await callbacks(seats))[0]
    assert cb.reason == "requested" and cb.status == "pending"
    async with seats.db.session() as s:
        rec = await s.get(Call, bot.call_ids["13900000051"])
        assert rec.context["queue_result"] == "callback_requested"

    # first attempt: the citizen does not answer (the phone rings out) → retried later
    async with SipPhone(local_port=CITIZEN_PORT, answer_after=None, user="citizen") as citizen:
        await svc.agents.login(a2, ready=True)
        ringing = await citizen.wait_call(15)
        await ringing.hangup()  # decline
        await until(lambda: _callback_result(seats, cb.id, "pending"), 15, "retry scheduled")
    assert (await callbacks(seats))[0].attempts == 1
    # second attempt answered → connected to the agent
    async with SipPhone(local_port=CITIZEN_PORT, answer_after=0.2, user="citizen") as citizen, \
            SipPhone(local_port=5072, answer_after=0.2, user="agent2") as p2:
        out = await citizen.wait_call(15)
        seat = await p2.wait_call(20)
        await seat.wait_answered(5)
        await until(lambda: _callback_status(seats, cb.id, "done"), 10, "callback done")
        assert (await callbacks(seats))[0].attempts == 2
        await seat.hangup()
        assert await out.wait_hangup(5)


async def resolved_order(c: Container, phone: str) -> WorkOrder:
    await seed_work_orders(c)
    async with c.db.session() as s:
        created = await c.work_orders.create(s, SYSTEM, WorkOrderCreate(
            category="road.damage", description="振华路人行道塌了一个坑", address="青山区振华路12号",
            caller_phone=phone, link_repeats=False))
        order_id = created.order.id
    for step in ("accept", "start"):
        async with c.db.session() as s:
            await getattr(c.work_orders, step)(s, SYSTEM, order_id)
    async with c.db.session() as s:
        order = await c.work_orders.resolve(s, SYSTEM, order_id, "已修补路面")
    return order


async def test_survey_call_records_the_answer_on_the_order(seats: Container) -> None:
    svc = seats.handoff
    order = await resolved_order(seats, "13900000061")
    async with SipPhone(local_port=CITIZEN_PORT, answer_after=0.3, user="citizen") as citizen:
        assert await svc.outbound.dial_surveys() == 1
        out = await citizen.wait_call(30)
        await out.wait_answered(10)
        await asyncio.sleep(2.0)  # the prompt is playing; the citizen presses 2 (基本满意)
        await out.send_dtmf("2")
        # Generous: on a fresh machine the first Mandarin prompts are synthesised cold (TensorFlow start-up).
        assert await out.wait_hangup(90) == "remote-bye"
    async with seats.db.session() as s:
        o = await s.get(WorkOrder, order.id)
        assert o.status == "closed" and o.satisfaction == "basically_satisfied"
        attempts = (await s.scalars(select(SurveyAttempt))).all()
        assert ("answered", "basically_satisfied", "dtmf") in [(a.outcome, a.result, a.via) for a in attempts]


async def test_survey_unanswered_is_retried_and_quiet_hours_hold_it(seats: Container) -> None:
    svc = seats.handoff
    order = await resolved_order(seats, "13900000071")
    async with SipPhone(local_port=CITIZEN_PORT, answer_after=None, user="citizen") as citizen:
        await svc.outbound.dial_surveys()  # the dispatcher's own tick may dial it first: one call either way
        out = await citizen.wait_call(10)
        await out.hangup()  # not now
        await until(lambda: _survey_outcome(seats, "no_answer"), 10, "attempt recorded")
    async with seats.db.session() as s:
        task = (await s.scalars(select(CallbackTask).where(CallbackTask.order_id == order.id))).one()
        assert task.status == "pending" and task.attempts == 1 and task.due_at > svc.clock()
        assert len((await s.scalars(select(SurveyAttempt))).all()) == 1  # never dialled twice
        task.due_at = svc.clock()  # due again now
        await s.commit()

    night = dt.datetime(2026, 11, 25, 22, 30, tzinfo=SHANGHAI)
    assert in_quiet_hours(night, "Asia/Shanghai", ("21:00", "08:00"))
    assert in_quiet_hours(night.replace(hour=7, minute=59), "Asia/Shanghai", ("21:00", "08:00"))
    assert not in_quiet_hours(night.replace(hour=8), "Asia/Shanghai", ("21:00", "08:00"))
    svc.settings.handoff_quiet_hours = ("21:00", "08:00")
    real_clock = svc.clock
    svc.clock = lambda: night  # type: ignore[assignment]
    try:
        assert svc.outbound.quiet()
        await svc.outbound.tick()  # nothing is dialled at night
        await asyncio.sleep(1.0)
        async with seats.db.session() as s:
            assert len((await s.scalars(select(SurveyAttempt))).all()) == 1
    finally:
        svc.clock = real_clock  # type: ignore[assignment]


async def _has_entry(svc, bot: Bot, number: str) -> bool:  # type: ignore[no-untyped-def]
    cid = bot.call_ids.get(number)
    return bool(cid) and await svc.store.entry(cid) is not None


async def _announced(svc, bot: Bot, number: str) -> bool:  # type: ignore[no-untyped-def]
    cid = bot.call_ids.get(number)
    return bool(cid) and bool(await svc.store.announcements(cid))


async def _callback_count(c: Container, n: int) -> bool:
    return len(await callbacks(c)) == n


async def _callback_status(c: Container, cb_id: int, status: str) -> bool:
    return any(cb.id == cb_id and cb.status == status for cb in await callbacks(c))


async def _callback_result(c: Container, cb_id: int, status: str) -> bool:
    return any(cb.id == cb_id and cb.status == status and cb.last_result for cb in await callbacks(c))


async def _survey_outcome(c: Container, outcome: str) -> bool:
    async with c.db.session() as s:
        return any(a.outcome == outcome for a in (await s.scalars(select(SurveyAttempt))).all())
