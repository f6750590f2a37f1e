#!/usr/bin/env bash
# One path (issue 14): the build before it against this one, interleaved in
# one run (old, new, then new, old, ...: 4 rounds), a fresh node of each
# build per round, one node on loopback, RF 1. The server is the only thing
# that changes: every load comes from this build's `eddy bench`. Per round:
#   - bench-node's loads: 200k x 1 KiB records, 8 clients x 100 per request,
#     to 1 and to 8 partitions; consumed back from the 8 as stored batches
#     and as JSON
#   - bench-mqtt's loads: QoS 1 with 64 and 1,000 connections (60k x 256 B),
#     QoS 0 with 8 connections (200k x 256 B, and how many were stored)
#   - bench-transform's loads: 64 x 256-byte JSON records per request
#     through examples/transforms/enrich, and the same without a transform
# Usage: scripts/bench-one-path.sh [OLD_REV, default 83d80cf]
OLD=${1:-83d80cf}
. "$(dirname "$0")/lib.sh"
build_old "$OLD"
CLI=$B
"$CLI" transform build examples/transforms/enrich -o "$W/enrich.wasm" >/dev/null
round() { # LABEL BUILD
  rm -rf "$W/d" "$W/conf"
  B=$2 start_node 18095 17195 11885
  B=$CLI
  local p='"%d records/s, p99 %.1f ms" % (d["records_per_sec"], d["p99_ms"])'
  echo "$1, produce 1 partition: $("$B" bench produce --topic p1 --partitions 1 --records 200000 --size 1024 --batch 100 --concurrency 8 --json | py "$p")"
  echo "$1, produce 8 partitions: $("$B" bench produce --topic p8 --partitions 8 --records 200000 --size 1024 --batch 100 --concurrency 8 --json | py "$p")"
  echo "$1, consume batches, 8 partitions: $("$B" bench consume --topic p8 --records 200000 --format batches --json | py '"%d records/s" % d["records_per_sec"]')"
  echo "$1, consume JSON, 8 partitions: $("$B" bench consume --topic p8 --records 200000 --json | py '"%d records/s" % d["records_per_sec"]')"
  local m='"%d msgs/s, p99 %.1f ms" % (d["msgs_per_sec"], d["p99_ms"])'
  for c in 64 1000; do
    echo "$1, MQTT QoS 1, $c connections: $("$B" bench mqtt --mqtt-addr 127.0.0.1:11885 --topic q1-$c --connections $c --messages 60000 --size 256 --qos 1 --json | py "$m")"
  done
  echo -n "$1, MQTT QoS 0, 8 connections: $("$B" bench mqtt --mqtt-addr 127.0.0.1:11885 --topic q0 --connections 8 --messages 200000 --size 256 --qos 0 --json | py '"%d msgs/s sent" % d["msgs_per_sec"]')"
  sleep 2
  echo ", $(curl -s -H "Authorization: Bearer $EDDY_TOKEN" 127.0.0.1:18095/v1/topics/q0/partitions/0/offsets | py 'd["latest"]') of 200000 stored"
  "$B" transform deploy enrich "$W/enrich.wasm" >/dev/null
  "$B" topic create plain >/dev/null
  "$B" topic create enriched >/dev/null
  "$B" topic set-transform enriched --module enrich --config '{"fields":{"site":"edge-01","gateway":"gw-7"}}' >/dev/null
  for t in plain enriched; do
    echo "$1, 64 JSON records/request, $t: $("$B" bench produce --topic $t --records 200000 --batch 64 --size 256 --value json --concurrency 8 --duration 30s --json | py "$p")"
  done
  echo "$1, RSS after the round: $(awk '/VmRSS/ {print int($2/1024)}' /proc/$PID/status) MB"
  kill "$PID"; wait "$PID" 2>/dev/null || true
}
for r in 1 2; do
  round "round $r, old ($OLD)" "$W/eddy-old"
  round "round $r, new" "$CLI"
  round "round $r, new" "$CLI"
  round "round $r, old ($OLD)" "$W/eddy-old"
done
