"""The emergency safety net on its author's development set and on the project's ordinary utterances.

Recall must be 100 % (a life-safety call is never asked to rephrase); false alarms at most 1 % over the
tricky negatives of the dev set plus >= 1,000 ordinary turns (nlu/corpus lines under non-emergency
intents, knowledge-base questions). The independent evaluation is in test_emergency_eval.py.
"""

from __future__ import annotations

import random
import re
import statistics
import time
from pathlib import Path

import pytest
import yaml

from understanding.emergency import KINDS, EmergencyHit, detect_emergency

ROOT = Path(__file__).resolve().parents[2]
DEV_FILE = Path(__file__).with_name("emergency_dev.yaml")
SPOKEN_NUMBERS = {"110": "一一零", "119": "一一九", "120": "一二零", "122": "一二二"}
_FILL = {"district": "青山区", "street": "人民路街道", "road": "人民路", "landmark": "馨苑小区",
         "ticket": "2026010100001", "phone": "13800000000"}
# Knowledge-base entries that are about emergencies ("屋里有煤气味咋整"): raising the alarm there is right.
_KB_EMERGENCY_ENTRIES = {"hotline-emergency", "gas-leak-safety"}


def dev_set() -> tuple[list[tuple[str, str, str]], list[str]]:
    """([(text, kind, source)], [non-emergency text]) of the dev set."""
    data = yaml.safe_load(DEV_FILE.read_text(encoding="utf-8"))
    emergencies = [(t, kind, src) for kind, by_src in data["emergencies"].items()
                   for src, texts in by_src.items() for t in texts]
    return emergencies, list(data["non_emergencies"])


def ordinary_utterances() -> list[str]:
    """Non-emergency turns the project already has: corpus lines of non-emergency intents, KB questions."""
    out: list[str] = []
    intent = ""
    for f in sorted((ROOT / "nlu" / "corpus").glob("*.txt")):
        for raw in f.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if line.startswith("## "):
                intent = line[3:].strip()
            elif line and not line.startswith("#") and not intent.startswith("emergency"):
                line = re.sub(r"\{(\w+)\}", lambda m: _FILL.get(m.group(1), ""), line)
                out.append(re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line))
    entries = yaml.safe_load((ROOT / "knowledge_base" / "seed" / "entries.yaml").read_text(encoding="utf-8"))
    for e in entries:
        if e.get("key") not in _KB_EMERGENCY_ENTRIES:
            out += [q for q in [e.get("question"), *(e.get("alt_questions") or [])] if q]
    return out


EMERGENCIES, NON_EMERGENCIES = dev_set()


def test_dev_set_size_and_spread() -> None:
    assert len(EMERGENCIES) >= 150 and len(NON_EMERGENCIES) >= 300
    assert {k for _, k, _ in EMERGENCIES} == set(KINDS)
    assert sum(src == "asr" for *_, src in EMERGENCIES) >= 40
    assert len(ordinary_utterances()) >= 1000


def test_recall_is_total_on_the_dev_set() -> None:
    missed = [(kind, src, t) for t, kind, src in EMERGENCIES if detect_emergency(t) is None]
    assert not missed, f"{len(missed)} emergencies missed: {missed}"


def test_kind_is_mostly_right() -> None:
    wrong = [(t, kind, hit.kind) for t, kind, _ in EMERGENCIES if (hit := detect_emergency(t)) and hit.kind != kind]
    assert len(wrong) <= 0.05 * len(EMERGENCIES), wrong


def test_false_alarms_stay_rare() -> None:
    negatives = NON_EMERGENCIES + ordinary_utterances()
    alarms = [(t, h.kind, h.evidence) for t in negatives if (h := detect_emergency(t))]
    assert len(alarms) <= 0.01 * len(negatives), f"{len(alarms)}/{len(negatives)}: {alarms}"
    tricky = [a for a in alarms if a[0] in NON_EMERGENCIES]
    assert len(tricky) <= 0.01 * len(NON_EMERGENCIES), tricky


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # the calls of issue 12 that were asked to rephrase or filed as complaints
        ("有个人突然倒下了 叫他没反应 好像没有呼吸了", "medical"),
        ("我被人打了 头上一直在流血", "crime"),
        ("家里煤气味特别大", "gas"),
        ("邻居家门里一直往外冒烟", "fire"),
        ("有人掉到河里了", "drowning"),
        # the recogniser's homophones
        ("搅火冷", "fire"),
        ("我家找火了", "fire"),
        ("着伙了", "fire"),
        ("家里有股煤器味", "gas"),
        ("我爸晕到了", "medical"),
        ("腿上一直流写", "medical"),
        ("他说要跳漏", "suicide"),
        ("樓道裡著火了", "fire"),  # traditional characters
    ],
)
def test_issue_examples(text: str, kind: str) -> None:
    hit = detect_emergency(text)
    assert hit is not None and hit.kind == kind, (text, hit)


