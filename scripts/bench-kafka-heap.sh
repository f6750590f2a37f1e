#!/usr/bin/env bash
# What Kafka produce to 1 and to 8 partitions costs one node's memory
# (docs/kafka.md): one node, RF 1, release build, GODEBUG=gctrace=1,scavtrace=1;
# rounds of a warm-up topic (100k records) then 600k records of 1 KiB
# (eddy bench kafka: franz-go, default batching, idempotent), alternating
# 1 and 8 partitions, 2 rounds each. Per round: records/s, the node's
# minor page faults and CPU (/proc/PID/stat), its collections, the live
# heap after the last two (MB, gctrace) and what the scavenger gave back
# to the kernel meanwhile (scavtrace). Stops what it started.
. "$(dirname "$0")/lib.sh"
field() { awk -v f="$1" '{print $f}' "/proc/$PID/stat"; } # FIELD of the node's /proc stat: 10 minor faults, 14/15 user/system ticks
GODEBUG=gctrace=1,scavtrace=1 start_node 18097 17197 "" 19097 # the node's only
for r in 1 2; do
  for p in 1 8; do
    "$B" bench kafka --kafka-addr 127.0.0.1:19097 --topic w$p-$r --partitions $p --records 100000 --size 1024 --json >/dev/null
    l0=$(wc -l <"$W/log") f0=$(field 10) u0=$(field 14) s0=$(field 15)
    rate=$("$B" bench kafka --kafka-addr 127.0.0.1:19097 --topic k$p-$r --partitions $p --records 600000 --size 1024 --json | py '"%d records/s" % d["records_per_sec"]')
    f1=$(field 10) u1=$(field 14) s1=$(field 15)
    tail -n +"$l0" "$W/log" >"$W/round"
    echo "round $r, $p partitions: $rate; minor faults $((f1 - f0)), CPU $(((u1 + s1 - u0 - s0)))0 ms;" \
      "$(grep -c '^gc ' "$W/round") collections, live heap after the last two $(grep '^gc ' "$W/round" | tail -2 | sed -E 's/.*->([0-9]+) MB, ([0-9]+) MB goal.*/\1 (goal \2)/' | paste -sd ' ') MB;" \
      "scavenged $(awk '/^scav/ {s += $2} END {printf "%d", s / 1024}' "$W/round") MB"
  done
done
