"""Short answers on real calls (issue 13): a caller who answers the bot's questions as people do - a bare "对",
a "不对" with the correction after a pause - gets the order filed right.

The caller answers what the bot asks (the session's expectation), as a person would; when the bot did not hear a
yes it says it once more and then, as the bot offers, presses 1. What is asserted is what the hotline guarantees:
the order is stored under the right category, a "no" never confirms, and the short answers were taken by voice.
"""

from __future__ import annotations

import numpy as np

from hotline.container import Container
from ivr.controller.controller import IvrController
from tests.support.sip_caller import SipCall, SipCaller
from work_orders.models import WorkOrder
from tests.ivr.controller.conftest import (
    ANSWERS, REPORT, ControllerFactory, Speech, answer_until_filed, finished_record, say_and_hear, say_pcm, session_of, until,
    wait_bot_silent,
)
from understanding.answers import read_yes_no
from understanding.expect import Expect

async def _report(ctl: IvrController, caller: SipCaller, speech: Speech) -> tuple[SipCall, str]:
    """Dial, let the greeting end, report the broken street light; the call and its id."""
    call = await caller.dial("12345")
    call_id = (await until(lambda: list(ctl.active), 5))[0]
    await wait_bot_silent(call)
    await say_and_hear(call, speech, REPORT)
    return call, call_id


async def _streetlight_order(ctl: IvrController, container: Container, call_id: str, ticket: str | None) -> WorkOrder:
    """The order behind the ticket read out, filed under the street-light category."""
    assert ticket, f"no order filed; states {ctl.finished.get(call_id) and ctl.finished[call_id].history}"
    async with container.db.session() as db:
        order = await container.work_orders.get_by_ticket(db, ticket)
    assert order is not None and order.category_code == "lighting.streetlight", order
    return order


async def _voice_yeses(container: Container, call_id: str) -> tuple[int, list[tuple[str, str | None, str]]]:
    """Yeses taken by voice, and every turn (transcript, keys, the bot's reply) for the message, once the call's
    record is complete."""
    record = await until(lambda: finished_record(container, call_id), 15)
    turns = [(t.transcript, t.dtmf, t.reply[:30]) for t in record.turns]
    return sum(1 for t in record.turns if not t.dtmf and read_yes_no(t.transcript or "") is True), turns


async def test_bare_dui_to_the_readback_files_the_order(start_controller: ControllerFactory, speech: Speech,
                                                         ivr_container: Container, bot_url: str) -> None:
    ctl = await start_controller(rasa_url=bot_url)
    for line in (REPORT, "对", *ANSWERS.values()):
        await speech.caller_pcm(line)  # rendered before the greeting ends: a caller does not pause to think
    async with SipCaller(user="13800138005") as caller:
        call, call_id = await _report(ctl, caller, speech)
        ticket = await answer_until_filed(ctl, call_id, call, speech)
        await call.hangup()
    order = await _streetlight_order(ctl, ivr_container, call_id, ticket)
    voiced, turns = await _voice_yeses(ivr_container, call_id)
    assert voiced >= 1, turns  # a bare 对 was taken by voice, not only the keypad


async def test_no_then_a_pause_then_the_correction(start_controller: ControllerFactory, speech: Speech,
                                                   ivr_container: Container, bot_url: str) -> None:
    """At the read-back (青山区…, 对吗？) the caller says "不对", pauses, and gives the right district: the order is
    filed with the corrected district - a no never confirmed the wrong one."""
    ctl = await start_controller(rasa_url=bot_url)
    no, rest = await speech.caller_pcm("不对"), await speech.caller_pcm("是东河区滨河路")
    correction = np.concatenate([no, np.zeros(int(0.8 * 8000), np.int16), rest])
    for line in (REPORT, "对", "东河区滨河路", *ANSWERS.values()):
        await speech.caller_pcm(line)
    async with SipCaller(user="13800138006") as caller:
        call, call_id = await _report(ctl, caller, speech)
        ticket = await answer_until_filed(ctl, call_id, call, speech, at_readback=correction)
        session = session_of(ctl, call_id)
        if ticket is None and session is not None and session.state.value in ("listening", "speaking"):
            # "哪一项不对？": the turn ended at the pause; the caller says the district again as asked.
            await say_and_hear(call, speech, "东河区滨河路")
            ticket = await answer_until_filed(ctl, call_id, call, speech)
        await call.hangup()
    order = await _streetlight_order(ctl, ivr_container, call_id, ticket)
    assert order.district_code == "donghe" or "东河" in order.address, (order.district_code, order.address)


async def test_keypad_confirms_after_a_miss(start_controller: ControllerFactory, speech: Speech,
                                            ivr_container: Container, bot_url: str) -> None:
    """At the read-back the caller mumbles (speech played backwards: voice, but no words); the bot asks again
    and offers the keypad; the caller presses 1 and the order is filed."""
    ctl = await start_controller(rasa_url=bot_url)
    mumble = (await speech.caller_pcm("这个我也说不太清楚"))[::-1].copy()
    async with SipCaller(user="13800138007") as caller:
        call, call_id = await _report(ctl, caller, speech)
        for _ in range(8):  # to the read-back, answering as a person would
            session = session_of(ctl, call_id)
            assert session is not None and not session.ticket
            if session.expect() is Expect.YES_NO and "确认" in (session.last_prompt or ""):
                break
            line = "对" if session.expect() is Expect.YES_NO else ANSWERS.get(session.expect(), ANSWERS[Expect.DESCRIPTION])
            await say_and_hear(call, speech, line)
        await say_pcm(call, mumble)
        session = session_of(ctl, call_id)
        assert session is not None and not session.ticket, "a mumble confirmed the order"
        assert session.expect() is Expect.YES_NO, session.last_prompt
        await call.send_dtmf("1")
        ticket = await until(lambda: session_of(ctl, call_id) and session_of(ctl, call_id).ticket, 30)
        await wait_bot_silent(call, quiet=1.0, timeout=60)
        await call.hangup()
    await _streetlight_order(ctl, ivr_container, call_id, ticket)
    _, turns = await _voice_yeses(ivr_container, call_id)
    assert any(dtmf == "1" for _, dtmf, _ in turns), turns
