#!/usr/bin/env bash
# A noisy neighbour through reads, on one node: tenant mallory fetches its
# own topic over 32 connections (wrk, 1,000 records of 1 KiB a request,
# JSON and then batches) while tenant alpha produces (4 clients x 100
# records of 256 bytes). alpha's records/s alone and beside mallory, 2
# runs each; mallory's requests/s. tenant_read_slots is the node's default
# unless EDDY_TENANT_READ_SLOTS is set (e.g. 1024: as good as none);
# MALLORY_CONSUME=<bytes/s> gives mallory a consume_bytes_per_sec quota.
# Both load generators run on the same machine as the node.
. "$(dirname "$0")/lib.sh"
start_node 18092 17192
tok() { "$B" tenant create "$1" --storage-bytes 0 "${@:2}" >/dev/null; "$B" token issue --tenant "$1" --scopes admin --ttl 1h; }
ALPHA=$(tok alpha)
MAL=$(tok mallory --consume-bytes-per-sec "${MALLORY_CONSUME:-0}")
"$B" topic create p --partitions 2 --token "$ALPHA" >/dev/null
"$B" bench produce --topic r --partitions 4 --records 200000 --size 1024 --batch 500 --concurrency 4 --token "$MAL" --json >/dev/null
printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$MAL" >"$W/get.lua"
alpha() {
  echo -n "$1: alpha produces "
  "$B" bench produce --topic p --records 10000000 --size 256 --batch 100 --concurrency 4 --duration 10s --json --token "$ALPHA" |
    /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(int(d["records_per_sec"]), "records/s, p99", d["p99_ms"], "ms")'
}
for format in json batches; do
  for r in 1 2; do
    alpha "$format, run $r, alone"
    wrk -t1 -c32 -d14s -s "$W/get.lua" "$EDDY_SERVER/v1/topics/r/partitions/0/records?offset=1000&max=1000&format=$format" >"$W/wrk" &
    WRK=$!
    sleep 2
    alpha "$format, run $r, beside mallory's 32 readers"
    wait "$WRK"
    echo "  mallory: $(awk '/Requests\/sec/ {print $2}' "$W/wrk") requests/s, $(awk '/Transfer\/sec/ {print $2}' "$W/wrk")/s, $(awk '/Non-2xx/ {print $4}' "$W/wrk") refused"
  done
done
