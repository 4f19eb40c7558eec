"""Malformed and hostile media on a real call through Asterisk: RTP with payload types nobody negotiated and
broken headers, bursts of hundreds of packets out of order and duplicated, a DTMF flood, a crowd talking in
the background, speech that breaks up every quarter second, steady hiss, and silence. The call must stay
healthy (a question asked afterwards is answered), the controller must neither pile up audio nor
transcriptions, and its memory must stay put; a caller who says nothing at all is wound down by the IVR
itself. The full-length version is benchmarks/hostile_media.py."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hotline.container import Container
from ivr.controller import prompts
from ivr.controller.controller import IvrController
from ivr.controller.stages import SAMPLE_RATE
from telephony.models import CallOutcome
from ivr.speech.audio import resample
from tests.support.hostile_media import babble, malformed_rtp, steady_noise, stutter
from tests.support.process_meter import ProcessMeter
from tests.support.sip_caller import SipCaller
from tests.ivr.controller.conftest import (
    DEAD_RASA, ControllerFactory, Speech, call_record, finished_record, until, wait_bot_silent,
)

CROWD_SECONDS = 24.0
STUTTER_SECONDS = 16.0
HISS_SECONDS = 8.0
CROWD_VOICES = ["青山区人民路上的路灯坏了，晚上一片漆黑", "请问办理居住证需要带哪些材料", "我想查询一下公积金的提取流程"]
FLOOD = "456789*#" * 25  # 200 digits; no 0 or 1-3 (they would end the bot's part of the call); # repeats a prompt


@dataclass
class AsrProbe:
    """Watches the controller's transcriptions (wraps Understanding.transcribe; what it does is unchanged)."""

    audio_s: list[float] = field(default_factory=list)
    running: int = 0
    peak_running: int = 0
    busy_s: float = 0.0

    def attach(self, ctl: IvrController) -> None:
        transcribe = ctl.understanding.transcribe

        async def watched(pcm16: bytes, **how: Any) -> tuple[str, float, int]:
            self.audio_s.append(len(pcm16) / 2 / SAMPLE_RATE)
            self.running += 1
            self.peak_running = max(self.peak_running, self.running)
            t0 = time.monotonic()
            try:
                return await transcribe(pcm16, **how)
            finally:
                self.running -= 1
                self.busy_s += time.monotonic() - t0

        ctl.understanding.transcribe = watched  # type: ignore[method-assign]


async def _voices(speech: Speech) -> list[np.ndarray]:
    out = []
    for text in CROWD_VOICES:
        audio = await speech.synthesizer.synthesize(text)
        out.append(np.frombuffer(resample(audio.pcm16, audio.sample_rate, 8000), "<i2"))
    return out


