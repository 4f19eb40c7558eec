"""Redis fails under live calls: the calls go on, nothing that belongs in PostgreSQL is lost, and the controller
and the seats runtime use Redis again by themselves once it is back.

The hotline's Redis here (live calls, the seat queue, the dialogue's caller numbers) is a redis-server of the
test's own (tests/services.PrivateRedis), so the shared one is never disturbed. The real Rasa server keeps its
trackers in the session's Redis, which stays up: test 1 shows what the hotline itself does without its Redis.
In production Rasa's trackers are in the same Redis, so the bot degrades too: test 2 (bot down, keypad and
humans only) is that case, with Redis hung rather than gone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from hotline.container import Container
from ivr.controller.controller import IvrController
from telephony.models import CallOutcome
from tests.support.sip_caller import SipCall, SipCaller, SipPhone
from tests.ivr.controller.conftest import (
    DEAD_RASA, ControllerFactory, Speech, finished_record, say_and_hear, until, wait_bot_silent,
)
from tests.services import PrivateRedis
from work_orders.models import WorkOrder

SEATS_APP = "hotline-seats-redis-outage"  # not the session's seats runtime (tests/ivr/controller/conftest.py)
WORK_ORDER_SCRIPT = ["青山区人民路上的路灯坏了，晚上一片漆黑", "在青山区人民路和文化路路口", "路灯一直不亮已经三天了",
                     "对的，没错", "没错"]


@pytest.fixture
async def outage_stack(ivr_container: Container, speech: Speech) -> AsyncIterator[tuple[PrivateRedis, Container]]:
    """The session's database and Asterisk, a Redis of this test's own, the seats runtime on it (own Stasis app).
    Request it before `start_controller`, so the controller stops before this is torn down."""
    with PrivateRedis() as redis:
        settings = ivr_container.settings.model_copy(update=dict(redis_url=redis.url(), seats_ari_app=SEATS_APP))
        container = Container.build(settings)
        await container.handoff.start()
        try:
            yield redis, container
        finally:
            if not redis.running:
                redis.start()
            await container.close()


async def _claimed_by(container: Container, call_id: str) -> str | None:
    return await container.redis.hget(f"ivr:call:{call_id}", "owner")


async def _next_call_is_live_in_redis_and_queued_for_seats(container: Container, ctl: IvrController,
                                                           caller_number: str) -> None:
    """A call after the outage: claimed in Redis, and 0 puts it in the seats runtime's queue (in Redis)."""
    await until(lambda: container.redis.exists(f"ivr:ctl:{ctl.controller_id}"), 15)  # the heartbeat is back
    async with SipCaller(user=caller_number) as caller:
        call = await caller.dial("12345")
        call_id = (await until(lambda: list(ctl.active), 5))[0]
        assert await _claimed_by(container, call_id) == ctl.controller_id
        await until(lambda: call.first_audio_after(0), 15)
        await call.send_dtmf("0")
        await until(lambda: call_id in ctl.finished, 30)
        assert ctl.finished[call_id].handed_to == "seats"
        assert await container.handoff.position(call_id) == 1
        assert call_id in await container.redis.zrange("ah:queue", 0, -1)
        await call.hangup()
    record = await until(lambda: finished_record(container, call_id), 15)
    assert record.outcome == CallOutcome.abandoned.value  # the seats runtime finished it: hung up while waiting
    assert container.handoff._loop_task is not None and not container.handoff._loop_task.done()


async def _seat_answers(seat: SipPhone) -> SipCall:
    agent = await seat.wait_call(timeout=30)  # the dialplan queue (hotline-humans) rings the seat phones
    await agent.wait_answered(5)
    return agent


