"""Voice activity detection over 20 ms PCM16 frames (8/16/32/48 kHz).

A frame counts as voiced when WebRTC's VAD says so (if ``webrtcvad`` is
installed) *and* its energy is clearly above an adaptive noise floor; without
webrtcvad an energy + zero-crossing detector is used.  The noise floor is a
low percentile of the frame levels of the last ``noise_window_ms`` (minimum
statistics): it follows noise up and down, also while the caller speaks, and
needs no calibration period.  The segmenter turns
voiced frames into events:

* :class:`SpeechStarted` as soon as ``start_ms`` of the last ``start_window_ms``
  were voiced (default 100 ms of 160 ms -> fast enough for barge-in);
* :class:`SpeechEnded` with the utterance PCM (including a short pre-roll)
  after ``end_silence_ms`` of silence, or when ``max_utterance_ms`` is reached;
* :class:`SpeechDiscarded` when the burst was shorter than ``min_speech_ms``
  (a cough, a click): the controller may resume what it was doing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ivr.speech.audio import FrameBuffer, dbfs, zero_crossing_rate

try:  # optional but preferred
    import webrtcvad
except ImportError:  # pragma: no cover - webrtcvad-wheels is in requirements/speech.txt
    webrtcvad = None


@dataclass(slots=True)
class VadConfig:
    sample_rate: int = 16000
    frame_ms: int = 20  # 10, 20 or 30 (webrtcvad)
    start_ms: int = 100  # voiced audio needed to declare speech start
    start_window_ms: int = 160  # ... within this many ms
    end_silence_ms: int = 600  # end of utterance after this much silence
    min_speech_ms: int = 250  # shorter bursts are discarded
    max_utterance_ms: int = 15000  # force an end (caller keeps talking/noise)
    pre_roll_ms: int = 240  # audio before the trigger kept in the utterance
    aggressiveness: int = 2  # webrtcvad 0..3
    energy_margin_db: float = 9.0  # above the noise floor, to start speech
    continue_margin_db: float = 4.0  # hysteresis: lower gate once in speech
    min_energy_dbfs: float = -48.0  # absolute gate: quieter is never speech
    noise_window_ms: int = 2000  # minimum-statistics window for the noise floor
    noise_percentile: float = 10.0
    use_webrtc: bool = True


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    at_ms: int  # stream time of the trigger (first voiced frame of the burst)
    detected_ms: int  # stream time when the trigger fired


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    at_ms: int  # stream time of the end decision
    pcm16: bytes  # the utterance (pre-roll + speech + trailing silence trimmed)
    duration_ms: int
    truncated: bool = False  # max_utterance_ms was hit


@dataclass(frozen=True, slots=True)
class SpeechDiscarded:
    at_ms: int
    duration_ms: int


VadEvent = SpeechStarted | SpeechEnded | SpeechDiscarded


class VoiceActivityDetector:
    """Incremental segmenter.  Feed any chunk size; events come back in order."""

    def __init__(self, config: VadConfig | None = None, **overrides: object) -> None:
        cfg = config or VadConfig()
        for key, value in overrides.items():
            setattr(cfg, key, value)
        self.cfg = cfg
        self._vad = None
        if cfg.use_webrtc and webrtcvad is not None:
            self._vad = webrtcvad.Vad(cfg.aggressiveness)
        self._frames = FrameBuffer(cfg.sample_rate, cfg.frame_ms)
        self.reset()

    @property
    def engine(self) -> str:
        return "webrtc+energy" if self._vad is not None else "energy+zcr"

    def reset(self, keep_noise_floor: bool = True) -> None:
        """Forget any utterance in progress (e.g. after the bot was barged in)."""
        cfg = self.cfg
        f = cfg.frame_ms
        self._window: deque[bool] = deque(maxlen=max(1, cfg.start_window_ms // f))
        self._pre_roll: deque[bytes] = deque(maxlen=max(1, cfg.pre_roll_ms // f))
        self._utterance: list[bytes] = []
        self._in_speech = False
        self._voiced_ms = 0
        self._silence_ms = 0
        self._start_ms = 0
        if not keep_noise_floor or not hasattr(self, "_levels"):
            self._levels: deque[float] = deque(maxlen=max(1, cfg.noise_window_ms // f))
            self.noise_floor_db = -120.0
            self._n_frames = 0
            self.t_ms = 0

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def silence_ms(self) -> int:
        """Trailing silence of the utterance in progress (0 while voiced or outside speech)."""
        return self._silence_ms if self._in_speech else 0

    @property
    def voiced_ms(self) -> int:
        """Voiced audio in the utterance in progress."""
        return self._voiced_ms if self._in_speech else 0

    def end_now(self) -> VadEvent | None:
        """End the utterance in progress here (an end-of-turn decision made outside the VAD)."""
        if not self._in_speech:
            return None
        return self._close(truncated=False)

    def discard(self) -> None:
        """Drop the utterance in progress without an event (a backchannel the caller made while the bot spoke)."""
        if self._in_speech:
            self._in_speech = False
            self._utterance = []
            self._window.clear()
            self._pre_roll.clear()
            self._voiced_ms = self._silence_ms = 0

    # ------------------------------------------------------------------ frames

    def is_voiced(self, frame: bytes) -> bool:
        """Classify one frame and update the noise floor."""
        cfg = self.cfg
        level = dbfs(frame)
        self._levels.append(level)
        self._n_frames += 1
        if self._n_frames <= 5 or self._n_frames % 5 == 0:  # every 100 ms is plenty
            self.noise_floor_db = float(np.percentile(self._levels, cfg.noise_percentile))
        margin = cfg.continue_margin_db if self._in_speech else cfg.energy_margin_db
        gate = max(self.noise_floor_db + margin, cfg.min_energy_dbfs)
        loud = level > gate
        if self._vad is not None:
            voiced = loud and self._vad.is_speech(frame, cfg.sample_rate)
        else:
            zcr = zero_crossing_rate(frame)
            voiced = loud and (zcr < 0.3 or level > self.noise_floor_db + 2 * cfg.energy_margin_db)
        return voiced

    def process_frame(self, frame: bytes) -> list[VadEvent]:
        cfg = self.cfg
        f = cfg.frame_ms
        voiced = self.is_voiced(frame)
        self.t_ms += f
        events: list[VadEvent] = []
        if not self._in_speech:
            self._pre_roll.append(frame)
            self._window.append(voiced)
            if sum(self._window) * f >= cfg.start_ms:
                self._in_speech = True
                burst = len(self._window) - next(i for i, v in enumerate(self._window) if v)
                self._start_ms = self.t_ms - burst * f
                self._utterance = list(self._pre_roll)
                self._voiced_ms = sum(self._window) * f
                self._silence_ms = 0
                events.append(SpeechStarted(at_ms=self._start_ms, detected_ms=self.t_ms))
            return events
        self._utterance.append(frame)
        if voiced:
            self._voiced_ms += f
            self._silence_ms = 0
        else:
            self._silence_ms += f
        length_ms = len(self._utterance) * f
        if self._silence_ms >= cfg.end_silence_ms or length_ms >= cfg.max_utterance_ms:
            events.append(self._close(truncated=self._silence_ms < cfg.end_silence_ms))
        return events

    def _close(self, truncated: bool) -> VadEvent:
        f = self.cfg.frame_ms
        keep = len(self._utterance)
        # Trim trailing silence but keep ~200 ms of it (ASR likes a tail).
        trailing = self._silence_ms // f
        keep -= max(0, trailing - 200 // f)
        pcm = b"".join(self._utterance[:keep])
        voiced_ms = self._voiced_ms
        self._in_speech = False
        self._utterance = []
        self._window.clear()
        self._pre_roll.clear()
        if voiced_ms < self.cfg.min_speech_ms and not truncated:
            return SpeechDiscarded(at_ms=self.t_ms, duration_ms=voiced_ms)
        return SpeechEnded(at_ms=self.t_ms, pcm16=pcm, duration_ms=keep * f, truncated=truncated)

    # ------------------------------------------------------------------ chunks

    def feed(self, pcm16: bytes) -> list[VadEvent]:
        """Feed audio of any length (re-framed internally)."""
        events: list[VadEvent] = []
        for frame in self._frames.push(pcm16):
            events.extend(self.process_frame(frame))
        return events

    def flush(self) -> list[VadEvent]:
        """End of stream (hang-up): close an utterance in progress."""
        if not self._in_speech:
            return []
        return [self._close(truncated=True)]
