"""Make hotline text speakable by a Mandarin TTS that only knows Hanzi.

Rules (applied in this order, each on what the previous left):

* ticket numbers ``20261125-0042`` -> digit by digit, the dash read as 杠:
  ``二零二六一一二五杠零零四二``;
* phone numbers (mobile, landline, short service numbers such as 12345) ->
  digit by digit, 1 read as 幺 by default, mobiles grouped 3-4-4 with commas;
* dates ``2026年11月25日`` / ``2026-11-25`` -> 二零二六年十一月二十五日;
* times ``09:00`` -> 九点, ``9:30`` -> 九点半, ``17:05`` -> 十七点零五分;
  ranges ``9:00-17:00`` -> 九点至十七点;
* percentages ``12.5%`` -> 百分之十二点五; money ``¥25`` -> 二十五元;
* ranges ``3-5个`` -> 三至五个; decimals ``3.5`` -> 三点五;
* other integers as quantities ``25`` -> 二十五 (两 before measure words),
  long ones (7+ digits or a leading zero) digit by digit;
* upper-case codes spelled with Chinese letter names (ABC -> 诶必西), other
  Latin words dropped; symbols the TTS cannot say are dropped; ASCII
  punctuation becomes Chinese punctuation.
"""

from __future__ import annotations

import re

#: Bump when the rules change: part of the TTS cache key.
TEXT_NORM_VERSION = 1

DIGITS = "零一二三四五六七八九"
_UNITS = ["", "十", "百", "千"]
_BIG_UNITS = ["", "万", "亿", "万亿"]
_MEASURE_WORDS = "个位次天周年月项件份张条名户人种号小层栋岁"
_SERVICE_NUMBERS = {"110", "119", "120", "122", "12345", "12315", "12333", "12366", "12369", "95598"}
_DASH = "-‐‑–—－"
_LETTERS = {
    "A": "诶", "B": "必", "C": "西", "D": "迪", "E": "伊", "F": "艾弗", "G": "吉",
    "H": "艾尺", "I": "艾", "J": "杰", "K": "开", "L": "艾勒", "M": "艾姆", "N": "恩",
    "O": "欧", "P": "批", "Q": "丘", "R": "阿", "S": "艾斯", "T": "提", "U": "优",
    "V": "维", "W": "达布溜", "X": "艾克斯", "Y": "歪", "Z": "贼德",
}
_WORDS = {"APP": "应用", "App": "应用", "app": "应用", "WiFi": "无线网", "wifi": "无线网", "Wi-Fi": "无线网"}
_UNIT_SYMBOLS = {"km": "公里", "kg": "公斤", "m²": "平方米", "㎡": "平方米", "℃": "摄氏度", "°C": "摄氏度"}
# (~ between numbers is handled as a range before; alone it is dropped.)
_PUNCT = {",": "，", ".": "。", "!": "！", "?": "？", ";": "；", ":": "：", "&": "和", "+": "加"}
#: Characters the TTS front-end accepts besides Hanzi.
_KEEP_PUNCT = "，。！？；：、"


def read_digits(digits: str, yao: bool = False) -> str:
    """``"0042"`` -> ``"零零四二"``; with ``yao`` 1 is read 幺 (phone style)."""
    out = "".join(DIGITS[int(d)] for d in digits if d.isdigit())
    return out.replace("一", "幺") if yao else out


def _four_digits(n: int, leading: bool) -> str:
    """0 <= n < 10000 -> Chinese; ``leading`` drops 一 of 一十 (十二 not 一十二)."""
    s = ""
    zero = False
    for pos in range(3, -1, -1):
        d = n // 10**pos % 10
        if d == 0:
            zero = bool(s)
            continue
        if zero:
            s += "零"
            zero = False
        s += DIGITS[d] + _UNITS[pos]
    if leading and s.startswith("一十"):
        s = s[1:]
    return s


def read_integer(n: int) -> str:
    """Integer as a quantity: 25 -> 二十五, 105 -> 一百零五, 20000 -> 两万."""
    if n == 0:
        return "零"
    if n < 0:
        return "负" + read_integer(-n)
    groups: list[int] = []
    while n:
        groups.append(n % 10000)
        n //= 10000
    out = ""
    need_zero = False
    for i in range(len(groups) - 1, -1, -1):
        g = groups[i]
        if g == 0:
            need_zero = bool(out)
            continue
        if out and (need_zero or g < 1000):
            out += "零"
        out += _four_digits(g, leading=not out) + _BIG_UNITS[i]
        need_zero = False
    if out.startswith("二") and len(out) > 1 and out[1] in "千万亿":
        out = "两" + out[1:]
    return out


def read_decimal(text: str) -> str:
    whole, _, frac = text.partition(".")
    return read_integer(int(whole or "0")) + ("点" + read_digits(frac) if frac else "")


def read_time(hour: int, minute: int) -> str:
    if minute == 0:
        return read_integer(hour) + "点"
    if minute == 30:
        return read_integer(hour) + "点半"
    return read_integer(hour) + "点" + ("零" if minute < 10 else "") + read_integer(minute) + "分"


