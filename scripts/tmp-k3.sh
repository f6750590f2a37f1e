#!/usr/bin/env bash
. "$(dirname "$0")/lib.sh"
build_old HEAD
NEW=$B
rate() { py '"%dk records/s, p50 %d ms" % (d["records_per_sec"] / 1000, d["p50_ms"])'; }
car() { for i in 1 2 3; do curl -s -H "Authorization: Bearer $EDDY_TOKEN" 127.0.0.1:1809$i/metrics | awk -v n=$i '/^eddy_raft_log_carried_bytes_total/ {printf "n%d carried %d MB ", n, $2/1048576}'; done; for i in 1 2 3; do echo -n "cpu$i $(ticks ${NODES[$((i-1))]}) "; done; echo; }
for pass in 1 2; do
for b in old new; do
  B=$([ $b = old ] && echo "$W/eddy-old" || echo "$NEW")
  rm -rf "$W"/d? "$W"/conf?
  start_cluster 1809 1719 1889 1909
  for r in 1 2 3 4; do
    echo "pass $pass $b kafka $r: $("$B" bench kafka --kafka-addr 127.0.0.1:19091 --topic k$r --replication-factor 3 --records 300000 --size 1024 --json | rate) $(car)"
    echo "pass $pass $b http  $r: $("$B" bench produce --topic h$r --replication-factor 3 --records 300000 --size 1024 --batch 100 --concurrency 8 --json | rate) $(car)"
  done
  kill "${NODES[@]}"; wait "${NODES[@]}" 2>/dev/null || true
done
done
