#!/usr/bin/env bash
# A small real Ceph on this one host for the artefact store's replication test
# (crates/server/tests/artifacts_ceph.rs): Debian's ceph-mon, ceph-osd and radosgw; one monitor,
# three memstore OSDs (RAM-backed, 512 MiB each), pool size 3 (min_size 2) with the OSD as the
# failure domain, radosgw (beast) on 127.0.0.1, an S3 user and bucket. No cephx (auth none):
# everything listens on 127.0.0.1 only. Idempotent; root, no stdin. Too slow and heavy for every
# CI run (packages ~300 MB, start ~1 min), so it is run on demand:
#   . .ci/ceph.sh && cargo test -p suanli-server --test artifacts_ceph -- --nocapture
# Exports SUANLI_TEST_CEPH_URL (s3://BUCKET?endpoint=...&credentials=FILE: its own key file, so
# it coexists with .ci/s3.sh's AWS_* variables), SUANLI_TEST_CEPH_CONF (for `ceph -c`) and
# SUANLI_TEST_CEPH_DIR.
suanli_ceph_start() {
  CEPH_DIR="${SUANLI_CEPH_DIR:-/var/tmp/suanli-ceph}"
  RGW_PORT="${SUANLI_CEPH_RGW_PORT:-7480}"
  CONF="$CEPH_DIR/ceph.conf"
  ceph_fail() { echo "ceph.sh: $1 (logs in $CEPH_DIR)" >&2; }
  if ! command -v ceph-osd >/dev/null || ! command -v radosgw >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      ceph-mon ceph-osd radosgw ceph-common >/dev/null || { ceph_fail "apt-get install failed"; return 1; }
  fi
  if ! curl -s -o /dev/null "http://127.0.0.1:$RGW_PORT/"; then
    # A half-started earlier cluster: stop its daemons (by their pid files) and start afresh.
    for pidfile in "$CEPH_DIR"/run/*.pid; do
      [ -f "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null
    done
    sleep 1
    rm -rf "$CEPH_DIR"
    mkdir -p "$CEPH_DIR/run" "$CEPH_DIR/mon-a" "$CEPH_DIR/rgw"
    FSID="$(cat /proc/sys/kernel/random/uuid)"
    cat >"$CONF" <<CONF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:3300
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
ms bind ipv4 = true
run dir = $CEPH_DIR/run
pid file = $CEPH_DIR/run/\$name.pid
admin socket = $CEPH_DIR/run/\$name.asok
log file = $CEPH_DIR/\$name.log
keyring = $CEPH_DIR/keyring
osd objectstore = memstore
memstore device bytes = 536870912
osd data = $CEPH_DIR/osd-\$id
osd pool default size = 3
osd pool default min size = 2
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
osd heartbeat grace = 8
[mon.a]
mon data = $CEPH_DIR/mon-a
[client.rgw.a]
# radosgw asks for a secure monitor connection by default, which needs cephx.
ms mon client mode = crc
ms client mode = crc
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $CEPH_DIR/rgw
CONF
    ceph-authtool --create-keyring "$CEPH_DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:3300,v1:127.0.0.1:6789]" \
      "$CEPH_DIR/monmap" >/dev/null
    ceph-mon -c "$CONF" --mkfs -i a --monmap "$CEPH_DIR/monmap" --keyring "$CEPH_DIR/keyring" \
      || { ceph_fail "ceph-mon --mkfs failed"; return 1; }
    ceph-mon -c "$CONF" -i a || { ceph_fail "ceph-mon did not start"; return 1; }
    for _ in $(seq 1 30); do timeout 5 ceph -c "$CONF" mon stat >/dev/null 2>&1 && break; sleep 1; done
    for id in 0 1 2; do
      uuid="$(cat /proc/sys/kernel/random/uuid)"
      ceph -c "$CONF" osd new "$uuid" "$id" >/dev/null || { ceph_fail "ceph osd new $id failed"; return 1; }
      mkdir -p "$CEPH_DIR/osd-$id"
      ceph-osd -c "$CONF" -i "$id" --mkfs --osd-uuid "$uuid" >/dev/null 2>&1 \
        || { ceph_fail "ceph-osd --mkfs $id failed"; return 1; }
      ceph-osd -c "$CONF" -i "$id" 2>>"$CEPH_DIR/start.log" || { ceph_fail "ceph-osd $id did not start"; return 1; }
    done
    for _ in $(seq 1 60); do
      [ "$(ceph -c "$CONF" osd stat -f json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["num_up_osds"])')" = 3 ] && break
      sleep 1
    done
    radosgw -c "$CONF" -n client.rgw.a || { ceph_fail "radosgw did not start"; return 1; }
    for _ in $(seq 1 90); do curl -s -o /dev/null "http://127.0.0.1:$RGW_PORT/" && break; sleep 1; done
    radosgw-admin -c "$CONF" user create --uid=suanli-ci --display-name=suanli-ci \
      --access-key=suanli-ceph-access --secret=suanli-ceph-secret-not-for-production >/dev/null \
      || { ceph_fail "radosgw-admin user create failed"; return 1; }
  fi
  printf 'aws_access_key_id = suanli-ceph-access\naws_secret_access_key = suanli-ceph-secret-not-for-production\n' \
    >"$CEPH_DIR/credentials"
  chmod 600 "$CEPH_DIR/credentials"
  for _ in $(seq 1 60); do
    code="$(curl -s -o /dev/null -w '%{http_code}' --user "suanli-ceph-access:suanli-ceph-secret-not-for-production" \
      --aws-sigv4 "aws:amz:us-east-1:s3" \
      -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" -X PUT "http://127.0.0.1:$RGW_PORT/suanli-ceph" || true)"
    case "$code" in 200|409) break ;; esac
    sleep 1
  done
  case "$code" in
    200|409) ;;
    *) ceph_fail "radosgw on 127.0.0.1:$RGW_PORT did not create the bucket (HTTP $code)"; return 1 ;;
  esac
  export SUANLI_TEST_CEPH_URL="s3://suanli-ceph?endpoint=http://127.0.0.1:$RGW_PORT&credentials=$CEPH_DIR/credentials"
  export SUANLI_TEST_CEPH_CONF="$CONF" SUANLI_TEST_CEPH_DIR="$CEPH_DIR"
}
if [ -z "${SUANLI_TEST_CEPH_URL:-}" ]; then
  suanli_ceph_start || { return 1 2>/dev/null || exit 1; }
fi
