#!/usr/bin/env bash
# Sustained produce, an older build against this one, interleaved, a
# fresh node each run (RF 1, release builds, 1 KiB records): Kafka
# produce to one partition (eddy bench kafka, franz-go defaults; N
# records, 4M by default: past what the page cache held from the last
# run, so the pages the log fills are ones the VM has not used lately),
# then HTTP produce to another (8 clients x 100 records a request, HTTP
# records, 1M by default), then the Kafka topic read from its start
# (eddy bench kafka --consume); records/s and the node's CPU seconds
# (user + system, /proc) for each, and how much of the partitions' files
# the page cache held after the produce (fincore).
# Env: N, HTTP, RUNS ("1 2"). Stops what it started.
# Usage: scripts/bench-sustained-ab.sh OLD_REV
OLD=${1:?usage: scripts/bench-sustained-ab.sh OLD_REV}
. "$(dirname "$0")/lib.sh"
NEW=$B
build_old "$OLD"
rate() { py '"%dk" % (d["records_per_sec"] / 1000)'; }
secs() { awk -v t="$1" 'BEGIN {printf "%.1f s", t / 100}'; } # TICKS
cached() { find "$W/d" -name '*.log' -path '*partitions*' -print0 | xargs -0 fincore -b -n -o RES 2>/dev/null | awk '{s += $1} END {printf "%d MB", s / 1e6}'; }
one() { # LABEL BUILD
  B=$2
  rm -rf "$W/d" "$W/conf"
  start_node 18097 17197 "" 19097
  local k=127.0.0.1:19097 c0 c1 c2 c3 kr hr cr
  c0=$(ticks "$PID")
  kr=$("$B" bench kafka --kafka-addr $k --topic k --records "${N:-4000000}" --size 1024 --duration 5m --json | rate)
  c1=$(ticks "$PID")
  hr=$("$B" bench produce --topic h --records "${HTTP:-1000000}" --size 1024 --batch 100 --concurrency 8 --json | rate)
  c2=$(ticks "$PID")
  local held
  held=$(cached)
  cr=$("$B" bench kafka --kafka-addr $k --topic k --consume --records "${N:-4000000}" --duration 5m --json | rate)
  c3=$(ticks "$PID")
  echo "$1: kafka produce $kr records/s (node $(secs $((c1 - c0)))), http produce $hr ($(secs $((c2 - c1)))), page cache holding $held of the partitions; kafka consume from the start $cr ($(secs $((c3 - c2))))"
  kill "$PID"
  wait "$PID" 2>/dev/null || true
}
for r in ${RUNS:-1 2}; do
  one "run $r, old ($OLD)" "$W/eddy-old"
  one "run $r, new" "$NEW"
done
