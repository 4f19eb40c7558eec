"""How sure the KB search is of its best hit: strong (answer it), plausible (offer it), none.

Read from evidence that does not depend on the question's length or the size of the KB (see
`knowledge_base.search.Ranked`): how much the question and the entry share (`matched`, in units of a
rare word's idf), which share of the question that is (`coverage`), whether the question holds one of
the entry's ways of asking nearly whole (`focus`), and how far the best hit is ahead of the next
(`margin`). Thresholds were set on tests/knowledge_base/search_cases.yaml and
tests/knowledge_base/realistic_questions.yaml (see benchmarks/kb_search.py for the figures).
"""

from __future__ import annotations

import enum

from knowledge_base.search import Ranked


class Strength(str, enum.Enum):
    strong = "strong"  # answer it
    plausible = "plausible"  # offer it: "您是想问……吗？"
    none = "none"  # not an answer to this question


# Evidence: about one rare word in common, or a short question the entry covers (nearly) whole ("公积金").
MIN_MATCHED = 1.0
SHORT_COVERAGE, SHORT_MIN_MATCHED = 0.75, 0.35
# Strong: clearly ahead of the next entry, with more than one stray word of evidence, and about the
# entry's topic: most of one of its phrasings is in the question, or most of the question is in the entry.
STRONG_MARGIN = 0.1
STRONG_MATCHED = 1.2
STRONG_FOCUS, STRONG_COVERAGE = 0.45, 0.5


def margin(best: Ranked, runner_up: Ranked | None) -> float:
    """How far the best hit is ahead of the next one, as a share of its score (1 when it stands alone)."""
    if best.score <= 0:
        return 0.0
    return 1.0 if runner_up is None else max(best.score - runner_up.score, 0.0) / best.score


def has_evidence(hit: Ranked) -> bool:
    return hit.matched >= MIN_MATCHED or (hit.coverage >= SHORT_COVERAGE and hit.matched >= SHORT_MIN_MATCHED)


def classify(best: Ranked, runner_up: Ranked | None) -> Strength:
    """The strength of `best`, the top hit, given the hit ranked after it (None when it stands alone)."""
    if not has_evidence(best):
        return Strength.none
    if (
        margin(best, runner_up) >= STRONG_MARGIN
        and (best.matched >= STRONG_MATCHED or best.coverage >= SHORT_COVERAGE)
        and (best.focus >= STRONG_FOCUS or best.coverage >= STRONG_COVERAGE)
    ):
        return Strength.strong
    return Strength.plausible
