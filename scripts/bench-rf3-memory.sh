#!/usr/bin/env bash
# What RF 3 Kafka produce costs each node besides its writes: three local
# nodes, franz-go producing 1 KiB records to one partition (ROUNDS rounds
# of RECORDS), and for each node in each round its CPU seconds and minor
# page faults (/proc/PID/stat); then, once the rounds are over, each
# node's live heap after a collection (GODEBUG=gctrace=1), what the
# scavenger gave back to the system (scavtrace) and the largest holders
# of its heap (pprof); and the same 60 s later, with RSS. Node 1 takes
# the client. Stops what it started.
. "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-3}
RECORDS=${RECORDS:-400000}
export GODEBUG=gctrace=1,scavtrace=1 EDDY_PPROF=1
start_cluster 1809 1719 1889 1909
unset GODEBUG EDDY_PPROF
faults() { for p in "${NODES[@]}"; do awk '{printf "%d ", $10}' "/proc/$p/stat"; done; } # minflt
node_ticks() { for p in "${NODES[@]}"; do echo -n "$(ticks "$p") "; done; } # each node's, lib.sh
heap() { # NODE [OUT]: its heap profile after a forced collection
  curl -sf -H "Authorization: Bearer $EDDY_TOKEN" "127.0.0.1:1809$1/debug/pprof/heap?gc=1" >"${2:-/dev/null}"
}
for r in $(seq 1 "$ROUNDS"); do
  f0=($(faults)) c0=($(node_ticks))
  out=$("$B" bench kafka --kafka-addr 127.0.0.1:19091 --topic m$r --replication-factor 3 --records "$RECORDS" --size 1024 --json)
  f1=($(faults)) c1=($(node_ticks))
  echo "round $r: $(echo "$out" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print("%d records/s" % d["records_per_sec"])')"
  for i in 0 1 2; do
    echo "  node $((i + 1)): CPU $(( (c1[i] - c0[i]) * 10 )) ms, minor faults $(( f1[i] - f0[i] ))"
  done
done
live() { # NODE: its live heap after its last collection (gctrace: "A->B->C MB, D MB goal": C)
  grep '^gc ' "$W/log$1" | tail -1 | sed -E 's/.*->([0-9]+) MB, ([0-9]+) MB goal.*/\1 MB live (goal \2 MB)/'
}
for i in 1 2 3; do
  heap $i "$W/heap$i"
  echo "node $i after the rounds and a collection: $(live $i); scavenger lines $(grep -c scav "$W/log$i"), the last: $(grep scav "$W/log$i" | tail -1)"
  go tool pprof -sample_index=inuse_space -top -nodecount=4 "$B" "$W/heap$i" 2>/dev/null | sed -n '/flat%/,$p'
done
sleep 60
for i in 1 2 3; do
  heap $i; heap $i # pooled buffers (a sync.Pool) outlive one collection
  echo "node $i, 60 s later, two collections: $(live $i), RSS $(awk '/VmRSS/ {print $2 / 1024 " MB"}' /proc/${NODES[$((i - 1))]}/status)"
done
