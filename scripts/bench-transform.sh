#!/usr/bin/env bash
# Transform figures through a real node (issue 5): records/s produced to a
# topic through the examples/transforms/enrich Go guest vs the same kind of
# topic without a transform, same run, 256-byte JSON records, at batch sizes
# 1, 64 and 1024 per request (interleaved, 3 runs each); then the module's
# compile time cold (at upload, empty cache) and from the on-disk cache
# (after a restart). Stops the node it started.
. "$(dirname "$0")/lib.sh"
"$B" transform build examples/transforms/enrich -o "$W/enrich.wasm" >/dev/null
start_node 18090 17190
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
start_node 18090 17190
"$B" bench produce --topic enriched-64 --records 64 --batch 64 --size 256 --value json --concurrency 1 --json >/dev/null
echo -n "after a restart, compile from the cache: "
curl -s -H "Authorization: Bearer $EDDY_TOKEN" 127.0.0.1:18090/metrics |
  grep -E '^eddy_transform_compile_seconds_(sum|count)\{tenant="default",transform="enrich"\}' | tr '\n' ' '
echo
echo -n "instances and RSS: "
curl -s -H "Authorization: Bearer $EDDY_TOKEN" 127.0.0.1:18090/metrics | grep -E '^eddy_transform_instances\{' | tr '\n' ' '
grep VmRSS /proc/$PID/status
