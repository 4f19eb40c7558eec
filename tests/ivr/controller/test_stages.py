"""The controller's stages on their own: real VAD on synthesised speech, real TTS → real RTP over UDP."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from ivr.controller.events import CallEvent, Pause, PlaybackDone, SpeechDiscarded, SpeechLong, SpeechStart, Utterance
from ivr.controller.stages import AudioInput, Speaker
from ivr.media.rtp import RtpEndpoint
from ivr.speech.audio import resample
from tests.ivr.controller.conftest import Speech
from understanding.expect import Expect


async def run_audio_input(audio: bytes, expect: Expect | None = None) -> tuple[AudioInput, list[CallEvent]]:
    """The stage over `audio` (16 kHz PCM, fed as fast as it reads), after a question expecting `expect`."""
    frames = [audio[i:i + 640] for i in range(0, len(audio) - 639, 640)]
    events: list[CallEvent] = []

    async def read() -> bytes:
        if not frames:
            await asyncio.sleep(3600)
        return frames.pop(0)

    stage = AudioInput(read, events.append)
    if expect is not None:
        stage.listen_for(expect)
    task = asyncio.create_task(stage.run())
    await asyncio.sleep(0.2)
    task.cancel()
    return stage, events


async def test_audio_input_reports_speech_start_and_utterance(speech: Speech) -> None:
    pcm8 = await speech.caller_pcm("社保卡丢了怎么办")
    pcm16 = resample(pcm8.tobytes(), 8000, 16000)
    stage, events = await run_audio_input(bytes(16000) + pcm16 + bytes(32000))  # 0.5 s silence, speech, 1 s silence
    kinds = [type(e) for e in events]
    # SpeechLong: the sentence is longer than any backchannel; Pause: 240 ms into the final silence
    assert kinds == [SpeechStart, SpeechLong, Pause, Utterance], kinds
    assert isinstance(events[1], SpeechLong) and events[1].voiced_ms >= stage.long_speech_ms
    pause, utt = events[2], events[3]
    assert isinstance(pause, Pause) and isinstance(utt, Utterance)
    assert utt.pause_id == pause.pause_id  # no speech after the pause: the speculative transcript holds
    assert abs(len(pause.pcm16) - len(utt.pcm16)) < 640 * 5
    assert abs(utt.duration_ms - len(pcm16) / 32) < 600
    assert "社保" in await speech.transcribe(np.frombuffer(resample(utt.pcm16, 16000, 8000), "<i2"))


async def test_speaker_sends_paced_rtp_and_stops_at_once(speech: Speech) -> None:
    async with RtpEndpoint(sample_rate=8000) as far, RtpEndpoint(sample_rate=16000) as ours:
        ours.set_remote("127.0.0.1", far.port)
        done: list[CallEvent] = []
        speaker = Speaker(speech.synthesizer, ours, done.append)
        t0 = time.monotonic()
        speaker.say("您好，这里是青山市一二三四五市民服务热线，我是智能客服。请问有什么可以帮您？", token=1)
        await asyncio.sleep(1.0)
        assert speaker.speaking and far.stats.received > 20
        speaker.stop()
        await asyncio.sleep(0.1)
        received = far.stats.received
        await asyncio.sleep(0.3)
        assert far.stats.received == received  # nothing more after stop()
        assert len(done) == 1 and isinstance(done[0], PlaybackDone)
        assert done[0].token == 1 and not done[0].completed
        assert done[0].first_packet_at is not None and done[0].first_packet_at - t0 < 1.0


async def test_a_yes_no_question_keeps_a_burst_as_short_as_a_bare_dui() -> None:
    """A 160 ms burst is a click to the VAD, but after a yes/no question it is an answer (issue 13)."""
    rng = np.random.default_rng(1)
    t = np.arange(int(0.16 * 16000)) / 16000
    burst = (np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) * 9000
             + rng.standard_normal(len(t)) * 300).astype("<i2").tobytes()

    async def heard(expect: Expect) -> list[type]:
        _, events = await run_audio_input(bytes(16000) + burst + bytes(48000), expect)
        return [type(e) for e in events]

    assert SpeechDiscarded in await heard(Expect.FREE)
    yes_no = await heard(Expect.YES_NO)
    assert Utterance in yes_no and SpeechDiscarded not in yes_no, yes_no
