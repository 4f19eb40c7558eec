"""scripts/setup-speech.sh: idempotent, quick when everything is in place."""

from __future__ import annotations

import hashlib
import subprocess
import time

from ivr.speech.base import REPO_ROOT

from .conftest import WHISPER_DIR


def test_second_run_is_a_quick_no_op() -> None:
    t0 = time.perf_counter()
    out = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "setup-speech.sh")], check=True, capture_output=True, text=True
    ).stdout
    assert time.perf_counter() - t0 < 3.0
    assert "packages up to date" in out and "whisper model ready" in out


def test_assembled_model_matches_pinned_checksum() -> None:
    script = (REPO_ROOT / "scripts" / "setup-speech.sh").read_text()
    pinned = script.split('MODEL_SHA256="', 1)[1].split('"', 1)[0]
    h = hashlib.sha256()
    with open(WHISPER_DIR / "model.bin", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    assert h.hexdigest() == pinned
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        assert (WHISPER_DIR / name).is_file()
