"""Run the hotline's Asterisk (Debian sid packages in a cached chroot) for `make run` and the tests.

The chroot is built by ``scripts/setup-asterisk.sh``. Start-up: bind /proc and /dev into the chroot,
install ``config/asterisk/`` as the chroot's ``/etc/asterisk`` (rendering the ARI credentials into
``ari.conf``), run ``asterisk -U root -G root -f`` as a child process and wait until ARI answers
``GET /ari/asterisk/info``. Everything listens on 127.0.0.1 only (see the config files).

    svc = AsteriskService.from_settings()
    svc.start()            # idempotent; reuses an Asterisk that already answers with our credentials
    svc.ari_url, svc.ari_user, svc.ari_password
    svc.stop()             # "core stop now", then SIGTERM/SIGKILL if needed

More Asterisk nodes can run in the same chroot next to the default one (scale-out tests, a second node on a
dev host): ``AsteriskService.from_settings(node=AsteriskNode("b", sip_port=5160, ari_port=8098,
rtp_ports=(11100, 11499), seat_ports=(5171, 5172, 5173, 5174)))``. A node's config is ``config/asterisk/``
with the lines that say where it listens and keeps its files replaced (``/etc/asterisk-b``, ctl socket in
``/run/asterisk-b``, its own astdb, logs and spool, ``systemname = b`` so its channel ids are ``b-…`` and never
collide with another node's); it runs as ``asterisk -C /etc/asterisk-b/asterisk.conf``. The default node is
``config/asterisk/`` exactly as written. The chroot's /proc and /dev stay mounted while any process still runs
in it (another node, or someone else's Asterisk).

CLI: ``python -m hotline.services.asterisk [--node b --sip-port 5160 --ari-port 8098 --rtp 11100-11499
--seat-ports 5171,5172,5173,5174] start|run|stop|status|cli "<command>"``.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import re
import shutil
import signal
import string
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "config" / "asterisk"
SETUP_SCRIPT = REPO_ROOT / "scripts" / "setup-asterisk.sh"
DEFAULT_CHROOT = Path(os.environ.get("HOTLINE_ASTERISK_CHROOT", "/var/cache/hotline/asterisk-sid"))
MARKER = ".hotline-asterisk-ready"
TEMPLATED = ("ari.conf",)
MOUNT_LOCK = ".hotline-mounts.lock"  # in the chroot's top directory: mounting and unmounting take turns


class AsteriskError(RuntimeError):
    pass


def ensure_installed(chroot: Path = DEFAULT_CHROOT, *, quiet: bool = False) -> None:
    """Run scripts/setup-asterisk.sh unless the chroot is already complete (fast path)."""
    if (chroot / MARKER).exists() and (chroot / "usr/sbin/asterisk").exists() and shutil.which("sipp"):
        return
    log.info("installing Asterisk chroot at %s (first time: ~2 min)", chroot)
    env = dict(os.environ, HOTLINE_ASTERISK_CHROOT=str(chroot))
    subprocess.run(
        ["bash", str(SETUP_SCRIPT)], check=True, env=env,
        stdout=subprocess.DEVNULL if quiet else None,
    )


def render_config(src: Path, dst: Path, values: dict[str, str]) -> None:
    """Copy the config directory, substituting ${VAR} placeholders in the templated files."""
    dst.mkdir(parents=True, exist_ok=True)
    for old in dst.iterdir():
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()
    for f in sorted(src.iterdir()):
        if not f.is_file():
            continue
        target = dst / f.name
        if f.name in TEMPLATED:
            target.write_text(string.Template(f.read_text()).substitute(values))
            target.chmod(0o600)
        else:
            shutil.copyfile(f, target)


# A line's new value, or a function of its old one (keeps what a node does not change, e.g. the host of a bind).
OptionValue = str | Callable[[str], str]
_SECTION = re.compile(r"^\[([^\]]+)\]")
_OPTION = re.compile(r"^(\s*)([\w-]+)(\s*=>?\s*)(.*?)\s*$")


def set_options(text: str, section: str, values: dict[str, OptionValue], *, add: bool = False) -> str:
    """Change `key = value` (or `key => value`) lines in every [section] block of an Asterisk config file.

    A key found in no block of that name is an error (the config changed under us), unless `add`: then it is
    appended to the first block."""
    lines = text.splitlines()
    current, first_end, found = None, None, set()
    for i, line in enumerate(lines):
        header = _SECTION.match(line)
        if header:
            if current == section and first_end is None:
                first_end = i
            current = header.group(1)
            continue
        m = _OPTION.match(line)
        if current != section or not m or m.group(2) not in values:
            continue
        new = values[m.group(2)]
        lines[i] = f"{m.group(1)}{m.group(2)}{m.group(3)}{new(m.group(4)) if callable(new) else new}"
        found.add(m.group(2))
    if current == section and first_end is None:
        first_end = len(lines)
    missing = [k for k in values if k not in found]
    if missing and (not add or first_end is None):
        raise AsteriskError(f"[{section}] has no {', '.join(missing)} to change")
    while first_end and not lines[first_end - 1].strip():  # after the block's last line, not its trailing blanks
        first_end -= 1
    for key in reversed(missing):
        value = values[key]
        lines.insert(first_end, f"{key} = {value('') if callable(value) else value}")  # type: ignore[index]
    return "\n".join(lines) + "\n"


def _with_port(port: int) -> Callable[[str], str]:
    """`127.0.0.1:5060` → `127.0.0.1:<port>`, `sip:agent1@127.0.0.1:5071` → `sip:agent1@127.0.0.1:<port>`."""
    return lambda old: f"{old.rsplit(':', 1)[0]}:{port}"


@dataclass(frozen=True)
class AsteriskNode:
    """One more Asterisk in the shared chroot: where it listens and where it keeps its files."""

    name: str
    sip_port: int
    ari_port: int
    rtp_ports: tuple[int, int]
    seat_ports: tuple[int, ...]  # contacts of the seat phones agent1, agent2, … (pjsip.conf)

    def __post_init__(self) -> None:
        # The name becomes Asterisk's systemname (the prefix of every channel id) and part of directory names.
        if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", self.name):
            raise ValueError(f"node name must be 1-16 lowercase letters/digits, starting with a letter: {self.name!r}")

    @property
    def ari_url(self) -> str:
        return f"http://127.0.0.1:{self.ari_port}"

    def dir(self, base: str) -> str:
        """This node's own copy of a directory of the default layout, e.g. /run/asterisk → /run/asterisk-b."""
        return f"{base}-{self.name}"

    @property
    def conf(self) -> str:
        """Its asterisk.conf inside the chroot (`asterisk -C …`)."""
        return f"{self.dir('/etc/asterisk')}/asterisk.conf"

    def changes(self) -> list[tuple[str, str, dict[str, OptionValue], bool]]:
        """(file, section, new values, add) applied to config/asterisk/ for this node."""
        dirs: dict[str, OptionValue] = {
            key: self.dir(base) for key, base in (
                ("astetcdir", "/etc/asterisk"), ("astrundir", "/var/run/asterisk"), ("astlogdir", "/var/log/asterisk"),
                ("astspooldir", "/var/spool/asterisk"), ("astdbdir", "/var/lib/asterisk"),
                ("astcachedir", "/var/cache/asterisk"))
        }
        seats = [("pjsip.conf", f"agent{i}", {"contact": _with_port(port)}, False)
                 for i, port in enumerate(self.seat_ports, 1)]
        return [
            ("asterisk.conf", "directories", dirs, False),
            ("asterisk.conf", "options", {"systemname": self.name}, True),
            ("http.conf", "general", {"bindport": str(self.ari_port)}, False),
            ("pjsip.conf", "transport-udp", {"bind": _with_port(self.sip_port)}, False),
            ("rtp.conf", "general", {"rtpstart": str(self.rtp_ports[0]), "rtpend": str(self.rtp_ports[1])}, False),
            *seats,
        ]

    def own_dirs(self) -> list[str]:
        """Directories (inside the chroot) only this node writes to."""
        return [self.dir(d) for d in ("/etc/asterisk", "/run/asterisk", "/var/log/asterisk", "/var/spool/asterisk",
                                      "/var/lib/asterisk", "/var/cache/asterisk")]

    def render(self, config_dir: Path, chroot: Path) -> None:
        """config/asterisk/ with this node's changes → <chroot>/etc/asterisk-<name>/."""
        etc = chroot / self.dir("/etc/asterisk").lstrip("/")
        for filename, section, values, add in self.changes():
            path = etc / filename
            path.write_text(set_options(path.read_text(), section, values, add=add))


