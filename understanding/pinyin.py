"""Toneless pinyin, and domain terms found again in text the recogniser got wrong.

One pinyin helper for everything that compares sounds (the address matcher, the answer readers, the
lexicon): :func:`syllables` gives one toneless syllable per character (None for anything not Chinese),
:func:`syllable_similarity` knows the confusions of Mandarin recognisers and dialects (z/zh, c/ch,
s/sh, n/l, r/l, f/h; an/ang, en/eng, in/ing, ian/iang, uan/uang; ü/i as in 居/机), and
:class:`PinyinLexicon` finds windows of a text that sound like a domain term.

``PinyinLexicon(domain_terms()).correct("社宝卡丢的咋办")`` → ``Correction("社保卡丢的咋办", (Fix(...),))``.
Precision before recall: a window is rewritten only when it has at least two syllables, sounds the
same or nearly the same as the term (at most one syllable that differs by more than a known confusion),
is not itself a dictionary word, and does not cut a dictionary word of the text in two ("马路都" stays).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml
from pypinyin import lazy_pinyin

_INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x", "r", "z",
             "c", "s", "y", "w")
_INITIAL_CLASS = {"zh": "z", "ch": "c", "sh": "s", "n": "l", "r": "l", "f": "h"}
_FINAL_CLASS = {"ang": "an", "eng": "en", "ing": "in", "iang": "ian", "uang": "uan",
                "v": "i", "ve": "ie", "vn": "in", "van": "ian"}
_UMLAUT = {"u": "v", "ue": "ve", "un": "vn", "uan": "van"}  # after j, q, x, y the written u is ü
INITIAL_CONFUSION = 0.85
FINAL_CONFUSION = 0.85
UMLAUT_CONFUSION = 0.75  # ü/i: 居/机, 区/期
HALF = 0.35  # only the final in common (度/路)
INITIAL_ONLY = 0.2  # only the initial in common (都/灯): enough only inside a term of four syllables or more


@lru_cache(maxsize=512)
def syllables(text: str) -> tuple[str | None, ...]:
    """One toneless syllable per character of `text` (context decides heteronyms: 银行 → yin hang)."""
    # Characters without a reading come back as "" (pypinyin passes what `errors` returns through its tone
    # styling, which fails on None: a rare Han character such as 𪄇 made every search with it a 500).
    out = lazy_pinyin(text, errors=lambda s: [""] * len(s), v_to_u=False)
    if len(out) != len(text):  # never seen; fall back to one character at a time
        out = [lazy_pinyin(c, errors=lambda s: [""])[0] for c in text]
    return tuple(s if s and s.isascii() and s.isalpha() else None for s in out)


def toneless(text: str) -> str:
    """社保卡 → 'she bao ka' (characters that are not Chinese are left out)."""
    return " ".join(s for s in syllables(text) if s)


@lru_cache(maxsize=4096)
def split_syllable(syllable: str) -> tuple[str, str]:
    """'zhuang' → ('zh', 'uang'); 'ju' → ('j', 'v'); 'an' → ('', 'an')."""
    initial = next((i for i in _INITIALS if syllable.startswith(i) and len(syllable) > len(i)), "")
    final = syllable[len(initial):]
    if initial in ("j", "q", "x", "y"):
        final = _UMLAUT.get(final, final)
    return initial, final


@lru_cache(maxsize=4096)
def sound_class(syllable: str) -> str:
    """The syllable with known confusions folded together: zhu, zu → 'z|u'; jing, jin → 'j|in'."""
    initial, final = split_syllable(syllable)
    return _INITIAL_CLASS.get(initial, initial) + "|" + _FINAL_CLASS.get(final, final)


@lru_cache(maxsize=65536)
def syllable_similarity(a: str, b: str) -> float:
    """1 for the same syllable, 0.85 for one known confusion (0.72 for two), 0.3-0.35 when only the final is
    alike (recognisers keep vowels better than consonants: 度/路, 新/青), 0.2 when only the initial is alike
    (都/灯), 0 otherwise (选/身)."""
    if a == b:
        return 1.0
    ia, fa = split_syllable(a)
    ib, fb = split_syllable(b)
    initial = 1.0 if ia == ib else INITIAL_CONFUSION if _INITIAL_CLASS.get(ia, ia) == _INITIAL_CLASS.get(ib, ib) else 0.0
    if fa == fb:
        final = 1.0
    elif _FINAL_CLASS.get(fa, fa) == _FINAL_CLASS.get(fb, fb):
        final = UMLAUT_CONFUSION if "v" in fa + fb else FINAL_CONFUSION
    else:
        final = 0.0
    if initial and final:
        return initial * final
    return HALF * final if final else INITIAL_ONLY * initial


def similarity(a: Iterable[str], b: Iterable[str]) -> float:
    """Mean syllable similarity of two syllable sequences of the same length (0 when lengths differ)."""
    a, b = tuple(a), tuple(b)
    if len(a) != len(b) or not a:
        return 0.0
    return sum(syllable_similarity(x, y) for x, y in zip(a, b)) / len(a)


@dataclass(frozen=True)
class Term:
    text: str
    loose: bool = False  # one syllable may differ entirely (long fixed phrases: 人工客服 heard as 员工客服)
    fuzzy: bool = True  # False: found only as written (short names that sound like common words: 云湖/孕妇)
    written: bool = True  # False: found only by sound (青山区建设路 as a whole: written, its parts are found)
    payload: object = None  # what the caller of the lexicon wants back (the address matcher: places)
    syllables: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Fix:
    start: int
    end: int
    heard: str  # the text's window: 社宝卡
    term: Term  # what it was taken for: 社保卡
    score: float  # 1.0 for the same syllables


@dataclass(frozen=True)
class Correction:
    text: str
    fixes: tuple[Fix, ...] = ()


#: Least mean similarity to take a window for a term, by number of syllables (4 and more: the last one).
STRICT = {2: 0.92, 3: 0.8, 4: 0.75}


class PinyinLexicon:
    """Domain terms, indexed by sound, found again in text (exact homophones first)."""

    def __init__(self, terms: Iterable[str | Term], min_score: dict[int, float] | None = None) -> None:
        self.min_score = dict(min_score or STRICT)
        self.terms: dict[str, Term] = {}
        # (length, which pair, class, class) → terms. At most one syllable of a term may be heard wrong, so
        # syllables 0 and 1, 0 and 2, or 1 and 2 are always heard right (up to a confusion): three lookups.
        self._index: dict[tuple[int, int, str, str], list[Term]] = {}
        for t in terms:
            term = t if isinstance(t, Term) else Term(t)
            sy = syllables(term.text)
            if len(sy) < 2 or None in sy or term.text in self.terms:
                continue
            term = Term(term.text, term.loose, term.fuzzy, term.written, term.payload, tuple(sy))  # type: ignore[arg-type]
            self.terms[term.text] = term
            for key in _pair_keys([sound_class(s) for s in term.syllables]):
                self._index.setdefault(key, []).append(term)
        self._lengths = sorted({len(t.syllables) for t in self.terms.values()}, reverse=True)

    def threshold(self, n: int) -> float:
        return self.min_score.get(n) or self.min_score[max(self.min_score)]

    def find(self, text: str, *, words: bool = True) -> list[Fix]:
        """Non-overlapping windows that are a term or sound like one, best first then left to right.

        Exact occurrences come back with score 1 and ``heard == term.text``. With `words` (the default),
        a window that is itself a dictionary word, or that cuts one in two, is left alone.
        """
        exact = self._exact(text)
        sy = syllables(text)
        keys = [sound_class(s) if s else None for s in sy]
        candidates: list[Fix] = []
        for n in self._lengths:
            floor = self.threshold(n)
            for i in range(len(text) - n + 1):
                window = keys[i:i + n]
                if None in window:
                    continue
                found: dict[str, Term] = {}
                for key in _pair_keys(window):  # type: ignore[arg-type]
                    for term in self._index.get(key, ()):
                        found[term.text] = term
                for term in found.values():
                    if not term.fuzzy or not _boundaries_kept(text, i, term.text):
                        continue
                    score = self._score(sy[i:i + n], term)  # type: ignore[arg-type]
                    if score >= floor and _keeps_exact(text, i, term.text, exact):
                        candidates.append(Fix(i, i + n, text[i:i + n], term, score))
        candidates.sort(key=lambda f: (-f.score, -(f.end - f.start), f.start))
        chosen = list(exact)
        for f in candidates:
            clash = [c for c in chosen if c.start < f.end and f.start < c.end]
            if any(all(c is not e for e in exact) for c in clash):
                continue  # overlaps a better window found by sound
            if words and not _free_to_rewrite(text, f.start, f.end, {(c.start, c.end) for c in clash}, f.term.loose):
                continue
            chosen = [c for c in chosen if c not in clash] + [f]  # 员工客服 supersedes the exact 客服 it keeps
        return sorted(chosen, key=lambda f: f.start)

    def correct(self, text: str) -> Correction:
        """`text` with every window that sounds like a term (and is not one already) replaced by it."""
        fixes = tuple(f for f in self.find(text) if f.heard != f.term.text)
        out, at = [], 0
        for f in fixes:
            out += [text[at:f.start], f.term.text]
            at = f.end
        out.append(text[at:])
        return Correction("".join(out), fixes)

    def _exact(self, text: str) -> list[Fix]:
        hits = sorted((t for t in self.terms.values() if t.written and t.text in text), key=lambda t: -len(t.text))
        taken = [False] * len(text)
        out: list[Fix] = []
        for term in hits:
            start = text.find(term.text)
            while start >= 0:
                end = start + len(term.text)
                if not any(taken[start:end]):
                    taken[start:end] = [True] * (end - start)
                    out.append(Fix(start, end, term.text, term, 1.0))
                start = text.find(term.text, start + 1)
        return out

    @staticmethod
    def _score(heard: tuple[str, ...], term: Term) -> float:
        sims = [syllable_similarity(a, b) for a, b in zip(heard, term.syllables)]
        wrong = sum(1 for s in sims if s < INITIAL_CONFUSION * FINAL_CONFUSION)
        if wrong > 1 or (wrong and len(sims) < 3):
            return 0.0
        floor = 0.0 if term.loose else INITIAL_ONLY if len(sims) >= 4 else HALF * INITIAL_CONFUSION
        if any(s < floor for s in sims):
            return 0.0
        return sum(sims) / len(sims)


# -- real words of the text are not rewritten ---------------------------------------------------------

_WORD_FREQ = 5  # jieba dictionary frequency from which a string is a word of the language


@lru_cache(maxsize=1)
def _jieba():  # type: ignore[no-untyped-def]
    import jieba

    jieba.setLogLevel(60)
    jieba.initialize()
    return jieba.dt


def is_word(s: str) -> bool:
    return (_jieba().FREQ.get(s) or 0) >= _WORD_FREQ


@lru_cache(maxsize=512)
def _word_spans(text: str) -> tuple[tuple[int, int], ...]:
    """Where jieba (dictionary only, no guessing) finds words of two characters or more."""
    spans, at = [], 0
    for w in _jieba().cut(text, HMM=False):
        if len(w) > 1:
            spans.append((at, at + len(w)))
        at += len(w)
    return tuple(spans)


def _pair_keys(keys: list[str]) -> list[tuple[int, int, str, str]]:
    n = len(keys)
    if n == 2:
        return [(2, 0, keys[0], keys[1])]
    return [(n, 0, keys[0], keys[1]), (n, 1, keys[0], keys[2]), (n, 2, keys[1], keys[2])]


# Characters that, at the edge of a window, are words of their own: "没气" (no gas) is not 煤气.
_FUNCTION_CHARS = set("没不是的了在有我你他她它这那个都也就还又很和跟把被给吗呢吧啊")


def _boundaries_kept(text: str, start: int, term: str) -> bool:
    """A window may not begin or end with a function character that the term does not have there."""
    first, last = text[start], text[start + len(term) - 1]
    return not (first in _FUNCTION_CHARS and first != term[0] or last in _FUNCTION_CHARS and last != term[-1])


def _keeps_exact(text: str, start: int, term: str, exact: list[Fix]) -> bool:
    """A window over an exact term occurrence must contain it whole and keep it (员工客服 → 人工客服 keeps 客服)."""
    end = start + len(term)
    for f in exact:
        if f.start < end and start < f.end:
            if f.start < start or f.end > end or term[f.start - start:f.end - start] != f.heard:
                return False
    return True


def _free_to_rewrite(text: str, start: int, end: int, kept: set[tuple[int, int]] = frozenset(),  # type: ignore[assignment]
                     loose: bool = False) -> bool:
    """Whether the window may be rewritten: it is no word itself, cuts no word of the text in two ("马路都":
    路都 is not free), and (unless the term is loose) is not made of words only ("网上办理" is no 网上办事).
    Words of the window that the term keeps (`kept`) do not count."""
    if is_word(text[start:end]):
        return False
    spans = [sp for sp in _word_spans(text) if sp not in kept]
    if any(a < start < b or a < end < b for a, b in spans):
        return False
    if loose:
        return True
    covered = sum(b - a for a, b in spans if start <= a and b <= end) + sum(b - a for a, b in kept)
    return covered < end - start


# -- the hotline's own terms -----------------------------------------------------------------------------

KB_SEED_FILE = Path(__file__).resolve().parents[1] / "knowledge_base" / "seed" / "entries.yaml"

#: Words of the hotline itself that callers say and recognisers garble.
HOTLINE_TERMS = (
    "人工", "客服", "人工客服", "人工服务", "转人工", "找人工", "接线员", "工单", "工单号", "催办", "撤单", "撤销",
    "投诉", "举报", "咨询", "求助", "建议", "表扬", "回访", "办结", "进度", "查询进度",
    "路灯", "路灯不亮", "井盖", "停水", "停电", "停气", "暖气", "暖气不热", "供暖", "燃气", "天然气", "煤气",
    "漏水", "漏气", "物业", "噪音", "扰民", "垃圾", "拖欠工资", "欠薪", "违章停车", "消防通道",
    "社保", "社保卡", "社会保障卡", "医保", "医保卡", "公积金", "住房公积金", "身份证", "居住证", "户口", "户口本",
    "养老金", "养老保险", "低保", "最低生活保障", "失业金", "残疾证", "营业执照", "不动产", "房产证",
)


def domain_terms() -> list[str]:
    """Terms worth correcting to: place names (gazetteer), category names, KB tags, hotline words."""
    return list(_domain_terms())


@lru_cache(maxsize=1)
def _domain_terms() -> tuple[str, ...]:
    from understanding.categories import load_categories
    from understanding.gazetteer import load_gazetteer

    gazetteer = load_gazetteer()
    terms: dict[str, None] = {}
    for name in gazetteer.names():
        terms[name] = None
    for d in gazetteer.districts:
        terms[d.short] = None
    for c in load_categories().values():  # names only: the keywords hold misspellings on purpose (紧盖)
        for part in c.name.split("/"):
            terms[part] = None
    with open(KB_SEED_FILE, encoding="utf-8") as fh:
        for entry in yaml.safe_load(fh) or ():
            for tag in entry.get("tags") or ():
                tag = str(tag)
                if 2 <= len(tag) <= 8 and all("\u4e00" <= c <= "\u9fff" for c in tag):
                    terms[tag] = None
    for word in HOTLINE_TERMS:
        terms[word] = None
    return tuple(terms)


#: Fixed phrases distinctive enough that one syllable heard entirely wrong still leaves no doubt.
LOOSE_TERMS = ("人工客服", "人工服务")


def hotline_lexicon_terms() -> list[Term]:
    """domain_terms() as lexicon terms (LOOSE_TERMS loose)."""
    return [Term(t, loose=t in LOOSE_TERMS) for t in domain_terms()]


@lru_cache(maxsize=1)
def default_lexicon() -> PinyinLexicon:
    """The lexicon of :func:`domain_terms`, built once (about 0.1 s)."""
    return PinyinLexicon(hotline_lexicon_terms())
