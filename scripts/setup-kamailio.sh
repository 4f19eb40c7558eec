#!/usr/bin/env bash
# Kamailio, the SIP edge in front of several Asterisk nodes (config/kamailio/, docs/scaling.md): Debian 12's
# `kamailio` package (5.6, with the dispatcher module). Idempotent: returns at once when it is installed.
# The package's own service is not started (a policy-rc.d refuses it during the install; nothing is enabled):
# the hotline starts Kamailio itself with config/kamailio/kamailio.cfg (hotline/services/kamailio.py).
set -euo pipefail

log() { printf '[setup-kamailio] %s\n' "$*"; }

if command -v kamailio >/dev/null 2>&1 || [ -x /usr/sbin/kamailio ]; then
    log "kamailio present: $(/usr/sbin/kamailio -v 2>/dev/null | head -1)"
    exit 0
fi
[ "$(id -u)" = 0 ] || { log "need root to install kamailio (apt)"; exit 1; }

start=$SECONDS
guard=""
if [ ! -e /usr/sbin/policy-rc.d ]; then  # keep the Debian service from starting (it would take UDP 5060)
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    guard=/usr/sbin/policy-rc.d
fi
trap '[ -z "$guard" ] || rm -f "$guard"' EXIT
export DEBIAN_FRONTEND=noninteractive
log "installing kamailio (apt, about 10 MB) ..."
if ! apt-get install -y -q --no-install-recommends kamailio; then
    apt-get update -q
    apt-get install -y -q --no-install-recommends kamailio
fi
# In case a service manager started it anyway: the hotline runs its own instance.
if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    systemctl disable --now kamailio >/dev/null 2>&1 || true
fi
log "done in $((SECONDS - start)) s: $(/usr/sbin/kamailio -v 2>/dev/null | head -1)"