def processes_in(chroot: Path) -> list[int]:
    """Pids of the processes whose root directory is `chroot` (any Asterisk of any node, an `asterisk -rx`)."""
    root = os.path.realpath(chroot)
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/root") == root:
                pids.append(int(entry))
        except OSError:  # gone, or not ours to look at
            continue
    return pids


@dataclass
class AsteriskService:
    ari_user: str = "hotline"
    ari_password: str = ""
    ari_url: str = "http://127.0.0.1:8088"
    ari_app: str = "hotline"
    chroot: Path = DEFAULT_CHROOT
    config_dir: Path = CONFIG_DIR
    log_file: Path = REPO_ROOT / "var" / "log" / "asterisk.out"
    node: AsteriskNode | None = None  # None: the default node (config/asterisk/ as written)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _mounted: list[Path] = field(default_factory=list, init=False, repr=False)
    _owned: bool = field(default=False, init=False, repr=False)

    @classmethod
    def from_settings(cls, **overrides: object) -> "AsteriskService":
        """The default node from the settings; with `node=AsteriskNode(...)` that node (its ARI port, its log)."""
        from config.settings import get_settings

        s = get_settings()
        kw: dict[str, object] = dict(
            ari_user=s.ari_user, ari_password=s.ari_password, ari_url=s.ari_url, ari_app=s.ari_app
        )
        node = overrides.get("node")
        if isinstance(node, AsteriskNode):
            kw.update(ari_url=node.ari_url, log_file=REPO_ROOT / "var" / "log" / f"asterisk-{node.name}.out")
        kw.update(overrides)
        return cls(**kw)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ status
    @property
    def started_here(self) -> bool:
        """True when this object started the Asterisk it talks to (False: it found one running, or none)."""
        return self._owned

    def chroot_users(self) -> list[int]:
        """Pids of the processes still running in the chroot (any node); while there are some, /proc and /dev
        stay mounted."""
        return processes_in(self.chroot)

    def mounted(self) -> list[str]:
        """Which of the chroot's /proc and /dev are mounted now."""
        return [name for name in ("proc", "dev")
                if subprocess.run(["mountpoint", "-q", str(self.chroot / name)]).returncode == 0]

    @property
    def auth(self) -> tuple[str, str]:
        return (self.ari_user, self.ari_password)

    def _path(self, default: str) -> Path:
        """A directory of the default layout (e.g. "run/asterisk"), for this node, on the host."""
        return self.chroot / (self.node.dir(f"/{default}").lstrip("/") if self.node else default)

    @property
    def messages_log(self) -> Path:
        return self._path("var/log/asterisk") / "messages.log"

    def ari_ready(self, timeout: float = 1.0) -> bool:
        try:
            r = httpx.get(f"{self.ari_url}/ari/asterisk/info", auth=self.auth, timeout=timeout)
            return r.status_code == 200
        except httpx.HTTPError:
            return False

    def is_running(self) -> bool:
        """True when this node's Asterisk runs in our chroot (ours or started elsewhere)."""
        if self._proc is not None and self._proc.poll() is None:
            return True
        return self._ctl_alive()

    def _ctl_alive(self) -> bool:
        sock = self._path("run/asterisk") / "asterisk.ctl"
        if not sock.exists():
            return False
        r = subprocess.run(self._cmd("-rx", "core show uptime seconds"), capture_output=True, timeout=10)
        return r.returncode == 0 and b"System uptime" in r.stdout

    def _cmd(self, *args: str) -> list[str]:
        conf = ["-C", self.node.conf] if self.node else []
        return ["chroot", str(self.chroot), "/usr/sbin/asterisk", *conf, *args]

    def cli(self, command: str, timeout: float = 15) -> str:
        """Run an Asterisk CLI command (asterisk -rx) and return its output."""
        r = subprocess.run(self._cmd("-rx", command), capture_output=True, timeout=timeout, text=True)
        if r.returncode != 0:
            raise AsteriskError(f"asterisk -rx {command!r} failed: {r.stderr or r.stdout}")
        return r.stdout

    # ------------------------------------------------------------------ start / stop
    @contextmanager
    def _mount_lock(self) -> Iterator[None]:
        """Held while mounting and starting, and while deciding to unmount: a node that is starting is never left
        without /proc and /dev by one that is stopping."""
        with open(self.chroot / MOUNT_LOCK, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _mount(self) -> None:
        for name, args in (("proc", ["-t", "proc", "proc"]), ("dev", ["--bind", "/dev"])):
            target = self.chroot / name
            if subprocess.run(["mountpoint", "-q", str(target)]).returncode != 0:
                subprocess.run(["mount", *args, str(target)], check=True)
                self._mounted.append(target)

    def _umount(self) -> None:
        """Release the chroot's /proc and /dev (whoever mounted them) once no process runs in the chroot any more
        (other nodes share it)."""
        self._mounted.clear()
        with self._mount_lock():
            users = processes_in(self.chroot)
            if users:
                log.info("chroot still in use by pid(s) %s; /proc and /dev stay mounted", users)
                return
            for name in ("dev", "proc"):
                target = self.chroot / name
                if subprocess.run(["mountpoint", "-q", str(target)]).returncode == 0:
                    subprocess.run(["umount", "-l", str(target)], check=False)

    def install_config(self) -> None:
        etc = self._path("etc/asterisk")
        render_config(
            self.config_dir, etc,
            {"HOTLINE_ARI_USER": self.ari_user, "HOTLINE_ARI_PASSWORD": self.ari_password},
        )
        if self.node:
            self.node.render(self.config_dir, self.chroot)
        # No nameservers in the chroot: PJSIP then uses system resolution instead of opening its own
        # DNS sockets on 0.0.0.0 / [::] (the dev config only talks to 127.0.0.1).
        (self.chroot / "etc/resolv.conf").write_text("# hotline: intentionally empty (see asterisk.py)\n")
        for d in ("run/asterisk", "var/log/asterisk", "var/lib/asterisk", "var/spool/asterisk",
                  "var/cache/asterisk", "var/lib/asterisk/moh"):
            (self.chroot / d).mkdir(parents=True, exist_ok=True)
        # The hold melody must be there when Asterisk starts: with no file res_musiconhold disables the class, and
        # a later module reload does not bring it back (a fresh machine's first hold was silent).
        from agent_handoff.media import ensure_hold_music

        ensure_hold_music(self.chroot / "var/lib/asterisk/moh")
        for d in self.node.own_dirs() if self.node else ():
            (self.chroot / d.lstrip("/")).mkdir(parents=True, exist_ok=True)

    def _wait_in_chroot(self, proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
        """Until the new process has entered the chroot (from then on a stopping node sees it and keeps the mounts)."""
        root = os.path.realpath(self.chroot)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if os.readlink(f"/proc/{proc.pid}/root") == root:
                    return
            except OSError:
                return
            time.sleep(0.01)

    def start(self, timeout: float = 60.0) -> None:
        if not self.ari_password:
            raise AsteriskError("ARI password is empty (set HOTLINE_ARI_PASSWORD)")
        if self.ari_ready():
            log.info("Asterisk already running with our ARI credentials; reusing it")
            return
        if self._ctl_alive():
            raise AsteriskError("an Asterisk runs in the chroot but ARI rejects our credentials; stop it first")
        ensure_installed(self.chroot)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self._mount_lock():
            self._mount()
            self.install_config()
            out = open(self.log_file, "ab")
            try:
                self._proc = subprocess.Popen(
                    self._cmd("-U", "root", "-G", "root", "-f", "-n"),
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            finally:
                out.close()
            self._wait_in_chroot(self._proc)
        self._owned = True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise AsteriskError(f"asterisk exited with {self._proc.returncode}; see {self.log_file}")
            if self.ari_ready(timeout=0.5):
                log.info("Asterisk up (pid %s), ARI at %s", self._proc.pid, self.ari_url)
                return
            time.sleep(0.1)
        self.stop()
        raise AsteriskError(f"ARI did not answer within {timeout:.0f}s; see {self.log_file}")

    def stop(self, timeout: float = 20.0) -> None:
        """Stop this node's Asterisk (ours, or one running in the chroot) and release the mounts once nothing
        else runs in the chroot."""
        if self.is_running():
            subprocess.run(self._cmd("-rx", "core stop now"), capture_output=True, timeout=15)
        deadline = time.monotonic() + timeout
        if self._proc is not None:
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGTERM)
                try:
                    self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(self._proc.pid, signal.SIGKILL)
                    self._proc.wait()
            self._proc = None
        else:
            while self._ctl_alive() and time.monotonic() < deadline:
                time.sleep(0.2)
        # the ctl socket may linger after an unclean exit
        while self.ari_ready(timeout=0.3) and time.monotonic() < deadline:
            time.sleep(0.2)
        self._umount()
        self._owned = False

    def restart(self, timeout: float = 60.0) -> None:
        self.stop()
        self.start(timeout=timeout)

    def __enter__(self) -> "AsteriskService":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _port_range(text: str) -> tuple[int, int]:
    start, _, end = text.partition("-")
    return int(start), int(end)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m hotline.services.asterisk",
                                description="the hotline's Asterisk in the chroot (default node, or --node)")
    p.add_argument("--node", help="a further node in the same chroot (its own ports and directories)")
    p.add_argument("--sip-port", type=int, help="with --node: PJSIP UDP port")
    p.add_argument("--ari-port", type=int, help="with --node: ARI/HTTP port")
    p.add_argument("--rtp", type=_port_range, help="with --node: RTP port range, e.g. 11100-11499")
    p.add_argument("--seat-ports", type=lambda t: tuple(int(x) for x in t.split(",")),
                   help="with --node: contact ports of the seat phones agent1,agent2,... e.g. 5171,5172,5173,5174")
    p.add_argument("command", nargs="?", default="status", choices=["start", "run", "stop", "status", "cli"])
    p.add_argument("args", nargs="*", help="cli: the Asterisk CLI command")
    args = p.parse_args(argv)
    node_opts = (args.sip_port, args.ari_port, args.rtp, args.seat_ports)
    if args.node and None in node_opts:
        p.error("--node needs --sip-port, --ari-port, --rtp and --seat-ports")
    if not args.node and any(o is not None for o in node_opts):
        p.error("--sip-port/--ari-port/--rtp/--seat-ports only go with --node")
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = parse_args(argv if argv is not None else sys.argv[1:])
    node = AsteriskNode(args.node, args.sip_port, args.ari_port, args.rtp, args.seat_ports) if args.node else None
    svc = AsteriskService.from_settings(node=node)
    sip = node.sip_port if node else 5060
    cmd = args.command
    if cmd == "start":
        svc.start()
        print(f"Asterisk running; ARI {svc.ari_url} user {svc.ari_user}; SIP udp 127.0.0.1:{sip}; dial 12345")
    elif cmd == "run":  # foreground for `make run`: start, wait for Ctrl-C, stop
        svc.start()
        print(f"Asterisk running; ARI {svc.ari_url} user {svc.ari_user}; SIP udp 127.0.0.1:{sip}; Ctrl-C stops")
        try:
            while svc.is_running():
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            svc.stop()
    elif cmd == "stop":
        svc.stop()
    elif cmd == "cli":
        print(svc.cli(" ".join(args.args)), end="")
    else:
        running = svc.is_running()
        print(f"running={running} ari_ready={svc.ari_ready()}")
        return 0 if running else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
