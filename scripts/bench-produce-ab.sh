#!/usr/bin/env bash
# The produce paths, an older build against this one, interleaved in one
# run, 3 runs each, a fresh node per run, 1 KiB records, RF 1: a lone
# record's p50 (eddy bench produce --batch 1), Kafka produce (eddy bench
# kafka: franz-go, default batching, idempotent) to 1 and 8 partitions,
# and HTTP produce (8 clients x 100 records a request) to 1 and 8, each
# 400k records, then the Raft log directory's size and what the node
# wrote to disk in all (/proc/PID/io; 1.6 GB of records went in), what
# its Raft log store wrote again to carry idle replicas forward
# (eddy_raft_log_carried_bytes_total), and the node's CPU seconds over
# the Kafka runs and over the HTTP runs (/proc/PID/stat).
# Usage: scripts/bench-produce-ab.sh OLD_REV
OLD=${1:?usage: scripts/bench-produce-ab.sh OLD_REV}
. "$(dirname "$0")/lib.sh"
build_old "$OLD"
NEW=$B
rate() { py '"%dk" % (d["records_per_sec"] / 1000)'; }
secs() { awk -v t="$1" 'BEGIN {printf "%.1f", t / 100}'; } # TICKS: seconds
carried() { curl -s -H "Authorization: Bearer $EDDY_TOKEN" "$EDDY_SERVER/metrics" | awk '/^eddy_raft_log_carried_bytes_total/ {printf "%d", $2 / 1048576}'; }
one() { # LABEL BUILD
  B=$2
  rm -rf "$W/d" "$W/conf"
  start_node 18096 17196 "" 19096
  local k=127.0.0.1:19096 lone k1 k8 h1 h8 c0 c1 c2
  lone=$("$B" bench produce --topic one --records 3000 --size 1024 --batch 1 --concurrency 1 --json | py '"%.2f" % d["p50_ms"]')
  c0=$(ticks "$PID")
  k1=$("$B" bench kafka --kafka-addr "$k" --topic k1 --records 400000 --size 1024 --json | rate)
  k8=$("$B" bench kafka --kafka-addr "$k" --topic k8 --partitions 8 --records 400000 --size 1024 --json | rate)
  c1=$(ticks "$PID")
  h1=$("$B" bench produce --topic h1 --records 400000 --size 1024 --batch 100 --concurrency 8 --json | rate)
  h8=$("$B" bench produce --topic h8 --partitions 8 --records 400000 --size 1024 --batch 100 --concurrency 8 --json | rate)
  c2=$(ticks "$PID")
  echo "$1: lone p50 $lone ms; kafka 1 partition $k1, 8 $k8; http 1 partition $h1, 8 $h8 records/s;" \
    "node CPU $(secs $((c1 - c0))) s (kafka) and $(secs $((c2 - c1))) s (http);" \
    "Raft log directory $(du -sm "$W/d/raft" | cut -f1) MB, carried $(carried) MB; the node wrote $(awk '/^write_bytes/ {print int($2 / 1048576)}' /proc/$PID/io) MB to disk"
  kill "$PID"; wait "$PID" 2>/dev/null || true
}
for r in 1 2 3; do
  one "run $r, old ($OLD)" "$W/eddy-old"
  one "run $r, new" "$NEW"
done
