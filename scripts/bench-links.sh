#!/usr/bin/env bash
# Links (issue 18): an edge node forwards a topic to a cloud node's Kafka
# listener on loopback. For 1 KiB and 128 B JSON records (eddy bench
# produce --value json, as sensors send), without compression and with
# zstd: the link is paused while 60 s of records pile up (an outage of
# the uplink, at 2,000 records/s of 1 KiB and 10,000 of 128 B, produced as
# fast as the node takes them), then resumed. Reported: the time from
# resume to lag zero, the catch-up rate (records/s, MB/s of values), bytes
# on the wire per record, the edge's CPU during the catch-up (cores) and
# its RSS before and after it (the 60 s of produce, before, is most of it).
# Usage: scripts/bench-links.sh
. "$(dirname "$0")/lib.sh"
node() { # NAME HTTP RAFT KAFKA: starts a node, sets PID_<NAME> and TOKEN_<NAME>
  EDDY_CONFIG_DIR=$W/conf-$1 "$B" serve --data-dir "$W/$1" --http-addr "127.0.0.1:$2" --raft-addr "127.0.0.1:$3" \
    --mqtt-addr off --kafka-addr "$4" >>"$W/log-$1" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  eval "PID_$1=$pid"
  for _ in $(seq 1 150); do
    if curl -sf "127.0.0.1:$2/readyz" >/dev/null; then
      eval "TOKEN_$1=\$(cat $W/$1/admin.token)"
      return
    fi
    sleep 0.2
  done
  echo "$1 did not start"; cat "$W/log-$1"; exit 1
}
node cloud 18191 17291 127.0.0.1:19192
node edge 18193 17293 off
E="$B --server http://127.0.0.1:18193 --token $TOKEN_edge"
rss() { awk '/VmRSS/{print $2}' "/proc/$PID_edge/status"; }
echo "edge idle: RSS $(rss) KiB"
for size in 1024 128; do
  n=$((size == 1024 ? 120000 : 600000))
  for codec in none zstd; do
    t=s$size$codec
    $E bench produce --topic "$t" --records 1 --size "$size" --value json --json >/dev/null
    echo "$TOKEN_cloud" >"$W/cloud.jwt"
    $E link create "$t" --to kafka://127.0.0.1:19192 --topics "$t" --sasl plain --username default \
      --password-file "$W/cloud.jwt" --compression "$codec" >/dev/null
    until $E link describe "$t" --format json | py 'd["totals"]["backlog_records"] == 0 and d["state"] == "connected"' | grep -q True; do sleep 0.2; done
    $E link pause "$t" >/dev/null
    $E bench produce --topic "$t" --records "$n" --size "$size" --value json --batch 500 --concurrency 4 --json >/dev/null
    before=$($E link describe "$t" --format json | py 'd["totals"]["bytes_sent"]')
    r0=$(rss); c0=$(ticks "$PID_edge"); t0=$(date +%s.%N)
    $E link resume "$t" >/dev/null
    until $E link describe "$t" --format json | py 'd["totals"]["backlog_records"] == 0' | grep -q True; do sleep 0.1; done
    t1=$(date +%s.%N); c1=$(ticks "$PID_edge")
    sent=$($E link describe "$t" --format json | py 'd["totals"]["bytes_sent"]')
    /usr/bin/python3 - "$size" "$codec" "$n" "$t0" "$t1" "$c0" "$c1" "$before" "$sent" "$r0" "$(rss)" <<'PY'
import sys
size, codec, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
t0, t1, c0, c1 = map(float, sys.argv[4:8])
before, sent, r0, r1 = map(int, sys.argv[8:12])
secs = t1 - t0
cpu = (c1 - c0) / 100 / secs
print(f"{size:>5} B, {codec:>4}: {n} records caught up in {secs:.1f} s: {n/secs:,.0f} records/s, "
      f"{n*size/secs/1e6:.1f} MB/s of values; {(sent-before)/n:.1f} bytes/record on the wire; edge CPU {cpu:.2f} cores, "
      f"RSS {r0/1024:.0f} MiB before, {r1/1024:.0f} MiB after")
PY
  done
done
