"""What drives a call's state machine: ARI events, audio (VAD) events, timers and stage results.

Every input is turned into one of these small frozen dataclasses and put on the call's single queue,
so the state machine sees one ordered stream and never races with itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class Hangup:
    """The caller's channel is gone (hang-up) or left our Stasis app."""

    reason: str = "hangup"


@dataclass(frozen=True, slots=True)
class SpeechStart:
    """VAD: the caller started speaking (fast: ~100 ms of voice)."""

    at: float  # time.monotonic() when detected


@dataclass(frozen=True, slots=True)
class Utterance:
    """VAD: end of an utterance; PCM16 LE at 16 kHz."""

    pcm16: bytes
    speech_end: float  # time.monotonic() of the caller's last voiced audio (before the end silence)
    duration_ms: int
    truncated: bool = False
    pause_id: int | None = None  # the Pause this utterance ended with, if speech never resumed after it
    end: str = ""  # why it ended, e.g. "text after 420 ms" (end-of-turn policy), "silence after 500 ms"


@dataclass(frozen=True, slots=True)
class Pause:
    """The caller has been silent for a moment mid-utterance: a speculative transcription may start.
    If the utterance then ends without more speech, its `pause_id` matches and the result is used."""

    pause_id: int
    pcm16: bytes


@dataclass(frozen=True, slots=True)
class SpeechLong:
    """VAD: the burst in progress has more voiced audio than any backchannel ("嗯", "对对", "好的"): the caller
    is saying something (barge-in is certain)."""

    voiced_ms: int


@dataclass(frozen=True, slots=True)
class PartialText:
    """The speculative transcript of the utterance up to Pause `pause_id` (end-of-turn judges it)."""

    pause_id: int
    text: str


@dataclass(frozen=True, slots=True)
class BurstHeard:
    """What a short burst over the bot's voice was (ivr.speech.barge_words.BargeVerdict)."""

    pause_id: int
    verdict: Any


@dataclass(frozen=True, slots=True)
class SpeechDiscarded:
    """VAD: a burst too short to be speech (cough, click)."""


@dataclass(frozen=True, slots=True)
class PlaybackDone:
    token: int
    completed: bool  # False: stopped (barge-in) or failed
    first_packet_at: float | None = None
    tts_ms: int = 0


@dataclass(frozen=True, slots=True)
class BotDone:
    """Transcription + bot turn finished (see stages.Understanding)."""

    token: int
    result: Any  # stages.TurnResult


@dataclass(frozen=True, slots=True)
class Timeout:
    state: str
    serial: int


@dataclass(frozen=True, slots=True)
class MaxDuration:
    pass


@dataclass(frozen=True, slots=True)
class Shutdown:
    """The controller stops: hand the caller to the seats instead of dropping them."""

    reason: str = "shutdown"


CallEvent = (Dtmf | Hangup | SpeechStart | Utterance | Pause | SpeechDiscarded | PlaybackDone | BotDone | Timeout
             | MaxDuration | Shutdown | SpeechLong | PartialText | BurstHeard)


@dataclass
class Counters:
    """Per-call counts the state machine uses for its decisions."""

    no_input: int = 0
    no_match: int = 0
    menu_no_input: int = 0
    menu_invalid: int = 0
    turns: int = 0
    barge_ins: int = 0
    holds: int = 0  # the bot paused because the caller made a sound over it
    resumes: int = 0  # ... and went on: a backchannel or noise
    settled: set[str] = field(default_factory=set)  # actions that settled something (kb_answer, ...)
