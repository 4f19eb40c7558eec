"""The caller's words made ready for the KB search: read as every transcript is read (simplified
characters, tidy punctuation, greetings and fillers around the point dropped), then the recogniser's
homophones of the KB's own words put right (knowledge_base/phonetic.py)."""

from __future__ import annotations

from knowledge_base.phonetic import HomophoneCorrector
from understanding.normalize import normalize, strip_fillers


def prepare(text: str, corrector: HomophoneCorrector | None) -> str:
    """What the search reads."""
    read = strip_fillers(normalize(text)) or normalize(text)
    return corrector.correct(read) if corrector is not None and read else read
