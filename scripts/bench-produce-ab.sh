#!/usr/bin/env bash
# The produce paths, an older build against this one, interleaved in one
# run, 3 runs each, a fresh node per run, 1 KiB records, RF 1: a lone
# record's p50 (eddy bench produce --batch 1), Kafka produce (eddy bench
# kafka: franz-go, default batching, idempotent) to 1 and 8 partitions,
# and HTTP produce (8 clients x 100 records a request) to 1 and 8, each
# 400k records, then the Raft log directory's size and what the node
# wrote to disk in all (/proc/PID/io; 1.6 GB of records went in).
# Usage: scripts/bench-produce-ab.sh OLD_REV
OLD=${1:?usage: scripts/bench-produce-ab.sh OLD_REV}
. "$(dirname "$0")/lib.sh"
build_old "$OLD"
NEW=$B
py() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
rate() { py '"%dk" % (d["records_per_sec"] / 1000)'; }
one() { # LABEL BUILD
  B=$2
  rm -rf "$W/d" "$W/conf"
  start_node 18096 17196 "" 19096
  local k=127.0.0.1:19096
  echo "$1: lone p50 $("$B" bench produce --topic one --records 3000 --size 1024 --batch 1 --concurrency 1 --json | py '"%.2f" % d["p50_ms"]') ms;" \
    "kafka 1 partition $("$B" bench kafka --kafka-addr "$k" --topic k1 --records 400000 --size 1024 --json | rate), 8 $("$B" bench kafka --kafka-addr "$k" --topic k8 --partitions 8 --records 400000 --size 1024 --json | rate);" \
    "http 1 partition $("$B" bench produce --topic h1 --records 400000 --size 1024 --batch 100 --concurrency 8 --json | rate), 8 $("$B" bench produce --topic h8 --partitions 8 --records 400000 --size 1024 --batch 100 --concurrency 8 --json | rate) records/s;" \
    "Raft log directory $(du -sm "$W/d/raft" | cut -f1) MB; the node wrote $(awk '/^write_bytes/ {print int($2 / 1048576)}' /proc/$PID/io) MB to disk"
  kill "$PID"; wait "$PID" 2>/dev/null || true
}
for r in 1 2 3; do
  one "run $r, old ($OLD)" "$W/eddy-old"
  one "run $r, new" "$NEW"
done
