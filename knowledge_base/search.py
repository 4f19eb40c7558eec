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


class BM25Index:
    def __init__(self, analyzer: Analyzer, docs: Iterable[IndexedDoc]) -> None:
        self.analyzer = analyzer
        field_terms: dict[int, dict[str, Counter[str]]] = {}
        df: dict[str, Counter[str]] = {f: Counter() for f in FIELD_WEIGHTS}
        lengths: dict[str, list[int]] = {f: [] for f in FIELD_WEIGHTS}
        for doc in docs:
            per_field = {f: Counter(self._field_terms(f, doc.fields.get(f, ""))) for f in FIELD_WEIGHTS}
            field_terms[doc.entry_id] = per_field
            for f, counts in per_field.items():
                df[f].update(counts.keys())
                lengths[f].append(sum(counts.values()))
        self.n_docs = len(field_terms)
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

    def _field_terms(self, field: str, text: str) -> list[str]:
        return self.analyzer.bigrams(text) if field == "bigram" else self.analyzer.terms(text)

    def _idf(self, df: int) -> float:
        return math.log(1 + (self.n_docs - df + 0.5) / (df + 0.5))

    def search(
        self, query: str, allowed: set[int] | None = None, limit: int = 10
    ) -> list[tuple[int, float, float]]:
        """Ranked (doc id, score, coverage): coverage is the idf-weighted share of the query's words
        (not bigrams) that the document contains in its title, phrasings, tags or category — a
        score-independent measure of how much of the question the entry answers, used to refuse
        confident-looking matches on one stray word."""
        words = set(self.analyzer.terms(query))
        keys = words | {BIGRAM + g for g in self.analyzer.bigrams(query)}
        scores: dict[int, float] = defaultdict(float)
        for key in keys:
            for doc_id, contribution in self.postings.get(key, {}).items():
                scores[doc_id] += contribution
        candidates = scores.items() if allowed is None else ((d, s) for d, s in scores.items() if d in allowed)
        top = heapq.nsmallest(limit, candidates, key=lambda kv: (-kv[1], kv[0]))
        word_idf = {t: self._idf(max(self.coverage_df.get(t, 0), 1)) for t in words}
        total = sum(word_idf.values()) or 1.0
        return [
            (doc_id, score, sum(w for t, w in word_idf.items() if t in self.covered[doc_id]) / total)
            for doc_id, score in top
        ]
