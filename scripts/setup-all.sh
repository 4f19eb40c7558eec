#!/usr/bin/env bash
# Everything `make run` / `make test` need, idempotent; each step prints progress and skips when done.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

step() { printf '\n==> %s\n' "$*"; }

for script in setup-speech.sh setup-rasa.sh setup-actions.sh setup-asterisk.sh setup-web.sh; do
  if [ -x "scripts/$script" ] || [ -f "scripts/$script" ]; then
    step "$script"
    bash "scripts/$script"
  fi
done

step "database schema"
.venv/bin/hotline db upgrade
step "seed data"
.venv/bin/hotline seed
