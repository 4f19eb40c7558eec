"""Recogniser homophones in KB questions, put right against the KB's own words.

A recogniser writes what it heard with the wrong characters ("社宝卡丢的咋办" for 社保卡丢了咋办,
"身分正" for 身份证). Before searching, spans of the question that sound like a word the knowledge base
uses (its titles, phrasings, tags and synonyms) but are written differently are replaced with that word.
The sound comparison is the project's one (understanding/pinyin.py: toneless pinyin, the confusions of
Mandarin recognisers, no rewriting of real words); this module chooses the KB's vocabulary and keeps
the caller's function words: the KB's vocabulary is open (any word an editor writes), so a two-character
span holding a particle or pronoun ("没弄", "补了", "帮我") is never taken for a KB word (美容, 不热, 办我).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from understanding.pinyin import PinyinLexicon

_CJK = re.compile(r"[\u4e00-\u9fff]+")
MIN_LEN, MAX_LEN = 2, 6


class HomophoneCorrector:
    """`correct(text)`: the text with spans that sound like a KB word (and are not one) replaced by it."""

    def __init__(self, words: Iterable[str], said_as_written: Callable[[str], bool] | None = None) -> None:
        vocabulary = sorted({w for w in words if MIN_LEN <= len(w) <= MAX_LEN and _CJK.fullmatch(w)})
        self._lexicon = PinyinLexicon(vocabulary)
        self._as_written = said_as_written or (lambda _span: False)

    def correct(self, text: str) -> str:
        out, at = [], 0
        for fix in self._lexicon.find(text):
            if fix.heard == fix.term.text or (len(fix.heard) == 2 and self._as_written(fix.heard)):
                continue
            out += [text[at : fix.start], fix.term.text]
            at = fix.end
        out.append(text[at:])
        return "".join(out)
