#!/usr/bin/env bash
# Starts a 3-node cluster on 127.0.0.1 (release build, data in a temp dir),
# measures produce throughput with RF 1 and RF 3 in the same run (the client
# talks to the partition's leader, 3 runs each), then RSS per node under a
# produce load over 64 RF 3 partitions. Stops the nodes it started.
. "$(dirname "$0")/lib.sh"
PEERS="1=127.0.0.1:17101,2=127.0.0.1:17102,3=127.0.0.1:17103"
for i in 1 2 3; do
  EDDY_CONFIG_DIR=$W/conf$i "$B" serve --node-id $i --data-dir "$W/d$i" --http-addr 127.0.0.1:1808$i \
    --raft-addr 127.0.0.1:1710$i --mqtt-addr 127.0.0.1:1888$i --peers "$PEERS" >"$W/log$i" 2>&1 &
  PIDS+=($!)
done
for _ in $(seq 1 150); do
  ok=1; for i in 1 2 3; do curl -sf 127.0.0.1:1808$i/readyz >/dev/null || ok=0; done
  [ $ok = 1 ] && break; sleep 0.2
done
export EDDY_SERVER=http://127.0.0.1:18081 EDDY_TOKEN=$(cat "$W/d1/admin.token")
leader() {
  curl -s -H "Authorization: Bearer $EDDY_TOKEN" 127.0.0.1:18081/v1/topics/$1 |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["partition_info"][0]["leader"])'
}
for r in 1 2 3; do
  for rf in 1 3; do
    t=rf$rf-$r
    curl -s -XPOST -H "Authorization: Bearer $EDDY_TOKEN" 127.0.0.1:18081/v1/topics \
      -d "{\"name\":\"$t\",\"partitions\":1,\"replication_factor\":$rf}" >/dev/null
    L=0; for _ in $(seq 1 50); do L=$(leader $t); [ "$L" != 0 ] && break; sleep 0.2; done
    echo -n "run $r, RF $rf (leader node $L): "
    EDDY_SERVER=http://127.0.0.1:1808$L "$B" bench produce --topic $t --records 100000 --size 1024 \
      --concurrency 8 --batch 100 --json
  done
done
"$B" bench produce --topic p64 --partitions 64 --replication-factor 3 --records 200000 --size 1024 \
  --concurrency 8 --batch 100 --json &
BP=$!
sleep 8
echo "RSS under load, 64 RF 3 partitions:"
for p in "${PIDS[@]}"; do grep VmRSS /proc/$p/status; done
wait $BP
