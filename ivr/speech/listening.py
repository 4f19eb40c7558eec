"""How the recogniser listens for the answer a question expects: the prompt it primes Whisper with and the floors
under which it drops what it heard.

Whisper's initial prompt is "the text before": names in it are far more likely to come out spelt right
("青山区建设路" rather than "青山期间,设度"), digits in it make digits come out.  The prompt is capped by
Whisper's budget (223 tokens of previous text; faster-whisper keeps the last ones) - for an address the
gazetteer does not fit whole, so names go in by priority: districts, then roads, then landmarks, then streets.

Floors: a free sentence is dropped under a confidence of 0.35 (noise decodes to low-confidence junk); an answer
the bot asked for is looser (an address decoded at 0.3 is still worth matching against the map; the matcher and
the read-back are the safety).  Yes/no answers have their own scorer (:mod:`ivr.speech.yes_no`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from understanding.expect import Expect
from understanding.gazetteer import Gazetteer, load_gazetteer

#: Tokens of previous text Whisper accepts (n_text_ctx // 2 - 1); a margin is left for the base prompt.
PROMPT_TOKEN_BUDGET = 220

#: For yes/no: the short answers themselves, the no words first (the prompt pulls towards its words; a lean
#: towards "no" is the safe one).  Calibrated away on silence by the yes/no listener.
YES_NO_PROMPT = "不对。不是。不用。不要。错了。不行。没有。不。对。对的。是的。好的。嗯。没错。可以。行。没问题。正确。"

#: For numbers: Arabic digits, grouped the way people read them out.
DIGITS_PROMPT = "以下是普通话的句子，使用简体中文。号码请写阿拉伯数字：139 0571 2468，工单号 2025 0107 0003。"


@dataclass(frozen=True, slots=True)
class Floors:
    """Below these, a transcript is dropped (returned empty)."""

    min_rms_dbfs: float = -50.0
    min_duration_ms: int = 200
    min_confidence: float = 0.35


FREE_FLOORS = Floors()
ANSWER_FLOORS = Floors(min_rms_dbfs=-52.0, min_duration_ms=150, min_confidence=0.2)
#: A short answer is a 150-300 ms burst, sometimes spoken softly: only near-silence is skipped without scoring.
YES_NO_FLOORS = Floors(min_rms_dbfs=-55.0, min_duration_ms=60, min_confidence=0.0)


def floors_for(expect: Expect) -> Floors:
    if expect is Expect.YES_NO:
        return YES_NO_FLOORS
    if expect in (Expect.ADDRESS, Expect.PHONE, Expect.TICKET):
        return ANSWER_FLOORS
    return FREE_FLOORS


def place_names(gazetteer: Gazetteer) -> list[str]:
    """The gazetteer's names in the order they go into an address prompt."""
    names: list[str] = []
    for kind in ("district", "road", "landmark", "street"):
        names += [n for n in gazetteer.names(kind) if n not in names]
    return names


def address_prompt(gazetteer: Gazetteer, count_tokens: Callable[[str], int],
                   budget: int = PROMPT_TOKEN_BUDGET) -> tuple[str, list[str]]:
    """A prompt naming the city's places (as many as fit `budget` tokens) and the names it holds."""
    head = f"{gazetteer.city}的地址："
    prompt, used = head, []
    for name in place_names(gazetteer):
        candidate = prompt + ("、" if used else "") + name
        if count_tokens(candidate + "。") > budget:
            continue  # a shorter name further down may still fit
        prompt, used = candidate, [*used, name]
    return prompt + "。", used


@lru_cache(maxsize=8)
def _address_prompt_cached(city_file: str, count_tokens: Callable[[str], int]) -> tuple[str, tuple[str, ...]]:
    prompt, used = address_prompt(load_gazetteer(city_file), count_tokens)
    return prompt, tuple(used)


def recites_places(text: str, names: list[str]) -> bool:
    """Whisper on noise recites an address prompt ("青山区、东河区、云湖区、…"); a caller names two or three
    places, not a list of them."""
    return text.count("、") >= 2 and sum(1 for n in names if n in text) >= 4


def prompt_for(expect: Expect, free_prompt: str, free_hotwords: list[str], count_tokens: Callable[[str], int],
               city_file: str | None = None) -> tuple[str, list[str]]:
    """(initial prompt, the terms in it) for a question expecting `expect`; the free prompt otherwise."""
    if expect is Expect.ADDRESS:
        from understanding.gazetteer import DEFAULT_CITY_FILE

        prompt, used = _address_prompt_cached(city_file or str(DEFAULT_CITY_FILE), count_tokens)
        return prompt, list(used)
    if expect in (Expect.PHONE, Expect.TICKET):
        return DIGITS_PROMPT, []
    return free_prompt, free_hotwords
