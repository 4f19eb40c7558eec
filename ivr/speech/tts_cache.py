"""Sentence cache in front of any :class:`Synthesizer`.

Key: sha256 of ``engine_id + "\\n" + text``.  Stored as
``<cache_dir>/<key[:2]>/<key>.wav`` (mono PCM16 at the engine's rate), with
an in-memory LRU in front.  Concurrent requests for the same text render it
once.  ``prerender()`` is meant for fixed prompts and the KB's spoken answers
when they are published.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from ivr.speech.audio import read_wav, wav_bytes
from ivr.speech.base import REPO_ROOT, Audio, Synthesizer, split_sentences

DEFAULT_CACHE_DIR = REPO_ROOT / "var" / "cache" / "tts"


class CachedSynthesizer(Synthesizer):
    def __init__(
        self,
        engine: Synthesizer,
        cache_dir: str | Path = DEFAULT_CACHE_DIR,
        *,
        memory_items: int = 512,
    ) -> None:
        self.engine = engine
        self.cache_dir = Path(cache_dir)
        self.memory_items = memory_items
        self.name = f"cached-{engine.name}"
        self.sample_rate = engine.sample_rate
        self._memory: OrderedDict[str, Audio] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[Audio]] = {}
        self.hits_memory = 0
        self.hits_disk = 0
        self.misses = 0

    @property
    def engine_id(self) -> str:
        return self.engine.engine_id

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self.engine.engine_id}\n{text.strip()}".encode()).hexdigest()

    def path_for(self, text: str) -> Path:
        key = self.key(text)
        return self.cache_dir / key[:2] / f"{key}.wav"

    def is_cached(self, text: str) -> bool:
        return self.key(text) in self._memory or self.path_for(text).is_file()

    # ------------------------------------------------------------------ memory

    def _remember(self, key: str, audio: Audio) -> None:
        self._memory[key] = audio
        self._memory.move_to_end(key)
        while len(self._memory) > self.memory_items:
            self._memory.popitem(last=False)

    # ------------------------------------------------------------------ disk

    @staticmethod
    def _read(path: Path) -> Audio | None:
        try:
            pcm, rate = read_wav(path)
        except (FileNotFoundError, EOFError, ValueError, OSError):
            return None
        return Audio(pcm, rate)

    @staticmethod
    def _write(path: Path, audio: Audio) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(wav_bytes(audio.pcm16, audio.sample_rate))
            os.replace(tmp, path)  # atomic: readers never see half a file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # ------------------------------------------------------------------ API

    async def synthesize(self, text: str) -> Audio:
        key = self.key(text)
        audio = self._memory.get(key)
        if audio is not None:
            self._memory.move_to_end(key)
            self.hits_memory += 1
            return audio
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Audio] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            path = self.path_for(text)
            audio = await asyncio.to_thread(self._read, path)
            if audio is not None:
                self.hits_disk += 1
            else:
                self.misses += 1
                audio = await self.engine.synthesize(text)
                await asyncio.to_thread(self._write, path, audio)
            self._remember(key, audio)
            future.set_result(audio)
            return audio
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            del self._inflight[key]

    async def synthesize_stream(self, text: str) -> AsyncIterator[Audio]:
        """Whole text cached as one entry when present; else sentence by sentence
        (each sentence cached on its own)."""
        if self.is_cached(text):
            yield await self.synthesize(text)
            return
        for sentence in split_sentences(text):
            yield await self.synthesize(sentence)

    async def prerender(self, texts: Iterable[str]) -> int:
        """Render every text not cached yet (sequentially: be kind to the CPU).
        Returns how many were newly rendered."""
        rendered = 0
        for text in dict.fromkeys(t.strip() for t in texts if t and t.strip()):
            if not self.path_for(text).is_file():
                before = self.misses
                await self.synthesize(text)
                rendered += self.misses - before
        return rendered

    def clear_memory(self) -> None:
        self._memory.clear()
