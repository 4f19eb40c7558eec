#!/usr/bin/env bash
# Download the Mandarin Vosk model (for `make models`, on a machine with
# internet access) into var/cache/models/vosk-cn, verifying a pinned sha256.
# Idempotent: does nothing when the model with this checksum is in place.
#
#   scripts/download-vosk-model.sh
#   VOSK_CN_DIR=/srv/models/vosk-cn scripts/download-vosk-model.sh
#   VOSK_CN_ZIP=/path/to/vosk-model-small-cn-0.22.zip scripts/download-vosk-model.sh   # offline copy
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NAME="vosk-model-small-cn-0.22"
URL="${VOSK_CN_URL:-https://alphacephei.com/vosk/models/$NAME.zip}"
# Upstream archive checksum and size (the same value is pinned by several
# independent projects; it could not be re-measured from this dev box).
SHA256="3af8b0e7e0f835ae9d414ce5df580237a3cfb08d586c9fbbb0f7ff29ad5b14ba"
SIZE=43898754
DEST="${VOSK_CN_DIR:-$ROOT/var/cache/models/vosk-cn}"
DL_DIR="$ROOT/var/cache/downloads"
ZIP="${VOSK_CN_ZIP:-$DL_DIR/$NAME.zip}"

log() { printf '[vosk-model] %s\n' "$*"; }

stamp="$DEST/.sha256-$SHA256"
if [[ -f "$stamp" && -f "$DEST/am/final.mdl" ]]; then
    log "model already in ${DEST#$ROOT/}"
    exit 0
fi

for tool in sha256sum unzip; do
    command -v "$tool" >/dev/null || { log "missing tool: $tool (apt-get install -y $tool)" >&2; exit 1; }
done

verify() { [[ -f "$1" ]] && echo "$SHA256  $1" | sha256sum -c --status -; }

mkdir -p "$DL_DIR"
if ! verify "$ZIP"; then
    log "downloading $URL (~42 MB)..."
    tmp="$ZIP.part"
    if command -v curl >/dev/null; then
        curl -fL --retry 3 --retry-delay 2 --connect-timeout 20 --progress-bar -C - -o "$tmp" "$URL" \
            || curl -fL --retry 3 --connect-timeout 20 --progress-bar -o "$tmp" "$URL"
    elif command -v wget >/dev/null; then
        wget --tries=3 --timeout=20 -c --show-progress -q -O "$tmp" "$URL"
    else
        log "need curl or wget" >&2
        exit 1
    fi
    got_size="$(stat -c %s "$tmp")"
    if [[ "$got_size" != "$SIZE" ]]; then
        log "unexpected size $got_size (want $SIZE); keeping $tmp for inspection" >&2
        exit 1
    fi
    if ! verify "$tmp"; then
        log "sha256 mismatch: got $(sha256sum "$tmp" | cut -d' ' -f1), want $SHA256" >&2
        rm -f "$tmp"
        exit 1
    fi
    mv "$tmp" "$ZIP"
fi
log "checksum ok; unpacking into ${DEST#$ROOT/}..."

work="$(mktemp -d "$DL_DIR/unpack.XXXXXX")"
trap 'rm -rf "$work"' EXIT
unzip -q "$ZIP" -d "$work"
src="$work/$NAME"
[[ -f "$src/am/final.mdl" ]] || { log "archive layout unexpected (no $NAME/am/final.mdl)" >&2; exit 1; }
rm -rf "$DEST.new"
mkdir -p "$(dirname "$DEST")"
mv "$src" "$DEST.new"
touch "$DEST.new/.sha256-$SHA256"
rm -rf "$DEST"
mv "$DEST.new" "$DEST"
log "model ready in ${DEST#$ROOT/} (VoskRecognizer(model_dir=...) default)"
