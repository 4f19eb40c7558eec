"""Emergency safety net on the independent evaluation set: recall per kind and per source, false alarms.

    .venv/bin/python benchmarks/emergency_recall.py [--quiet]

Positives: benchmarks/data/emergencies.yaml ({text, kind, source}; source text|asr), written by an author
who never saw understanding/emergency.py, plus the `action: emergency` turns of realistic_first_turns.yaml
(reported apart). Negatives: non_emergencies.yaml, every other realistic first turn, and the ordinary
utterances of tests/understanding/test_emergency.py (nlu/corpus non-emergency lines, KB questions).
Every miss and every false alarm is listed, with the words that raised it. Also prints the time per call
(syllables of a repeated text come from understanding.pinyin's cache; the first reading adds ~0.1 ms).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.understanding.test_emergency import ordinary_utterances  # noqa: E402
from understanding.emergency import KINDS, detect_emergency  # noqa: E402

DATA = ROOT / "benchmarks" / "data"


def _load(name: str) -> list[dict]:
    return [i for i in yaml.safe_load((DATA / name).read_text(encoding="utf-8")) or [] if isinstance(i, dict)]


def independent_emergencies() -> list[dict]:
    """{text, kind, source} of emergencies.yaml."""
    return _load("emergencies.yaml")


def realistic_turns() -> tuple[list[str], list[str]]:
    """(emergency first turns, non-emergency first turns) of realistic_first_turns.yaml."""
    turns = _load("realistic_first_turns.yaml")
    return ([t["text"] for t in turns if t.get("action") == "emergency"],
            [t["text"] for t in turns if t.get("action") != "emergency"])


def negatives() -> dict[str, list[str]]:
    """Non-emergency utterances by origin."""
    return {
        "non_emergencies.yaml": [i["text"] for i in _load("non_emergencies.yaml")],
        "realistic non-emergency turns": realistic_turns()[1],
        "ordinary (corpus, KB)": ordinary_utterances(),
    }


def _rate(n: int, d: int) -> str:
    return f"{n}/{d} = {100.0 * n / d:.1f} %" if d else "0/0"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quiet", action="store_true", help="figures only, no list of misses and false alarms")
    args = ap.parse_args()

    items = independent_emergencies()
    found: Counter[tuple[str, str]] = Counter()
    total: Counter[tuple[str, str]] = Counter()
    misses, wrong_kind = [], 0
    for it in items:
        hit = detect_emergency(it["text"])
        for key in (("kind", it["kind"]), ("source", it["source"])):
            total[key] += 1
            found[key] += hit is not None
        if hit is None:
            misses.append(it)
        elif hit.kind != it["kind"]:
            wrong_kind += 1
    print(f"emergencies.yaml: recall {_rate(len(items) - len(misses), len(items))}, "
          f"kind agrees on {_rate(len(items) - len(misses) - wrong_kind, len(items) - len(misses))} of those found")
    for kind in KINDS:
        print(f"  kind {kind:<9} {_rate(found['kind', kind], total['kind', kind])}")
    for src in sorted({k[1] for k in total if k[0] == "source"}):
        print(f"  source {src:<7} {_rate(found['source', src], total['source', src])}")
    real_pos, _ = realistic_turns()
    real_missed = [t for t in real_pos if detect_emergency(t) is None]
    found_real = len(real_pos) - len(real_missed)
    print(f"realistic_first_turns.yaml emergency turns: recall {_rate(found_real, len(real_pos))}")

    alarms, n_neg = [], 0
    for origin, texts in negatives().items():
        hits = [(t, h) for t in texts if (h := detect_emergency(t))]
        alarms += [(origin, t, h) for t, h in hits]
        n_neg += len(texts)
        print(f"false alarms, {origin}: {_rate(len(hits), len(texts))}")
    print(f"false alarms, all negatives: {_rate(len(alarms), n_neg)}")

    texts = [i["text"] for i in items] + [t for ts in negatives().values() for t in ts]
    for t in texts:
        detect_emergency(t)  # warm
    per = []
    for t in texts:  # best of 5 per utterance: the cost of the call, not of a busy machine's scheduler
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            detect_emergency(t)
            best = min(best, time.perf_counter() - start)
        per.append(best)
    per.sort()
    print(f"time per call over {len(per)} utterances (best of 5): mean {statistics.mean(per) * 1e3:.3f} ms, "
          f"p50 {per[len(per) // 2] * 1e3:.3f} ms, p95 {per[int(0.95 * len(per))] * 1e3:.3f} ms, "
          f"p99 {per[int(0.99 * len(per))] * 1e3:.3f} ms, max {per[-1] * 1e3:.3f} ms")

    if not args.quiet:
        for it in misses:
            print(f"MISS [{it['kind']}/{it['source']}] {it['text']}")
        for t in real_missed:
            print(f"MISS [realistic] {t}")
        for origin, t, h in alarms:
            print(f"FALSE ALARM [{origin}] {t}  -> {h.kind} {h.evidence}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
