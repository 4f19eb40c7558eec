#!/usr/bin/env bash
# Install Asterisk (Debian sid packages) into a cached chroot, plus the host's sipp.
#
# Idempotent: when everything is in place (marker file present) it returns in well under a second.
# Environment:
#   HOTLINE_ASTERISK_CHROOT  chroot directory (default /var/cache/hotline/asterisk-sid)
#   HOTLINE_DEBIAN_MIRROR    Debian mirror for sid, passed to debootstrap only when set (unset: debootstrap's
#                            own default mirror, and the chroot's apt uses what debootstrap wrote)
#   FORCE=1                  redo the package step even when the marker exists
set -euo pipefail

CHROOT="${HOTLINE_ASTERISK_CHROOT:-/var/cache/hotline/asterisk-sid}"
MIRROR="${HOTLINE_DEBIAN_MIRROR:-}"   # empty: no mirror argument at all (debootstrap's default)
MARKER="$CHROOT/.hotline-asterisk-ready"
MARKER_VERSION="1"   # bump when the package list below changes
PACKAGES=(asterisk asterisk-modules asterisk-core-sounds-en)
APT_OPTS=(-o Acquire::Check-Valid-Until=false -o Dpkg::Use-Pty=0 -o APT::Color=0)

log() { printf '[setup-asterisk] %s\n' "$*"; }

need_host_pkg() {  # need_host_pkg <binary> <package>
    command -v "$1" >/dev/null 2>&1 && return 0
    [ "$(id -u)" = 0 ] || { log "need root to install $2"; exit 1; }
    log "installing host package $2 ..."
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$2"; then
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$2"
    fi
}

# Fast path: everything installed.
if [ "${FORCE:-0}" != 1 ] && [ -f "$MARKER" ] && [ "$(cat "$MARKER" 2>/dev/null)" = "$MARKER_VERSION" ] \
        && [ -x "$CHROOT/usr/sbin/asterisk" ] && command -v sipp >/dev/null 2>&1; then
    log "asterisk chroot ready at $CHROOT (cached); sipp present"
    exit 0
fi

[ "$(id -u)" = 0 ] || { log "must run as root (debootstrap/chroot)"; exit 1; }

start=$(date +%s)
log "step 1/5: host packages (debootstrap, sip-tester)"
need_host_pkg debootstrap debootstrap
need_host_pkg sipp sip-tester

mkdir -p "$(dirname "$CHROOT")"
if [ ! -x "$CHROOT/usr/bin/apt-get" ] || [ ! -f "$CHROOT/.hotline-debootstrap-done" ]; then
    log "step 2/5: debootstrap --variant=minbase sid into $CHROOT${MIRROR:+ from $MIRROR} (about a minute) ..."
    rm -rf "$CHROOT"
    debootstrap --variant=minbase sid "$CHROOT" ${MIRROR:+"$MIRROR"}
    touch "$CHROOT/.hotline-debootstrap-done"
else
    log "step 2/5: base system already bootstrapped"
fi

# Keep policy-rc.d so no service is started inside the chroot by maintainer scripts.
printf '#!/bin/sh\nexit 101\n' > "$CHROOT/usr/sbin/policy-rc.d"
chmod +x "$CHROOT/usr/sbin/policy-rc.d"
cp -f /etc/resolv.conf "$CHROOT/etc/resolv.conf" 2>/dev/null || true

mounted=()
cleanup() {
    for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
for m in proc dev; do
    if ! mountpoint -q "$CHROOT/$m"; then
        mkdir -p "$CHROOT/$m"
        if [ "$m" = proc ]; then mount -t proc proc "$CHROOT/proc"; else mount --bind /dev "$CHROOT/dev"; fi
        mounted+=("$CHROOT/$m")
    fi
done

log "step 3/5: apt-get update (sid, validity check off) ..."
chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" update
log "step 4/5: apt-get install ${PACKAGES[*]} (about 40 s, ~640 MB) ..."
chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install -y \
    --no-install-recommends "${PACKAGES[@]}"
chroot "$CHROOT" apt-get clean

log "step 5/5: ownership of the asterisk directories -> root:root"
for d in etc/asterisk var/lib/asterisk var/spool/asterisk var/log/asterisk \
         usr/share/asterisk var/cache/asterisk; do
    [ -e "$CHROOT/$d" ] && chown -R root:root "$CHROOT/$d"
done
# Keep the packaged sample config for reference; our config is installed at start-up.
if [ -d "$CHROOT/etc/asterisk" ] && [ ! -d "$CHROOT/etc/asterisk.dist" ]; then
    cp -a "$CHROOT/etc/asterisk" "$CHROOT/etc/asterisk.dist"
fi
echo "$MARKER_VERSION" > "$MARKER"
log "done in $(( $(date +%s) - start )) s: $(chroot "$CHROOT" /usr/sbin/asterisk -V 2>/dev/null || echo asterisk)"
