#!/usr/bin/env bash
# Foundation figures (issue 2), one node, RF 1, release build, 1 KiB
# records: binary size, idle RSS, produce records/s and p99 into 1 and 8
# partitions with batching clients, consume records/s (record batches as
# stored, and JSON), RSS after the load; 3 runs each.
# Targets on a 2-core machine: >= 60k produced/s, >= 200k consumed/s,
# < 40 MB idle RSS, < 30 MB binary. Stops what it started.
. "$(dirname "$0")/lib.sh"
echo "binary: $(( $(stat -c %s "$B") / 1024 / 1024 )) MiB ($(stat -c %s "$B") bytes, linux/$(go env GOARCH), stripped)"
start_node 18093 17193
sleep 5
echo "idle RSS: $(awk '/VmRSS/{print $2/1024 " MiB"}' /proc/$PID/status)"
for r in 1 2 3; do
  echo -n "run $r, produce, 1 partition:  "; "$B" bench produce --topic p1-$r --partitions 1 --records 200000 --size 1024 --batch 100 --concurrency 8 --json
  echo -n "run $r, produce, 8 partitions: "; "$B" bench produce --topic p8-$r --partitions 8 --records 200000 --size 1024 --batch 100 --concurrency 8 --json
  echo -n "run $r, consume batches, 1 partition:  "; "$B" bench consume --topic p1-$r --records 200000 --format batches --json
  echo -n "run $r, consume batches, 8 partitions: "; "$B" bench consume --topic p8-$r --records 200000 --format batches --json
  echo -n "run $r, consume JSON, 8 partitions:    "; "$B" bench consume --topic p8-$r --records 200000 --json
done
echo "RSS after the runs: $(awk '/VmRSS/{print $2/1024 " MiB"}' /proc/$PID/status)"
# Go returns freed heap to the OS gradually; the runtime forces a GC every
# two minutes when idle.
sleep 150
echo "RSS 150 s later: $(awk '/VmRSS/{print $2/1024 " MiB"}' /proc/$PID/status)"
