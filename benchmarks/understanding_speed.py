"""Speed of the text-side language helpers (understanding/): per call, on the project's own realistic texts.

Run by hand: `.venv/bin/python benchmarks/understanding_speed.py`. No services needed.

Texts: benchmarks/data/realistic_first_turns.yaml (first turns, an independent author) and
benchmarks/data/spoken_addresses.yaml (answers to "地址在哪里？"). Each text is made unique per round (a
digit appended) so that no per-text cache answers; the one-off costs (OpenCC dictionary, jieba dictionary,
the lexicon's index) are paid before timing and printed apart. Prints p50/p95/max per function in ms and
the 50-character case for the lexicon (target: ≤ 2 ms).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from understanding.address import match_address  # noqa: E402
from understanding.answers import is_backchannel, read_digits, read_yes_no  # noqa: E402
from understanding.normalize import normalize, spoken_digits, strip_fillers  # noqa: E402
from understanding.pinyin import default_lexicon  # noqa: E402

ROUNDS = 5


def load(name: str, field: str) -> list[str]:
    return [str(x[field]) for x in yaml.safe_load((ROOT / "benchmarks" / "data" / name).read_text(encoding="utf-8"))]


def timed(fn: Callable[[str], object], texts: list[str]) -> tuple[list[float], list[float]]:
    """Wall and CPU (this thread's) milliseconds per call: on a shared machine the wall clock also counts
    the time other processes held the core."""
    wall, cpu = [], []
    for r in range(ROUNDS):
        for t in texts:
            t = f"{t}{r}"
            w, c = time.perf_counter(), time.thread_time()
            fn(t)
            cpu.append((time.thread_time() - c) * 1000)
            wall.append((time.perf_counter() - w) * 1000)
    return wall, cpu


def report(name: str, times: tuple[list[float], list[float]]) -> None:
    wall, cpu = sorted(times[0]), sorted(times[1])
    p95 = wall[int(0.95 * (len(wall) - 1))]
    cpu95 = cpu[int(0.95 * (len(cpu) - 1))]
    print(f"{name:<38} n={len(wall):5d}  wall p50 {statistics.median(wall):6.3f}  p95 {p95:6.3f}  "
          f"max {wall[-1]:6.2f} ms | cpu p50 {statistics.median(cpu):6.3f}  p95 {cpu95:6.3f} ms")


def main() -> None:
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    turns = [normalize(t) for t in load("realistic_first_turns.yaml", "text")]
    addresses = load("spoken_addresses.yaml", "say")
    start = time.perf_counter()
    lexicon = default_lexicon()
    lexicon.correct("社宝卡丢了咋办")  # jieba's dictionary
    match_address("青山区建设路二十六号")  # the gazetteer's lexicon
    print(f"one-off: lexicon ({len(lexicon.terms)} terms), jieba, gazetteer: {time.perf_counter() - start:.2f} s")
    print(f"first turns: {len(turns)}, mean {statistics.mean(map(len, turns)):.0f} characters; "
          f"addresses: {len(addresses)}")
    report("normalize", timed(normalize, turns))
    report("strip_fillers(normalize)", timed(lambda t: strip_fillers(normalize(t)), turns))
    report("spoken_digits", timed(spoken_digits, turns))
    report("PinyinLexicon.correct", timed(lexicon.correct, turns))
    fifty = [t for t in turns if 45 <= len(t) <= 55] or [(t * 3)[:50] for t in turns[:20]]
    report(f"PinyinLexicon.correct, ~50 chars ({len(fifty)})", timed(lexicon.correct, fifty))
    report("match_address (address answers)", timed(match_address, addresses))
    report("match_address (first turns)", timed(match_address, turns))
    report("read_yes_no", timed(read_yes_no, ["对的，没错", "不对，是东河区", "嗯", "对不对？"] * 25))
    report("is_backchannel", timed(is_backchannel, turns))
    report("read_digits", timed(read_digits, ["幺三八 零零一二 三四五六", "工单号二零二六一一二五杠零零四二"] * 50))


if __name__ == "__main__":
    main()
