#!/usr/bin/env bash
# A compacted topic against a plain one under the same load, 3 runs
# interleaved, a fresh node each (RF 1, a release build, compaction
# looked for every second, paced at compaction_bytes_per_sec, default
# 16 MiB/s, or PACE): 600k records of 1 KiB over 100 keys (`eddy bench
# produce --keys 100`, 8 x 100), to a topic of 4 MiB segments with
# cleanup.policy delete or compact. Prints the produce rate and the
# node's CPU over it; for the compacted topic, its partition's bytes 30,
# 60 and 120 s after the load, and what compaction dropped and freed.
# Stops what it started.
# Usage: [PACE=bytes/s|-1] scripts/bench-compaction.sh
. "$(dirname "$0")/lib.sh"
export EDDY_COMPACTION_INTERVAL=1s EDDY_COMPACTION_BYTES_PER_SEC=${PACE:-16777216}
size() { curl -sf "$EDDY_SERVER/v1/topics/t?detail=true" -H "Authorization: Bearer $EDDY_TOKEN" | py 'd["partition_info"][0]["size_bytes"]'; }
metric() { curl -sf "$EDDY_SERVER/metrics" -H "Authorization: Bearer $EDDY_TOKEN" | awk -v m="$1" 'index($0, m) == 1 {s += $2} END {printf "%d", s}'; }
for r in ${RUNS:-1 2 3}; do
  for policy in ${POLICIES:-delete compact}; do
    rm -rf "$W/d" "$W/conf"
    start_node 18097 17197
    curl -sf -XPOST "$EDDY_SERVER/v1/topics" -H "Authorization: Bearer $EDDY_TOKEN" \
      -d '{"name":"t","config":{"cleanup.policy":"'$policy'","segment.bytes":"4194304"}}' >/dev/null
    c0=$(ticks "$PID")
    rate=$("$B" bench produce --topic t --keys 100 --records 600000 --size 1024 --batch 100 --concurrency 8 --json | py 'int(d["records_per_sec"])')
    c1=$(ticks "$PID")
    line="$policy, run $r: $rate records/s (node $(((c1 - c0) * 10)) ms of CPU), $(($(size) >> 20)) MiB at the end of the load"
    if [ "$policy" = compact ]; then
      t0=$(date +%s)
      for at in 30 60 120; do
        sleep $((t0 + at - $(date +%s)))
        line="$line; ${at} s after it $(($(size) >> 20)) MiB"
      done
      line="$line ($(metric eddy_compactions_total) compactions, $(metric eddy_compaction_dropped_records_total) records dropped, $(($(metric eddy_compaction_freed_bytes_total) >> 20)) MiB freed)"
    fi
    echo "$line"
    kill "$PID"
    wait "$PID" 2>/dev/null || true
  done
done
