"""Make sure the real PostgreSQL and Redis are up (start them if not) and create throw-away databases."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_PORT = 6379


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _wait_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(port):
            return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds}s")


def ensure_postgres() -> None:
    if port_open(PG_PORT):
        return
    versions = sorted(os.listdir("/etc/postgresql"))
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"], check=True
    )
    _wait_port(PG_PORT)


def ensure_redis() -> None:
    if port_open(REDIS_PORT):
        return
    os.makedirs("/var/lib/redis", exist_ok=True)
    os.makedirs("/var/log/redis", exist_ok=True)
    subprocess.run(
        ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(REDIS_PORT),
         "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"],
        check=True,
    )
    _wait_port(REDIS_PORT)


class PrivateRedis:
    """A redis-server of one test's own, on a free port, without persistence: it can be stopped, restarted
    (empty, as after a crash) or frozen (SIGSTOP: connections open but never answered, like a hung or
    partitioned Redis) without disturbing the shared one.

        with PrivateRedis() as r:
            url = r.url(0); r.stop(); r.start(); r.freeze(); r.thaw()
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._dir = tempfile.mkdtemp(prefix="hotline-redis-")
        self._proc: subprocess.Popen[bytes] | None = None
        self.frozen = False

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        self._proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", self._dir, "--logfile", os.path.join(self._dir, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port, 10)

    def stop(self) -> None:
        """Gone at once, as in a crash (SIGKILL: no goodbye to the clients)."""
        if self._proc is None:
            return
        if self.frozen:
            self.thaw()
        self._proc.kill()
        self._proc.wait(10)
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def freeze(self) -> None:
        assert self._proc is not None, "start first"
        self._proc.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        assert self._proc is not None, "start first"
        self._proc.send_signal(signal.SIGCONT)
        self.frozen = False

    def __enter__(self) -> "PrivateRedis":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


async def create_pg_database(prefix: str = "hotline_test") -> tuple[str, str]:
    """Returns (asyncpg-style SQLAlchemy URL, database name)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}", name


async def drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.get_event_loop().run_until_complete(coro)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _postgres_bindir() -> Path:
    """The directory of initdb/pg_ctl: PATH first, else the newest /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise RuntimeError("no initdb found (install PostgreSQL server binaries)")
    return versions[-1].parent


class PrivatePostgres:
    """A throw-away PostgreSQL cluster of one test module, on a free loopback port with trust auth, that a test
    may crash and restart (the shared server on :5432 is never touched).

        with PrivatePostgres() as pg:      # initdb + start; stop and delete on exit
            pg.url("hotline")              # SQLAlchemy asyncpg URL (pg.create_database("hotline") first)
            pg.restart()                   # immediate stop (a crash: no checkpoint, recovery on start), same port
            pg.stop(); pg.start()

    PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` OS user (its own
    directory under /tmp, which that user can reach; pytest's tmp dirs are private to root). fsync is off:
    what a crash of the server *process* tests (WAL written but not checkpointed, sequences logged ahead,
    transactions cut off) is unchanged, since the kernel keeps what was written; only a power loss would differ.
    """

    def __init__(self, port: int | None = None) -> None:
        self.bindir = _postgres_bindir()
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="hotline-pg-"))
        self.datadir = self.root / "data"
        self.logfile = self.root / "server.log"
        self._user = "postgres" if os.geteuid() == 0 else None

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> "PrivatePostgres":
        self.init()
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.destroy()

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bindir / args[0]), *args[1:]], user=self._user, cwd=self.root,
                              capture_output=True, text=True, timeout=timeout, check=True)

    def init(self) -> None:
        if self._user:
            shutil.chown(self.root, self._user, self._user)
        self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        with open(self.datadir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                       "fsync = off\nmax_connections = 200\nshared_buffers = 32MB\n")

    def start(self, timeout: float = 60) -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-w", "-t", str(int(timeout)),
                  "start", timeout=timeout + 10)
        _wait_port(self.port, timeout)

    def stop(self, mode: str = "fast") -> None:
        """mode "immediate" is a crash: every backend is killed, no checkpoint; the next start recovers."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "immediate") -> None:
        self.stop(mode)
        self.start()

    def running(self) -> bool:
        return self._run_status() == 0

    def _run_status(self) -> int:
        return subprocess.run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "status"],
                              user=self._user, cwd=self.root, capture_output=True).returncode

    def destroy(self) -> None:
        if self.datadir.exists() and self.running():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases -----------------------------------------------------------------------------
    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    async def connect(self, database: str = "postgres") -> asyncpg.Connection:
        return await asyncpg.connect(host="127.0.0.1", port=self.port, user="postgres", database=database)

    async def create_database(self, name: str) -> str:
        conn = await self.connect()
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.url(name)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
