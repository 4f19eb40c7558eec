"""Life-safety safety net: fire, gas, medical, violence, … detected on every caller turn.

Runs beside the intent classifier, never instead of it, and errs toward safety: a caller in danger
must never be asked to rephrase or be filed as a complaint. `detect_emergency` returns the kind, the
number(s) to dial and the first sentence the caller hears; the dialogue layer adds the transfer.

How it reads a turn (cue lists and guards live in ``emergency_cues.yaml`` beside this file):

* the text is normalised (understanding.normalize: traditional → simplified; then digits → 一二三,
  punctuation dropped) and read twice: as characters and as toneless pinyin (understanding.pinyin),
  one syllable per character, zh/ch/sh folded into z/c/s;
* a cue is a Chinese regex matched on the characters; a "heard" cue is also matched on the pinyin
  (transpiled: each character becomes the syllables it may be heard as, plus a few recogniser
  confusions: 着 zhao ~ 搅 jiao), keeping at least half of its own characters, so "搅火冷" is 着火了
  and "煤器味" is 煤气味 but "再见" is not "栽江";
* hard guards veto a cue they overlap (idioms "热死了", 灭火器, 跳楼价, 打不着火, 期货 for 起火);
  soft guards veto a cue near them (hypothetical 万一…, past 上次…/…过, policy …收费/培训, habitual 老是…),
  unless the turn also says the danger is now (救命, 正在, 刚才, 快叫…);
* a strong cue alone is an emergency; weak cues (冒烟, 摔倒, 受伤…) need another cue or an urgent word.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from pypinyin import Style, lazy_pinyin

from understanding.normalize import normalize
from understanding.pinyin import syllables

CUES_FILE = Path(__file__).with_name("emergency_cues.yaml")
KINDS = ("fire", "gas", "medical", "crime", "traffic", "suicide", "missing", "trapped", "drowning")
STRONG = 1.0


@dataclass(frozen=True, slots=True)
class EmergencyHit:
    kind: str  # one of KINDS
    dial: tuple[str, ...]  # numbers to call, most important first: ("119",), ("110", "120")
    reply: str  # first sentence the caller hears (what to do now, the number in spoken digits)
    evidence: tuple[str, ...]  # the words that matched: "text:着火" (as written), "pinyin:搅火" (by sound)


# -- reading: characters and toneless pinyin ------------------------------------------------------
# The caller's text is read in context by understanding.pinyin.syllables; a cue's characters one by one
# (with the other readings the cue file lists), folded a little less than syllable_similarity does:
# its n/l, r/l, f/h and -n/-ng merges made ordinary words sound like cues (转人 like 撞人).

_KEEP = re.compile(r"[^\u3400-\u9fffa-z0-9]")
_DIGITS = str.maketrans("0123456789幺〇", "零一二三四五六七八九一零")


def _clean(text: str) -> str:
    """Normalised, lower-case, digits as 一二三, only Chinese characters and letters left (one per syllable)."""
    return _KEEP.sub("", normalize(text).lower().translate(_DIGITS))


@lru_cache(maxsize=8192)
def _syllable(ch: str) -> str:
    """The folded toneless syllable a cue character is most often read as (ASCII stays itself)."""
    return _fuzzy(lazy_pinyin(ch, style=Style.NORMAL)[0]) if ch >= "\u3400" else ch


@lru_cache(maxsize=4096)
def _readings(ch: str) -> tuple[str, ...]:
    """The syllables a cue character may be heard as: its usual reading, the other readings listed in the
    cue file (着 zhao, 血 xie: only common ones, rare readings cause false matches), and confusions."""
    if ch < "\u3400":
        return (ch,)
    out = {_syllable(ch)} | {_fuzzy(r) for r in _data()["readings"].get(ch, ())}
    for r in list(out):
        out.update(_fuzzy(c) for c in _data()["confusions"].get(r, ()))
    return tuple(sorted(out))


def _fuzzy(s: str) -> str:
    """zh→z ch→c sh→s, what southern Mandarin and the recogniser blur most (the cue file's
    confusions add the few other swaps that matter)."""
    return re.sub(r"^([zcs])h", r"\1", s)


def _pinyin_line(text: str) -> tuple[str, list[int]]:
    """"zao huo le " for 着火了 (readings in context, from understanding.pinyin), and where each
    character's syllable starts in it."""
    starts, parts, pos = [], [], 0
    for ch, read in zip(text, syllables(text)):
        syl = _fuzzy(read) if read else ch
        starts.append(pos)
        parts.append(syl + " ")
        pos += len(syl) + 1
    return "".join(parts), starts


