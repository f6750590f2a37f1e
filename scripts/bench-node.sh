#!/usr/bin/env bash
# Foundation figures (issue 2), one node, RF 1, release build, 1 KiB
# records: binary size, idle RSS, produce records/s and p99 into 1 and 8
# partitions with batching clients, consume records/s (record batches as
# stored, and JSON), RSS after the load; 3 runs each.
# Targets on a 2-core machine: >= 60k produced/s, >= 200k consumed/s,
# < 40 MB idle RSS, < 30 MB binary. Stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
W=$(mktemp -d)
B=$W/eddy
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$B" ./cmd/eddy
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
echo "binary: $(( $(stat -c %s "$B") / 1024 / 1024 )) MiB ($(stat -c %s "$B") bytes, linux/$(go env GOARCH), stripped)"
EDDY_CONFIG_DIR=$W/conf "$B" serve --data-dir "$W/d" --http-addr 127.0.0.1:18093 --raft-addr 127.0.0.1:17193 --mqtt-addr off >"$W/log" 2>&1 &
PID=$!
for _ in $(seq 1 150); do curl -sf 127.0.0.1:18093/readyz >/dev/null && break; sleep 0.2; done
sleep 5
echo "idle RSS: $(awk '/VmRSS/{print $2/1024 " MiB"}' /proc/$PID/status)"
export EDDY_SERVER=http://127.0.0.1:18093 EDDY_TOKEN=$(cat "$W/d/admin.token")
for r in 1 2 3; do
  echo -n "run $r, produce, 1 partition:  "; "$B" bench produce --topic p1-$r --partitions 1 --records 200000 --size 1024 --batch 100 --concurrency 8 --json
  echo -n "run $r, produce, 8 partitions: "; "$B" bench produce --topic p8-$r --partitions 8 --records 200000 --size 1024 --batch 100 --concurrency 8 --json
  echo -n "run $r, consume batches, 1 partition:  "; "$B" bench consume --topic p1-$r --records 200000 --format batches --json
  echo -n "run $r, consume batches, 8 partitions: "; "$B" bench consume --topic p8-$r --records 200000 --format batches --json
  echo -n "run $r, consume JSON, 8 partitions:    "; "$B" bench consume --topic p8-$r --records 200000 --json
done
echo "RSS after the runs: $(awk '/VmRSS/{print $2/1024 " MiB"}' /proc/$PID/status)"
# Go returns freed heap to the OS gradually; the runtime forces a GC every
# two minutes when idle.
sleep 150
echo "RSS 150 s later: $(awk '/VmRSS/{print $2/1024 " MiB"}' /proc/$PID/status)"
