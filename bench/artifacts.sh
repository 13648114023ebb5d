#!/usr/bin/env bash
# Benchmark: `suanli artifact put` and `get` of a large file through the server into an S3
# endpoint (SeaweedFS from .ci/s3.sh) or the local store, against a raw transfer of the same
# file to the same endpoint (examples/raw_s3.rs: multipart PUT, streamed GET through
# object_store; no server, no encryption, no hashing).
# Prints SHA-256s, seconds, MB/s and the server's peak resident memory (VmHWM).
# Usage: bench/artifacts.sh [SIZE_MB] [s3|local]   (run from the repository root; builds nothing)
set -euo pipefail
SIZE_MB="${1:-2048}"
BACKEND="${2:-s3}"
SUANLI="${SUANLI_BIN:-target/debug/suanli}"
WORK="$(mktemp -d /tmp/suanli-bench.XXXXXX)"
trap 'kill "${SERVER_PID:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
if [ "$BACKEND" = s3 ]; then
  . .ci/s3.sh
  STORE="$SUANLI_TEST_S3_URL&prefix=bench-$$"
else
  STORE="file://$WORK/objects"
fi
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$WORK/blob.bin"
openssl rand -hex 32 >"$WORK/master-key"
PORT=18780
SUANLI_LOG=warn "$SUANLI" serve --listen 127.0.0.1:$PORT --devices h100:1 --data-dir "$WORK/data" \
  --store "$STORE" --master-key-file "$WORK/master-key" &
SERVER_PID=$!
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
export SUANLI_URL=http://127.0.0.1:$PORT SUANLI_TOKEN="$(cat "$WORK/data/admin-token")" SUANLI_CONFIG_DIR="$WORK/cfg"
"$SUANLI" tenant create bench >/dev/null
now() { date +%s.%N; }
rate() { awk -v mb="$SIZE_MB" -v s="$1" 'BEGIN { printf "%.1f s, %.0f MB/s", s, mb / s }'; }
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' /proc/$SERVER_PID/stat; }
c0=$(cpu); t0=$(now); "$SUANLI" artifact put bench/blob "$WORK/blob.bin" >/dev/null; t1=$(now)
c1=$(cpu); "$SUANLI" artifact get bench/blob@latest "$WORK/out" >/dev/null; t2=$(now); c2=$(cpu)
peak_kb=$(awk '/VmHWM/ { print $2 }' /proc/$SERVER_PID/status)
echo "file:        $SIZE_MB MiB, backend $BACKEND"
echo "sha256 in:   $(sha256sum <"$WORK/blob.bin" | cut -c1-64)"
echo "sha256 out:  $(sha256sum <"$WORK/out/blob.bin" | cut -c1-64)"
echo "suanli put:  $(rate "$(echo "$t1 - $t0" | bc)")"
echo "suanli get:  $(rate "$(echo "$t2 - $t1" | bc)")"
echo "server CPU:  put $(echo "$c1 - $c0" | bc) s, get $(echo "$c2 - $c1" | bc) s; load average $(cut -d' ' -f1 /proc/loadavg)"
echo "server peak RSS: $((peak_kb / 1024)) MiB"
rm -f "$WORK/out/blob.bin"
# The reference: target/debug/examples/raw_s3 (cargo build -p suanli-server --example raw_s3).
"${RAW_BIN:-target/debug/examples/raw_s3}" "$STORE" "$WORK/blob.bin"
echo "raw sha256:  $(sha256sum <"$WORK/blob.bin.raw" | cut -c1-64)"
"$SUANLI" artifact rm bench/blob >/dev/null
