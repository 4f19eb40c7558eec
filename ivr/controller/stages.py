"""The call's async stages (Pipecat style: frames in, frames/events out), each usable on its own.

* :class:`AudioInput`   caller frames (20 ms PCM16 @ 16 kHz) → VAD → SpeechStart / Utterance events
* :class:`Understanding` utterance → transcript (Recognizer) → bot decision (DialogueService)
* :class:`Speaker`      text → TTS (cache first) → paced RTP, stoppable at once (barge-in)

Heavy engines stay behind their interfaces (`Recognizer`, `Synthesizer`, the dialogue service).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import wave
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dialogue.schemas import TurnIn, TurnOut
from ivr.controller.events import CallEvent, Pause, PlaybackDone, SpeechDiscarded, SpeechStart, Utterance
from ivr.speech.audio import resample
from ivr.speech.base import Recognizer, Synthesizer, split_sentences
from ivr.speech.vad import SpeechEnded, SpeechStarted, VadConfig, VoiceActivityDetector
from ivr.speech.vad import SpeechDiscarded as VadDiscarded

log = logging.getLogger(__name__)

Sink = Callable[[CallEvent], None]
SAMPLE_RATE = 16000


def default_vad_config() -> VadConfig:
    # 500 ms of silence ends an utterance: short enough for snappy turns, long enough for
    # the pauses between Mandarin clauses.
    return VadConfig(sample_rate=SAMPLE_RATE, end_silence_ms=500, max_utterance_ms=15000)


class AudioInput:
    """Runs the VAD over the caller's audio and reports speech events to `sink`.

    `read_frame` is any coroutine returning the next 20 ms frame (``RtpEndpoint.read``).
    Caller audio is written to `record_dir` only when one is given (settings.record_audio).
    """

    def __init__(self, read_frame: Callable[[], Awaitable[bytes]], sink: Sink, *,
                 vad: VoiceActivityDetector | None = None, record_dir: Path | None = None,
                 pause_ms: int | None = 240) -> None:
        self.read_frame = read_frame
        self.sink = sink
        self.vad = vad or VoiceActivityDetector(default_vad_config())
        self.record_dir = record_dir
        self.pause_ms = pause_ms  # None: no Pause events (no speculative transcription)
        self.frames = 0
        self._recording: wave.Wave_write | None = None
        f = self.vad.cfg.frame_ms
        self._preroll: deque[bytes] = deque(maxlen=max(1, self.vad.cfg.pre_roll_ms // f))
        self._speech: list[bytes] | None = None  # frames of the utterance in progress
        self._silent_frames = 0
        self._pauses = 0
        self._pause: int | None = None  # last Pause still valid (no speech since)

    def _track(self, frame: bytes, events: list[object], now: float) -> None:
        """Follow the utterance in progress to emit Pause events (speculative ASR)."""
        self._preroll.append(frame)
        if any(isinstance(e, SpeechStarted) for e in events):
            self._speech, self._silent_frames, self._pause = list(self._preroll), 0, None
            return
        if any(isinstance(e, (SpeechEnded, VadDiscarded)) for e in events):
            self._speech = None
            return
        if self._speech is None or self.pause_ms is None:
            return
        self._speech.append(frame)
        silence = getattr(self.vad, "_silence_ms", 0)  # the VAD's own count of trailing silence
        if silence == 0:
            self._pause = None  # speech resumed: an earlier speculation is void
        elif silence == self.pause_ms:
            self._pauses += 1
            self._pause = self._pauses
            self.sink(Pause(self._pauses, b"".join(self._speech)))

    async def run(self) -> None:
        end_silence = self.vad.cfg.end_silence_ms / 1000
        if self.record_dir is not None:
            self.record_dir.mkdir(parents=True, exist_ok=True)
            self._recording = wave.open(str(self.record_dir / "caller.wav"), "wb")
            self._recording.setnchannels(1)
            self._recording.setsampwidth(2)
            self._recording.setframerate(SAMPLE_RATE)
        try:
            while True:
                frame = await self.read_frame()
                self.frames += 1
                if self._recording is not None:
                    self._recording.writeframes(frame)
                events = self.vad.feed(frame)
                now = time.monotonic()
                pause = self._pause
                self._track(frame, events, now)
                for ev in events:
                    if isinstance(ev, SpeechStarted):
                        self.sink(SpeechStart(at=now))
                    elif isinstance(ev, SpeechEnded):
                        speech_end = now if ev.truncated else now - end_silence
                        self.sink(Utterance(ev.pcm16, speech_end, ev.duration_ms, ev.truncated,
                                            None if ev.truncated else pause))
                    elif isinstance(ev, VadDiscarded):
                        self.sink(SpeechDiscarded())
        finally:
            if self._recording is not None:
                self._recording.close()


class Dialogue(Protocol):
    async def turn(self, session_id: str, data: TurnIn) -> TurnOut: ...


@dataclass(frozen=True, slots=True)
class TurnResult:
    transcript: str
    confidence: float
    bot: TurnOut | None  # None: nothing recognised (the bot was not asked)
    asr_ms: int
    nlu_ms: int


class Understanding:
    """Utterance → transcript → bot turn. Stateless apart from the first-turn caller number."""

    def __init__(self, recognizer: Recognizer, dialogue: Dialogue) -> None:
        self.recognizer = recognizer
        self.dialogue = dialogue

    async def transcribe(self, pcm16: bytes) -> tuple[str, float, int]:
        t0 = time.perf_counter()
        tr = await self.recognizer.transcribe(pcm16, SAMPLE_RATE)
        return tr.text.strip(), tr.confidence, int((time.perf_counter() - t0) * 1000)

    async def ask(self, session_id: str, text: str, caller: str | None) -> tuple[TurnOut, int]:
        t0 = time.perf_counter()
        out = await self.dialogue.turn(session_id, TurnIn(text=text[:500], caller=caller))
        return out, int((time.perf_counter() - t0) * 1000)

    async def understand(self, session_id: str, pcm16: bytes, caller: str | None) -> TurnResult:
        text, confidence, asr_ms = await self.transcribe(pcm16)
        if not text:
            return TurnResult("", 0.0, None, asr_ms, 0)
        out, nlu_ms = await self.ask(session_id, text, caller)
        return TurnResult(text, confidence, out, asr_ms, nlu_ms)


class AudioOutput(Protocol):
    """What the Speaker needs from the RTP endpoint."""

    sample_rate: int

    def send(self, pcm: bytes) -> Any: ...  # an awaitable SendJob with `first_sent_at`

    def stop_sending(self) -> int: ...


class Speaker:
    """Speaks text sentence by sentence; `stop()` silences it at once (barge-in).

    One utterance at a time: `say()` stops whatever was playing. When playback ends (fully or
    stopped) a :class:`PlaybackDone` with the given token goes to `sink`.
    """

    def __init__(self, synthesizer: Synthesizer, output: AudioOutput, sink: Sink) -> None:
        self.synthesizer = synthesizer
        self.output = output
        self.sink = sink
        self._task: asyncio.Task[None] | None = None
        self.last_text = ""

    @property
    def speaking(self) -> bool:
        return self._task is not None and not self._task.done()

    def say(self, text: str, token: int) -> None:
        self.stop()
        self.last_text = text
        self._task = asyncio.create_task(self._speak(text, token), name=f"speak-{token}")

    def stop(self) -> None:
        """Nothing more leaves after this call (queued RTP dropped, synthesis abandoned)."""
        self.output.stop_sending()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def pieces(self, text: str) -> list[str]:
        """What to synthesise one after the other: the whole text when it is cached (pre-rendered),
        else sentences, the first cut at its first comma so the caller hears something sooner."""
        is_cached = getattr(self.synthesizer, "is_cached", None)
        if is_cached is not None and is_cached(text):
            return [text]
        parts = split_sentences(text)
        if parts and len(parts[0]) > 12:
            m = re.match(r"^(.{4,}?[，,、：:；;])(.+)$", parts[0])
            if m:
                parts = [m.group(1), m.group(2), *parts[1:]]
        return parts

    async def _speak(self, text: str, token: int) -> None:
        t0 = time.perf_counter()
        jobs = []
        tts_ms = 0
        completed = False
        try:
            for piece in self.pieces(text):
                audio = await self.synthesizer.synthesize(piece)
                pcm = resample(audio.pcm16, audio.sample_rate, self.output.sample_rate)
                if not jobs:
                    tts_ms = int((time.perf_counter() - t0) * 1000)
                jobs.append(self.output.send(pcm))
            completed = all([await job for job in jobs])
        except asyncio.CancelledError:
            completed = False
        except Exception:  # noqa: BLE001 - TTS failure must not kill the call
            log.exception("speaking failed: %r", text[:40])
        first = jobs[0].first_sent_at if jobs else None
        self.sink(PlaybackDone(token, completed, first, tts_ms))
