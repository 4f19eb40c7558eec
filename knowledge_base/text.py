"""Chinese text analysis for search: jieba segmentation, synonym folding, filler-word removal, bigrams."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import jieba
import yaml

jieba.setLogLevel(logging.WARNING)

# Words that carry no meaning for search: fillers a caller says and a recogniser keeps.
STOPWORDS = frozenset(
    "的 了 吗 呢 吧 啊 呀 嘛 哦 哈 嗯 呃 额 那个 这个 就是 就是说 然后 那么 一下 一个 我 我们 俺 你 您 你们 他 她 它 "
    "请问 想 想问 问 问一下 请 麻烦 是 有 在 和 跟 与 及 或 或者 都 也 还 要 能 会 可以 可不可以 该 应该 怎么 怎样 如何 "
    "什么 啥 哪 哪里 哪儿 多少 几 吗 么 呐 哎 喂 好 对 给 把 被 让 到 去 来 上 下 里 中 为 为了 这 那 个 些 吧 着 过 "
    "又 再 还是 现在 今天 一些 需要 知道 告诉 帮 帮忙 咨询 问问 办 一 不 没 没有 得 地 之 其 之后 时候 怎么样 叫 名字 明天 昨天 晚上 早上 上午 下午 最近 刚才".split()
)
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
_CJK = re.compile(r"[\u4e00-\u9fff]")


def said_as_written(span: str) -> bool:
    """A short span holding a function word ("去签", "帮我") is what the caller said, not a recogniser's
    slip for a KB word that sounds the same (取钱, 办我)."""
    return any(ch in STOPWORDS for ch in span)


def load_synonyms(path: Path | None) -> list[list[str]]:
    if path is None or not Path(path).exists():
        return []
    groups = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []
    return [[str(w).strip() for w in g if str(w).strip()] for g in groups if isinstance(g, list) and g]


class Analyzer:
    """Turns text into search terms. One instance per process (jieba's dictionary costs ~1 s to load)."""

    def __init__(self, synonyms: list[list[str]] | None = None) -> None:
        self._jieba = jieba.Tokenizer()
        self._canon: dict[str, str] = {}
        for group in synonyms or []:
            canonical = group[0]
            for word in group:
                self._canon.setdefault(word, canonical)
        self.add_words(self._canon)

    def add_words(self, words: Iterable[str]) -> None:
        for word in words:
            if len(word) >= 2 and _CJK.search(word):
                self._jieba.add_word(word, freq=20000)

    def canonical(self, word: str) -> str:
        return self._canon.get(word, word)

    def words(self, text: str) -> list[str]:
        """Meaningful words as written (no synonym folding): the vocabulary the homophone corrector knows."""
        return [w for raw in self._jieba.cut_for_search(text.lower()) if (w := raw.strip()) and w not in STOPWORDS
                and not _PUNCT.fullmatch(w)]

    def known_words(self) -> Iterable[str]:
        """Every surface form of the synonym groups."""
        return self._canon.keys()

    def terms(self, text: str) -> list[str]:
        """Meaningful words, synonyms folded to one form; search-mode cut also yields sub-words."""
        out: list[str] = []
        for raw in self._jieba.cut_for_search(text.lower()):
            word = raw.strip()
            if not word or _PUNCT.fullmatch(word) or word in STOPWORDS:
                continue
            out.append(self.canonical(word))
        return out

    @staticmethod
    def bigrams(text: str) -> list[str]:
        """Character bigrams of the CJK runs: robust to recogniser homophones and unseen words."""
        grams: list[str] = []
        for run in re.findall(r"[\u4e00-\u9fff]+", text):
            grams.extend(run[i : i + 2] for i in range(len(run) - 1))
        return grams


@lru_cache(maxsize=4)
def shared_analyzer(synonyms_path: Path | None) -> Analyzer:
    """One analyzer per synonyms file per process: building one loads jieba's dictionary."""
    return Analyzer(load_synonyms(synonyms_path))
