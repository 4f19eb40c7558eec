"""An in-memory BM25F-style index over published entries.

Fields are weighted (a hit in the title or a phrasing counts most; bigrams are a low-weight safety net for
recogniser errors). Each term's weighted BM25 contribution per document is computed once at build time, so a
query is a sum over a few short postings lists.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from knowledge_base.text import Analyzer

FIELD_WEIGHTS: dict[str, float] = {"title": 3.0, "questions": 2.0, "tags": 2.0, "category": 1.0, "answer": 0.4, "bigram": 0.3}
# Words found only in the answer text are weak evidence that the entry answers the question.
COVERAGE_FIELDS = frozenset({"title", "questions", "tags", "category"})
K1 = 1.2
B = 0.75
BIGRAM = "\x00"  # prefix keeps bigram terms apart from word terms in the shared postings


@dataclass(frozen=True)
class IndexedDoc:
    entry_id: int
    fields: dict[str, str]
    # The entry's ways of asking (title, question, alternative phrasings), each matched whole for `focus`.
    phrasings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ranked:
    """One candidate with the evidence the strength classifier reads (see knowledge_base/strength.py)."""

    doc_id: int
    score: float
    # idf-weighted share of the question's words that the entry has in its title, phrasings, tags or
    # category (words of a long question's opening story weigh less, see `_position_weights`).
    coverage: float
    # the best share, over the entry's phrasings, of a phrasing's words that the question contains: a
    # long question that contains one whole way of asking for the entry scores 1.
    focus: float
    # idf mass of the question's words found in the entry, in units of the idf of a word only one entry
    # uses: how much evidence, whatever the question's length (a share alone cannot tell "狗" from 社保卡).
    matched: float


class BM25Index:
    def __init__(self, analyzer: Analyzer, docs: Iterable[IndexedDoc]) -> None:
        self.analyzer = analyzer
        field_terms: dict[int, dict[str, Counter[str]]] = {}
        df: dict[str, Counter[str]] = {f: Counter() for f in FIELD_WEIGHTS}
        lengths: dict[str, list[int]] = {f: [] for f in FIELD_WEIGHTS}
        docs_list = list(docs)
        for doc in docs_list:
            per_field = {f: Counter(self._field_terms(f, doc.fields.get(f, ""))) for f in FIELD_WEIGHTS}
            field_terms[doc.entry_id] = per_field
            for f, counts in per_field.items():
                df[f].update(counts.keys())
                lengths[f].append(sum(counts.values()))
        self.n_docs = len(field_terms)
        self.rare_idf = self._idf(1)
        avg = {f: (sum(v) / len(v) if v else 1.0) or 1.0 for f, v in lengths.items()}
        # term → {doc: summed weighted BM25 contribution over the fields}
        self.postings: dict[str, dict[int, float]] = defaultdict(dict)
        # doc → its words in the coverage fields; term → documents with it there (for coverage idf)
        self.covered: dict[int, frozenset[str]] = {}
        coverage_df: Counter[str] = Counter()
        for doc_id, per_field in field_terms.items():
            covered: set[str] = set()
            for f, counts in per_field.items():
                length = sum(counts.values())
                for term, tf in counts.items():
                    idf = self._idf(df[f][term])
                    norm = tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / avg[f]))
                    key = BIGRAM + term if f == "bigram" else term
                    bucket = self.postings[key]
                    bucket[doc_id] = bucket.get(doc_id, 0.0) + FIELD_WEIGHTS[f] * idf * norm
                if f in COVERAGE_FIELDS:
                    covered.update(counts)
            self.covered[doc_id] = frozenset(covered)
            coverage_df.update(covered)
        self.coverage_df = coverage_df
        # doc → its phrasings as (term → idf, total idf), for `focus`
        self.phrasings: dict[int, list[tuple[dict[str, float], float]]] = {}
        for doc in docs_list:
            sets = (set(self.analyzer.terms(p)) for p in doc.phrasings)
            idfs = [{t: self._idf(max(coverage_df.get(t, 0), 1)) for t in terms} for terms in sets if terms]
            self.phrasings[doc.entry_id] = [(idf, sum(idf.values())) for idf in idfs]

    def _field_terms(self, field: str, text: str) -> list[str]:
        return self.analyzer.bigrams(text) if field == "bigram" else self.analyzer.terms(text)

    def _idf(self, df: int) -> float:
        return math.log(1 + (self.n_docs - df + 0.5) / (df + 0.5))

    def search(self, query: str, allowed: set[int] | None = None, limit: int = 10) -> list[Ranked]:
        """Ranked candidates, best first, with their coverage and focus (see `Ranked`)."""
        terms = self.analyzer.terms(query)
        weights = _position_weights(terms)
        keys: dict[str, float] = dict(weights)
        for g in self.analyzer.bigrams(query):
            keys.setdefault(BIGRAM + g, 1.0)
        scores: dict[int, float] = defaultdict(float)
        for key, weight in keys.items():
            for doc_id, contribution in self.postings.get(key, {}).items():
                scores[doc_id] += weight * contribution
        candidates = scores.items() if allowed is None else ((d, s) for d, s in scores.items() if d in allowed)
        top = heapq.nsmallest(limit, candidates, key=lambda kv: (-kv[1], kv[0]))
        # A word no entry uses weighs as much as the rarest: "狗" in "我丢了一只狗" is not a detail to skip.
        word_idf = {t: self._idf(max(self.coverage_df.get(t, 0), 1)) * w for t, w in weights.items()}
        total = sum(word_idf.values()) or 1.0
        out = []
        for doc_id, score in top:
            matched = sum(w for t, w in word_idf.items() if t in self.covered[doc_id])
            out.append(Ranked(doc_id, score, matched / total, self._focus(doc_id, weights), matched / self.rare_idf))
        return out

    def _focus(self, doc_id: int, query: dict[str, float]) -> float:
        best = 0.0
        for idf, total in self.phrasings.get(doc_id, ()):
            best = max(best, sum(w for t, w in idf.items() if t in query) / total)
        return best


# Callers put the point last ("…孩子要上学了听说要办那个居住证我想问问去哪办"): the words of a long
# question's opening story count for less than the words of its last stretch.
TAIL_TERMS = 6
STORY_WEIGHT = 0.6


def _position_weights(terms: list[str]) -> dict[str, float]:
    weights: dict[str, float] = {}
    tail_start = max(len(terms) - TAIL_TERMS, 0)
    for i, term in enumerate(terms):
        weights[term] = max(weights.get(term, 0.0), 1.0 if i >= tail_start else STORY_WEIGHT)
    return weights
