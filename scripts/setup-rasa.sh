#!/usr/bin/env bash
# Create (idempotently) the Rasa virtualenv .venv-rasa with the pins in requirements/rasa.txt.
# A marker file keyed by the sha256 of requirements/rasa.txt makes a second run instant.
#
# Environment:
#   RASA_VENV        target virtualenv (default: <repo>/.venv-rasa)
#   RASA_PYTHON      interpreter to use (default: pyenv's 3.10.13, then python3.10 on PATH)
#   PIP_EXTRA_ARGS   extra arguments for pip install (e.g. a local wheel cache)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQ="$ROOT/requirements/rasa.txt"
VENV="${RASA_VENV:-$ROOT/.venv-rasa}"
MARKER="$VENV/.hotline-requirements.sha256"

log() { printf '[setup-rasa] %s\n' "$*" >&2; }

want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [[ -f "$MARKER" && "$(cat "$MARKER")" == "$want" && -x "$VENV/bin/rasa" ]]; then
    log "up to date ($VENV, requirements sha256 ${want:0:12})"
    exit 0
fi

find_python() {
    if [[ -n "${RASA_PYTHON:-}" ]]; then echo "$RASA_PYTHON"; return; fi
    local root
    if command -v pyenv >/dev/null 2>&1; then
        root="$(pyenv root)"
    else
        root="${PYENV_ROOT:-$HOME/.pyenv}"
    fi
    if [[ -x "$root/versions/3.10.13/bin/python3.10" ]]; then
        echo "$root/versions/3.10.13/bin/python3.10"; return
    fi
    if command -v python3.10 >/dev/null 2>&1; then command -v python3.10; return; fi
    log "no Python 3.10 found: install it with 'pyenv install 3.10.13' or set RASA_PYTHON"
    exit 1
}

PY="$(find_python)"
log "using $("$PY" --version 2>&1) at $PY"

if [[ -x "$VENV/bin/python" ]] && ! "$VENV/bin/python" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)'; then
    log "existing $VENV is not Python 3.10; recreating"
    rm -rf "$VENV"
fi
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating virtualenv $VENV"
    "$PY" -m venv "$VENV"
fi

rm -f "$MARKER"
log "upgrading pip/setuptools/wheel"
"$VENV/bin/python" -m pip install --disable-pip-version-check -q --upgrade 'pip<25' 'setuptools<70' wheel
log "installing $(grep -v '^#' "$REQ" | xargs) (about 1 minute, ~2.7 GB; pip progress follows)"
# pip prints one line per package (Collecting/Downloading/Installing) - that is the progress.
# shellcheck disable=SC2086
"$VENV/bin/python" -m pip install --disable-pip-version-check ${PIP_EXTRA_ARGS:-} -r "$REQ" >&2
if ! "$VENV/bin/python" -c 'import rasa, jieba' 2>/dev/null; then
    log "rasa did not install correctly; rerun with: $VENV/bin/python -m pip install -r $REQ"
    exit 1
fi
log "rasa $("$VENV/bin/python" -c 'import rasa; print(rasa.__version__)') installed"
echo "$want" > "$MARKER"
log "done"
