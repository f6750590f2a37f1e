#!/usr/bin/env bash
# Starts a 3-node cluster on 127.0.0.1 (release build, data in a temp dir),
# measures produce throughput with RF 1 and RF 3 in the same run (the client
# talks to the partition's leader, 3 runs each), then RSS per node under a
# produce load over 64 RF 3 partitions. Stops the nodes it started.
. "$(dirname "$0")/lib.sh"
start_cluster 1808 1710 1888
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