async def test_call_survives_malformed_rtp_bursts_dtmf_flood_and_noise(
    start_controller: ControllerFactory, speech: Speech, ivr_container: Container, bot_url: str,
) -> None:
    question = "社保卡丢了怎么办"
    entry = (await ivr_container.kb.search(question)).hits[0]
    await speech.synthesizer.prerender([entry.spoken_answer])
    pcm_question = await speech.caller_pcm(question)
    voices = await _voices(speech)
    noise = np.concatenate([babble(voices, CROWD_SECONDS), stutter(voices[0], STUTTER_SECONDS),
                            steady_noise(HISS_SECONDS, -25)])
    ctl = await start_controller(rasa_url=bot_url)
    probe = AsrProbe()
    probe.attach(ctl)
    async with SipCaller(user="13800138051") as caller:
        call = await caller.dial("12345")
        call_id = (await until(lambda: list(ctl.active), 5))[0]
        await wait_bot_silent(call)
        meter = ProcessMeter()

        session = ctl.active[call_id].session
        assert session is not None
        inbound = session.media.rtp.stats

        call.send_datagrams(malformed_rtp(call))  # 300 bad datagrams at once
        bursts = sum(call.audio_burst(steady_noise(4.0, -30, seed=s), duplicates=2) for s in range(3))
        call.dtmf_burst(FLOOD)  # 200 digits in one burst
        await call.send_dtmf(FLOOD[:24], duration_ms=40, gap_ms=0)  # and 24 more, as fast as a keypad goes
        # Asterisk stops passing the caller's audio on after some of those packets (comfort noise, an empty
        # or oversized packet) and mutes it while it plays out the flood's digits: it must flow again.
        t_abuse, before = time.monotonic(), inbound.received
        await until(lambda: inbound.received > before + 50, 40)
        print(f"caller audio reaches the controller again {time.monotonic() - t_abuse:.1f} s after the abuse "
              f"({session.media.repairs} repairs of the media leg)")
        play = asyncio.create_task(call.play(noise))
        while not play.done():
            await asyncio.sleep(1.0)
            meter.sample()
        await until(lambda: probe.running == 0, 20)  # what the noise started winds down: no backlog

        assert call_id in ctl.active and not call.ended.is_set(), session.history
        print(f"{len(noise) / 8000:.0f} s of noise: {len(probe.audio_s)} transcriptions (longest "
              f"{max(probe.audio_s, default=0):.1f} s of audio, busy {probe.busy_s:.1f} s, at most "
              f"{probe.peak_running} at once), {session.n.barge_ins} barge-ins, states {session.history[-8:]}; "
              f"RSS {meter.rss_start_mb:.0f} -> peak {meter.peak_rss_mb:.0f} MB, CPU {meter.cpu_used:.1f} s in "
              f"{meter.elapsed:.0f} s; {bursts} burst packets")
        assert probe.audio_s, "the crowd never reached the recogniser (the test would prove nothing)"
        assert max(probe.audio_s) <= 15.5  # the utterance cap (VAD: 15 s) holds
        # One utterance and at most one look-ahead at a time: speech that pauses every 300 ms used to start a
        # look-ahead per pause, ten decodes of ever longer audio at once, still busy half a minute later.
        assert probe.peak_running <= 2
        assert meter.peak_rss_mb - meter.rss_start_mb < 300, (meter.rss_start_mb, meter.peak_rss_mb)

        # The call is still healthy: a normal question gets its answer, spoken.
        await until(lambda: session.state.value != "thinking", 20)  # the bot is not busy with the noise's words
        turns_before = len((await call_record(ivr_container, call_id)).turns)
        said = await call.play(pcm_question)
        await until(lambda: call.first_audio_after(said), 20)
        await wait_bot_silent(call, quiet=1.5, timeout=60)
        await asyncio.sleep(0.5)  # the turn is written once its reply has been played
        new_turns = (await call_record(ivr_container, call_id)).turns[turns_before:]
        assert any(t.action == "kb_answer" and entry.spoken_answer[:8] in t.reply for t in new_turns), \
            [(t.transcript, t.action) for t in new_turns]
        await call.hangup()
    record = await until(lambda: finished_record(ivr_container, call_id), 10)
    assert record.outcome == CallOutcome.answered.value


async def test_silent_caller_is_wound_down_by_the_ivr(
    start_controller: ControllerFactory, ivr_container: Container,
) -> None:
    """Silence for minutes (a phone left off the hook): a re-prompt, the keypad menu twice, goodbye and a hang-up
    from our side - with production timeouts - and the call counts as abandoned, not as answered by the bot."""
    ctl = await start_controller(rasa_url=DEAD_RASA)
    t = ctl.timeouts
    async with SipCaller(user="13800138052") as caller:
        call = await caller.dial("12345")
        call_id = (await until(lambda: list(ctl.active), 5))[0]
        budget = 2 * t.no_input + 3 * t.menu_key + 4 * t.prompt  # by the state timers, not the caller
        reason = await call.wait_hangup(budget)
    assert reason == "remote-bye"
    await until(lambda: call_id in ctl.finished, 10)
    history = ctl.finished[call_id].history
    assert history == ["greeting", "listening", "speaking", "listening", "menu", "menu", "menu", "menu", "goodbye",
                       "ended"], history
    assert ctl.finished[call_id].last_prompt.endswith(prompts.MENU)
    record = await until(lambda: finished_record(ivr_container, call_id), 10)
    assert record.outcome == CallOutcome.abandoned.value and record.turns == []
