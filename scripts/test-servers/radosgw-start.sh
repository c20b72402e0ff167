#!/bin/bash
# A throw-away single-node Ceph cluster (one monitor, one memstore OSD) with radosgw in front,
# for the s3-radosgw test suite. Everything lives in DIR; nothing is written elsewhere.
#
# Usage:
#   radosgw-start.sh DIR RGW_PORT [MON_PORT]      start mon + osd + rgw (wipes DIR first)
#   radosgw-start.sh --rgw-only DIR RGW_PORT      restart only radosgw on an existing DIR
#
# Ports (all on 127.0.0.1):
#   RGW_PORT    the S3 endpoint (default 7480)
#   MON_PORT    the monitor's msgr2 port; its legacy msgr1 port is MON_PORT+1 (default 3300/3301)
#   the OSD picks free ports in Ceph's default range 6800-7300 by itself.
# Two runs at once need different DIRs and different RGW/MON ports.
#
# Credentials: access key CEPHAK, secret CEPHSK (user `test`). Data is in memory (memstore):
# killing the OSD loses it, restarting only radosgw keeps it.
#
# Before starting, daemons left over from a previous run in the same DIR are killed (their
# pid files are in DIR/run). On success the last line is `rgw up; pids: mon=… osd=… rgw=…`.
set -euo pipefail

RGW_ONLY=0
if [ "${1:-}" = "--rgw-only" ]; then RGW_ONLY=1; shift; fi
C=${1:?usage: radosgw-start.sh [--rgw-only] DIR RGW_PORT [MON_PORT]}
RGW_PORT=${2:-7480}
MON_PORT=${3:-3300}
MON_V1_PORT=$((MON_PORT + 1))
C=$(realpath -m "$C")

# Kill what a pid file names, and wait (up to 10 s) until it is gone.
kill_pidfile() {
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f" 2>/dev/null || true)
  rm -f "$f"
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

wait_for_rgw() {
  for _ in $(seq 120); do
    if curl -s -o /dev/null "http://127.0.0.1:$RGW_PORT/"; then return 0; fi
    sleep 0.25
  done
  echo "radosgw did not answer on port $RGW_PORT; see $C/log" >&2
  return 1
}

start_rgw() {
  radosgw -c "$C/ceph.conf" -n client.admin \
    --rgw-frontends "beast endpoint=127.0.0.1:$RGW_PORT" \
    --rgw-data "$C/rgw" --pid-file "$C/run/rgw.pid"
  wait_for_rgw
}

if [ "$RGW_ONLY" = 1 ]; then
  [ -f "$C/ceph.conf" ] || { echo "no cluster in $C" >&2; exit 1; }
  kill_pidfile "$C/run/rgw.pid"
  start_rgw
  echo "rgw up; pids: rgw=$(cat "$C/run/rgw.pid")"
  exit 0
fi

for f in rgw osd mon; do kill_pidfile "$C/run/$f.pid"; done
rm -rf "$C"
mkdir -p "$C"/{run,log,mon,osd,rgw}

FSID=$(cat /proc/sys/kernel/random/uuid)
# 32 bytes, base64: a fixed key for the test KMS (not a secret: throw-away test data only).
TEST_KMS_KEY=a3VyYS10ZXN0LWttcy1rZXktMzItYnl0ZXMtbG9uZyE=
MON_ADDR="[v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$MON_V1_PORT]"
# `auth … = none` and `ms … mode = crc` keep the cluster from waiting minutes on cephx/secure
# mode handshakes; memstore keeps the OSD in RAM so no disk is prepared.
cat >"$C/ceph.conf" <<CONF
[global]
fsid = $FSID
mon host = $MON_ADDR
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
ms mon client mode = crc
ms client mode = crc
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = 2147483648
run dir = $C/run
admin socket = $C/run/\$name.asok
log file = $C/log/\$name.log
mon data = $C/mon/\$cluster-\$id
osd data = $C/osd/\$cluster-\$id
keyring = $C/keyring
# Server-side encryption over plain http with radosgw's built-in test KMS (keys in this file,
# for tests only): SSE-KMS requests naming key id `kura-test-key` work.
rgw crypt require ssl = false
rgw crypt s3 kms backend = testing
rgw crypt s3 kms encryption keys = kura-test-key=$TEST_KMS_KEY
CONF

ceph-authtool --create-keyring "$C/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
monmaptool --create --addv a "$MON_ADDR" --fsid "$FSID" "$C/monmap" >/dev/null
ceph-mon -c "$C/ceph.conf" --mkfs -i a --monmap "$C/monmap" --keyring "$C/keyring"
ceph-mon -c "$C/ceph.conf" -i a --pid-file "$C/run/mon.pid"
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
OSD_ID=$(timeout 30 ceph -c "$C/ceph.conf" osd new "$OSD_UUID")
mkdir -p "$C/osd/ceph-$OSD_ID"
ceph-osd -c "$C/ceph.conf" -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" 2>/dev/null
ceph-osd -c "$C/ceph.conf" -i "$OSD_ID" --pid-file "$C/run/osd.pid" 2>/dev/null
start_rgw
radosgw-admin -c "$C/ceph.conf" user create --uid test --display-name test \
  --access-key CEPHAK --secret CEPHSK >/dev/null
echo "rgw up; pids: mon=$(cat "$C/run/mon.pid") osd=$(cat "$C/run/osd.pid") rgw=$(cat "$C/run/rgw.pid")"
