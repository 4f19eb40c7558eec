"""A CallSession without Asterisk: the caller's audio is a script of PCM played in real time into the session's
audio input, the bot's voice goes out through a real RtpEndpoint to a local one that records what a caller would
hear.  Real VAD, end-of-turn policy, Whisper and barge-in classification; a stand-in dialogue and a tone for TTS.

    async with TurnHarness(recognizer, reply="好的，已为您记录。" * 3) as h:
        h.say(pcm16k)             # queued after whatever is already queued (silence fills the gaps)
        await h.until(lambda: h.session.state.value == "speaking")

Used by tests/ivr/controller/test_turn_taking.py (fast, no SIP) next to the real calls.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dialogue.schemas import TurnIn, TurnOut
from ivr.controller.session import CallInfo, CallSession, CallTimeouts
from ivr.controller.stages import Speaker, Understanding
from ivr.media.rtp import RtpEndpoint
from ivr.speech.base import Audio, Recognizer, Synthesizer

FRAME = 640  # 20 ms at 16 kHz, 16-bit


class ToneSynthesizer(Synthesizer):
    """Speech stand-in: 1 s of a 440 Hz tone per 6 characters (cheap, loud, always the same)."""

    name = "tone"

    async def synthesize(self, text: str) -> Audio:
        n = int(16000 * max(0.5, len(text) / 6))
        t = np.arange(n) / 16000
        return Audio((np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes(), 16000)


@dataclass
class ScriptedDialogue:
    """Answers every turn with `reply` and remembers what it was asked."""

    reply: str
    asked: list[str] = field(default_factory=list)

    async def turn(self, session_id: str, data: TurnIn) -> TurnOut:
        self.asked.append(data.text)
        return TurnOut(replies=[self.reply], intent="ask", confidence=0.9, action="kb_answer")

    async def end(self, session_id: str) -> None:
        return None


class _Understanding(Understanding):
    """Understanding that takes the `expect=` hint whether or not this checkout's recogniser path does yet."""

    async def transcribe(self, pcm16: bytes, expect: Any = None) -> tuple[str, float, int]:  # type: ignore[override]
        if "expect" in inspect.signature(Understanding.transcribe).parameters:
            return await super().transcribe(pcm16, expect=expect)  # type: ignore[call-arg]
        return await super().transcribe(pcm16)


class _Rtp:
    """The session's media.rtp: frames from the script, sending through a real endpoint."""

    def __init__(self, out: RtpEndpoint) -> None:
        self.out = out
        self.script: deque[bytes] = deque()
        self._t0 = 0.0
        self._n = 0
        self.sample_rate = out.sample_rate

    async def read(self, timeout: float | None = None) -> bytes:
        if not self._t0:
            self._t0 = time.monotonic()
        due = self._t0 + self._n * 0.02
        self._n += 1
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        return self.script.popleft() if self.script else bytes(FRAME)

    def __getattr__(self, name: str) -> Any:  # send, stop_sending, hold, release, held, ...
        return getattr(self.out, name)


class _Media:
    def __init__(self, rtp: _Rtp) -> None:
        self.rtp = rtp

    async def watch(self) -> None:
        await asyncio.sleep(3600)

    async def teardown(self) -> None:
        return None


class _Calls:
    def __init__(self) -> None:
        self.turns: list[dict[str, Any]] = []

    async def add_turn(self, call_id: str, **fields: Any) -> None:
        self.turns.append(fields)


class _Handover:
    async def hand_over(self, info: Any, priority: str, context: dict[str, Any], *, via_seats: bool = True) -> str:
        return "dialplan"

    async def to_dialplan(self, info: Any) -> str:
        return "dialplan"

    async def hang_up(self, info: Any) -> None:
        return None


class TurnHarness:
    def __init__(self, recognizer: Recognizer, *, reply: str = "好的。", timeouts: CallTimeouts | None = None) -> None:
        self.recognizer = recognizer
        self.dialogue = ScriptedDialogue(reply)
        self.timeouts = timeouts or CallTimeouts()
        self.heard: list[tuple[float, float]] = []  # (arrival, rms) of each bot packet

    async def __aenter__(self) -> "TurnHarness":
        self._far = await RtpEndpoint(sample_rate=8000, on_audio=self._on_bot_audio).start()
        self._ours = await RtpEndpoint(sample_rate=16000).start()
        self._ours.set_remote("127.0.0.1", self._far.port)
        self.rtp = _Rtp(self._ours)
        self.calls = _Calls()
        synth = ToneSynthesizer()
        self.session = CallSession(
            CallInfo("harness-call", "13800000000"), media=_Media(self.rtp),  # type: ignore[arg-type]
            understanding=_Understanding(self.recognizer, self.dialogue), calls=self.calls,  # type: ignore[arg-type]
            speaker_factory=lambda rtp, sink: Speaker(synth, rtp, sink), handover=_Handover(),  # type: ignore[arg-type]
            timeouts=self.timeouts)
        self.events: list[tuple[float, Any]] = []  # (time.monotonic(), event) of what the audio input reported
        sink = self.session.audio_in.sink

        def record(ev: Any) -> None:
            self.events.append((time.monotonic(), ev))
            sink(ev)

        self.session.audio_in.sink = record
        self._task = asyncio.create_task(self.session.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass
        await self._ours.close()
        await self._far.close()

    def _on_bot_audio(self, frame: bytes) -> None:
        pcm = np.frombuffer(frame, "<i2").astype(np.float64)
        self.heard.append((time.monotonic(), float(np.sqrt(np.mean(pcm**2))) if pcm.size else 0.0))

    def say(self, pcm16k: bytes, *, silence_after: float = 0.0) -> float:
        """Queue the caller's audio (16 kHz PCM16) after what is queued; returns when it will have ended."""
        audio = pcm16k + bytes(2 * int(16000 * silence_after))
        audio += bytes(-len(audio) % FRAME)
        self.rtp.script.extend(audio[i:i + FRAME] for i in range(0, len(audio), FRAME))
        return time.monotonic() + len(self.rtp.script) * 0.02

    def bot_loud(self, t0: float, t1: float | None = None) -> list[float]:
        return [t for t, level in self.heard if t >= t0 and (t1 is None or t <= t1) and level > 300]

    async def until(self, cond: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = cond()
            if value:
                return value
            await asyncio.sleep(0.02)
        raise AssertionError(f"condition not met within {timeout}s (state {self.session.state.value}, "
                             f"history {self.session.history})")