# -- patterns: one Chinese regex, matched on characters and on pinyin ---------------------------

_TOKEN = re.compile(r"\\.|\[\^?[^\]]*\]|\(\?[:!=]|\{\d*,?\d*\}\??|[()|?*+.^$]|.", re.S)


def _to_pinyin(pattern: str) -> str:
    """Transpile a Chinese regex to one over the pinyin line: each character becomes its syllables."""
    out = []
    for tok in _TOKEN.findall(pattern):
        if tok.startswith("[^"):
            out.append(f"(?:(?!{_alts(tok[2:-1])} )\\S+ )")
        elif tok.startswith("["):
            out.append(f"(?:{_alts(tok[1:-1])} )")
        elif tok == ".":
            out.append(r"(?:\S+ )")
        elif tok == "\\d":
            out.append(r"(?:\S+ )")
        elif len(tok) == 1 and (tok >= "\u3400" or tok.isalnum()):
            out.append(f"(?:{_alts(tok)} )")
        elif tok.startswith("(?<"):
            raise ValueError(f"lookbehind cannot be transpiled: {pattern}")
        else:
            out.append(tok)
    return r"(?<!\S)(?:" + "".join(out) + ")"


def _alts(chars: str) -> str:
    return "(?:" + "|".join(sorted({r for c in chars for r in _readings(c)})) + ")"


@dataclass(frozen=True)
class _Cue:
    kind: str
    weight: float
    source: str
    text: re.Pattern[str] | None  # matched on the characters
    pinyin: re.Pattern[str] | None = None  # "heard" cues: matched on the pinyin …
    chars: frozenset[str] = frozenset()  # … keeping half its characters among these (the cue's own)
    unless: re.Pattern[str] | None = None  # the cue does not count in a turn where this matches


@dataclass(frozen=True)
class _Context:
    name: str
    before: int  # the guard must end at most this many characters before the cue starts
    after: int  # … or start at most this many characters after the cue ends
    pattern: re.Pattern[str]


@lru_cache(maxsize=1)
def _data() -> dict:
    return yaml.safe_load(CUES_FILE.read_text(encoding="utf-8"))


def _expand(pattern: str, macros: dict[str, str]) -> str:
    for _ in range(3):  # macros may use macros
        pattern = re.sub(r"\{([A-Z_]+)\}", lambda m: macros[m.group(1)], pattern)
    return pattern


def _alternatives(pattern: str) -> list[str]:
    """A regex split at its top-level '|'."""
    out, depth, start, in_class = [], 0, 0, False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            out.append(pattern[start:i])
            start = i + 1
        i += 1
    return out + [pattern[start:]]


@dataclass(frozen=True)
class _Rules:
    cues: list[_Cue]
    hard: re.Pattern[str]  # every hard guard, matched at every position (group 1)
    contexts: list[_Context]
    now: re.Pattern[str]  # the danger is now: soft guards do not apply
    urgent: re.Pattern[str]  # lifts a weak cue
    distress: re.Pattern[str]  # a cry for help alone
    not_distress: re.Pattern[str]  # … unless the turn is a complaint
    priority: dict[str, int]
    kinds: dict[str, dict]


@lru_cache(maxsize=1)
def _rules() -> _Rules:
    data = _data()
    macros = {k: "(?:" + v + ")" for k, v in data["macros"].items()}

    def rx(pattern: str) -> re.Pattern[str]:
        return re.compile(_expand(pattern, macros))

    cues = []
    for kind, spec in data["kinds"].items():
        for key, weight, heard in (("strong", STRONG, False), ("weak", 0.5, False),
                                   ("heard", STRONG, True), ("heard_weak", 0.5, True)):
            for entry in spec.get(key, ()):
                src, unless = (entry["cue"], rx(entry["unless"])) if isinstance(entry, dict) else (entry, None)
                if heard:
                    pat = _expand(src, macros)
                    own = frozenset(re.findall(r"[\u3400-\u9fff]", pat))
                    cues.append(_Cue(kind, weight, src, None, re.compile(_to_pinyin(pat)), own, unless))
                else:
                    cues.append(_Cue(kind, weight, src, rx(src), unless=unless))
    # Every guard is tried at every position (a lookahead finds overlapping matches), longest source
    # first: in a plain alternation a short guard (烟囱) would hide a longer one (烟囱…冒黑烟).
    alts = sorted({a for g in data["hard_guards"] for a in _alternatives(_expand(g, macros))}, key=len, reverse=True)
    hard = re.compile("(?=(" + "|".join(alts) + "))")
    contexts = [_Context(c["name"], c.get("before", -1), c.get("after", -1), rx(c["pattern"]))
                for c in data["context_guards"]]
    priority = {k: i for i, k in enumerate(data["priority"])}
    return _Rules(cues, hard, contexts, rx(data["now"]), rx(data["urgent"]), rx(data["distress"]),
                  rx(data["not_distress"]), priority, data["kinds"])


