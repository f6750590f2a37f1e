#!/usr/bin/env bash
# Consumer group figures (issue 7), one node, release build: records/s
# consumed from a 6-partition topic by a group of 3 HTTP members (each
# polling 1,000 and committing after every poll) vs one reader without a
# group (eddy bench consume), 3 interleaved runs. Stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
W=$(mktemp -d)
B=$W/eddy
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$B" ./cmd/eddy
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
EDDY_CONFIG_DIR=$W/conf "$B" serve --data-dir "$W/d" --http-addr 127.0.0.1:18092 --raft-addr 127.0.0.1:17192 --mqtt-addr off >"$W/log" 2>&1 &
PID=$!
for _ in $(seq 1 150); do curl -sf 127.0.0.1:18092/readyz >/dev/null && break; sleep 0.2; done
export EDDY_SERVER=http://127.0.0.1:18092 EDDY_TOKEN=$(cat "$W/d/admin.token")
"$B" topic create g6 --partitions 6 >/dev/null
"$B" bench produce --topic g6 --records 300000 --size 256 --batch 1000 --concurrency 8 --json >/dev/null
for r in 1 2 3; do
  echo -n "run $r, group of 3 members: "; "$B" bench group --topic g6 --members 3 --records 300000 --json
  echo -n "run $r, one reader, no group: "; "$B" bench consume --topic g6 --records 300000 --json
done
