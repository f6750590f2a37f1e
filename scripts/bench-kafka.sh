#!/usr/bin/env bash
# Kafka figures (issue 15), release build, all on 127.0.0.1, in one run, 3
# runs each, interleaved: 1 KiB records, RF 1 on one node, then RF 3 on
# three nodes (clients at node 1):
#   - produce: eddy bench kafka (franz-go, default batching, idempotent,
#     acks=all) against eddy bench produce (HTTP, 8 clients x 100 records
#     a request), records/s, to 1 and to 8 partitions; the goal is 1.5x
#   - consume from the start: eddy bench kafka --consume against eddy bench
#     consume --format batches (both serve stored batches); the goal 1.0x
#   - latency: franz-go at half the rate it reached, p50 and p99
# Each produce load starts from a node at rest (lib.sh's settle: 8 s after
# the load before, then memory settled).
# Stops what it started.
. "$(dirname "$0")/lib.sh"
rate() { py '"%d records/s, p50 %.1f ms, p99 %.1f ms" % (d["records_per_sec"], d["p50_ms"], d["p99_ms"])'; }
runs() { # LABEL RF KAFKA_ADDR
  local k=$3 best=0
  for r in 1 2 3; do
    settle
    echo "$1, run $r, kafka produce: $("$B" bench kafka --kafka-addr "$k" --topic k$2-$r --replication-factor $2 --records 300000 --size 1024 --json | rate)"
    settle
    echo "$1, run $r, http produce:  $("$B" bench produce --topic h$2-$r --replication-factor $2 --records 300000 --size 1024 --batch 100 --concurrency 8 --json | rate)"
    settle
    echo "$1, run $r, kafka produce, 8 partitions: $("$B" bench kafka --kafka-addr "$k" --topic k8$2-$r --partitions 8 --replication-factor $2 --records 300000 --size 1024 --json | rate)"
    settle
    echo "$1, run $r, http produce, 8 partitions:  $("$B" bench produce --topic h8$2-$r --partitions 8 --replication-factor $2 --records 300000 --size 1024 --batch 100 --concurrency 8 --json | rate)"
    echo "$1, run $r, kafka consume: $("$B" bench kafka --kafka-addr "$k" --topic k$2-$r --records 300000 --consume --json | py '"%d records/s" % d["records_per_sec"]')"
    echo "$1, run $r, http consume (batches): $("$B" bench consume --topic h$2-$r --records 300000 --format batches --json | py '"%d records/s" % d["records_per_sec"]')"
  done
  settle
  best=$("$B" bench kafka --kafka-addr "$k" --topic kmax$2 --replication-factor $2 --records 300000 --size 1024 --json | py 'int(d["records_per_sec"])')
  settle
  echo "$1, kafka produce at half of $best records/s: $("$B" bench kafka --kafka-addr "$k" --topic khalf$2 --replication-factor $2 --records $((best * 10)) --duration 10s --rate $((best / 2)) --size 1024 --json | rate)"
}
start_node 18096 17196 "" 19096
runs "one node, RF 1" 1 127.0.0.1:19096
kill "$PID"; wait "$PID" 2>/dev/null || true
# The cluster starts on a disk at rest: the one node's 4 GB removed, and
# what the kernel still had to write back written.
rm -rf "$W/d"
sync
start_cluster 1809 1719 1889 1909
runs "three nodes, RF 3" 3 127.0.0.1:19091
