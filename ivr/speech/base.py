"""Small interfaces of the speech layer (Pipecat-style stages).

Engines implement :class:`Recognizer` / :class:`Synthesizer`.  Everything heavy
(model inference, disk I/O) runs in a worker thread so the event loop that
paces RTP never blocks.
"""

from __future__ import annotations

import abc
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from understanding.expect import Expect

#: Repository root (ivr/speech/base.py -> ../..).
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Default home of downloaded / assembled models (git-ignored).
MODELS_DIR = REPO_ROOT / "var" / "cache" / "models"


@dataclass(frozen=True, slots=True)
class Transcript:
    """Final result of one utterance."""

    text: str
    confidence: float  # 0..1, engine-specific estimate
    duration_ms: int  # audio duration fed to the recogniser
    engine: str = ""
    latency_ms: int = 0  # time spent in finish()

    @property
    def empty(self) -> bool:
        return not self.text.strip()


@dataclass(frozen=True, slots=True)
class Audio:
    """Mono signed 16-bit little-endian PCM."""

    pcm16: bytes
    sample_rate: int

    @property
    def duration_ms(self) -> int:
        return int(len(self.pcm16) // 2 * 1000 / self.sample_rate)

    def __len__(self) -> int:
        return len(self.pcm16)


class RecognizerStream(abc.ABC):
    """One utterance being recognised.  Not reusable after :meth:`finish`."""

    sample_rate: int

    @abc.abstractmethod
    def accept(self, pcm16: bytes) -> str | None:
        """Feed PCM16-LE audio.  Never blocks; returns new partial text if any."""

    @abc.abstractmethod
    async def finish(self) -> Transcript:
        """End of utterance: return the final transcript."""

    def cancel(self) -> None:  # noqa: B027 - optional hook
        """Drop the stream without a result (caller hung up, barge-in...)."""


class Recognizer(abc.ABC):
    """A speech recogniser engine (model loaded once, many streams)."""

    name: str = "asr"

    @abc.abstractmethod
    def open_stream(self, sample_rate: int = 16000, *, expect: Expect = Expect.FREE) -> RecognizerStream:
        """Start a new utterance.  `expect` is the kind of answer the bot's last question asked for
        (yes/no, an address, a number...); an engine may use it to listen for that, or ignore it."""

    def set_hotwords(self, words: list[str]) -> None:  # noqa: B027 - optional
        """Domain terms (KB titles, category names) to bias recognition."""

    async def load(self) -> None:  # noqa: B027 - optional
        """Load the model in a worker thread (otherwise loaded lazily)."""

    async def transcribe(self, pcm16: bytes, sample_rate: int = 16000, *,
                         expect: Expect = Expect.FREE) -> Transcript:
        """Convenience: recognise a complete utterance (the answer to a question that expects `expect`)."""
        stream = self.open_stream(sample_rate, expect=expect)
        stream.accept(pcm16)
        return await stream.finish()


class Synthesizer(abc.ABC):
    """A text-to-speech engine."""

    name: str = "tts"
    sample_rate: int = 24000

    @property
    def engine_id(self) -> str:
        """Identifies the voice/model/text rules; used as part of cache keys."""
        return self.name

    async def load(self) -> None:  # noqa: B027 - optional
        """Load the model now instead of at the first sentence (an engine with a model overrides this)."""

    @abc.abstractmethod
    async def synthesize(self, text: str) -> Audio:
        """Render ``text`` (Mandarin) to PCM16 at :attr:`sample_rate`."""

    async def synthesize_stream(self, text: str) -> AsyncIterator[Audio]:
        """Render sentence by sentence so playback can start early."""
        for sentence in split_sentences(text):
            yield await self.synthesize(sentence)


_SENTENCE_END = "。！？!?；;"
_CLAUSE_END = "，,、：:"


def split_sentences(text: str, max_chars: int = 40) -> list[str]:
    """Split at sentence ends; split long sentences further at commas.

    Punctuation stays with the piece on its left.  Pieces never exceed
    ``max_chars`` unless a single clause is longer.
    """
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        return []
    sentences = [s.strip() for s in re.findall(rf"[^{_SENTENCE_END}]+[{_SENTENCE_END}]*", text)]
    out: list[str] = []
    for sentence in sentences:
        if not sentence:
            continue
        if len(sentence) <= max_chars:
            out.append(sentence)
            continue
        current = ""
        for clause in re.findall(rf"[^{_CLAUSE_END}]+[{_CLAUSE_END}]*", sentence):
            if current and len(current) + len(clause) > max_chars:
                out.append(current.strip())
                current = ""
            current += clause
        if current.strip():
            out.append(current.strip())
    return [s for s in out if s.strip(_SENTENCE_END + _CLAUSE_END + " ")]
