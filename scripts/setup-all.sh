#!/usr/bin/env bash
# Everything `make run` / `make test` need, idempotent; each step prints progress and skips when done.
#
# The Rasa model (var/cache/rasa-models/<hash of nlu/>.tar.gz) is trained here, not in `hotline run`: as soon as
# .venv-rasa exists, training starts in the background (a status line every 15 s, prefixed [rasa]) while the
# remaining steps - mostly downloads and unpacking - go on; the set-up waits for it at the end. A cached model
# makes it instant. HOTLINE_SETUP_NO_TRAIN=1 leaves training to the first `hotline run`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

step() { printf '\n==> %s\n' "$*"; }
started=$SECONDS

train_pid=""
stop_training() { [ -z "$train_pid" ] || kill -- "$train_pid" 2>/dev/null || true; }
trap stop_training EXIT

for script in setup-speech.sh setup-rasa.sh setup-actions.sh setup-asterisk.sh setup-kamailio.sh setup-web.sh; do
  if [ -x "scripts/$script" ] || [ -f "scripts/$script" ]; then
    step "$script"
    bash "scripts/$script"
  fi
  if [ "$script" = setup-rasa.sh ] && [ "${HOTLINE_SETUP_NO_TRAIN:-0}" != 1 ]; then
    step "Rasa model (trained in the background while the set-up goes on; cached by a hash of nlu/)"
    $PY -m hotline.services.rasa train --progress &
    train_pid=$!
  fi
done

step "database schema"
.venv/bin/hotline db upgrade
step "seed data"
.venv/bin/hotline seed

if [ -n "$train_pid" ]; then
  step "Rasa model: waiting for the training to finish"
  wait "$train_pid" || { echo "[rasa] training failed (see above)"; exit 1; }
  train_pid=""
fi
printf '\nset-up complete in %d s\n' $((SECONDS - started))
