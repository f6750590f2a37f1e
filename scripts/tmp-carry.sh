#!/usr/bin/env bash
. "$(dirname "$0")/lib.sh"
build_old ${1:-HEAD}
NEW=$B
m() { curl -s -H "Authorization: Bearer $EDDY_TOKEN" "$EDDY_SERVER/metrics" | awk -v k="$1" '$1==k {s+=$2} END {printf "%d", s}'; }
py() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
for r in 1 2 3; do
for b in old new; do
  if [ $b = old ]; then B=$W/eddy-old; else B=$NEW; fi
  rm -rf "$W/d" "$W/conf"; start_node 18093 17193 "" 19093
  tot=""
  for p in 1 8 1 8; do
    c0=$(m eddy_raft_log_carried_bytes_total); t0=$(awk '{print $14+$15}' /proc/$PID/stat)
    res=$("$B" bench kafka --kafka-addr 127.0.0.1:19093 --topic k$p-$RANDOM --partitions $p --records 300000 --size 1024 --json | py '"%d" % (d["records_per_sec"])')
    c1=$(m eddy_raft_log_carried_bytes_total); t1=$(awk '{print $14+$15}' /proc/$PID/stat)
    tot="$tot | ${p}p $res rec/s, carried $(( (c1-c0)>>20 )) MiB, cpu $((t1-t0))"
  done
  echo "run $r $b$tot"
  kill $PID; wait $PID 2>/dev/null || true
done
done
