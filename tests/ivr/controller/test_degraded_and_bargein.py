"""Real SIP calls through Asterisk to the controller, with the bot service down (dead Rasa port):
greeting, barge-in, the keypad menu and 0 → a human seat."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from hotline.container import Container
from telephony.calls import CallRecords
from telephony.models import CallOutcome
from tests.support.g711 import rms
from tests.support.sip_caller import SipCaller, SipPhone
from tests.ivr.controller.conftest import (
    DEAD_RASA, ControllerFactory, Speech, audio_between, until, wait_bot_silent,
)


async def _record(container: Container, call_id: str):  # type: ignore[no-untyped-def]
    async with container.db.session() as session:
        return await CallRecords.get(session, call_id)


async def test_bot_down_menu_then_zero_reaches_a_seat(
    start_controller: ControllerFactory, speech: Speech, ivr_container: Container,
) -> None:
    ctl = await start_controller(rasa_url=DEAD_RASA)
    async with SipPhone(local_port=5074, answer_after=0.3, user="agent4") as seat, \
            SipCaller(user="13800138001") as caller:
        call = await caller.dial("12345")
        call_id = (await until(lambda: list(ctl.active), 5))[0]
        greeting_end = await wait_bot_silent(call)
        greeting = await speech.transcribe(audio_between(call, 0))
        assert any(w in greeting for w in ("热线", "青山", "一二三四五", "客服")), greeting

        t_said = await call.play(await speech.caller_pcm("社保卡丢了怎么办"))
        first_reply = await until(lambda: call.first_audio_after(t_said), 10)
        menu_end = await wait_bot_silent(call, timeout=40)
        menu = await speech.transcribe(audio_between(call, first_reply, menu_end))
        assert menu.count("请按") >= 3 and "选择" in menu, menu  # the keypad menu (digits vary in ASR)
        session = ctl.active[call_id].session
        assert session is not None and session.degraded and session.state.value == "menu"

        await call.send_dtmf("0")
        agent = await seat.wait_call(timeout=20)  # the dialplan queue rings the seats
        await agent.wait_answered(5)
        await call.hangup()

    record = await until(lambda: _finished(ivr_container, call_id), 10)
    assert record.outcome == CallOutcome.transferred.value
    assert record.caller == "13800138001"
    assert record.answered_at is not None and record.ended_at is not None
    turn = record.turns[0]
    assert turn.action == "fallback" and turn.transcript
    # the wait for ASR is 0 when the look-ahead at the pause had the transcript ready; decoding always takes time
    assert turn.latency_ms["asr_decode"] > 0 and turn.latency_ms["asr"] >= 0 and turn.latency_ms["turn"] is not None
    history = ctl.finished[call_id].history
    assert history[:4] == ["greeting", "listening", "thinking", "menu"]
    assert "transfer" in history and history[-1] == "ended"


async def _finished(container: Container, call_id: str):  # type: ignore[no-untyped-def]
    record = await _record(container, call_id)
    return record if record.outcome != CallOutcome.in_progress.value else None


async def test_barge_in_stops_the_bot_within_300ms(start_controller: ControllerFactory, speech: Speech) -> None:
    ctl = await start_controller(rasa_url=DEAD_RASA)
    pcm = await speech.caller_pcm("我要转人工服务")  # before calling: rendered during the greeting, it could outlast it
    async with SipCaller() as caller:
        call = await caller.dial("12345")
        t_bot = await until(lambda: call.first_audio_after(0), 10)  # the greeting has begun
        await asyncio.sleep(1.0)
        onset = int(np.argmax(np.abs(pcm) > 1000)) / 8000  # first loud sample of the caller's speech
        t0 = time.monotonic()
        play = asyncio.create_task(call.play(pcm))
        t_speech = t0 + onset
        await play
        await asyncio.sleep(0.2)
        bot_after = [p.arrival for p in call.received
                     if p.arrival > t_speech and rms(p.pcm) > 300 and p.arrival < t0 + len(pcm) / 8000]
        stop_ms = (max(bot_after) - t_speech) * 1000 if bot_after else 0.0
        print(f"barge-in: bot audio stopped {stop_ms:.0f} ms after the caller began speaking")
        assert bot_after, "the bot was not speaking when the caller barged in"
        assert t_bot < t_speech
        assert stop_ms <= 300, stop_ms
        call_id = next(iter(ctl.active))
        session = ctl.active[call_id].session
        assert session is not None and session.n.barge_ins == 1
        await until(lambda: session.state.value in ("thinking", "menu"), 10)
        await call.hangup()


async def test_zero_hands_the_call_to_the_seats_api(
    start_controller: ControllerFactory, ivr_container: Container, seats: None,
) -> None:
    """Keypad 0 at any time → TRANSFER → HandoffService.enqueue: the seats own the channel (waiting for an
    agent) and the controller lets go of it."""
    ctl = await start_controller(rasa_url=DEAD_RASA, seats=True)
    async with SipCaller(user="13800138005") as caller:
        call = await caller.dial("12345")
        call_id = (await until(lambda: list(ctl.active), 5))[0]
        await until(lambda: call.first_audio_after(0), 10)
        await call.send_dtmf("0")  # during the greeting
        await until(lambda: call_id in ctl.finished, 20)
        session = ctl.finished[call_id]
        assert session.handed_to == "seats"
        assert session.history[-3:] == ["transfer", "waiting_agent", "ended"]
        assert await ivr_container.handoff.position(call_id) == 1
        record = await _record(ivr_container, call_id)
        assert record.queue == ivr_container.settings.handoff_default_queue
        assert record.context.get("handoff_reason") == "dtmf_0"
        assert record.outcome == CallOutcome.in_progress.value  # the seat side finishes it
        await call.hangup()
    finished = await until(lambda: _finished(ivr_container, call_id), 10)
    assert finished.outcome == CallOutcome.abandoned.value  # hung up while waiting for an agent


async def test_prompt_cut_short_by_its_timeout_hands_over_once(
    start_controller: ControllerFactory, ivr_container: Container,
) -> None:
    """A prompt that outlasts its timeout (a slow or looping reply) is cut and the call moves on - once: the
    stopped speaker's own "playback done" must not start a second handover of a channel already gone."""
    ctl = await start_controller(rasa_url=DEAD_RASA, prompt=1.0)  # the transfer prompt takes ~3 s
    async with SipPhone(local_port=5074, answer_after=0.3, user="agent4") as seat, \
            SipCaller(user="13800138006") as caller:
        call = await caller.dial("12345")
        call_id = (await until(lambda: list(ctl.active), 5))[0]
        await until(lambda: call.first_audio_after(0), 10)
        await call.send_dtmf("0")
        agent = await seat.wait_call(timeout=20)
        await agent.wait_answered(5)
        await until(lambda: call_id in ctl.finished, 10)
        session = ctl.finished[call_id]
        assert session.handed_to == "dialplan" and session.history.count("waiting_agent") == 1, session.history
        await call.hangup()
    record = await until(lambda: _finished(ivr_container, call_id), 10)
    assert record.outcome == CallOutcome.transferred.value and record.context.get("handed_to") == "dialplan"


async def test_controller_stop_mid_prompt_hands_the_call_over_once(
    start_controller: ControllerFactory, ivr_container: Container,
) -> None:
    """Stopping the controller hands live callers to the human queue; the prompt it cuts off must not pull the
    call back into the bot's states once the handover is done."""
    ctl = await start_controller(rasa_url=DEAD_RASA)
    async with SipPhone(local_port=5074, answer_after=0.3, user="agent4") as seat, \
            SipCaller(user="13800138007") as caller:
        call = await caller.dial("12345")
        call_id = (await until(lambda: list(ctl.active), 5))[0]
        await until(lambda: call.first_audio_after(0), 10)  # the greeting is playing
        await ctl.stop()
        agent = await seat.wait_call(timeout=20)
        await agent.wait_answered(5)
        await until(lambda: call_id in ctl.finished, 10)
        history = ctl.finished[call_id].history
        assert history[-2:] == ["waiting_agent", "ended"] and "listening" not in history, history
        await call.hangup()
    record = await until(lambda: _finished(ivr_container, call_id), 10)
    assert record.outcome == CallOutcome.transferred.value and record.context.get("handed_to") == "dialplan"
