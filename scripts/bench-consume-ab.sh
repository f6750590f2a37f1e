#!/usr/bin/env bash
# Consume from the start, an older build against this one (issue 15's
# consume figure), interleaved, 3 runs, a fresh node each (RF 1, release
# builds): 1M records of 1 KiB produced over Kafka and 1M over HTTP, then
# read back by `eddy bench kafka --consume` (franz-go) and `eddy bench
# consume --format batches`, this build's clients both; records/s and the
# node's CPU (user + system, /proc) for each read.
# Stops what it started.
# Usage: scripts/bench-consume-ab.sh OLD_REV
. "$(dirname "$0")/lib.sh"
build_old "${1:?usage: $0 OLD_REV}"
NEW=$B
for r in 1 2 3; do
  for v in old new; do
    B=$NEW
    [ $v = old ] && B=$W/eddy-old
    rm -rf "$W/d" "$W/conf"
    start_node 18096 17196 "" 19096
    "$B" bench kafka --kafka-addr 127.0.0.1:19096 --topic k --records 1000000 --size 1024 --json >/dev/null
    "$B" bench produce --topic h --records 1000000 --size 1024 --batch 100 --concurrency 8 --json >/dev/null
    sleep 8
    c0=$(ticks "$PID")
    k=$("$NEW" bench kafka --kafka-addr 127.0.0.1:19096 --topic k --records 1000000 --consume --json | py 'int(d["records_per_sec"])')
    c1=$(ticks "$PID")
    h=$("$NEW" bench consume --topic h --records 1000000 --format batches --json | py 'int(d["records_per_sec"])')
    c2=$(ticks "$PID")
    echo "$v, run $r: kafka consume $k records/s (node $(((c1 - c0) * 10)) ms of CPU), http batches $h (node $(((c2 - c1) * 10)) ms): $(py "round($k / $h, 2)" <<<'{}')x"
    kill "$PID"
    wait "$PID" 2>/dev/null || true
  done
done
