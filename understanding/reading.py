"""Every caller's words, typed or transcribed, read the same way before anything interprets them."""

from __future__ import annotations

from understanding.normalize import normalize
from understanding.pinyin import default_lexicon


def read_caller_text(raw: str) -> str:
    """Simplified characters, tidy punctuation, recogniser slips in domain words corrected
    ("社宝卡" → "社保卡", "转员工客服" → "转人工客服")."""
    text = normalize(raw)
    return default_lexicon().correct(text).text if text else text
