#!/usr/bin/env bash
# The small box (issue 13), the build before it against this one, in one
# run, one node on loopback, 1 KiB records, RF 1:
#   - 3 interleaved runs each: one client sending one record per request
#     (p50/p99; eddy bench, a Go net/http client, and wrk over one
#     connection, a lean one), and 8 clients x 100 records to 1, 8 and 64 partitions;
#     wrk over 50 connections, one record per request, against the node
#     and against scripts/sink (a fasthttp handler that does nothing);
#     the same one-client latency on a 3-node cluster (RF 3, the client
#     at the leader); MQTT QoS 1 with 10 and 200 devices on the one node
#     (eddy bench mqtt, 256-byte payloads, one message in flight per
#     device), and the same generator against mosquitto; beside the
#     one-client latency, the disk's own 4 KiB write+fdatasync under the
#     data directory (eddy bench disk) and the node's mean Raft log sync
#     during that run (eddy_raft_log_sync_seconds, where the build has it);
#     the one-client latency on a new node and again after the batch runs,
#     once pebble writes its WAL over recycled files (a sync then carries
#     the data alone, not the file's new length too)
#   - once each: disk and idle RSS with 4 (3 s and 25 s after), 64 and 256 empty partitions, and
#     the time from start to ready with 256, after kill -9
#   - this build only, with memory_release_after off, by default (10 s)
#     and with memory_limit 96 MiB: RSS with 4 and 64 empty partitions,
#     right after 100k records across 60 of them and 60 s later, and the
#     load's records/s
# Usage: scripts/bench-small-box.sh [OLD_REV, default 83d80cf] [memory|footprint]
# (with "memory", only the last part, twice over; with "footprint", only
# the disk, idle RSS and start figures, twice over)
OLD=${1:-83d80cf}
ONLY=${2:-}
. "$(dirname "$0")/lib.sh"
if [ "$ONLY" != memory ]; then
  build_old "$OLD"
