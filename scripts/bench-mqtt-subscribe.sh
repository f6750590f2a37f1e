#!/usr/bin/env bash
# MQTT subscription figures (issue 17), one node, release build, on
# 127.0.0.1, in one run, 2 runs each:
#   - catch-up of a persistent session after an outage: a device (MQTT 5,
#     clean start false, QoS 1) subscribes and goes away; 100,000 records of
#     100 bytes are produced over HTTP; it comes back and receives them all
#     (mosquitto_sub -C): records/s from its CONNECT to the last record
#   - live delivery: a clean-session device subscribed while 100,000
#     records are produced as fast as the node takes them: how many it
#     receives (a live session's bounds drop what it cannot take; a
#     persistent session does not)
# Stops what it started.
. "$(dirname "$0")/lib.sh"
start_node 18098 17198 11898
sub() { mosquitto_sub -h 127.0.0.1 -p 11898 -u default -P "$EDDY_TOKEN" -V mqttv5 -q 1 "$@"; }
for run in 1 2; do
  "$B" topic create "c$run" --partitions 3 >/dev/null
  # Subscribe once (the session's place is set), then go away.
  sub -c -x 86400 -i "dev-$run" -t "c$run/#" -W 2 >/dev/null 2>&1 || true
  "$B" bench produce --topic "c$run" --records 100000 --size 100 --batch 1000 --concurrency 4 --json >/dev/null
  start=$(date +%s%N)
  n=$(sub -c -x 86400 -i "dev-$run" -t "c$run/#" -C 100000 -W 120 | wc -l)
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  echo "run $run: persistent session catch-up: $n records in $ms ms, $(( n * 1000 / (ms + 1) )) records/s"

  "$B" topic create "l$run" --partitions 3 >/dev/null
  sub -t "l$run/#" -C 100000 -W 15 >"$W/live$run" 2>&1 &
  SUB=$!
  sleep 1
  start=$(date +%s%N)
  "$B" bench produce --topic "l$run" --records 100000 --size 100 --batch 1000 --concurrency 4 --json >/dev/null
  wait $SUB || true
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  n=$(wc -l <"$W/live$run")
  echo "run $run: live (clean session): $n of 100000 records received; dropped so far: $(curl -s "$EDDY_SERVER/metrics" -H "Authorization: Bearer $EDDY_TOKEN" | awk '/^eddy_mqtt_delivery_dropped_total/ {print $2}')"
done
