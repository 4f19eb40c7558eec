"""The call's async stages (Pipecat style: frames in, frames/events out), each usable on its own.

* :class:`AudioInput`   caller frames (20 ms PCM16 @ 16 kHz) → VAD → SpeechStart / Utterance events
* :class:`Understanding` utterance → transcript (Recognizer) → bot decision (DialogueService)
* :class:`Speaker`      text → TTS (cache first) → paced RTP, stoppable at once (barge-in)

Heavy engines stay behind their interfaces (`Recognizer`, `Synthesizer`, the dialogue service).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
import wave
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dialogue.schemas import TurnIn, TurnOut
from ivr.controller.events import (
    CallEvent, Pause, PlaybackDone, SpeechDiscarded, SpeechLong, SpeechStart, Utterance,
)
from ivr.speech.audio import resample
from ivr.speech.base import Recognizer, Synthesizer, split_sentences
from ivr.speech.vad import SpeechEnded, SpeechStarted, VadConfig, VoiceActivityDetector
from ivr.speech.turn_end import SmartTurn, TurnEndPolicy, shared_smart_turn
from ivr.speech.vad import SpeechDiscarded as VadDiscarded
from understanding.expect import Expect

log = logging.getLogger(__name__)

Sink = Callable[[CallEvent], None]
SAMPLE_RATE = 16000
#: A bare "对" or "嗯" on the telephone can be a 120 ms burst: when the bot asked a yes/no question, bursts this
#: short are kept (elsewhere the VAD's own minimum drops clicks and coughs).
SHORT_ANSWER_MIN_MS = 100


def default_vad_config() -> VadConfig:
    # 500 ms of silence ends an utterance when no end-of-turn policy is used (HOTLINE_TURN_END=fixed): short enough
    # for snappy turns, but it cuts off callers who pause inside an address or a number.
    return VadConfig(sample_rate=SAMPLE_RATE, end_silence_ms=500, max_utterance_ms=15000)


def default_turn_end() -> TurnEndPolicy | None:
    """The end-of-turn policy for calls; None (fixed 500 ms silence) when HOTLINE_TURN_END=fixed."""
    if os.environ.get("HOTLINE_TURN_END", "").strip().lower() == "fixed":
        return None
    return TurnEndPolicy()


class AudioInput:
    """Runs the VAD over the caller's audio and reports speech events to `sink`.

    `read_frame` is any coroutine returning the next 20 ms frame (``RtpEndpoint.read``).
    Caller audio is written to `record_dir` only when one is given (settings.record_audio).

    End of turn: with a `turn_end` policy ("default": :func:`default_turn_end`; the call session passes it, as it
    feeds the transcripts back), every pause of ``pause_ms`` is a candidate end: a
    :class:`Pause` goes out (the session transcribes the utterance so far and hands the text back through
    :meth:`partial`), Smart Turn scores the audio in a thread, and the policy ends the utterance as soon as the
    words (or, when they cannot tell, the audio) say the caller has finished - or after ``max_silence_ms``.
    Without one, ``end_silence_ms`` of silence ends it (the VAD's own rule).
    """

    def __init__(self, read_frame: Callable[[], Awaitable[bytes]], sink: Sink, *,
                 vad: VoiceActivityDetector | None = None, record_dir: Path | None = None,
                 pause_ms: int | None = 240, turn_end: TurnEndPolicy | None | str = None,
                 smart_turn: SmartTurn | None | str = "default", long_speech_ms: int = 600) -> None:
        self.read_frame = read_frame
        self.sink = sink
        self.vad = vad or VoiceActivityDetector(default_vad_config())
        self.record_dir = record_dir
        self.turn_end = default_turn_end() if turn_end == "default" else turn_end
        assert not isinstance(self.turn_end, str)
        if self.turn_end is not None:
            pause_ms = self.turn_end.cfg.pause_ms
            self.vad.cfg.end_silence_ms = self.turn_end.cfg.max_silence_ms  # the hard limit; the policy ends sooner
            self.smart_turn = shared_smart_turn() if smart_turn == "default" else smart_turn
        else:
            self.smart_turn = None
        assert not isinstance(self.smart_turn, str)
        self.pause_ms = pause_ms  # None: no Pause events (no speculative transcription)
        self.long_speech_ms = long_speech_ms  # SpeechLong once a burst has this much voiced audio
        self.max_gap_ms = 300 if self.turn_end is not None else 10**9  # pauses in what goes to the recogniser
        self.frames = 0
        self._recording: wave.Wave_write | None = None
        f = self.vad.cfg.frame_ms
        self._preroll: deque[bytes] = deque(maxlen=max(1, self.vad.cfg.pre_roll_ms // f))
        self._speech: list[bytes] | None = None  # frames of the utterance in progress
        self._silent_frames = 0
        self._pauses = 0
        self._pause: int | None = None  # last Pause still valid (no speech since)
        self._long_sent = False
        self._last_voice = 0.0  # time.monotonic() of the utterance's last voiced frame
        self._text: dict[int, str] = {}  # pause id -> transcript of the utterance up to it
        self._audio: dict[int, float] = {}  # pause id -> Smart Turn P(finished)
        self._expect: str | None = None
        self._min_speech_ms = self.vad.cfg.min_speech_ms
        self.decisions: deque[dict[str, Any]] = deque(maxlen=200)  # recent end-of-turn decisions (benchmarks)

    @property
    def current_pause(self) -> int | None:
        """The last Pause of the utterance in progress, while the caller has not spoken since."""
        return self._pause

    # ------------------------------------------------------------------ inputs from the session
    def partial(self, pause_id: int, text: str, expect: str | None = None) -> None:
        """The transcript of the utterance up to Pause `pause_id` (ignored once the caller spoke again)."""
        if pause_id == self._pause:
            self._text[pause_id] = text
            self._expect = expect

    def listen_for(self, expect: Expect) -> None:
        """What the bot just asked for: a yes/no question keeps bursts as short as a bare "对"."""
        self._expect = expect.value
        self.vad.cfg.min_speech_ms = SHORT_ANSWER_MIN_MS if expect is Expect.YES_NO else self._min_speech_ms

    def discard(self) -> None:
        """Forget the burst in progress (a backchannel over the bot's voice): no Utterance will come of it."""
        self.vad.discard()
        self._speech, self._pause = None, None

    # ------------------------------------------------------------------ the utterance in progress
    def _track(self, frame: bytes, events: list[object], now: float) -> None:
        """Follow the utterance in progress to emit Pause and SpeechLong events."""
        self._preroll.append(frame)
        if any(isinstance(e, SpeechStarted) for e in events):
            self._speech, self._silent_frames, self._pause = list(self._preroll), 0, None
            self._long_sent, self._last_voice = False, now
            self._text.clear()
            self._audio.clear()
            return
        if any(isinstance(e, (SpeechEnded, VadDiscarded)) for e in events):
            self._speech = None
            return
        if self._speech is None:
            return
        if self.vad.silence_ms <= self.max_gap_ms:
            self._speech.append(frame)  # (a longer pause is cut to max_gap_ms: Whisper tends to stop at one)
        if not self._long_sent and self.vad.voiced_ms >= self.long_speech_ms:
            self._long_sent = True
            self.sink(SpeechLong(self.vad.voiced_ms))
        if self.pause_ms is None:
            return
        silence = self.vad.silence_ms  # the VAD's own count of trailing silence
        if silence == 0:
            self._pause = None  # speech resumed: an earlier speculation is void
            self._last_voice = now
        elif silence == self.pause_ms:
            self._pauses += 1
            self._pause = self._pauses
            pcm = b"".join(self._speech)
            self.sink(Pause(self._pauses, pcm))
            if self.smart_turn is not None:
                self._score_audio(self._pauses, pcm)

    def _score_audio(self, pause_id: int, pcm: bytes) -> None:
        model = self.smart_turn
        assert model is not None

        def done(task: asyncio.Future[float]) -> None:
            if not task.cancelled() and task.exception() is None:
                self._audio[pause_id] = task.result()
            elif not task.cancelled():
                log.warning("Smart Turn failed: %s", task.exception())

        task = asyncio.ensure_future(asyncio.to_thread(model.predict, pcm))
        task.add_done_callback(done)

    def _decide(self, now: float) -> SpeechEnded | VadDiscarded | None:
        """The end-of-turn policy, once per frame while the caller is silent after a Pause."""
        assert self.turn_end is not None
        pause = self._pause
        silence = self.vad.silence_ms
        if pause is None or silence < self.turn_end.cfg.pause_ms:
            return None
        d = self.turn_end.decide(silence, self._text.get(pause), self._audio.get(pause), expect=self._expect)
        if not d.end:
            return None
        ev = self.vad.end_now()
        if isinstance(ev, (SpeechEnded, VadDiscarded)):
            rec = {"silence_ms": silence, "reason": d.reason, "text": self._text.get(pause),
                   "text_score": d.text_score, "audio_score": d.audio_score,
                   "audio_ms": round(self.smart_turn.last_ms) if self.smart_turn is not None else None}
            self.decisions.append(rec)
            log.info("turn end after %d ms of silence (%s): text %s %r, audio %s", silence, d.reason,
                     d.text_score, (rec["text"] or "")[-12:], d.audio_score)
            return ev
        return None

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
                events: list[Any] = list(self.vad.feed(frame))
                now = time.monotonic()
                pause = self._pause
                last_voice = self._last_voice
                kept = self._speech  # the utterance with its long pauses shortened
                self._track(frame, events, now)
                end = f"silence after {self.vad.cfg.end_silence_ms} ms"
                if self.turn_end is not None and not events and self._speech is not None:
                    ended = self._decide(now)
                    if ended is not None:
                        events.append(ended)
                        self._speech = None
                        d = self.decisions[-1]
                        end = f"{d['reason']} after {d['silence_ms']} ms"
                for ev in events:
                    if isinstance(ev, SpeechStarted):
                        self.sink(SpeechStart(at=now))
                    elif isinstance(ev, SpeechEnded):
                        if ev.truncated:
                            speech_end = now
                        elif self.turn_end is not None:
                            speech_end = last_voice
                        else:
                            speech_end = now - end_silence
                        pcm = b"".join(kept) if self.turn_end is not None and kept else ev.pcm16
                        self.sink(Utterance(pcm, speech_end, ev.duration_ms, ev.truncated,
                                            None if ev.truncated else pause, "max length" if ev.truncated else end))
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
    asr_ms: int  # what the turn waited for the transcript (0 when the look-ahead at the pause had it ready)
    nlu_ms: int
    decode_ms: int = 0  # what decoding the transcript took, look-ahead or not
    dtmf: str | None = None  # the key(s) the turn was made of, when keyed rather than said


class Understanding:
    """Utterance → transcript → bot turn. Stateless apart from the first-turn caller number."""

    def __init__(self, recognizer: Recognizer, dialogue: Dialogue) -> None:
        self.recognizer = recognizer
        self.dialogue = dialogue

    async def transcribe(self, pcm16: bytes, expect: Expect = Expect.FREE) -> tuple[str, float, int]:
        """The caller's words, listened for as the answer the last question expects: (text, confidence, ms)."""
        t0 = time.perf_counter()
        tr = await self.recognizer.transcribe(pcm16, SAMPLE_RATE, expect=expect)
        return tr.text.strip(), tr.confidence, int((time.perf_counter() - t0) * 1000)

    async def ask(self, session_id: str, text: str, caller: str | None) -> tuple[TurnOut, int]:
        t0 = time.perf_counter()
        out = await self.dialogue.turn(session_id, TurnIn(text=text[:500], caller=caller))
        return out, int((time.perf_counter() - t0) * 1000)

    async def understand(self, session_id: str, pcm16: bytes, caller: str | None) -> TurnResult:
        text, confidence, asr_ms = await self.transcribe(pcm16)
        if not text:
            return TurnResult("", 0.0, None, asr_ms, 0, asr_ms)
        out, nlu_ms = await self.ask(session_id, text, caller)
        return TurnResult(text, confidence, out, asr_ms, nlu_ms, asr_ms)


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
