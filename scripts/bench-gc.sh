#!/usr/bin/env bash
# The garbage collector's share (gc_heap_floor, dragonboat's entry slice):
# an older build against this one, interleaved in one run, a fresh node
# each time, RF 1, 1 KiB records, the collections each load took counted
# (GODEBUG=gctrace=1 in the node's log):
#   - 3 runs: one client, one record per request (wrk over one
#     connection, then eddy bench produce), p50/p99
#   - 3 runs: wrk over 50 connections, one record per request, requests/s
#     and the node's CPU per request (/proc/PID/stat, user + system),
#     against scripts/sink (a fasthttp handler that does nothing)
#   - 2 runs: RSS with 4 and 64 empty partitions, right after 100k records
#     over 60 of them (8 clients x 100 a request), after a lone client's
#     6,000, and 25 s later (past memory_release_after)
# Usage: scripts/bench-gc.sh OLD_REV
OLD=${1:?usage: scripts/bench-gc.sh OLD_REV}
. "$(dirname "$0")/lib.sh"
build_old "$OLD"
NEW=$B
go build -o "$W/sink" ./scripts/sink
"$W/sink" -addr 127.0.0.1:18099 &
SINK=$!
PIDS+=($SINK)
rss() { awk '/VmRSS/ {print int($2/1024)}' /proc/$PID/status; }
gcs() { grep -c '^gc ' "$W/log" || true; }
fresh() { # BUILD: a new node of that build, its log emptied, a topic "one"
  B=$1
  rm -rf "$W/d" "$W/conf"
  : >"$W/log"
  GODEBUG=gctrace=1 start_node 18093 17193
  "$B" topic create one >/dev/null
  post_lua
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; }
wrk50() { # URL PID: requests/s and that process's CPU per request
  local t0 t1
  t0=$(ticks "$2")
  set -- $(wrk -t2 -c50 -d6s -s "$W/post.lua" "$1" | awk '/Requests\/sec/ {r=$2} /^ +[0-9]+ requests/ {n=$1} END {print int(r), n}') "$2"
  t1=$(ticks "$3")
  echo "$1 requests/s, $(( (t1 - t0) * 10000000 / $2 / 1000 )) us CPU a request"
}
for r in 1 2 3; do
  for b in old new; do
    fresh "$([ $b = old ] && echo "$W/eddy-old" || echo "$NEW")"
    echo "run $r, $b, one client: wrk $(wrk -t1 -c1 -d5s --latency -s "$W/post.lua" http://127.0.0.1:18093/v1/topics/one/records |
      awk '/^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {printf "p50 %s p99 %s", p50, p99}');" \
      "eddy bench $("$B" bench produce --topic one --records 8000 --size 1024 --batch 1 --concurrency 1 --json |
        py '"p50 %.2f ms p99 %.2f ms" % (d["p50_ms"], d["p99_ms"])'); $(gcs) collections"
    stop
  done
done
for r in 1 2 3; do
  for b in old new; do
    fresh "$([ $b = old ] && echo "$W/eddy-old" || echo "$NEW")"
    echo "run $r, $b, wrk 50 connections: $(wrk50 http://127.0.0.1:18093/v1/topics/one/records "$PID"); $(gcs) collections"
    stop
  done
  echo "run $r, the sink: $(wrk50 http://127.0.0.1:18099/ "$SINK")"
done
for r in 1 2; do
  for b in old new; do
    fresh "$([ $b = old ] && echo "$W/eddy-old" || echo "$NEW")"
    "$B" topic create e4 --partitions 4 >/dev/null
    sleep 2
    line="RSS 4 empty partitions $(rss) MB"
    "$B" topic create e60 --partitions 60 >/dev/null
    sleep 3
    line+=", 64 $(rss) MB"
    "$B" bench produce --topic e60 --records 100000 --size 1024 --batch 100 --concurrency 8 --json >/dev/null
    line+=", right after 100k records $(rss) MB"
    "$B" bench produce --topic e4 --records 6000 --size 1024 --batch 1 --concurrency 1 --json >/dev/null
    line+=", after a lone client $(rss) MB"
    sleep 25
    echo "run $r, $b: $line, 25 s later $(rss) MB"
    stop
  done
done
