#!/usr/bin/env bash
# The small box (issue 13), old build against new in one run: for each
# build, interleaved, 3 runs each, one node (RF 1) on loopback:
#   - one client, one 1 KiB record per request: p50/p99 latency
#   - 8 clients x 100 records of 1 KiB: records/s
# Usage: scripts/bench-small-box.sh [OLD_REV, default origin of this issue: 83d80cf]
# (The issue's other figures, RF 3, MQTT, the sink, disk, RSS and recovery,
# are still to come.)
OLD=${1:-83d80cf}
. "$(dirname "$0")/lib.sh"
git worktree add -q --detach "$W/old" "$OLD"
(cd "$W/old" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$W/eddy-old" ./cmd/eddy)
git worktree remove --force "$W/old"
NEW=$B
run() { # BUILD LABEL
  local B=$1 # start_node runs this build
  rm -rf "$W/d" "$W/conf"
  start_node 18093 17193
  echo -n "$2, one client, 1 record/request: "
  "$B" bench produce --topic one --records 5000 --size 1024 --batch 1 --concurrency 1 --json |
    /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print("p50 %.2f ms, p99 %.2f ms, %d records/s" % (d["p50_ms"], d["p99_ms"], d["records_per_sec"]))'
  echo -n "$2, 8 clients x 100 records: "
  "$B" bench produce --topic many --records 300000 --size 1024 --batch 100 --concurrency 8 --json |
    /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print("%d records/s, p50 %.2f ms" % (d["records_per_sec"], d["p50_ms"]))'
  kill "$PID"; wait "$PID" 2>/dev/null || true
}
for r in 1 2 3; do
  run "$W/eddy-old" "run $r, old ($OLD)"
  run "$NEW" "run $r, new"
done
