#!/usr/bin/env bash
# The small box (issue 13), the build before it against this one, in one
# run, one node on loopback, 1 KiB records, RF 1:
#   - 3 interleaved runs each: one client sending one record per request
#     (p50/p99), and 8 clients x 100 records to 1, 8 and 64 partitions
#   - once each: disk and idle RSS with 4, 64 and 256 empty partitions, and
#     the time from start to ready with 256, after kill -9
#   - this build only, without and with memory_limit 96 MiB: RSS with 4 and
#     64 empty partitions, right after 100k records across 60 of them and
#     60 s later, and the load's records/s
# Usage: scripts/bench-small-box.sh [OLD_REV, default 83d80cf]
# (Still to come for the issue: RF 3, MQTT against mosquitto, the one-
# record HTTP path against a sink, memory under load.)
OLD=${1:-83d80cf}
. "$(dirname "$0")/lib.sh"
git worktree add -q --detach "$W/old" "$OLD"
(cd "$W/old" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$W/eddy-old" ./cmd/eddy)
git worktree remove --force "$W/old"
NEW=$B
py() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
fresh() { # BUILD: a new node of that build
  B=$1
  rm -rf "$W/d" "$W/conf"
  start_node 18093 17193
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; }
throughput() { # LABEL
  fresh "$2"
  echo -n "$1, one client, 1 record/request: "
  "$B" bench produce --topic one --records 5000 --size 1024 --batch 1 --concurrency 1 --json |
    py '"p50 %.2f ms, p99 %.2f ms, %d records/s" % (d["p50_ms"], d["p99_ms"], d["records_per_sec"])'
  for p in 1 8 64; do
    echo -n "$1, 8 clients x 100 records, $p partitions: "
    "$B" bench produce --topic b$p --partitions $p --records 300000 --size 1024 --batch 100 --concurrency 8 --json |
      py '"%d records/s, p99 %.1f ms" % (d["records_per_sec"], d["p99_ms"])'
  done
  stop
}
footprint() { # LABEL BUILD
  fresh "$2"
  local have=0
  for n in 4 64 256; do
    "$B" topic create e$n --partitions $((n - have)) >/dev/null
    have=$n
    sleep 3
    echo "$1, $n empty partitions: disk $(du -sm "$W/d" | cut -f1) MB, RSS $(awk '/VmRSS/ {print int($2/1024)}' /proc/$PID/status) MB"
  done
  kill -9 "$PID"; wait "$PID" 2>/dev/null || true
  local s=$(date +%s%N)
  start_node 18093 17193
  echo "$1, 256 empty partitions: ready $(( ($(date +%s%N) - s) / 1000000 )) ms after a start that follows kill -9; disk $(du -sm "$W/d" | cut -f1) MB"
  stop
}
for r in 1 2 3; do
  throughput "run $r, old ($OLD)" "$W/eddy-old"
  throughput "run $r, new" "$NEW"
done
memory() { # LABEL [EDDY_MEMORY_LIMIT]
  EDDY_MEMORY_LIMIT=${2:-} fresh "$NEW"
  local rss='awk "/VmRSS/ {print int(\$2/1024)}" /proc/$PID/status'
  "$B" topic create e4 --partitions 4 >/dev/null; sleep 2
  echo -n "$1: RSS 4 empty partitions $(eval "$rss") MB"
  "$B" topic create e60 --partitions 60 >/dev/null; sleep 3
  echo -n ", 64 empty $(eval "$rss") MB"
  echo -n ", load $("$B" bench produce --topic e60 --records 100000 --size 1024 --batch 100 --concurrency 8 --json | py '"%d records/s" % d["records_per_sec"]')"
  echo -n ", right after $(eval "$rss") MB"
  sleep 60
  echo ", 60 s later $(eval "$rss") MB"
  stop
}
footprint "old ($OLD)" "$W/eddy-old"
footprint "new" "$NEW"
memory "new, no memory_limit"
memory "new, memory_limit 96 MiB" $((96 << 20))
