"""Short answers on real calls (issue 13): a caller who answers the bot's questions as people do - a bare "对",
a "不对" with the correction after a pause - gets the order filed right.

The caller answers what the bot asks (the session's expectation), as a person would; when the bot did not hear a
yes it says it once more and then, as the bot offers, presses 1. What is asserted is what the hotline guarantees:
the order is stored under the right category, a "no" never confirms, and the short answers were taken by voice.
"""

from __future__ import annotations

import numpy as np

from hotline.container import Container
from ivr.calls import CallRecords
from ivr.controller.controller import IvrController
from ivr.testing.sip_caller import SipCall, SipCaller
from tests.ivr.controller.conftest import ControllerFactory, Speech, say_and_hear, until, wait_bot_silent
from understanding.answers import read_yes_no
from understanding.expect import Expect

REPORT = "青山区人民路上的路灯坏了，晚上一片漆黑"
ANSWERS = {Expect.ADDRESS: "在青山区人民路和文化路路口", Expect.DESCRIPTION: "路灯一直不亮已经三天了",
           Expect.PHONE: "一三八零零一三八零零六"}


def _session(ctl: IvrController, call_id: str):  # type: ignore[no-untyped-def]
    return ctl.active[call_id].session if call_id in ctl.active else None


async def _say_pcm(call: SipCall, pcm: np.ndarray) -> None:
    said = await call.play(pcm)
    await until(lambda: call.first_audio_after(said), 30)
    await wait_bot_silent(call, quiet=2.0, timeout=60)


async def _answer_until_filed(ctl: IvrController, call_id: str, call: SipCall, speech: Speech, *,
                              at_readback: np.ndarray | None = None, turns: int = 10) -> str | None:
    """Answer each question as a person would until the bot reads a ticket out; `at_readback` is said (once)
    instead of a yes to the first read-back. Returns the ticket (None if the call went elsewhere)."""
    yes_tries = 0
    for _ in range(turns):
        session = _session(ctl, call_id)
        if session is None or session.ticket or session.state.value not in ("listening", "speaking"):
            break
        expect = session.expect()
        if expect is Expect.YES_NO:
            if at_readback is not None and "确认" in (session.last_prompt or ""):
                pcm, at_readback = at_readback, None
                await _say_pcm(call, pcm)
                continue
            yes_tries += 1
            if yes_tries % 3 == 0:  # "正确请按1": a person who was not heard twice presses it
                await call.send_dtmf("1")
                await wait_bot_silent(call, quiet=2.0, timeout=60)
                continue
            await say_and_hear(call, speech, "对")
            continue
        yes_tries = 0
        await say_and_hear(call, speech, ANSWERS.get(expect, ANSWERS[Expect.DESCRIPTION]))
    session = _session(ctl, call_id)
    return session.ticket if session is not None else None


async def _voice_yeses(container: Container, call_id: str) -> tuple[int, list[tuple[str, str | None, str]]]:
    """Yeses taken by voice, and every turn (transcript, keys, the bot's reply) for the message."""
    async with container.db.session() as db:
        record = await CallRecords.get(db, call_id)
    turns = [(t.transcript, t.dtmf, t.reply[:30]) for t in record.turns]
    return sum(1 for t in record.turns if not t.dtmf and read_yes_no(t.transcript or "") is True), turns


async def test_bare_dui_to_the_readback_files_the_order(start_controller: ControllerFactory, speech: Speech,
                                                         ivr_container: Container, bot_url: str) -> None:
    ctl = await start_controller(rasa_url=bot_url)
    for line in (REPORT, "对", *ANSWERS.values()):
        await speech.caller_pcm(line)  # rendered before the greeting ends: a caller does not pause to think
    async with SipCaller(user="13800138005") as caller:
        call = await caller.dial("12345")
        call_id = (await until(lambda: list(ctl.active), 5))[0]
        await wait_bot_silent(call)
        await say_and_hear(call, speech, REPORT)
        ticket = await _answer_until_filed(ctl, call_id, call, speech)
        await call.hangup()
    assert ticket, f"no order filed; states {ctl.finished.get(call_id) and ctl.finished[call_id].history}"
    async with ivr_container.db.session() as db:
        order = await ivr_container.work_orders.get_by_ticket(db, ticket)
    assert order is not None and order.category_code == "lighting.streetlight", order
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
        call = await caller.dial("12345")
        call_id = (await until(lambda: list(ctl.active), 5))[0]
        await wait_bot_silent(call)
        await say_and_hear(call, speech, REPORT)
        ticket = await _answer_until_filed(ctl, call_id, call, speech, at_readback=correction)
        session = _session(ctl, call_id)
        if ticket is None and session is not None and session.state.value in ("listening", "speaking"):
            # "哪一项不对？": the turn ended at the pause; the caller says the district again as asked.
            await say_and_hear(call, speech, "东河区滨河路")
            ticket = await _answer_until_filed(ctl, call_id, call, speech)
        await call.hangup()
    assert ticket, f"no order filed; states {ctl.finished.get(call_id) and ctl.finished[call_id].history}"
    async with ivr_container.db.session() as db:
        order = await ivr_container.work_orders.get_by_ticket(db, ticket)
    assert order is not None and order.category_code == "lighting.streetlight", order
    assert order.district_code == "donghe" or "东河" in order.address, (order.district_code, order.address)
