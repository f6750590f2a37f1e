#!/usr/bin/env bash
# Console figures (issue 16), in one run:
#   - the console's payload, gzipped as served (go test ./web -run TestBudget)
#   - time to first render: the Overview of a node with 64 partitions, and
#     the newest 50 records of a 1,000,000-record topic, navigation to
#     complete render in Debian's Chromium (BenchmarkConsole*, 5 each)
#   - node RSS with the series sampler on and off, idle and with 64 topics
#     in use (10 records to each every second for 60 s), 2 runs each,
#     interleaved
# Stops what it started.
. "$(dirname "$0")/lib.sh"
echo "payload: $(go test -count=1 -v -run TestBudget ./web | grep -o 'console: .*')"
[ -n "${SKIP_BROWSER:-}" ] || go test -count=1 -run XXX -bench 'BenchmarkConsole' -benchtime 5x ./e2e | grep Benchmark |
  awk '{printf "%s: %.0f ms\n", $1, $3/1e6}'

rss() { awk '/VmRSS/ {print int($2/1024) " MB"}' "/proc/$1/status"; }
for run in 1 2; do
  for series in true false; do
    rm -rf "$W/d" "$W/conf"
    EDDY_CONSOLE_SERIES=$series start_node 18097 17197
    for i in $(seq 1 64); do
      curl -sf -XPOST "$EDDY_SERVER/v1/topics" -H "Authorization: Bearer $EDDY_TOKEN" -H 'Content-Type: application/json' -d "{\"name\":\"t$i\"}" >/dev/null
    done
    sleep 30
    idle=$(rss "$PID")
    body='{"records":[{"value":1},{"value":2},{"value":3},{"value":4},{"value":5},{"value":6},{"value":7},{"value":8},{"value":9},{"value":10}]}'
    for s in $(seq 1 60); do
      pids=()
      for i in $(seq 1 64); do
        curl -sf -XPOST "$EDDY_SERVER/v1/topics/t$i/records" -H "Authorization: Bearer $EDDY_TOKEN" -H 'Content-Type: application/json' -d "$body" >/dev/null &
        pids+=($!)
      done
      wait "${pids[@]}" # not the node's
      sleep 0.5
    done
    series_n=$(curl -sf "$EDDY_SERVER/v1/series" -H "Authorization: Bearer $EDDY_TOKEN" | grep -o '"name"' | wc -l || true)
    echo "run $run, sampler $series: RSS idle with 64 topics $idle, with 64 topics in use $(rss "$PID") ($series_n series)"
    kill "$PID"; wait "$PID" 2>/dev/null || true
  done
done