fi
NEW=$B
go build -o "$W/sink" ./scripts/sink
"$W/sink" -addr 127.0.0.1:18099 & PIDS+=($!)
printf 'listener 18893 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n' >"$W/mosq.conf"
/usr/sbin/mosquitto -c "$W/mosq.conf" >"$W/mosq.log" 2>&1 & PIDS+=($!)
fresh() { # BUILD: a new node of that build (MQTT on 18894)
  B=$1
  rm -rf "$W/d" "$W/conf"
  start_node 18093 17193 18894
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; }
logsync() { # the node's Raft log syncs so far: seconds and count
  curl -s -H "Authorization: Bearer $EDDY_TOKEN" "$EDDY_SERVER/metrics" |
    awk '/^eddy_raft_log_sync_seconds_sum/ {s=$2} /^eddy_raft_log_sync_seconds_count/ {n=$2} END {print s+0, n+0}'
}
lone() { # LABEL: one client, one 1 KiB record per request, and the node's log syncs meanwhile
  local s0 s1
  s0=$(logsync)
  echo -n "$1, one client, 1 record/request: "
  "$B" bench produce --topic one --records 5000 --size 1024 --batch 1 --concurrency 1 --json |
    py '"p50 %.2f ms, p99 %.2f ms, %d records/s" % (d["p50_ms"], d["p99_ms"], d["records_per_sec"])'
  s1=$(logsync)
  echo "$s0 $s1" | awk -v l="$1" '$4 > $2 {printf "%s, the node'"'"'s Raft log syncs during it: %d, mean %.3f ms\n", l, $4 - $2, ($3 - $1) * 1000 / ($4 - $2)}'
}
throughput() { # LABEL
  fresh "$2"
  echo "$1, the disk under the data directory, 4 KiB write+fdatasync: $("$NEW" bench disk --dir "$W/d" --count 2000 --json |
    py '"appending p50 %.3f ms, p99 %.3f ms; overwriting p50 %.3f ms, p99 %.3f ms" % (d["append_p50_ms"], d["append_p99_ms"], d["overwrite_p50_ms"], d["overwrite_p99_ms"])')"
  lone "$1 (a new node)"
  for p in 1 8 64; do
    echo -n "$1, 8 clients x 100 records, $p partitions: "
    "$B" bench produce --topic b$p --partitions $p --records 300000 --size 1024 --batch 100 --concurrency 8 --json |
      py '"%d records/s, p99 %.1f ms" % (d["records_per_sec"], d["p99_ms"])'
  done
  lone "$1 (after those 900 MB: the log store writes over its recycled files)"
  post_lua
  echo "$1, wrk 1 connection (a lean client), 1 record/request: $(wrk -t1 -c1 -d4s --latency -s "$W/post.lua" http://127.0.0.1:18093/v1/topics/one/records |
    awk '/^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Requests\/sec/ {r=$2} END {printf "p50 %s, p99 %s, %d requests/s", p50, p99, r}')"
  echo "$1, wrk 50 connections, 1 record/request: $(onerecord http://127.0.0.1:18093/v1/topics/one/records);" \
    "the sink: $(onerecord http://127.0.0.1:18099/)"
  for n in 10 200; do
    echo "$1, MQTT QoS 1, $n devices: eddy $(mqttload 127.0.0.1:18894 $n); mosquitto $(mqttload 127.0.0.1:18893 $n --no-create)"
  done
  stop
  rm -rf "$W"/d?
  start_cluster 1808 1710 1888
  "$B" topic create rf3 --replication-factor 3 >/dev/null
  local l=0
  for _ in $(seq 1 50); do
    l=$(curl -s -H "Authorization: Bearer $EDDY_TOKEN" 127.0.0.1:18081/v1/topics/rf3 | py 'd["partition_info"][0]["leader"]')
    [ "$l" != 0 ] && break; sleep 0.2
  done
  echo -n "$1, RF 3, one client at the leader, 1 record/request: "
  EDDY_SERVER=http://127.0.0.1:1808$l "$B" bench produce --topic rf3 --records 3000 --size 1024 --batch 1 --concurrency 1 --json |
    py '"p50 %.2f ms, p99 %.2f ms" % (d["p50_ms"], d["p99_ms"])'
  kill "${NODES[@]}"; wait "${NODES[@]}" 2>/dev/null || true
}
onerecord() { # URL: requests/s and mean latency of wrk's load
  wrk -t2 -c50 -d8s -s "$W/post.lua" "$1" | awk '/Latency/ {l=$2} /Requests\/sec/ {r=$2} /Non-2xx/ {e=$NF} END {printf "%d requests/s, mean %s%s", r, l, (e ? ", " e " not 2xx" : "")}'
}
mqttload() { # ADDR DEVICES [FLAGS]: eddy bench mqtt's msgs/s and p99
  "$B" bench mqtt --mqtt-addr "$1" --topic m$2 --connections "$2" --messages 40000 --size 256 --qos 1 --json "${@:3}" |
    py '"%d msgs/s, p99 %.1f ms" % (d["msgs_per_sec"], d["p99_ms"])'
}
footprint() { # LABEL BUILD
  fresh "$2"
  local have=0
  for n in 4 64 256; do
    "$B" topic create e$n --partitions $((n - have)) >/dev/null
    have=$n
    sleep 3
    echo -n "$1, $n empty partitions: disk $(du -sm --exclude=disk-reserve "$W/d" | cut -f1) MB (besides a disk reserve), RSS $(awk '/VmRSS/ {print int($2/1024)}' /proc/$PID/status) MB"
    # Idle: past the first quiet spell (memory_release_after, 10 s, checked each 10 s).
    if [ $n = 4 ]; then sleep 22; echo -n ", 25 s later $(awk '/VmRSS/ {print int($2/1024)}' /proc/$PID/status) MB"; fi
    echo
  done
  kill -9 "$PID"; wait "$PID" 2>/dev/null || true
  local s=$(date +%s%N)
  start_node 18093 17193
  echo "$1, 256 empty partitions: ready $(( ($(date +%s%N) - s) / 1000000 )) ms after a start that follows kill -9; disk $(du -sm --exclude=disk-reserve "$W/d" | cut -f1) MB (besides a disk reserve)"
  stop
}
for r in $([ -z "$ONLY" ] && echo 1 2 3 || true); do
  throughput "run $r, old ($OLD)" "$W/eddy-old"
  throughput "run $r, new" "$NEW"
done
memory() { # LABEL EDDY_MEMORY_LIMIT EDDY_MEMORY_RELEASE_AFTER
  EDDY_MEMORY_LIMIT=$2 EDDY_MEMORY_RELEASE_AFTER=$3 fresh "$NEW"
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
for r in $([ "$ONLY" = footprint ] && echo 1 2 || ([ -z "$ONLY" ] && echo 1) || true); do
  footprint "old ($OLD)" "$W/eddy-old"
  footprint "new" "$NEW"
done
[ "$ONLY" = footprint ] && exit 0
for r in $([ -n "$ONLY" ] && echo 1 2 || echo 1); do
  memory "new, memory_release_after 0 (off)" "" 0
  memory "new, the defaults" "" ""
  memory "new, memory_limit 96 MiB" $((96 << 20)) ""
done
