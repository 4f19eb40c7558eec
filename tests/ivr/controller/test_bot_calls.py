"""Whole conversations with the real bot (Rasa + custom actions), by voice through Asterisk:
a KB question answered, a work order raised and read back, a request for a person."""

from __future__ import annotations

import re

from hotline.container import Container
from ivr.calls import CallRecords
from ivr.models import CallOutcome
from ivr.testing.sip_caller import SipCaller
from tests.ivr.controller.conftest import ControllerFactory, Speech, audio_between, until, wait_bot_silent


def _bigrams(text: str) -> set[str]:
    t = re.sub(r"\W", "", text)
    return {t[i:i + 2] for i in range(len(t) - 1)}


async def _say(call, speech: Speech, text: str) -> tuple[float, str]:  # type: ignore[no-untyped-def]
    """Speak `text`; return (when the caller stopped, what the bot said back, transcribed)."""
    said = await call.play(await speech.caller_pcm(text))
    first = await until(lambda: call.first_audio_after(said), 15)
    last = await wait_bot_silent(call, quiet=1.2, timeout=60)
    return first - said, await speech.transcribe(audio_between(call, first, last))


async def _record(container: Container, call_id: str):  # type: ignore[no-untyped-def]
    async with container.db.session() as session:
        return await CallRecords.get(session, call_id)


async def test_kb_question_is_answered(start_controller: ControllerFactory, speech: Speech,
                                       ivr_container: Container, bot_url: str) -> None:
    question = "社保卡丢了怎么办"
    entry = (await ivr_container.kb.search(question)).hits[0]
    ctl = await start_controller(rasa_url=bot_url)
    async with SipCaller(user="13800138002") as caller:
        call = await caller.dial("12345")
        call_id = (await until(lambda: list(ctl.active), 5))[0]
        await wait_bot_silent(call)
        latency, heard = await _say(call, speech, question)
        await call.hangup()
    answer = entry.spoken_answer
    overlap = len(_bigrams(answer) & _bigrams(heard)) / max(1, len(_bigrams(answer)))
    assert overlap >= 0.4, (heard, answer)
    record = await until(lambda: _finished(ivr_container, call_id), 10)
    assert record.turns[0].action == "kb_answer" and record.turns[0].transcript
    assert record.outcome == CallOutcome.answered.value
    print(f"KB turn: heard {latency * 1000:.0f} ms after the caller stopped; record {record.turns[0].latency_ms}")


async def test_work_order_by_voice_with_ticket_read_back(start_controller: ControllerFactory, speech: Speech,
                                                          ivr_container: Container, bot_url: str) -> None:
    script = ["青山区人民路上的路灯坏了，晚上一片漆黑", "在青山区人民路和文化路路口", "路灯一直不亮已经三天了", "是的", "对"]
    ctl = await start_controller(rasa_url=bot_url)
    async with SipCaller(user="13800138003") as caller:
        call = await caller.dial("12345")
        call_id = (await until(lambda: list(ctl.active), 5))[0]
        await wait_bot_silent(call)
        heard = ""
        for line in script:
            _, heard = await _say(call, speech, line)
            session = ctl.active[call_id].session
            if session is not None and session.ticket:
                break
        session = ctl.active[call_id].session
        assert session is not None and session.ticket, f"no order after the script; last reply: {heard}"
        ticket = session.ticket
        await call.hangup()
    digits = ticket.replace("-", "")
    spoken = re.sub(r"\D", "", "".join(str("零一二三四五六七八九".index(c)) if c in "零一二三四五六七八九" else c
                                        for c in heard))
    assert ticket.replace("-", "")[-4:] in spoken, (heard, digits)  # the number was read back
    async with ivr_container.db.session() as db:
        order = await ivr_container.work_orders.get_by_ticket(db, ticket)
    assert order is not None, "the ticket read back is not in the database"
    assert order.category == "lighting.streetlight" and order.department_code == "municipal"
    record = await until(lambda: _finished(ivr_container, call_id), 10)
    assert record.outcome == CallOutcome.work_order.value and record.ticket == ticket


async def test_transfer_request_reaches_the_seats(start_controller: ControllerFactory, speech: Speech,
                                                   ivr_container: Container, bot_url: str) -> None:
    await ivr_container.handoff.start()  # the seats runtime (hotline-seats Stasis app)
    try:
        ctl = await start_controller(rasa_url=bot_url, seats=True)
        async with SipCaller(user="13800138004") as caller:
            call = await caller.dial("12345")
            call_id = (await until(lambda: list(ctl.active), 5))[0]
            await wait_bot_silent(call)
            await call.play(await speech.caller_pcm("我要转人工服务"))
            await until(lambda: call_id in ctl.finished, 30)  # the channel left the controller
            session = ctl.finished[call_id]
            assert session.handed_to == "seats" and "waiting_agent" in session.history
            assert await ivr_container.handoff.position(call_id) == 1
            record = await _record(ivr_container, call_id)
            assert record.queue and record.context.get("handoff_reason")
            assert any(t.action == "human" for t in record.turns)
            await call.hangup()
    finally:
        await ivr_container.handoff.stop()


async def _finished(container: Container, call_id: str):  # type: ignore[no-untyped-def]
    record = await _record(container, call_id)
    return record if record.outcome != CallOutcome.in_progress.value else None
