"""Text as callers and the recogniser produce it, made regular before anything reads it.

* :func:`normalize`     every transcript and typed text: traditional → simplified (OpenCC ``t2s``, all
  characters), full-width → half-width letters and digits, whitespace and punctuation tidied.
* :func:`strip_fillers` greetings and fillers before and after the point ("喂，你好，那个…", "…谢谢啊");
  the point itself is never touched.
* :func:`spoken_digits` spoken numbers where they are numbers: house numbers ("二十六号" → "26号",
  "三栋二单元" → "3栋2单元") and digit strings ("幺三八…" → "138…"); words such as 一下, 一直, 第一,
  万一, 二手房, 三轮车 keep their characters.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import opencc

# -- normalize ------------------------------------------------------------------------------------

_T2S = opencc.OpenCC("t2s")
# 著 is also a simplified character (著名, 著作, 显著), so t2s keeps it; everywhere else in a traditional text
# it is 着 (着火 matters: fire; 站着, 睡着).
_ZHE_FIXES = re.compile(r"(?<![显土卓编原巨名论专合遗新拙昭])著(?![名作称述书录者])")
_HAN = r"\u3400-\u9fff"
_CLAUSE = {",": "，", "，": "，", "、": "、", ";": "；", "；": "；", ":": "：", "：": "："}
_END = {"。": "。", ".": "。", "!": "！", "！": "！", "?": "？", "？": "？"}
_STRENGTH = {"？": 5, "！": 4, "。": 3, "；": 2, "：": 2, "，": 1, "、": 1}
_PUNCT_RUN = re.compile(r"[,，、;；:：。.!！?？…~～]+")
_SPACE_BETWEEN_HAN = re.compile(rf"(?<=[{_HAN}])\s+(?=[{_HAN}])")
_SPACE_NEXT_TO_HAN = re.compile(rf"(?<=[{_HAN}])\s+|\s+(?=[{_HAN}])")
_DROP = re.compile(r"[\u0000-\u001f\u007f\u200b-\u200f\u2028-\u202f\ufeff\U0001f000-\U0001faff\u2600-\u27bf]")


def normalize(text: str | None) -> str:
    """Simplified Chinese, half-width letters/digits, one space at most, one punctuation mark per break.

    Punctuation between Chinese clauses takes its Chinese form (，。？！); a '.' or ':' between digits stays
    (3.5, 10:30). Whitespace between two Chinese characters becomes '，' (the recogniser marks pauses so).
    """
    if not text:
        return ""
    t = unicodedata.normalize("NFKC", text)  # full-width ASCII and the ideographic space → half-width
    t = _T2S.convert(t)
    t = _ZHE_FIXES.sub("着", t)
    t = _DROP.sub("", t)
    t = _SPACE_BETWEEN_HAN.sub("，", t.strip())
    t = _SPACE_NEXT_TO_HAN.sub("", t)
    t = re.sub(r"\s+", " ", t)
    t = _PUNCT_RUN.sub(_tidy_punct_run, t)
    return t.strip(" ，、；：")


def _tidy_punct_run(m: re.Match[str]) -> str:
    run, s, end = m.group(), m.string, m.end()
    before = s[m.start() - 1] if m.start() > 0 else ""
    after = s[end] if end < len(s) else ""
    if run in ".:" and before.isdigit() and after.isdigit():
        return run  # 3.5, 10:30
    if all(c in ".…~～" for c in run) and not (before and after):
        return "" if run != "." else "。"
    marks = [_CLAUSE.get(c) or _END.get(c) or "，" for c in run]
    return max(marks, key=lambda c: _STRENGTH.get(c, 0))


# -- strip_fillers --------------------------------------------------------------------------------

# Always fillers when they open an utterance.
_LEAD_SURE = (
    "麻烦问一下", "麻烦问下", "麻烦您", "麻烦你", "我跟你说", "我跟您说", "我和你说", "跟你说", "是这样的", "是这样",
    "打扰一下", "打扰了", "请问一下", "请问", "你好啊", "您好啊", "哎呀", "哎哟", "哎", "唉", "诶", "欸",
    "喂", "嗯", "呃", "额", "噢", "哦", "啊", "那什么",
)
# Fillers only when a break, another filler or the start of the point (a pronoun, a request) follows:
# "你好像…", "那个人…", "就是他…" keep their words.
_LEAD_WEAK = ("你好", "您好", "那个", "这个", "就是", "然后", "同志", "师傅", "姑娘", "小姑娘")
_POINT_STARTS = ("我", "俺", "咱", "请", "帮", "想", "问", "麻烦", "你们", "您们")
_TRAIL = (
    "谢谢你们", "谢谢您", "谢谢你", "谢谢啦", "谢谢了", "谢谢", "麻烦你们了", "麻烦您了", "麻烦你了", "麻烦了",
    "啊", "呀", "吧", "呢", "哈", "嘛", "啦", "哦", "嗯", "呗",
)
_SEPARATORS = " ，,。.！!？?、；;：:…~"


def strip_fillers(text: str) -> str:
    """The text without the greetings and fillers around its point (repeated ones too); '' when nothing else."""
    keep = _SEPARATORS.replace("？", "").replace("?", "")
    t = (text or "").lstrip(_SEPARATORS).rstrip(keep)
    while True:
        before = t
        t = _strip_one_lead(t).lstrip(_SEPARATORS)
        t = _strip_one_trail(t).rstrip(keep)
        if t == before:
            return t


def _strip_one_lead(t: str) -> str:
    for f in _LEAD_SURE:
        if t.startswith(f):
            return t[len(f):]
    for f in _LEAD_WEAK:
        if t.startswith(f):
            rest = t[len(f):]
            if not rest or rest[0] in _SEPARATORS or rest.startswith(_POINT_STARTS) or rest.startswith(_LEAD_SURE + _LEAD_WEAK):
                return rest
    return t


def _strip_one_trail(t: str) -> str:
    body, mark = (t[:-1], t[-1]) if t and t[-1] in "？?" else (t, "")
    for f in _TRAIL:
        # a lone particle is a word of its own ("啊"); keep at least one character of something else
        if body.endswith(f) and len(body) > len(f):
            return body[: -len(f)].rstrip(_SEPARATORS) + mark
    return t


# -- spoken_digits --------------------------------------------------------------------------------

_DIGIT = {"零": 0, "〇": 0, "洞": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
          "七": 7, "八": 8, "九": 9}
_UNIT = {"十": 10, "百": 100, "千": 1000}
_NUM_CHARS = "零〇一二两三四五六七八九十百千"  # in a counted number (洞 and 幺 only in digit strings)
# units of an address after a number; 楼 not when it starts 楼道/楼梯/楼房/楼顶/楼盘 (一楼道 is rare but real)
_HOUSE_UNIT = r"(?:号院|号楼|号|栋|幢|座|单元|楼(?![道梯房顶盘])|层|室)"
_HOUSE_NUMBER = re.compile(rf"(?<![第万统唯专])([{_NUM_CHARS}]{{1,6}})(?={_HOUSE_UNIT})")
# a run of at least three digit words, not part of a counted number (一五一十 stays)
_DIGIT_RUN = re.compile(r"(?<![十百千万亿])[零〇洞一幺二两三四五六七八九0-9]{3,}(?![十百千万亿])")


def chinese_number(words: str) -> int | None:
    """二十六 → 26, 十二 → 12, 一百零三 → 103, 三零二 → 302 (digit by digit); None when not a number."""
    if not words or any(c not in _DIGIT and c not in _UNIT for c in words):
        return None
    if not any(c in _UNIT for c in words):
        return int("".join(str(_DIGIT[c]) for c in words))
    total, digit = 0, None
    for c in words:
        if c in _DIGIT:
            digit = _DIGIT[c]
        else:
            total += (1 if digit is None else digit) * _UNIT[c]
            digit = None
    return total + (digit or 0)


def spoken_digits(text: str) -> str:
    """Spoken numbers in house numbers and digit strings written as digits; every other word as it was."""
    def house(m: re.Match[str]) -> str:
        n = chinese_number(m.group(1))
        return m.group(1) if n is None else str(n)

    def run(m: re.Match[str]) -> str:
        s = m.group()
        if s.isdigit():
            return s
        return "".join(c if c.isdigit() else str(_DIGIT[c]) for c in s)

    return _DIGIT_RUN.sub(run, _HOUSE_NUMBER.sub(house, text or ""))


@lru_cache(maxsize=1024)
def spoken_number(n: int) -> str:
    """26 → 二十六, 103 → 一百零三, 10 → 十 (how a house number is said back); up to 9999."""
    if n < 0 or n > 9999:
        return str(n)
    digits = "零一二三四五六七八九"
    if n < 10:
        return digits[n]
    out, zero = "", False
    for value, name in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d = n // value % 10
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        word = "两" if (d == 2 and value == 1000) else digits[d]
        out += ("" if (d == 1 and value == 10 and not out) else word) + name
    return out
