#!/usr/bin/env bash
# Web consoles' browser tests: Debian's chromium, CJK fonts (so Mandarin renders in screenshots) and
# Playwright for Python in .venv (pinned in requirements/web.txt). Idempotent; skips what is there.
# Playwright drives /usr/bin/chromium; `playwright install` (a browser download) is never run.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || need+=(fonts-noto-cjk)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup-web: installing ${need[*]} (apt)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
else
  echo "setup-web: chromium and fonts-noto-cjk present"
fi

want=$(sed -n 's/^playwright==//p' requirements/web.txt)
have=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("playwright"))' 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  echo "setup-web: pip install playwright==$want into .venv"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 .venv/bin/pip install --progress-bar on -r requirements/web.txt
else
  echo "setup-web: playwright $have present"
fi
