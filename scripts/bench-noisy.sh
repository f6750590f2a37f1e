#!/usr/bin/env bash
# A noisy neighbour through transforms (issue 12, item 9), on one node:
# tenant mallory's module takes 170 ms a batch (under the 200 ms deadline)
# and 8 clients produce to it one record a request, while tenant alpha
# produces to a plain topic and to a topic with the enrich transform.
# alpha's records/s without and with mallory, interleaved, 3 runs each.
. "$(dirname "$0")/lib.sh"
start_node 18092 17192
"$B" transform build examples/transforms/enrich -o "$W/enrich.wasm" >/dev/null
"$B" transform build wasm/testdata/guests/slow -o "$W/slow.wasm" >/dev/null
tok() { "$B" tenant create "$1" --storage-bytes 0 >/dev/null; "$B" token issue --tenant "$1" --scopes admin --ttl 1h; }
ALPHA=$(tok alpha); MAL=$(tok mallory)
"$B" topic create p --partitions 2 --token "$ALPHA" >/dev/null
"$B" topic create t --partitions 2 --token "$ALPHA" >/dev/null
"$B" transform deploy enrich "$W/enrich.wasm" --token "$ALPHA" >/dev/null
"$B" topic set-transform t --module enrich --config '{"fields":{"site":"s1"}}' --token "$ALPHA" >/dev/null
"$B" topic create noisy --partitions 2 --token "$MAL" >/dev/null
"$B" transform deploy slow "$W/slow.wasm" --token "$MAL" >/dev/null
"$B" topic set-transform noisy --module slow --config '170' --token "$MAL" >/dev/null
run() { # LABEL
  for topic in p t; do
    echo -n "$1, alpha's $topic: "
    "$B" bench produce --topic $topic --records 10000000 --size 256 --value json --batch 100 --concurrency 4 \
      --duration 15s --json --token "$ALPHA" | /usr/bin/python3 -c 'import json,sys; print(int(json.load(sys.stdin)["records_per_sec"]), "records/s")'
  done
}
for r in 1 2 3; do
  run "run $r, alone"
  noisy_load 40 "$EDDY_SERVER" "$MAL" noisy
  sleep 3
  run "run $r, with mallory"
  kill "${NOISY[@]}" 2>/dev/null || true
  wait "${NOISY[@]}" 2>/dev/null || true
done
curl -s -H "Authorization: Bearer $EDDY_TOKEN" "$EDDY_SERVER/metrics" |
  grep -E '^eddy_transform_(cpu_budget_refusals_total|errors_total)\{topic="mallory' | sed 's/^/mallory: /'
