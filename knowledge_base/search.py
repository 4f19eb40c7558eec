"""An in-memory BM25F-style index over published entries: fields weighted, postings per field."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from knowledge_base.text import Analyzer

# Field weights: a hit in the title or a phrasing counts most; bigrams are a low-weight safety net.
FIELD_WEIGHTS: dict[str, float] = {"title": 3.0, "questions": 2.0, "tags": 2.0, "category": 1.0, "answer": 0.4, "bigram": 0.3}
# Words found only in the answer text are weak evidence that the entry answers the question.
COVERAGE_FIELDS = frozenset({"title", "questions", "tags", "category"})
K1 = 1.2
B = 0.75


@dataclass(frozen=True)
class IndexedDoc:
    entry_id: int
    fields: dict[str, str]


class BM25Index:
    def __init__(self, analyzer: Analyzer, docs: Iterable[IndexedDoc]) -> None:
        self.analyzer = analyzer
        self.postings: dict[str, dict[str, dict[int, int]]] = {f: defaultdict(dict) for f in FIELD_WEIGHTS}
        self.lengths: dict[str, dict[int, int]] = {f: {} for f in FIELD_WEIGHTS}
        self.n_docs = 0
        for doc in docs:
            self._add(doc)
        self.avg_len = {
            f: (sum(lens.values()) / len(lens) if lens else 1.0) or 1.0 for f, lens in self.lengths.items()
        }

    def _field_terms(self, field: str, text: str) -> list[str]:
        return self.analyzer.bigrams(text) if field == "bigram" else self.analyzer.terms(text)

    def _add(self, doc: IndexedDoc) -> None:
        self.n_docs += 1
        for field in FIELD_WEIGHTS:
            terms = self._field_terms(field, doc.fields.get(field, ""))
            self.lengths[field][doc.entry_id] = len(terms)
            for term, tf in Counter(terms).items():
                self.postings[field][term][doc.entry_id] = tf

    def _idf(self, df: int) -> float:
        return math.log(1 + (self.n_docs - df + 0.5) / (df + 0.5))

    def search(
        self, query: str, allowed: set[int] | None = None, limit: int = 10
    ) -> list[tuple[int, float, float]]:
        """Ranked (doc id, score, coverage): coverage is the idf-weighted share of the query's words
        (not bigrams) that the document contains — a score-independent measure of how much of the
        question the entry answers, used to refuse confident-looking matches on one stray word."""
        scores: dict[int, float] = defaultdict(float)
        word_terms = set(self.analyzer.terms(query))
        word_idf = {t: self._idf(self._df(t)) for t in word_terms}
        matched: dict[int, set[str]] = defaultdict(set)
        for field, weight in FIELD_WEIGHTS.items():
            terms = set(self._field_terms(field, query))
            postings, lengths, avg = self.postings[field], self.lengths[field], self.avg_len[field]
            for term in terms:
                docs = postings.get(term)
                if not docs:
                    continue
                idf = self._idf(len(docs))
                for doc_id, tf in docs.items():
                    if allowed is not None and doc_id not in allowed:
                        continue
                    norm = tf * (K1 + 1) / (tf + K1 * (1 - B + B * lengths[doc_id] / avg))
                    scores[doc_id] += weight * idf * norm
                    if field in COVERAGE_FIELDS:
                        matched[doc_id].add(term)
        total_idf = sum(word_idf.values()) or 1.0
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return [
            (doc_id, score, sum(word_idf.get(t, 0.0) for t in matched[doc_id]) / total_idf)
            for doc_id, score in ranked
        ]

    def _df(self, term: str) -> int:
        """Documents containing the term in any word field."""
        docs: set[int] = set()
        for field in COVERAGE_FIELDS:
            docs.update(self.postings[field].get(term, ()))
        return max(len(docs), 1)
