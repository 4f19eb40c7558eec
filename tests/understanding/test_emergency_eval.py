"""The emergency safety net on the independent evaluation set (benchmarks/data/, another author).

Recall 100 % on emergencies.yaml and on the `action: emergency` turns of realistic_first_turns.yaml;
false alarms at most 1 % over non_emergencies.yaml, the other realistic first turns and the ordinary
utterances of test_emergency.py (>= 1,000 in all). `benchmarks/emergency_recall.py` prints the details.
"""

from __future__ import annotations

import pytest

from benchmarks.emergency_recall import DATA, independent_emergencies, negatives, realistic_turns
from understanding.emergency import detect_emergency



def test_every_independent_emergency_is_caught() -> None:
    items = independent_emergencies()
    assert len(items) >= 150
    missed = [(i["kind"], i["source"], i["text"]) for i in items if detect_emergency(i["text"]) is None]
    assert not missed, f"{len(missed)}/{len(items)} missed: {missed}"


def test_every_realistic_emergency_turn_is_caught() -> None:
    turns, _ = realistic_turns()
    missed = [t for t in turns if detect_emergency(t) is None]
    assert not missed, missed


def test_false_alarms_at_most_one_percent() -> None:
    texts = [t for ts in negatives().values() for t in ts]
    assert len(texts) >= 1000
    alarms = [(t, h.kind, h.evidence) for t in texts if (h := detect_emergency(t))]
    assert len(alarms) <= 0.01 * len(texts), f"{len(alarms)}/{len(texts)}: {alarms}"
    independent = set(negatives()["non_emergencies.yaml"])
    assert not [a for a in alarms if a[0] in independent], alarms
