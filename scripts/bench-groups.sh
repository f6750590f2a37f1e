#!/usr/bin/env bash
# Consumer group figures (issue 7), one node, release build: records/s
# consumed from a 6-partition topic by a group of 3 HTTP members (each
# polling 1,000 and committing after every poll) vs one reader without a
# group (eddy bench consume), 3 interleaved runs. Stops what it started.
. "$(dirname "$0")/lib.sh"
start_node 18092 17192
"$B" topic create g6 --partitions 6 >/dev/null
"$B" bench produce --topic g6 --records 300000 --size 256 --batch 1000 --concurrency 8 --json >/dev/null
for r in 1 2 3; do
  echo -n "run $r, group of 3 members: "; "$B" bench group --topic g6 --members 3 --records 300000 --json
  echo -n "run $r, one reader, no group: "; "$B" bench consume --topic g6 --records 300000 --json
done
