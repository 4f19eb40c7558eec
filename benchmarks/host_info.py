"""What host a benchmark ran on, so that figures from different machines can be compared (issue 14 part 5).

    .venv/bin/python benchmarks/host_info.py
    # processor AMD EPYC (2 cores); CTranslate2 ISA AVX2 (AVX512 available); reference decode 412 ms; load 0.8

* processor - /proc/cpuinfo's model name and the core count;
* CTranslate2 ISA - the kernels CTranslate2 picked for this CPU (its own log line; ``CT2_FORCE_CPU_ISA`` changes it;
  it picks AVX512 on Intel only, so AMD processors with AVX-512 still run AVX2);
* reference decode - Whisper base (int8, one thread, beam 2, 10-s window: the controller's settings) decoding a fixed,
  deterministic 3-s signal, best of 3: a measure of this host's speed at exactly the work that dominates a turn.
  docs/scaling.md sizes capacity in units of it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def processor_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    import platform

    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


@lru_cache(maxsize=1)
def ct2_isa() -> str:
    """The ISA CTranslate2 selects here (it says so at model load with CT2_VERBOSE=1), run in a child process."""
    code = ("from faster_whisper import WhisperModel; "
            "WhisperModel(%r, device='cpu', compute_type='int8', cpu_threads=1)"
            % str(REPO / "var" / "cache" / "models" / "whisper-base-zh"))
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, CT2_VERBOSE="1"),
                         capture_output=True, text=True, timeout=120)
    isa = re.search(r"Selected ISA: (\S+)", out.stderr + out.stdout)
    cpu = re.search(r"AVX512=(true|false)", out.stderr + out.stdout)
    forced = os.environ.get("CT2_FORCE_CPU_ISA")
    text = isa.group(1) if isa else "unknown"
    if forced:
        text += f" (forced by CT2_FORCE_CPU_ISA={forced})"
    elif cpu and cpu.group(1) == "true" and text != "AVX512":
        text += " (AVX512 available)"
    return text


def reference_signal(seconds: float = 3.0) -> np.ndarray:
    """Speech-like and the same everywhere: a gliding harmonic voice in 4-Hz syllables, float32 16 kHz."""
    t = np.arange(int(16000 * seconds)) / 16000
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5
    return (0.2 * voice * envelope / np.max(np.abs(voice))).astype(np.float32)


@lru_cache(maxsize=1)
def reference_decode_ms() -> float:
    from ivr.speech.whisper_asr import WhisperRecognizer

    rec = WhisperRecognizer(num_workers=1, cpu_threads=1, beam_size=2, short_window_s=10)
    rec.min_rms_dbfs = -120.0  # decode it whatever its level
    audio = reference_signal()
    rec.transcribe_sync(audio)  # warm-up (model load)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        rec.transcribe_sync(audio)
        best = min(best, (time.perf_counter() - t0) * 1000)
    return best


def host_line(decode: bool = True) -> str:
    load = os.getloadavg()
    ref = f"; reference decode {reference_decode_ms():.0f} ms" if decode else ""
    return (f"processor {processor_model()}; CTranslate2 ISA {ct2_isa()}{ref}; "
            f"load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    print(host_line())
