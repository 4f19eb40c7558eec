"""Run the Rasa action server (rasa-sdk, ``nlu/actions/``) from its own virtualenv ``.venv-actions``.

    srv = actions.start_server(port=5055, env={"DATABASE_URL": ..., "REDIS_URL": ...})
    srv.url          # http://127.0.0.1:5055 (Rasa's endpoints.yml points at <url>/webhook)
    srv.stop()

The actions use the same database as the hotline, so the caller passes the hotline's DATABASE_URL.
CLI: ``python -m hotline.services.actions run [--port N]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("HOTLINE_ACTIONS_VENV", REPO_ROOT / ".venv-actions"))
SETUP_SCRIPT = REPO_ROOT / "scripts" / "setup-actions.sh"
LOG_DIR = REPO_ROOT / "var" / "log"


class ActionServerError(RuntimeError):
    pass


def ensure_installed() -> None:
    """scripts/setup-actions.sh returns at once when its marker is current."""
    subprocess.run(["bash", str(SETUP_SCRIPT)], check=True, cwd=REPO_ROOT)


@dataclass
class ActionServer:
    port: int
    process: subprocess.Popen | None = None
    log_file: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook(self) -> str:
        return f"{self.url}/webhook"

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def start_server(port: int = 5055, *, env: dict[str, str] | None = None, timeout: float = 60.0) -> ActionServer:
    ensure_installed()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_file = LOG_DIR / f"actions-{port}.log"
    cmd = [str(VENV / "bin" / "python"), "-m", "rasa_sdk", "--actions", "nlu.actions", "--port", str(port)]
    proc_env = {**os.environ, **(env or {}), "PYTHONPATH": str(REPO_ROOT)}
    with log_file.open("ab") as out:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=proc_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = ActionServer(port, proc, log_file)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ActionServerError(f"action server exited ({proc.returncode}); see {log_file}")
        if server.ready():
            log.info("action server ready on %s", server.url)
            return server
        time.sleep(0.3)
    server.stop()
    raise ActionServerError(f"action server not ready after {timeout:.0f}s; see {log_file}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hotline.services.actions")
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--port", type=int, default=5055)
    args = parser.parse_args(argv)
    server = start_server(args.port)
    print(f"action server on {server.url} (log {server.log_file}); Ctrl-C stops it", flush=True)
    try:
        while server.process and server.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
