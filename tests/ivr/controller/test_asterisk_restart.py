"""Asterisk goes away under a running controller - restarted, or crashed and started again: the controller
reconnects by itself and serves the next call, and the call that died with Asterisk gets a final record (failed:
our side, not the caller) instead of staying "in progress"."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

from hotline.container import Container
from hotline.services.asterisk import AsteriskService
from ivr.controller.controller import IvrController
from ivr.controller.session import ASTERISK_GONE
from telephony.models import CallOutcome
from tests.support.sip_caller import SipCaller, SipPhone
from tests.ivr.controller.conftest import (
    DEAD_RASA, ControllerFactory, Speech, audio_between, finished_record, until, wait_bot_silent,
)


async def _lose_a_live_call(ctl: IvrController, container: Container, caller_number: str,
                            asterisk_goes: Callable[[], None]) -> None:
    """A call is live when `asterisk_goes()` runs; afterwards the controller is connected again and the call's
    record is final."""
    events = ctl.ari.events
    connections = events.connections
    async with SipCaller(user=caller_number) as caller:
        call = await caller.dial("12345")
        lost_id = (await until(lambda: list(ctl.active), 5))[0]
        await until(lambda: call.first_audio_after(0), 15)  # the greeting is playing: the call is live
        await asyncio.to_thread(asterisk_goes)
        await until(lambda: events.connections > connections and events.connected.is_set(), 30)
        await until(lambda: lost_id not in ctl.active, 15)
    lost = await until(lambda: finished_record(container, lost_id), 15)
    assert lost.outcome == CallOutcome.failed.value  # our side failed; the caller did not hang up
    assert lost.context.get("fallback") == ASTERISK_GONE and lost.ended_at is not None


async def test_controller_reconnects_after_asterisk_restart_and_serves_the_next_call(
    asterisk: AsteriskService, start_controller: ControllerFactory, ivr_container: Container, speech: Speech,
) -> None:
    ctl = await start_controller(rasa_url=DEAD_RASA)
    await _lose_a_live_call(ctl, ivr_container, "13800138041", asterisk.restart)

    async with SipPhone(local_port=5074, answer_after=0.3, user="agent4") as seat, \
            SipCaller(user="13800138042") as caller:
        call = await caller.dial("12345")  # the next call, on the restarted Asterisk
        call_id = (await until(lambda: list(ctl.active), 10))[0]
        greeting_end = await wait_bot_silent(call)
        greeting = await speech.transcribe(audio_between(call, 0, greeting_end))
        assert any(w in greeting for w in ("热线", "青山", "一二三四五", "客服")), greeting
        await call.send_dtmf("0")
        agent = await seat.wait_call(timeout=20)
        await agent.wait_answered(5)
        await call.hangup()
    record = await until(lambda: finished_record(ivr_container, call_id), 15)
    assert record.outcome == CallOutcome.transferred.value
    assert ctl.finished[call_id].history[0] == "greeting" and "transfer" in ctl.finished[call_id].history


async def test_asterisk_crash_mid_call_is_noticed_on_reconnect(
    asterisk: AsteriskService, start_controller: ControllerFactory, ivr_container: Container,
) -> None:
    """A crash sends no hang-ups: the controller learns that its call is gone when the events socket is back."""
    ctl = await start_controller(rasa_url=DEAD_RASA)

    def crash_and_start_again() -> None:
        pid = int((asterisk.chroot / "run/asterisk/asterisk.pid").read_text())  # this node's Asterisk only
        os.kill(pid, signal.SIGKILL)
        asterisk.start()

    await _lose_a_live_call(ctl, ivr_container, "13800138043", crash_and_start_again)
    async with SipCaller(user="13800138044") as caller:
        call = await caller.dial("12345")
        call_id = (await until(lambda: list(ctl.active), 10))[0]
        await until(lambda: call.first_audio_after(0), 15)  # greeted on the restarted Asterisk
        await call.hangup()
    record = await until(lambda: finished_record(ivr_container, call_id), 15)
    assert record.outcome == CallOutcome.abandoned.value