async def test_redis_gone_mid_call_bot_still_takes_an_order_and_a_seat_still_answers(
    outage_stack: tuple[PrivateRedis, Container], start_controller: ControllerFactory, speech: Speech, bot_url: str,
) -> None:
    redis, container = outage_stack
    ctl = await start_controller(rasa_url=bot_url, seats=True, container=container)
    caller_number = "13800138031"
    for line in WORK_ORDER_SCRIPT:
        await speech.caller_pcm(line)  # rendered before calling: a caller doesn't pause to think
    async with SipPhone(local_port=5074, answer_after=0.3, user="agent4") as seat, \
            SipCaller(user=caller_number) as caller:
        call = await caller.dial("12345")
        call_id = (await until(lambda: list(ctl.active), 5))[0]
        assert await _claimed_by(container, call_id) == ctl.controller_id
        await wait_bot_silent(call)
        redis.stop()  # Redis dies mid-call (SIGKILL)

        session = ctl.active[call_id].session
        assert session is not None
        for line in WORK_ORDER_SCRIPT:
            await say_and_hear(call, speech, line)  # each line gets a spoken reply
            if session.ticket:
                break
        assert session.ticket, session.history
        await call.send_dtmf("0")  # DTMF still works: a person, please
        await _seat_answers(seat)
        await until(lambda: call_id in ctl.finished, 15)
        assert ctl.finished[call_id].handed_to == "dialplan"  # the seat queue is in Redis: the dialplan took it
        await call.hangup()

    record = await until(lambda: finished_record(container, call_id), 15)
    assert record.outcome == CallOutcome.transferred.value and record.ticket == session.ticket
    assert record.context.get("handoff_reason") == "dtmf_0"
    async with container.db.session() as db:
        orders = (await db.scalars(select(WorkOrder).where(WorkOrder.call_ref == call_id))).all()
    assert [o.ticket for o in orders] == [session.ticket]  # stored once
    assert orders[0].caller_phone == caller_number  # the caller's number survived the outage (not in Redis)

    redis.start()  # back, empty (no persistence), as after a crash
    await _next_call_is_live_in_redis_and_queued_for_seats(container, ctl, "13800138032")


async def test_redis_hung_mid_call_keypad_and_humans_still_work(
    outage_stack: tuple[PrivateRedis, Container], start_controller: ControllerFactory, speech: Speech,
) -> None:
    """Redis hangs (SIGSTOP: connections open, nothing answered) while the bot is down: every Redis command
    costs a timeout, yet the caller gets the keypad menu, a key reaches a person, and the record is complete."""
    redis, container = outage_stack
    ctl = await start_controller(rasa_url=DEAD_RASA, seats=True, container=container)
    async with SipPhone(local_port=5074, answer_after=0.3, user="agent4") as seat, \
            SipCaller(user="13800138033") as caller:
        call = await caller.dial("12345")
        call_id = (await until(lambda: list(ctl.active), 5))[0]
        question = await speech.caller_pcm("社保卡丢了怎么办")
        await wait_bot_silent(call)
        redis.freeze()

        said = await call.play(question)
        await until(lambda: call.first_audio_after(said), 15)  # the keypad menu
        session = ctl.active[call_id].session
        assert session is not None
        await until(lambda: session.state.value == "menu", 10)
        await call.send_dtmf("2")  # 投诉/报修: with the bot down, a person takes it
        await _seat_answers(seat)
        await until(lambda: call_id in ctl.finished, 15)
        assert ctl.finished[call_id].handed_to == "dialplan"
        await call.hangup()

    record = await until(lambda: finished_record(container, call_id), 15)
    assert record.outcome == CallOutcome.transferred.value
    assert record.context.get("handoff_reason") == "menu_2" and record.context.get("degraded") is True
    assert record.turns and record.turns[0].action == "fallback"

    redis.thaw()
    await _next_call_is_live_in_redis_and_queued_for_seats(container, ctl, "13800138034")


async def test_caller_waiting_for_a_seat_is_back_in_the_queue_after_redis_comes_back_empty(
    outage_stack: tuple[PrivateRedis, Container], start_controller: ControllerFactory,
) -> None:
    """The seat queue lives in Redis: when Redis restarts empty under a running seats runtime, the waiting
    caller is put back in the queue from the database (else nobody would ever be offered the call, and its
    record would stay "in progress" after the caller hung up)."""
    redis, container = outage_stack
    ctl = await start_controller(rasa_url=DEAD_RASA, seats=True, container=container)
    async with SipCaller(user="13800138035") as caller:
        call = await caller.dial("12345")
        call_id = (await until(lambda: list(ctl.active), 5))[0]
        await until(lambda: call.first_audio_after(0), 15)
        await call.send_dtmf("0")
        await until(lambda: call_id in ctl.finished, 30)
        assert ctl.finished[call_id].handed_to == "seats"
        assert await container.handoff.position(call_id) == 1
        redis.restart()  # empty: no persistence
        await until(lambda: container.handoff.position(call_id), 15)  # rebuilt from the database
        assert await container.redis.get(f"ah:chan:{call_id}") == f"caller:{call_id}"
        await call.hangup()
    record = await until(lambda: finished_record(container, call_id), 15)
    assert record.outcome == CallOutcome.abandoned.value  # the seats runtime saw the hang-up