def read_phone(number: str, yao: bool = True) -> str:
    digits = re.sub(r"\D", "", number)
    if len(digits) == 11 and digits.startswith("1"):
        parts = [digits[:3], digits[3:7], digits[7:]]
    elif "-" in number or "－" in number:
        parts = re.split(r"[-－]", number)
    else:
        parts = [digits]
    return "，".join(read_digits(p, yao) for p in parts if p)


def read_ticket(ticket: str) -> str:
    return "杠".join(read_digits(p) for p in re.split(rf"[{_DASH}]", ticket))


# --------------------------------------------------------------------------- patterns

_NB = r"(?<![\d.])"  # not preceded by a digit
_NA = r"(?![\d])"  # not followed by a digit
_TICKET = re.compile(rf"{_NB}\d{{8}}[{_DASH}]\d{{3,6}}{_NA}")
_MOBILE = re.compile(rf"{_NB}(?:\+?86[ -]?)?1[3-9]\d[ -]?\d{{4}}[ -]?\d{{4}}{_NA}")
_LANDLINE = re.compile(rf"{_NB}0\d{{2,3}}[-－]\d{{7,8}}{_NA}")
_DATE = re.compile(rf"{_NB}(\d{{4}})(?:年|[-/.])(\d{{1,2}})(?:月|[-/.])(\d{{1,2}})(日|号)?{_NA}")
_TIME_RANGE = re.compile(rf"{_NB}(\d{{1,2}})[:：](\d{{2}})\s*[{_DASH}~～至到]\s*(\d{{1,2}})[:：](\d{{2}}){_NA}")
_TIME = re.compile(rf"{_NB}(\d{{1,2}})[:：](\d{{2}}){_NA}")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*[%％]")
_MONEY = re.compile(r"[¥￥](\d+(?:\.\d+)?)")
_RANGE = re.compile(rf"{_NB}(\d+(?:\.\d+)?)\s*[{_DASH}~～]\s*(\d+(?:\.\d+)?){_NA}")
_DECIMAL = re.compile(rf"{_NB}(\d+\.\d+){_NA}")
_INTEGER = re.compile(r"\d+")
_LATIN = re.compile(r"[A-Za-z]+")


def _number(text: str) -> str:
    return read_decimal(text) if "." in text else read_integer(int(text))


def _integer(m: re.Match[str]) -> str:
    s = m.group(0)
    if len(s) >= 7 or (len(s) > 1 and s.startswith("0")):
        return read_digits(s)
    if s == "2":
        nxt = m.string[m.end() : m.end() + 1]
        if nxt and nxt in _MEASURE_WORDS:
            return "两"
    return read_integer(int(s))


def _latin(m: re.Match[str]) -> str:
    word = m.group(0)
    if word in _WORDS:
        return _WORDS[word]
    if word.isupper() and len(word) <= 6:  # acronyms / codes are spelled
        return "".join(_LETTERS.get(c, "") for c in word)
    return ""  # other Latin words: the Mandarin voice can't say them


def normalize(text: str, phone_yao: bool = True) -> str:
    """Return ``text`` with numbers, symbols and letters spelled in Hanzi."""
    t = text.strip()
    for word, spoken in _WORDS.items():
        t = t.replace(word, spoken)
    for sym, spoken in _UNIT_SYMBOLS.items():
        t = re.sub(rf"(?<=\d){re.escape(sym)}", spoken, t)
    t = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", t)  # thousands separators
    t = _TICKET.sub(lambda m: read_ticket(m.group(0)), t)
    t = _MOBILE.sub(lambda m: read_phone(re.sub(r"^\+?86[ -]?", "", m.group(0)), phone_yao), t)
    t = _LANDLINE.sub(lambda m: read_phone(m.group(0), phone_yao), t)
    t = _DATE.sub(
        lambda m: f"{read_digits(m.group(1))}年{read_integer(int(m.group(2)))}月"
        f"{read_integer(int(m.group(3)))}{m.group(4) or '日'}",
        t,
    )
    t = _TIME_RANGE.sub(
        lambda m: read_time(int(m.group(1)), int(m.group(2))) + "至" + read_time(int(m.group(3)), int(m.group(4))),
        t,
    )
    t = _TIME.sub(lambda m: read_time(int(m.group(1)), int(m.group(2))), t)
    t = _PERCENT.sub(lambda m: "百分之" + _number(m.group(1)), t)
    t = _MONEY.sub(lambda m: _number(m.group(1)) + "元", t)
    t = _RANGE.sub(lambda m: _number(m.group(1)) + "至" + _number(m.group(2)), t)
    t = _DECIMAL.sub(lambda m: read_decimal(m.group(1)), t)
    t = re.sub(r"\d+", lambda m: read_phone(m.group(0), phone_yao) if m.group(0) in _SERVICE_NUMBERS else _integer(m), t)
    t = _LATIN.sub(_latin, t)
    t = "".join(_PUNCT.get(c, c) for c in t)
    t = "".join(c for c in t if _is_hanzi(c) or c in _KEEP_PUNCT or c.isspace())
    t = re.sub(r"\s+", "", t)
    t = re.sub(rf"([{_KEEP_PUNCT}])[{_KEEP_PUNCT}]+", r"\1", t)
    return t.strip("，、：；")


def _is_hanzi(c: str) -> bool:
    return "\u4e00" <= c <= "\u9fff" or "\u3400" <= c <= "\u4dbf"
