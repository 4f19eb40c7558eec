"""Run the hotline's Asterisk (Debian sid packages in a cached chroot) for `make run` and the tests.

The chroot is built by ``scripts/setup-asterisk.sh``. Start-up: bind /proc and /dev into the chroot,
install ``config/asterisk/`` as the chroot's ``/etc/asterisk`` (rendering the ARI credentials into
``ari.conf``), run ``asterisk -U root -G root -f`` as a child process and wait until ARI answers
``GET /ari/asterisk/info``. Everything listens on 127.0.0.1 only (see the config files).

    svc = AsteriskService.from_settings()
    svc.start()            # idempotent; reuses an Asterisk that already answers with our credentials
    svc.ari_url, svc.ari_user, svc.ari_password
    svc.stop()             # "core stop now", then SIGTERM/SIGKILL if needed

CLI: ``python -m hotline.services.asterisk start|stop|status|cli "<command>"``.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import string
import subprocess
import sys
import time
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


@dataclass
class AsteriskService:
    ari_user: str = "hotline"
    ari_password: str = ""
    ari_url: str = "http://127.0.0.1:8088"
    ari_app: str = "hotline"
    chroot: Path = DEFAULT_CHROOT
    config_dir: Path = CONFIG_DIR
    log_file: Path = REPO_ROOT / "var" / "log" / "asterisk.out"
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _mounted: list[Path] = field(default_factory=list, init=False, repr=False)
    _owned: bool = field(default=False, init=False, repr=False)

    @classmethod
    def from_settings(cls, **overrides: object) -> "AsteriskService":
        from config.settings import get_settings

        s = get_settings()
        kw: dict[str, object] = dict(
            ari_user=s.ari_user, ari_password=s.ari_password, ari_url=s.ari_url, ari_app=s.ari_app
        )
        kw.update(overrides)
        return cls(**kw)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ status
    @property
    def auth(self) -> tuple[str, str]:
        return (self.ari_user, self.ari_password)

    @property
    def messages_log(self) -> Path:
        return self.chroot / "var/log/asterisk/messages.log"

    def ari_ready(self, timeout: float = 1.0) -> bool:
        try:
            r = httpx.get(f"{self.ari_url}/ari/asterisk/info", auth=self.auth, timeout=timeout)
            return r.status_code == 200
        except httpx.HTTPError:
            return False

    def is_running(self) -> bool:
        """True when an Asterisk process runs in our chroot (ours or started elsewhere)."""
        if self._proc is not None and self._proc.poll() is None:
            return True
        return self._ctl_alive()

    def _ctl_alive(self) -> bool:
        sock = self.chroot / "run/asterisk/asterisk.ctl"
        if not sock.exists():
            return False
        r = subprocess.run(self._cmd("-rx", "core show uptime seconds"), capture_output=True, timeout=10)
        return r.returncode == 0 and b"System uptime" in r.stdout

    def _cmd(self, *args: str) -> list[str]:
        return ["chroot", str(self.chroot), "/usr/sbin/asterisk", *args]

    def cli(self, command: str, timeout: float = 15) -> str:
        """Run an Asterisk CLI command (asterisk -rx) and return its output."""
        r = subprocess.run(self._cmd("-rx", command), capture_output=True, timeout=timeout, text=True)
        if r.returncode != 0:
            raise AsteriskError(f"asterisk -rx {command!r} failed: {r.stderr or r.stdout}")
        return r.stdout

    # ------------------------------------------------------------------ start / stop
    def _mount(self) -> None:
        for name, args in (("proc", ["-t", "proc", "proc"]), ("dev", ["--bind", "/dev"])):
            target = self.chroot / name
            if subprocess.run(["mountpoint", "-q", str(target)]).returncode != 0:
                subprocess.run(["mount", *args, str(target)], check=True)
                self._mounted.append(target)

    def _umount(self) -> None:
        """Release the chroot's /proc and /dev (whoever mounted them) once Asterisk is gone."""
        self._mounted.clear()
        for name in ("dev", "proc"):
            target = self.chroot / name
            if subprocess.run(["mountpoint", "-q", str(target)]).returncode == 0:
                subprocess.run(["umount", "-l", str(target)], check=False)

    def install_config(self) -> None:
        render_config(
            self.config_dir, self.chroot / "etc/asterisk",
            {"HOTLINE_ARI_USER": self.ari_user, "HOTLINE_ARI_PASSWORD": self.ari_password},
        )
        # No nameservers in the chroot: PJSIP then uses system resolution instead of opening its own
        # DNS sockets on 0.0.0.0 / [::] (the dev config only talks to 127.0.0.1).
        (self.chroot / "etc/resolv.conf").write_text("# hotline: intentionally empty (see asterisk.py)\n")
        for d in ("run/asterisk", "var/log/asterisk", "var/lib/asterisk", "var/spool/asterisk",
                  "var/cache/asterisk", "var/lib/asterisk/moh"):
            (self.chroot / d).mkdir(parents=True, exist_ok=True)

    def start(self, timeout: float = 60.0) -> None:
        if not self.ari_password:
            raise AsteriskError("ARI password is empty (set HOTLINE_ARI_PASSWORD)")
        if self.ari_ready():
            log.info("Asterisk already running with our ARI credentials; reusing it")
            return
        if self._ctl_alive():
            raise AsteriskError("an Asterisk runs in the chroot but ARI rejects our credentials; stop it first")
        ensure_installed(self.chroot)
        self._mount()
        self.install_config()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log_file, "ab")
        try:
            self._proc = subprocess.Popen(
                self._cmd("-U", "root", "-G", "root", "-f", "-n"),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            out.close()
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
        """Stop Asterisk (ours, or one running in the chroot) and release the mounts we made."""
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


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = argv if argv is not None else sys.argv[1:]
    svc = AsteriskService.from_settings()
    cmd = args[0] if args else "status"
    if cmd == "start":
        svc.start()
        print(f"Asterisk running; ARI {svc.ari_url} user {svc.ari_user}; SIP udp 127.0.0.1:5060; dial 12345")
    elif cmd == "run":  # foreground for `make run`: start, wait for Ctrl-C, stop
        svc.start()
        print(f"Asterisk running; ARI {svc.ari_url} user {svc.ari_user}; SIP udp 127.0.0.1:5060; Ctrl-C stops")
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
        print(svc.cli(" ".join(args[1:])), end="")
    else:
        running = svc.is_running()
        print(f"running={running} ari_ready={svc.ari_ready()}")
        return 0 if running else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