@pytest.mark.parametrize(
    "text",
    ["燃气费怎么交", "消防通道被占了", "我想咨询急救培训", "灭火器过期了", "上次着火的那栋楼什么时候修",
     "救护车收费", "急救电话是多少", "医院挂号", "打架的视频", "烟花爆竹", "抽烟", "热死了", "饿死了",
     "气死了", "笑死了", "死胡同", "跳槽", "煤气灶打不着火", "去年着过火", "我想找火车站", "", "嗯", "着"],
)
def test_brief_non_emergencies(text: str) -> None:
    assert detect_emergency(text) is None


def test_hit_is_what_the_caller_needs() -> None:
    hits = {kind: detect_emergency(t) for t, kind, _ in EMERGENCIES}  # the last utterance of each kind
    for kind in KINDS:
        hit = hits[kind]
        assert isinstance(hit, EmergencyHit) and hit.kind == kind
        assert hit.dial and hit.evidence
        first = SPOKEN_NUMBERS[hit.dial[0]]
        assert first in hit.reply, (kind, hit.reply)  # the number, spoken digit by digit
        assert not re.search(r"[0-9]", hit.reply) and len(hit.reply) <= 70, hit.reply
    assert detect_emergency("着火了").dial == ("119",)  # type: ignore[union-attr]
    assert detect_emergency("有人晕倒了").dial == ("120",)  # type: ignore[union-attr]
    assert detect_emergency("有人持刀伤人").dial[0] == "110"  # type: ignore[union-attr]
    assert set(detect_emergency("有人溺水了").dial) == {"110", "120"}  # type: ignore[union-attr]
    assert "不要开关电" in detect_emergency("屋里一股燃气味").reply  # type: ignore[union-attr]
    assert detect_emergency("救命啊").dial == ("110",)  # type: ignore[union-attr]  # a cry alone


def test_recogniser_homophones_of_the_cue_words() -> None:
    """Each dev emergency with one character of its cue word swapped for a same-sounding one (the
    recogniser's typical slip), three draws each: nearly all must still be caught."""
    from pypinyin import lazy_pinyin

    corpus = (ROOT / "nlu" / "corpus").glob("*.txt")
    chars = {c for f in corpus for c in f.read_text(encoding="utf-8") if "\u4e00" <= c <= "\u9fff"}
    same_sound: dict[str, list[str]] = {}
    for c in sorted(chars):
        same_sound.setdefault(lazy_pinyin(c)[0], []).append(c)
    rng = random.Random(12345)
    tried, missed = 0, []
    for text, _, src in EMERGENCIES:
        hit = detect_emergency(text)
        if src != "text" or hit is None:
            continue
        word = hit.evidence[0].split(":", 1)[1]
        for _ in range(3):
            i = rng.randrange(len(word))
            others = [c for c in same_sound.get(lazy_pinyin(word[i])[0], []) if c != word[i]]
            if others:
                garbled = text.replace(word, word[:i] + rng.choice(others) + word[i + 1:], 1)
                tried += 1
                if detect_emergency(garbled) is None:
                    missed.append(garbled)
    assert tried >= 200 and len(missed) <= 0.1 * tried, (tried, missed)


def test_fast_enough_for_every_turn() -> None:
    texts = ordinary_utterances() + [t for t, *_ in EMERGENCIES]
    for t in texts[:200]:
        detect_emergency(t)  # warm the caches
    per_call = []
    for _ in range(3):
        start = time.perf_counter()
        for t in texts:
            detect_emergency(t)
        per_call.append((time.perf_counter() - start) / len(texts))
    # <= 1 ms is the target on an idle core; the bound leaves room for a loaded CI machine
    assert statistics.median(per_call) < 2e-3, per_call
