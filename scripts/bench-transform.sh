#!/usr/bin/env bash
# Transform figures through a real node (issue 5): records/s produced to a
# topic through the examples/transforms/enrich Go guest vs the same kind of
# topic without a transform, same run, 256-byte JSON records, at batch sizes
# 1, 64 and 1024 per request (interleaved, 3 runs each); then the module's
# compile time cold (at upload, empty cache) and from the on-disk cache
# (after a restart). Stops the node it started.
set -euo pipefail
cd "$(dirname "$0")/.."
W=$(mktemp -d)
B=$W/eddy
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$B" ./cmd/eddy
"$B" transform build examples/transforms/enrich -o "$W/enrich.wasm" >/dev/null
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
start() {
  EDDY_CONFIG_DIR=$W/conf "$B" serve --data-dir "$W/d" --http-addr 127.0.0.1:18090 --raft-addr 127.0.0.1:17190 --mqtt-addr off >>"$W/log" 2>&1 &
  PID=$!
  for _ in $(seq 1 150); do curl -sf 127.0.0.1:18090/readyz >/dev/null && return; sleep 0.2; done
  echo "node did not start"; cat "$W/log"; exit 1
}
start
export EDDY_SERVER=http://127.0.0.1:18090 EDDY_TOKEN=$(cat "$W/d/admin.token")
echo -n "upload (compile cold): "; "$B" transform deploy enrich "$W/enrich.wasm"
for b in 1 64 1024; do
  "$B" topic create plain-$b >/dev/null
  "$B" topic create enriched-$b >/dev/null
  "$B" topic set-transform enriched-$b --module enrich --config '{"fields":{"site":"edge-01","gateway":"gw-7"}}' >/dev/null
done
for r in 1 2 3; do
  for b in 1 64 1024; do
    n=$(( b == 1 ? 20000 : (b == 64 ? 200000 : 400000) ))
    for t in plain enriched; do
      echo -n "run $r, batch $b, $t: "
      "$B" bench produce --topic $t-$b --records $n --batch $b --size 256 --value json --concurrency 8 --duration 30s --json
    done
  done
done
kill "$PID"; wait "$PID" 2>/dev/null || true
start
"$B" bench produce --topic enriched-64 --records 64 --batch 64 --size 256 --value json --concurrency 1 --json >/dev/null
echo -n "after a restart, compile from the cache: "
curl -s -H "Authorization: Bearer $EDDY_TOKEN" 127.0.0.1:18090/metrics |
  grep -E '^eddy_transform_compile_seconds_(sum|count)\{tenant="default",transform="enrich"\}' | tr '\n' ' '
echo
echo -n "instances and RSS: "
curl -s -H "Authorization: Bearer $EDDY_TOKEN" 127.0.0.1:18090/metrics | grep -E '^eddy_transform_instances\{' | tr '\n' ' '
grep VmRSS /proc/$PID/status
