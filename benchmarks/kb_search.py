"""KB search: accuracy on realistic questions (new search vs a plain jieba + BM25 baseline) and latency.

Run by hand: `.venv/bin/python benchmarks/kb_search.py [--skip-load]`. PostgreSQL, through the real service.

1. Accuracy over the seed KB (knowledge_base/seed/entries.yaml, the entries published and valid today) on
   - tests/knowledge_base/realistic_questions.yaml: questions written from the entries' titles only (long
     narratives, fillers, 咋/啥/俺, no punctuation, recogniser homophones, and questions the KB can't answer);
   - benchmarks/data/realistic_first_turns.yaml, items with action kb_answer (an independent author; `kb`
     is the expected title), when the file has any.
   Per set: top-1 accuracy, the new search's strong/plausible/none rates with the accuracy of each, and
   the baseline's. The baseline is what "a plain jieba + BM25 over the same entries" means: jieba's default
   cut, punctuation dropped, Okapi BM25 (k1 1.5, b 0.75) over each entry's title, question, phrasings,
   tags and spoken answer; its top hit is its answer (it has no notion of strength: "none" only when no
   word is shared).
2. Latency: p50/p95 over the seed KB (the realistic questions), and p50/p95/p99 over 5,000 generated
   published entries (`--skip-load` skips this part).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import random
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jieba  # noqa: E402
import yaml  # noqa: E402

from hotline.container import Container  # noqa: E402
from hotline.migrate import upgrade  # noqa: E402
from hotline.seed import SYSTEM, seed_kb  # noqa: E402
from knowledge_base.models import EntryStatus  # noqa: E402
from knowledge_base.strength import Strength  # noqa: E402
from tests import services  # noqa: E402
from tests.conftest import make_settings  # noqa: E402

N_ENTRIES = 5000
N_QUERIES = 1000
ROOT = Path(__file__).resolve().parent.parent
OWN_SET = ROOT / "tests/knowledge_base/realistic_questions.yaml"
FIRST_TURNS = ROOT / "benchmarks/data/realistic_first_turns.yaml"
_NOT_WORD = re.compile(r"^[\s\W_]+$", re.UNICODE)


# -- the baseline: plain jieba + BM25 -----------------------------------------------------------------
class PlainBM25:
    def __init__(self, entries: list[dict], k1: float = 1.5, b: float = 0.75) -> None:
        self.keys = [e["key"] for e in entries]
        self.tok = jieba.Tokenizer()
        docs = [self.words(" ".join([e["title"], e["question"], *e["alt_questions"], *e["tags"], e["spoken_answer"]]))
                for e in entries]
        self.tf = [Counter(d) for d in docs]
        self.len = [len(d) for d in docs]
        self.avg = sum(self.len) / len(docs)
        df = Counter(w for d in self.tf for w in d)
        n = len(docs)
        self.idf = {w: math.log(1 + (n - c + 0.5) / (c + 0.5)) for w, c in df.items()}
        self.k1, self.b = k1, b

    def words(self, text: str) -> list[str]:
        return [w for w in self.tok.lcut(text) if w.strip() and not _NOT_WORD.match(w)]

    def top(self, query: str) -> str | None:
        q = set(self.words(query))
        best, best_score = None, 0.0
        for i, tf in enumerate(self.tf):
            s = 0.0
            for w in q:
                if f := tf.get(w):
                    s += self.idf[w] * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * self.len[i] / self.avg))
            if s > best_score:
                best, best_score = self.keys[i], s
        return best


# -- evaluation ---------------------------------------------------------------------------------------
@dataclass
class Case:
    q: str
    key: str | None  # None: the KB can't answer it


@dataclass
class Tally:
    n_pos: int = 0
    n_neg: int = 0
    right: int = 0
    base_right: int = 0
    base_none: int = 0
    base_answered_neg: int = 0

    def __post_init__(self) -> None:
        self.by = Counter()  # (strength, right|wrong|neg)


def load_cases(title_to_key: dict[str, str]) -> dict[str, list[Case]]:
    sets = {"own realistic set": [Case(c["q"], c["key"]) for c in yaml.safe_load(OWN_SET.read_text(encoding="utf-8"))]}
    if FIRST_TURNS.exists():
        items = yaml.safe_load(FIRST_TURNS.read_text(encoding="utf-8")) or []
        kb = [i for i in items if isinstance(i, dict) and i.get("action") == "kb_answer"]
        unknown = sorted({i.get("kb") for i in kb} - set(title_to_key))
        if unknown:
            print(f"realistic_first_turns: {len(unknown)} expected titles not among today's published entries: {unknown}")
        sets["realistic_first_turns (kb_answer)"] = [Case(i["text"], title_to_key[i["kb"]]) for i in kb if i.get("kb") in title_to_key]
    return sets


async def evaluate(container: Container, name: str, cases: list[Case], baseline: PlainBM25, show: bool) -> list[float]:
    t = Tally()
    timings: list[float] = []
    for c in cases:
        t0 = time.perf_counter()
        result = await container.kb.search(c.q, None, limit=3)
        timings.append((time.perf_counter() - t0) * 1000)
        top = result.hits[0].key if result.hits else None
        base = baseline.top(c.q)
        if c.key is None:
            t.n_neg += 1
            t.by[(result.strength, "neg")] += 1
            t.base_answered_neg += base is not None
            if show and result.strength is not Strength.none:
                print(f"    [{result.strength.value} on a question the KB can't answer] {c.q} → {top}")
            continue
        t.n_pos += 1
        ok = top == c.key
        t.right += ok
        t.base_right += base == c.key
        t.base_none += base is None
        t.by[(result.strength, "right" if ok else "wrong")] += 1
        if show and not ok:
            print(f"    [{result.strength.value}] {c.q} → {top} (expected {c.key}; baseline {base}; searched {result.searched})")
    pct = lambda a, b: f"{100 * a / b:5.1f} %" if b else "  n/a"  # noqa: E731
    print(f"\n{name}: {t.n_pos} answerable questions, {t.n_neg} the KB can't answer")
    print(f"  top-1 accuracy    new {pct(t.right, t.n_pos)}   baseline {pct(t.base_right, t.n_pos)}")
    for s in Strength:
        n = t.by[(s, "right")] + t.by[(s, "wrong")]
        print(f"  {s.value:9s} {pct(n, t.n_pos)} of answerable ({n}), right {pct(t.by[(s, 'right')], n)}"
              + (f"; {t.by[(s, 'neg')]} of {t.n_neg} unanswerable" if t.n_neg else ""))
    print(f"  wrong answers given as strong: {t.by[(Strength.strong, 'wrong')]}"
          + (f"; unanswerable given as strong: {t.by[(Strength.strong, 'neg')]}" if t.n_neg else ""))
    print(f"  baseline: none {pct(t.base_none, t.n_pos)} of answerable"
          + (f"; answers {t.base_answered_neg} of {t.n_neg} unanswerable" if t.n_neg else ""))
    return timings


def quantiles(timings: list[float]) -> str:
    q = statistics.quantiles(sorted(timings), n=100)
    return f"p50 {q[49]:.2f} ms, p95 {q[94]:.2f} ms, p99 {q[98]:.2f} ms, max {max(timings):.2f} ms"


async def accuracy(url: str, show: bool) -> None:
    container = Container.build(make_settings(url, "redis://127.0.0.1:6379/14"))
    try:
        await seed_kb(container)
        now = dt.datetime.now(dt.UTC)
        async with container.db.session() as session:
            rows = await container.kb.export(session, EntryStatus.published)
        valid = [r for r in rows if (not r["valid_from"] or dt.datetime.fromisoformat(r["valid_from"]) <= now)
                 and (not r["valid_until"] or now < dt.datetime.fromisoformat(r["valid_until"]))]
        baseline = PlainBM25(valid)
        t0 = time.perf_counter()
        await container.kb.search("社保卡丢了", None)
        print(f"seed KB: {len(valid)} published entries valid today; index build (first search) "
              f"{(time.perf_counter() - t0) * 1000:.0f} ms")
        timings: list[float] = []
        for name, cases in load_cases({r["title"]: r["key"] for r in valid}).items():
            timings += await evaluate(container, name, cases, baseline, show)
        own = yaml.safe_load(OWN_SET.read_text(encoding="utf-8"))
        for _ in range(4):  # steadier latency figures: the same questions again
            for c in own:
                t0 = time.perf_counter()
                await container.kb.search(c["q"], None, limit=3)
                timings.append((time.perf_counter() - t0) * 1000)
        print(f"\nlatency over the seed KB ({len(timings)} searches): {quantiles(timings)}")
    finally:
        await container.close()


# -- latency over 5,000 entries -----------------------------------------------------------------------
def generate_rows(seed_rows: list[dict], n: int) -> list[dict]:
    rng = random.Random(12345)
    districts = ["青山区", "东河区", "新城区", "金川区", "北岭县"]
    topics = ["办理", "咨询", "补办", "申请", "查询", "变更", "注销", "续期", "缴费", "预约"]
    rows = []
    for i in range(n):
        base = seed_rows[i % len(seed_rows)]
        suffix = rng.choice(topics)
        place = rng.choice(districts)
        rows.append(
            base
            | {
                "key": f"gen-{i:05d}",
                "title": f"{base['title']}{suffix}（{place}第{i}号）",
                "question": f"{place}{base['question']}",
                "alt_questions": [f"{q}{suffix}" for q in base.get("alt_questions", [])][:4],
                "status": "published",
                "valid_from": None,
                "valid_until": None,
                "region": "全市",
            }
        )
    return rows


async def load(url: str) -> None:
    container = Container.build(make_settings(url, "redis://127.0.0.1:6379/14"))
    try:
        seed_rows = yaml.safe_load((ROOT / "knowledge_base/seed/entries.yaml").read_text(encoding="utf-8"))
        rows = generate_rows(seed_rows, N_ENTRIES)
        t0 = time.perf_counter()
        async with container.db.session() as session:
            report = await container.kb.import_rows(session, SYSTEM, rows)
        print(f"\nimported {report.created} entries in {time.perf_counter() - t0:.1f}s ({len(report.rejected)} rejected)")
        t0 = time.perf_counter()
        await container.kb.search("社保卡丢了", None)
        print(f"index build (first search): {(time.perf_counter() - t0) * 1000:.0f} ms")
        for name, path in (("search_cases.yaml", ROOT / "tests/knowledge_base/search_cases.yaml"), ("realistic set", OWN_SET)):
            queries = [c["q"] for c in yaml.safe_load(path.read_text(encoding="utf-8"))]
            timings = []
            for i in range(N_QUERIES):
                q = queries[i % len(queries)]
                t = time.perf_counter()
                await container.kb.search(q, "青山区" if i % 2 else None)
                timings.append((time.perf_counter() - t) * 1000)
            print(f"KB search over {N_ENTRIES} entries, {N_QUERIES} queries ({name}): {quantiles(timings)}")
    finally:
        await container.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-load", action="store_true", help="accuracy and seed-KB latency only")
    parser.add_argument("--quiet", action="store_true", help="don't list the misses")
    args = parser.parse_args()
    services.ensure_postgres()
    services.ensure_redis()
    for part in (accuracy, load):
        if part is load and args.skip_load:
            continue
        url, name = await services.create_pg_database("hotline_bench")
        try:
            await asyncio.to_thread(upgrade, url)
            await (part(url, not args.quiet) if part is accuracy else part(url))
        finally:
            await services.drop_pg_database(name)


if __name__ == "__main__":
    asyncio.run(main())
