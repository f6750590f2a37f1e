#!/usr/bin/env bash
# Forged tokens, on one node: a client with no credentials sends requests
# with a forged token (the operator's with its signature changed) over 32
# connections (wrk) while tenant alpha produces (4 clients x 100 records
# of 256 bytes). alpha's records/s alone and beside the forger, 2 runs
# each, on a node with auth_failures_per_ip at its default (10) and on one
# with it off (0), interleaved; the forger's requests/s and how they were
# answered. Both load generators run on the same machine as the node.
. "$(dirname "$0")/lib.sh"
node() { # node NAME HTTP_PORT RAFT_PORT LIMIT
  EDDY_AUTH_FAILURES_PER_IP=$4 EDDY_CONFIG_DIR=$W/conf-$1 "$B" serve --data-dir "$W/d-$1" --http-addr "127.0.0.1:$2" \
    --raft-addr "127.0.0.1:$3" --mqtt-addr off --kafka-addr off >>"$W/log-$1" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 150); do curl -sf "127.0.0.1:$2/readyz" >/dev/null && return; sleep 0.2; done
  echo "node $1 did not start"; cat "$W/log-$1"; exit 1
}
node on 18093 17193 10
node off 18094 17194 0
for n in on:18093 off:18094; do
  name=${n%:*} port=${n#*:}
  export EDDY_SERVER=http://127.0.0.1:$port EDDY_TOKEN
  EDDY_TOKEN=$(cat "$W/d-$name/admin.token")
  "$B" tenant create alpha --storage-bytes 0 >/dev/null
  "$B" token issue --tenant alpha --scopes admin --ttl 1h >"$W/alpha-$name"
  "$B" topic create p --partitions 2 --token "$(cat "$W/alpha-$name")" >/dev/null
  printf 'wrk.headers["Authorization"] = "Bearer %sAAAA"\n' "${EDDY_TOKEN%????}" >"$W/forged-$name.lua"
done
alpha() { # alpha NODE PORT LABEL
  echo -n "$3: alpha produces "
  EDDY_SERVER=http://127.0.0.1:$2 "$B" bench produce --topic p --records 10000000 --size 256 --batch 100 --concurrency 4 --duration 10s --json --token "$(cat "$W/alpha-$1")" |
    /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(int(d["records_per_sec"]), "records/s, p99", d["p99_ms"], "ms")'
}
for r in 1 2; do
  for n in on:18093 off:18094; do
    name=${n%:*} port=${n#*:}
    alpha "$name" "$port" "limit $name, run $r, alone"
    wrk -t1 -c32 -d14s -s "$W/forged-$name.lua" "http://127.0.0.1:$port/v1/topics" >"$W/wrk" &
    WRK=$!
    sleep 2
    alpha "$name" "$port" "limit $name, run $r, beside 32 connections of forged tokens"
    wait "$WRK"
    echo "  forger: $(awk '/Requests\/sec/ {print $2}' "$W/wrk") requests/s; refused as: $(curl -s -H "Authorization: Bearer $(cat "$W/d-$name/admin.token")" "127.0.0.1:$port/metrics" | awk '/^eddy_auth_throttled_total/ {print "throttled so far", $2}')"
  done
done
