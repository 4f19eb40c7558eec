"""Short answers of spoken Mandarin: yes/no, backchannels, digits, a choice among a few options.

* :func:`read_yes_no`    what a caller said to a yes/no question ("您的联系电话是…，对吗？"). Strict: a negation
  always wins over a yes inside it ("不对", "不是", "对，不是这个" never confirm); a question back ("对不对？",
  "是吗？") is neither; a yes must be made of yes words (and fillers) only ("是东河区" is no bare yes).
* :func:`rest_after_answer` what follows the no word ("不对，是东河区" → "是东河区").
* :func:`is_backchannel` an utterance that carries no request (嗯, 啊这个, 好的, 喂, 在吗).
* :func:`read_digits`    a phone or ticket number from spoken or written digits (幺三八…, 2026 1125 0042).
* :func:`read_choice`    which of a few named options the caller picked ("第一个", "后面那个", its words).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from understanding.normalize import normalize, strip_fillers
from understanding.pinyin import similarity, syllables

#: The short answers callers give, canonical forms (speech scoring uses these as its candidates).
YES_WORDS = ("对", "对的", "是", "是的", "好", "好的", "嗯", "没错", "可以", "行", "对对对", "没问题", "正确")
NO_WORDS = ("不", "不对", "不是", "错了", "不用", "不要", "不行", "没有", "不正确")

# yes words, longest first; 没错/不错/没问题 are yeses although they hold a negation. 对等 and 队的 are how the
# recogniser writes a short 对的.
_YES_TOKENS = sorted(
    {*YES_WORDS, "对啊", "对呀", "对吧", "是啊", "是呀", "是滴", "好啊", "好嘞", "好滴", "行啊", "可以的", "没毛病",
     "不错", "没有错", "没错儿", "对头", "中", "嗯嗯", "恩", "对等", "队的", "就是", "就是这个", "是这个", "对就是",
     "确认", "正确的", "ok", "yes", "en"},
    key=len, reverse=True,
)
# what may stand beside yes words in a bare yes
_YES_FILLERS = ("这个", "那个", "没错", "谢谢", "麻烦了", "麻烦你了", "你说的对", "我", "啊", "呀", "吧", "的", "了",
                "呢", "嘛", "哈", "哦", "嗯")
_NOT_NEGATIONS = re.compile(r"没有?错|不错|没有?问题|没毛病|对不起|不好意思|不客气")
_NO = re.compile(r"不对|不是|不太对|错了|说错|搞错|弄错|记错|不用|不要|不行|不好|不正确|不可以|不需要|不必|没有|没了|"
                 r"别|算了|^不$|^不[，,\s]|^错$")
# a question back: A-not-A (对不对, 是不是, 行不行, 好不好, 可不可以, 有没有) or a question particle at the end
_QUESTION = re.compile(r"(.)[不没]\1|可不可以|吗[？?]?$|么[？?]?$|[？?]$|啥意思|什么意思")
_PUNCT = re.compile(r"[\s，,。.！!？?、~…]+")


def read_yes_no(text: str) -> bool | None:
    """True for a yes, False for a no, None when the text is neither (a question back, something else)."""
    t = normalize(text)
    if not t:
        return None
    question = bool(_QUESTION.search(t))
    t = _PUNCT.sub("", t).lower()
    bare = _NOT_NEGATIONS.sub("", t)
    if _NO.search(bare):
        return None if question else False
    if question:
        return None
    rest = t
    for token in _YES_TOKENS:
        rest = rest.replace(token, "✓")
    for filler in _YES_FILLERS:
        rest = rest.replace(filler, "")
    return True if rest and set(rest) == {"✓"} else None


_ANSWER_HEAD = re.compile(
    "^(?:" + "|".join(sorted({*NO_WORDS, "不太对", "说错了", "搞错了", "不用了", "不要了", "没有了", "不需要", "嗯", "嗯嗯", "啊", "呃", "额", "哦"},
                             key=len, reverse=True)) + r")[\s，,。.！!、~…]*"
)


def rest_after_answer(text: str) -> str:
    """What the caller said after the no word(s) that open the utterance ("不对，是东河区" → "是东河区",
    "嗯不是不是，一三九的" → "一三九的"); "" when there is nothing else (or less than two characters)."""
    t = text.strip()
    while True:
        m = _ANSWER_HEAD.match(t)
        if m is None or not m.group():
            break
        t = t[m.end():]
    t = t.strip(" ，,。.！!、")
    return t if len(_PUNCT.sub("", t)) >= 2 else ""


# -- backchannels ------------------------------------------------------------------------------------

_BACKCHANNEL_WORDS = sorted(
    {"嗯", "嗯嗯", "啊", "哦", "噢", "喔", "额", "呃", "诶", "欸", "哎", "唉", "好", "好的", "好吧", "行", "是", "是的",
     "对", "对的", "对对", "喂", "在吗", "在不在", "有人吗", "有人没", "你好", "您好", "哈喽", "这个", "那个",
     "知道了", "明白了", "晓得了", "清楚了", "谢谢", "嘿", "哈", "呀", "嘛", "吧", "呢", "然后", "就是"},
    key=len, reverse=True,
)


def is_backchannel(text: str) -> bool:
    """True when the utterance carries no request at all: fillers, greetings, acknowledgements ("啊这个",
    "好的", "喂，在吗"). An empty utterance is one too."""
    t = strip_fillers(normalize(text))
    t = _PUNCT.sub("", t)
    for word in _BACKCHANNEL_WORDS:
        t = t.replace(word, "")
    return not t


# -- digits ------------------------------------------------------------------------------------------

_DIGIT_WORDS = {"零": "0", "〇": "0", "洞": "0", "一": "1", "幺": "1", "二": "2", "两": "2", "三": "3", "四": "4",
                "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
_SEPARATOR = re.compile(r"^[\s,，、.。\-—_]|^杠|^横杠")


def read_digits(text: str, min_length: int = 3) -> str | None:
    """The longest run of digits said or typed (spoken digit words, 幺/两/洞 included; pauses, commas and 杠
    between groups joined): "幺三八 零零一二 三四五六" → "13800123456". None below `min_length` digits."""
    t = normalize(text)
    runs: list[str] = []
    current, i = "", 0
    while i < len(t):
        c = t[i]
        digit = c if c.isdigit() else _DIGIT_WORDS.get(c)
        if digit is not None and not _counted(t, i):
            current += digit
            i += 1
            continue
        sep = _SEPARATOR.match(t[i:])
        if current and sep and i + len(sep.group()) < len(t) and _is_digit_at(t, i + len(sep.group())):
            i += len(sep.group())
            continue
        if current:
            runs.append(current)
        current = ""
        i += 1
    if current:
        runs.append(current)
    best = max(runs, key=len, default="")
    return best if len(best) >= min_length else None


def _is_digit_at(t: str, i: int) -> bool:
    return t[i].isdigit() or t[i] in _DIGIT_WORDS


def _counted(t: str, i: int) -> bool:
    """A digit word that is a word, not a digit: 一下, 一直, 第一, 两个, 一个 (a lone one beside no other digit)."""
    if t[i].isdigit():
        return False
    near = (i > 0 and _is_digit_at(t, i - 1)) or (i + 1 < len(t) and _is_digit_at(t, i + 1))
    return not near


# -- choices -----------------------------------------------------------------------------------------

_ORDINALS = (
    (re.compile(r"最后一?[个种项条]|最后那|后面那|后一[个种项]|下面那|后者"), -1),
    (re.compile(r"第一|头一|前面那|前一[个种项]|上面那|前者|^一$|^1$|^一个$|^选?1$"), 0),
    (re.compile(r"第二|^二$|^两$|^2$|^选?2$"), 1),
    (re.compile(r"第三|^三$|^3$|^选?3$"), 2),
    (re.compile(r"第四|^四$|^4$"), 3),
)
_NONE_OF_THEM = re.compile(r"都不是|都不对|都不要|都不|哪个都不|随便|都行|都可以|不知道")


def read_choice(text: str, options: Sequence[str]) -> int | None:
    """Index of the option the caller picked, by position ("第一个", "后面那个", "2") or by its words (exactly,
    or by sound: 井该 for 井盖). None for none of them, both of them, or a refusal ("都不是")."""
    if not options:
        return None
    t = _PUNCT.sub("", strip_fillers(normalize(text)))
    if not t or _NONE_OF_THEM.search(t) or re.match(r"^(不是|不要|不对)", t):
        return None
    picked = {_position(idx, len(options)) for rx, idx in _ORDINALS if rx.search(t)}
    picked.discard(None)
    if len(picked) == 1:
        return picked.pop()
    if picked:
        return None
    return _by_words(t, options)


def _position(idx: int, n: int) -> int | None:
    idx = n - 1 if idx < 0 else idx
    return idx if 0 <= idx < n else None


def _by_words(t: str, options: Sequence[str]) -> int | None:
    """The option with the longest fragment (2+ characters, no other option has it) said in `t`, exactly or
    by sound (mean syllable similarity ≥ 0.9); None on a tie."""
    scores = []
    cleaned = [_PUNCT.sub("", normalize(o)) for o in options]
    heard = syllables(t)
    for k, option in enumerate(cleaned):
        others = [o for j, o in enumerate(cleaned) if j != k]
        best = 0.0
        for n in range(len(option), 1, -1):
            for s in range(len(option) - n + 1):
                frag = option[s:s + n]
                if any(frag in o for o in others):
                    continue
                if frag in t:
                    best = max(best, float(n))
                elif None not in syllables(frag):
                    fs = syllables(frag)
                    for i in range(len(t) - n + 1):
                        window = heard[i:i + n]
                        if None not in window and similarity(window, fs) >= 0.9:  # type: ignore[arg-type]
                            best = max(best, n - 0.5)
            if best:
                break
        scores.append(best)
    top = max(scores)
    if top <= 0 or scores.count(top) > 1:
        return None
    return scores.index(top)
