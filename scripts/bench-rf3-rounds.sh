#!/usr/bin/env bash
# Stalls of RF 3 produce: three local nodes, RUNS fresh clusters (default
# 3), each five rounds of 300k records of 1 KiB through Kafka (eddy bench
# kafka, a new topic a round) then HTTP (8 clients x 100 records a
# request). Prints each round and, at the end, how many Kafka rounds had
# a p99 over 5 s (a stall: replication stopped for seconds).
# Env: PARTITIONS (of each topic, 1 by default); TMPDIR=/dev/shm puts
# the three nodes' data on tmpfs, to tell the disk's share from the rest.
# Each load starts from settled memory (lib.sh's settle_memory;
# SETTLE_MEMORY=0 to see the later rounds fall).
# Usage: scripts/bench-rf3-rounds.sh [RUNS]
RUNS=${1:-3}
. "$(dirname "$0")/lib.sh"
rounds=0 stalls=0
for run in $(seq 1 "$RUNS"); do
  rm -rf "$W"/d? "$W"/conf?
  start_cluster 1809 1719 1889 1909
  for r in 1 2 3 4 5; do
    settle_memory
    k=$("$B" bench kafka --kafka-addr 127.0.0.1:19091 --topic k$r --partitions ${PARTITIONS:-1} --replication-factor 3 --records 300000 --size 1024 --json)
    settle_memory
    h=$("$B" bench produce --topic h$r --partitions ${PARTITIONS:-1} --replication-factor 3 --records 300000 --size 1024 --batch 100 --concurrency 8 --json)
    echo "run $run round $r: kafka $(echo "$k" | py '"%dk records/s, p99 %d ms" % (d["records_per_sec"] / 1000, d["p99_ms"])'); http $(echo "$h" | py '"%dk records/s, p99 %d ms" % (d["records_per_sec"] / 1000, d["p99_ms"])')"
    rounds=$((rounds + 1))
    if [ "$(echo "$k" | py 'int(d["p99_ms"] > 5000)')" = 1 ]; then stalls=$((stalls + 1)); fi
  done
  kill "${NODES[@]}"; wait "${NODES[@]}" 2>/dev/null || true
done
echo "Kafka rounds with a p99 over 5 s: $stalls of $rounds"
