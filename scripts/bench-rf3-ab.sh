#!/usr/bin/env bash
# Produce to three local nodes, RF 3, an older build against this one,
# interleaved in one run, a fresh cluster per build: three rounds, each a
# new topic, of 300k records of 1 KiB through Kafka (eddy bench kafka),
# then through HTTP (8 clients x 100 records a request). After each, per
# node: leader changes it counted, Raft log saves over 1 s, and what the
# Raft log store carried forward (eddy_raft_log_carried_bytes_total),
# partition syncs that held their replica's applies over 100 and 250 ms
# (eddy_partition_sync_seconds, where the build has it) and the times a
# shard's rate limit went on (its log's warnings); at the end the Raft log
# directory of node 1. Each node's CPU seconds so far are printed with its
# figures. Env: PARTITIONS (of each topic, 1 by default), ROUNDS (3).
# Usage: scripts/bench-rf3-ab.sh OLD_REV
OLD=${1:?usage: scripts/bench-rf3-ab.sh OLD_REV}
. "$(dirname "$0")/lib.sh"
build_old "$OLD"
NEW=$B
rate() { py '"%dk records/s, p99 %d ms" % (d["records_per_sec"] / 1000, d["p99_ms"])'; }
stats() {
  for i in 1 2 3; do
    m=$(curl -s -H "Authorization: Bearer $EDDY_TOKEN" 127.0.0.1:1809$i/metrics)
    echo -n " n$i: $(echo "$m" | awk '
      /^eddy_raft_leader_changes_total/ {lc += $2}
      /^eddy_raft_log_sync_seconds_bucket.*le="1"/ {fast = $2}
      /^eddy_raft_log_sync_seconds_count/ {all = $2}
      /^eddy_raft_log_carried_bytes_total/ {car = sprintf(", carried %d MB", $2 / 1048576)}
      /^eddy_partition_sync_seconds_bucket.*le="0.1"/ {p1 = $2}
      /^eddy_partition_sync_seconds_bucket.*le="0.25"/ {p2 = $2}
      /^eddy_partition_sync_seconds_count/ {ps = sprintf(", syncs holding applies over 100 / 250 ms %d / %d", $2 - p1, $2 - p2)}
      END {printf "leader changes %d, saves over 1 s %d%s%s", lc, all - fast, car, ps}')"
    echo -n ", rate limit on $(grep -c 'rate limit state is true' "$W/log$i" || true)"
    echo -n ", CPU $(awk '{printf "%.1f", ($14 + $15) / 100}' "/proc/${NODES[$((i - 1))]}/stat") s;"
  done
  echo
}
one() { # LABEL BUILD
  B=$2
  rm -rf "$W"/d? "$W"/conf?
  start_cluster 1809 1719 1889 1909
  for r in $(seq 1 "${ROUNDS:-3}"); do
    echo "$1 round $r, kafka: $("$B" bench kafka --kafka-addr 127.0.0.1:19091 --topic k$r --partitions ${PARTITIONS:-1} --replication-factor 3 --records 300000 --size 1024 --json | rate)"
    stats
    echo "$1 round $r, http: $("$B" bench produce --topic h$r --partitions ${PARTITIONS:-1} --replication-factor 3 --records 300000 --size 1024 --batch 100 --concurrency 8 --json | rate)"
    stats
  done
  echo "$1: Raft log directory of node 1: $(du -sm "$W/d1/raft" | cut -f1) MB"
  kill "${NODES[@]}"; wait "${NODES[@]}" 2>/dev/null || true
}
one "old ($OLD)" "$W/eddy-old"
one new "$NEW"