# -- detection -------------------------------------------------------------------------------------


def detect_emergency(text: str) -> EmergencyHit | None:
    """The emergency a caller's turn describes, or None. Cheap enough for every turn (well under 1 ms)."""
    t = _clean(text or "")
    if len(t) < 2:
        return None
    r = _rules()
    line, starts = _pinyin_line(t)
    vetoes: list[tuple[int, int]] | None = None  # worked out only once a cue matches (most turns: never)
    soft: list[tuple[_Context, tuple[int, int]]] = []
    is_now = False
    scores: dict[str, float] = {}
    evidence: dict[str, list[str]] = {}
    counted: set[tuple[str, int, int]] = set()  # a heard cue and a text cue on the same words count once
    for cue in r.cues:
        for span, how in _spans(cue, t, line, starts):
            if vetoes is None:
                vetoes = [m.span(1) for m in r.hard.finditer(t)]
                soft = [(c, m.span()) for c in r.contexts for m in c.pattern.finditer(t)]
                is_now = bool(r.now.search(t))
            if any(a < span[1] and span[0] < b for a, b in vetoes):
                continue
            if not is_now and any(_near(ctx, g, span) for ctx, g in soft):
                continue
            if (cue.kind, *span) not in counted:
                counted.add((cue.kind, *span))
                scores[cue.kind] = scores.get(cue.kind, 0.0) + cue.weight
                evidence.setdefault(cue.kind, []).append(f"{how}:{t[span[0]:span[1]]}")
            break  # one span per cue is enough

    if not scores:
        m = r.distress.search(t)
        if m is None or r.not_distress.search(t):  # "救命啊 楼上装修天天砸墙": a complaint, not a cry
            return None
        scores, evidence = {"crime": STRONG}, {"crime": [f"text:{m.group()}"]}
    best = max(scores.values())
    if best < STRONG and not (sum(scores.values()) >= STRONG or r.urgent.search(t) or r.distress.search(t)):
        return None  # weak signals need company: another cue or an urgent word (err toward safety)
    ranked = sorted(scores, key=lambda k: (-min(scores[k], STRONG), r.priority[k]))
    kind = ranked[0]
    dial: list[str] = []
    for k in ranked:
        if k == kind or scores[k] >= STRONG:
            dial += [d for d in r.kinds[k]["dial"] if d not in dial]
    ev = tuple(dict.fromkeys(e for k in ranked for e in evidence[k]))
    return EmergencyHit(kind, tuple(dial), r.kinds[kind]["reply"], ev)


def _spans(cue: _Cue, text: str, line: str, starts: list[int]):
    """Character spans where the cue matches: a pattern on the characters, a heard word on the pinyin.

    A heard cue must keep at least half of its characters (搅火 for 着火, 流写 for 流血, 俏我家门锁 for
    撬我家门锁): syllables alike by sound alone are too often other words (再见 is not 栽江).
    Matches may overlap (searched again from the next character), so that a guard inside a long match
    (…打电话来说…孩子就不见了) does not hide a shorter one after it."""
    if cue.unless is not None and cue.unless.search(text):
        return
    if cue.text is not None:
        pos = 0
        while (m := cue.text.search(text, pos)) is not None and m.end() > m.start():
            yield m.span(), "text"
            pos = m.start() + 1
        return
    for m in cue.pinyin.finditer(line):
        a, b = bisect_right(starts, m.start()) - 1, bisect_right(starts, m.end() - 1)
        if b > a and 2 * sum(c in cue.chars for c in text[a:b]) >= b - a:
            yield (a, b), "pinyin"


def _near(ctx: _Context, guard: tuple[int, int], cue: tuple[int, int]) -> bool:
    """A "before" guard counts up to `before` characters ahead of the cue or inside it (a cue with a gap,
    电梯…困人, may hold 老是); an "after" guard up to `after` characters behind it."""
    if ctx.before >= 0 and guard[0] < cue[1] and cue[0] - guard[1] <= ctx.before:
        return True
    return ctx.after >= 0 and guard[0] >= cue[1] - 1 and guard[0] - cue[1] <= ctx.after
