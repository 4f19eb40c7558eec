"""Train (cached) and run the Rasa server of the 12345 bot (``nlu/``) for ``make run`` and the tests.

Rasa 3.6 lives in its own virtualenv ``.venv-rasa`` (Python 3.10, created by ``scripts/setup-rasa.sh``);
this module only drives it through subprocesses and HTTP, so it imports nothing from Rasa.

    from hotline.services import rasa
    rasa.ensure_installed()              # scripts/setup-rasa.sh unless its marker is current (instant)
    model = rasa.ensure_model()          # var/cache/rasa-models/<hash>.tar.gz, trained only when missing
    srv = rasa.start_server(port=5005)   # `rasa run --enable-api`, waits until /status reports the model
    srv.url                              # http://127.0.0.1:5005
    rasa.stop_server()

The model hash covers what training reads: nlu/config.yml, nlu/domain.yml, nlu/data/** and the jieba
dictionary nlu/dict/** (not nlu/tests/, nlu/actions/, nlu/corpus/).

Redis (tracker + lock store) and the action server URL come from ``config/rasa/endpoints.yml``, whose
``${VAR}`` placeholders are filled from the environment; :func:`endpoint_env` supplies the defaults.

CLI: ``python -m hotline.services.rasa hash|train|run [--port N]``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
NLU_DIR = REPO_ROOT / "nlu"
RASA_VENV = Path(os.environ.get("HOTLINE_RASA_VENV", REPO_ROOT / ".venv-rasa"))
RASA_BIN = RASA_VENV / "bin" / "rasa"
SETUP_SCRIPT = REPO_ROOT / "scripts" / "setup-rasa.sh"
MODEL_CACHE = Path(os.environ.get("HOTLINE_RASA_MODEL_CACHE", REPO_ROOT / "var" / "cache" / "rasa-models"))
ENDPOINTS = REPO_ROOT / "config" / "rasa" / "endpoints.yml"
CREDENTIALS = REPO_ROOT / "config" / "rasa" / "credentials.yml"
LOG_DIR = REPO_ROOT / "var" / "log"

# Inputs of training, relative to nlu/ (files, or directories taken recursively).
HASHED_INPUTS = ("config.yml", "domain.yml", "data", "dict")

ENDPOINT_DEFAULTS = {
    "REDIS_HOST": "127.0.0.1",
    "REDIS_PORT": "6379",
    "REDIS_PASSWORD": "",
    "RASA_TRACKER_DB": "1",
    "RASA_LOCK_DB": "2",
    "RASA_LOCK_STORE": "in_memory",
    "ACTION_ENDPOINT_URL": "http://127.0.0.1:5055/webhook",
}


class RasaError(RuntimeError):
    pass


def _env(tf_threads: int = 2) -> dict[str, str]:
    env = dict(os.environ)
    env["RASA_TELEMETRY_ENABLED"] = "false"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("PYTHONWARNINGS", "ignore")
    # Be considerate of small machines: TensorFlow otherwise grabs every core for its thread pools.
    env.setdefault("TF_INTRA_OP_PARALLELISM_THREADS", str(tf_threads))
    env.setdefault("TF_INTER_OP_PARALLELISM_THREADS", str(tf_threads))
    return env


def endpoint_env(**overrides: str | int) -> dict[str, str]:
    """Environment for ``rasa run``: defaults for the endpoints.yml placeholders, then os.environ, then overrides.

    TensorFlow gets one thread per pool: a turn's ops are far too small to split, and a second thread only
    spins (about 15 % more CPU and a slower parse, measured with DIET on 2 cores)."""
    env = _env(tf_threads=1)
    for key, value in ENDPOINT_DEFAULTS.items():
        env.setdefault(key, value)
    env.update({k: str(v) for k, v in overrides.items()})
    return env


# ---------------------------------------------------------------- install
def ensure_installed(*, quiet: bool = False) -> None:
    """Run scripts/setup-rasa.sh (it returns at once when .venv-rasa matches requirements/rasa.txt)."""
    subprocess.run(["bash", str(SETUP_SCRIPT)], check=True,
                   stdout=subprocess.DEVNULL if quiet else None, stderr=subprocess.DEVNULL if quiet else None)
    if not RASA_BIN.exists():
        raise RasaError(f"{RASA_BIN} missing after {SETUP_SCRIPT}")


# ---------------------------------------------------------------- model
def _input_files(nlu_dir: Path) -> list[Path]:
    files: list[Path] = []
    for name in HASHED_INPUTS:
        p = nlu_dir / name
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files += [f for f in p.rglob("*") if f.is_file() and "__pycache__" not in f.parts]
    return sorted(files)


def model_hash(nlu_dir: Path = NLU_DIR) -> str:
    """sha256 over the training inputs (paths and contents), so any edit gives a new model."""
    h = hashlib.sha256()
    for f in _input_files(nlu_dir):
        h.update(f.relative_to(nlu_dir).as_posix().encode() + b"\0")
        h.update(f.read_bytes() + b"\0")
    return h.hexdigest()


def model_path(nlu_dir: Path = NLU_DIR, cache_dir: Path = MODEL_CACHE) -> Path:
    return cache_dir / f"{model_hash(nlu_dir)[:16]}.tar.gz"


def ensure_model(nlu_dir: Path = NLU_DIR, cache_dir: Path = MODEL_CACHE, *, quiet: bool = False,
                 progress: bool = False) -> Path:
    """Return the cached model for the current nlu/ inputs, training it first when it is missing (minutes).

    `progress`: Rasa's own output is kept out of the way and one status line is printed every 15 s instead
    (elapsed time, the component being trained, DIET's epochs) - what `make setup` shows."""
    target = model_path(nlu_dir, cache_dir)
    if target.exists():
        log.info("rasa model cache hit: %s", target)
        return target
    if not RASA_BIN.exists():
        ensure_installed(quiet=quiet)
    cache_dir.mkdir(parents=True, exist_ok=True)
    print(f"[rasa] training model {target.name} (1-8 min on 2 cores depending on load; cached afterwards)", file=sys.stderr, flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".train-") as tmp:
        cmd = [str(RASA_BIN), "train", "--config", "config.yml", "--domain", "domain.yml", "--data", "data",
               "--out", tmp, "--fixed-model-name", "model"]
        if quiet:
            cmd.append("--quiet")  # also hides the per-epoch progress bars
        if progress and not quiet:
            returncode, output = _train_with_progress(cmd, nlu_dir, started)
        else:
            proc = subprocess.run(cmd, cwd=nlu_dir, env=_env(), text=True,
                                  stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT if quiet else None)
            returncode, output = proc.returncode, proc.stdout or ""
        built = Path(tmp) / "model.tar.gz"
        if returncode != 0 or not built.exists():
            tail = output[-3000:] if (quiet or progress) else "(see output above)"
            raise RasaError(f"rasa train failed with exit code {returncode}: {tail}")
        os.replace(built, target)  # atomic: a half-written model is never picked up
    print(f"[rasa] trained {target.name} in {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
    return target


_COMPONENT = re.compile(r"(?:Starting to train component|Restored component) '?(\w+)'?")
_EPOCHS = re.compile(r"Epochs:\s*(\d+)%")


def _train_with_progress(cmd: list[str], cwd: Path, started: float, every: float = 15.0) -> tuple[int, str]:
    """Run `rasa train`, printing `[rasa] training: 1m45s, DIETClassifier, epochs 40%` every `every` seconds."""
    import threading
    from collections import deque

    proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    tail: deque[str] = deque(maxlen=400)
    status = {"stage": "reading the training data", "epochs": ""}

    def read() -> None:
        assert proc.stdout is not None
        buf = b""
        while chunk := proc.stdout.read1(4096):  # type: ignore[attr-defined]
            buf += chunk
            *pieces, buf = re.split(rb"[\r\n]", buf)  # progress bars redraw with \r
            for raw in pieces:
                line = raw.decode("utf-8", "replace").strip()
                if not line:
                    continue
                tail.append(line)
                if m := _COMPONENT.search(line):
                    status.update(stage=m.group(1), epochs="")
                elif m := _EPOCHS.search(line):
                    status["epochs"] = f", epochs {m.group(1)}%"
                elif "Training Core model" in line or "Starting to train component 'MemoizationPolicy'" in line:
                    status.update(stage="dialogue policies", epochs="")

    reader = threading.Thread(target=read, name="rasa-train-output", daemon=True)
    reader.start()
    try:
        while True:
            try:
                proc.wait(every)
                break
            except subprocess.TimeoutExpired:
                elapsed = int(time.monotonic() - started)
                print(f"[rasa] training: {elapsed // 60}m{elapsed % 60:02d}s, {status['stage']}{status['epochs']}",
                      file=sys.stderr, flush=True)
    finally:
        if proc.poll() is None:  # interrupted (Ctrl-C, SIGTERM from the set-up): no orphaned `rasa train`
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    reader.join(10)
    return proc.returncode, "\n".join(tail)


# ---------------------------------------------------------------- evaluation
TEST_NLU = NLU_DIR / "tests" / "test_nlu.yml"
_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\(([^)]+)\)|\{([^}]+)\})")


