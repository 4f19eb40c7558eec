#!/bin/sh
# Render config/asterisk/ (mounted or baked at /opt/hotline/asterisk) into /etc/asterisk for a container:
#  - ari.conf: the ARI user and password from the environment (the repo holds only placeholders);
#  - ARI/HTTP and SIP listen on the container's interfaces instead of 127.0.0.1 (ARI is never published);
#  - RTP is not pinned to 127.0.0.1; behind NAT ASTERISK_EXTERNAL_IP is announced in SIP/SDP;
#  - with SIP_TRUNK_HOST set, the trunk (deploy/asterisk/*_trunk.conf) is rendered and included.
set -eu
: "${HOTLINE_ARI_USER:=hotline}"
: "${HOTLINE_ARI_PASSWORD:?HOTLINE_ARI_PASSWORD is required}"
export HOTLINE_ARI_USER HOTLINE_ARI_PASSWORD
src=/opt/hotline/asterisk
trunk=/opt/hotline/asterisk-trunk
dst=/etc/asterisk

find "$dst" -mindepth 1 -delete
cp "$src"/*.conf "$dst"/
envsubst '${HOTLINE_ARI_USER} ${HOTLINE_ARI_PASSWORD}' <"$src/ari.conf" >"$dst/ari.conf"

sed -i 's/^bindaddr = 127\.0\.0\.1$/bindaddr = 0.0.0.0/' "$dst/http.conf"
sed -i -e 's/^bind = 127\.0\.0\.1:5060$/bind = 0.0.0.0:5060/' \
       -e '/^media_address = 127\.0\.0\.1$/d' -e '/^bind_rtp_to_media_address = yes$/d' "$dst/pjsip.conf"
if [ -n "${ASTERISK_EXTERNAL_IP:-}" ]; then
    cat >>"$dst/pjsip.conf" <<CONF

[transport-udp](+)
external_media_address = ${ASTERISK_EXTERNAL_IP}
external_signaling_address = ${ASTERISK_EXTERNAL_IP}
local_net = ${ASTERISK_LOCAL_NET:-172.16.0.0/12}
local_net = 127.0.0.0/8
CONF
fi

if [ -n "${SIP_TRUNK_HOST:-}" ]; then
    : "${SIP_TRUNK_USER:?SIP_TRUNK_USER is required with SIP_TRUNK_HOST}"
    : "${SIP_TRUNK_PASSWORD:?SIP_TRUNK_PASSWORD is required with SIP_TRUNK_HOST}"
    : "${SIP_TRUNK_DID:=12345}"
    export SIP_TRUNK_HOST SIP_TRUNK_USER SIP_TRUNK_PASSWORD SIP_TRUNK_DID
    vars='${SIP_TRUNK_HOST} ${SIP_TRUNK_USER} ${SIP_TRUNK_PASSWORD} ${SIP_TRUNK_DID}'
    envsubst "$vars" <"$trunk/pjsip_trunk.conf" >"$dst/pjsip_trunk.conf"
    envsubst "$vars" <"$trunk/extensions_trunk.conf" >"$dst/extensions_trunk.conf"
    printf '\n#include pjsip_trunk.conf\n' >>"$dst/pjsip.conf"
    printf '\n#include extensions_trunk.conf\n' >>"$dst/extensions.conf"
fi

chown -R root:asterisk "$dst"
chmod 0640 "$dst"/*.conf
exec "$@"