def read_nlu_examples(path: Path = TEST_NLU) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(plain text, intent, [(entity, text)]) for every example of a Rasa YAML NLU file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out = []
    for block in data.get("nlu", []):
        if "intent" not in block:
            continue
        for line in str(block.get("examples", "")).splitlines():
            line = line.strip()
            if not line.startswith("- "):
                continue
            raw = line[2:].strip()
            ents = []
            for m in _ANNOTATION.finditer(raw):
                name = m.group(2) or json.loads(m.group(3)).get("entity", "")
                ents.append((name, m.group(1)))
            out.append((_ANNOTATION.sub(lambda m: m.group(1), raw), block["intent"], ents))
    return out


def evaluate_nlu(model: Path | None = None, test_file: Path = TEST_NLU, out_dir: Path | None = None,
                 *, quiet: bool = True) -> dict:
    """Run ``rasa test nlu --nlu <test_file>`` and return accuracy, macro F1 and the per-intent report."""
    model = model or ensure_model(quiet=quiet)
    with tempfile.TemporaryDirectory(prefix="rasa-test-") as tmp:
        out = Path(out_dir or tmp)
        cmd = [str(RASA_BIN), "test", "nlu", "--nlu", str(test_file), "--model", str(model), "--out", str(out),
               "--no-plot", "--quiet"]
        proc = subprocess.run(cmd, cwd=NLU_DIR, env=_env(), text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
        report_file = out / "intent_report.json"
        if proc.returncode != 0 or not report_file.exists():
            raise RasaError(f"rasa test nlu failed ({proc.returncode}): {proc.stdout[-3000:]}")
        report = json.loads(report_file.read_text())
        errors_file = out / "intent_errors.json"
        errors = json.loads(errors_file.read_text()) if errors_file.exists() else []
    per_intent = {k: v for k, v in report.items() if isinstance(v, dict) and "support" in v
                  and k not in ("macro avg", "weighted avg", "micro avg")}
    return {
        "accuracy": float(report["accuracy"]) if "accuracy" in report else float(report["micro avg"]["f1-score"]),
        "macro_f1": float(report["macro avg"]["f1-score"]),
        "examples": sum(int(v["support"]) for v in per_intent.values()),
        "per_intent": per_intent,
        "errors": errors,
    }


# ---------------------------------------------------------------- server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RasaServer:
    port: int
    model: Path
    process: subprocess.Popen | None = None
    log_file: Path | None = None
    env: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        try:
            r = httpx.get(f"{self.url}/status", timeout=2.0)
            return r.status_code == 200 and bool(r.json().get("model_file"))
        except (httpx.HTTPError, ValueError):
            return False

    def stop(self, timeout: float = 15.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


_current: RasaServer | None = None


def warm_up(url: str) -> None:
    """The first turns load lazily (Rasa's graph, the action server's jieba dictionary and KB index):
    run a KB question and a complaint once, off the clock, so real callers never wait for them."""
    for text in ("社保卡丢了怎么办", "路灯不亮了"):
        sender = f"warm-up-{os.getpid()}"
        httpx.post(f"{url}/webhooks/hotline/webhook", json={"sender": sender, "message": text}, timeout=120)
        httpx.post(f"{url}/conversations/{sender}/tracker/events", json=[{"event": "restart"}], timeout=30)


def start_server(
    port: int = 5005,
    endpoints: Path | None = ENDPOINTS,
    *,
    model: Path | None = None,
    timeout: float = 300.0,
    env: dict[str, str | int] | None = None,
) -> RasaServer:
    """Start ``rasa run --enable-api`` on 127.0.0.1:port and wait until /status reports the loaded model.

    ``env`` overrides the endpoints.yml placeholders (e.g. ``{"RASA_TRACKER_DB": 9}``). The server's output
    goes to var/log/rasa-<port>.log. Only one server is tracked per process; a running one is stopped first.
    """
    global _current
    if _current is not None:
        stop_server()
    model = model or ensure_model()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_file = LOG_DIR / f"rasa-{port}.log"
    cmd = [str(RASA_BIN), "run", "--enable-api", "--model", str(model), "--port", str(port),
           "--interface", "127.0.0.1", "--credentials", str(CREDENTIALS)]
    if endpoints is not None:
        cmd += ["--endpoints", str(endpoints)]
    full_env = endpoint_env(**(env or {}))
    # nlu/ on the path: the hotline's input channel (nlu/hotline_channel.py, named in credentials.yml)
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(NLU_DIR), full_env.get("PYTHONPATH", "")) if p)
    print(f"[rasa] starting server on :{port} with {model.name} (about 30 s)", file=sys.stderr, flush=True)
    started = time.monotonic()
    with open(log_file, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=NLU_DIR, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = RasaServer(port=port, model=model, process=proc, log_file=log_file, env=full_env)
    _current = server
    deadline = started + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _current = None
            tail = log_file.read_text(errors="replace")[-3000:]
            raise RasaError(f"rasa run exited with {proc.returncode}; log {log_file}:\n{tail}")
        if server.ready():
            print(f"[rasa] server ready in {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
            return server
        time.sleep(0.5)
    stop_server()
    raise RasaError(f"rasa run not ready after {timeout:.0f}s; log {log_file}")


def stop_server() -> None:
    global _current
    server, _current = _current, None
    if server is not None:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m hotline.services.rasa")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("hash")
    train = sub.add_parser("train", help="the model for nlu/ into the cache (instant when cached)")
    train.add_argument("--progress", action="store_true", help="a status line every 15 s instead of Rasa's output")
    run = sub.add_parser("run")
    run.add_argument("--port", type=int, default=5005)
    args = ap.parse_args(argv)
    if args.cmd == "hash":
        print(model_hash())
    elif args.cmd == "train":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds, stopping `rasa train` (finally)
        print(f"[rasa] model ready: {ensure_model(progress=args.progress)}", flush=True)
    else:
        srv = start_server(port=args.port)
        print(f"rasa ready at {srv.url} (Ctrl-C to stop)")
        try:
            while srv.process and srv.process.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            stop_server()
    return 0


if __name__ == "__main__":
    sys.exit(main())
