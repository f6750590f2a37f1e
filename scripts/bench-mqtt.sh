#!/usr/bin/env bash
# MQTT figures (issues 6 and 17), one node, release build, all on
# 127.0.0.1, in one run: QoS 1 msgs/s into a durable topic with 10 and with
# 1,000 connections (one publish in flight each, then 16); QoS 0 msgs/s sent and the share stored; mosquitto's own
# QoS 1 and QoS 0 rates with the same generator (eddy bench mqtt) as the
# reference; and the bridge's drain rate of a backlog queued in mosquitto.
# Stops everything it started.
. "$(dirname "$0")/lib.sh"
printf 'listener 18883 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n' >"$W/mosq.conf"
/usr/sbin/mosquitto -c "$W/mosq.conf" >"$W/mosq.log" 2>&1 &
PIDS+=($!)
cat >"$W/eddy.yaml" <<YAML
mqtt_bridges:
  - name: bench
    url: mqtt://127.0.0.1:18883
    filters: ["drain/#"]
    tenant: default
    client_id: eddy-bench-bridge
    max_in_flight: 1000
YAML
EPID=
start() {
  EDDY_CONFIG_DIR=$W/conf "$B" serve --config "$W/eddy.yaml" --data-dir "$W/d" --http-addr 127.0.0.1:18091 \
    --raft-addr 127.0.0.1:17191 --mqtt-addr 127.0.0.1:11883 --kafka-addr off >>"$W/log" 2>&1 &
  EPID=$!; PIDS+=($EPID)
  for _ in $(seq 1 150); do curl -sf 127.0.0.1:18091/readyz >/dev/null && return; sleep 0.2; done
  echo "node did not start"; cat "$W/log"; exit 1
}
start
export EDDY_SERVER=http://127.0.0.1:18091 EDDY_TOKEN=$(cat "$W/d/admin.token")
hw() { curl -s -H "Authorization: Bearer $EDDY_TOKEN" 127.0.0.1:18091/v1/topics/$1/partitions/0/offsets |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["latest"])'; }
for r in 1 2; do
  for c in 10 1000; do
    for inflight in 1 16; do
      echo -n "run $r, eddy QoS 1, $c connections, $inflight in flight: "
      "$B" bench mqtt --mqtt-addr 127.0.0.1:11883 --topic "q1-$c" --connections $c --inflight $inflight --messages 60000 --size 256 --qos 1 --json
      echo -n "run $r, mosquitto QoS 1, $c connections, $inflight in flight: "
      "$B" bench mqtt --mqtt-addr 127.0.0.1:18883 --no-create --topic ref --connections $c --inflight $inflight --messages 60000 --size 256 --qos 1 --json
    done
  done
  before=$(hw q0 2>/dev/null || echo 0)
  echo -n "run $r, eddy QoS 0, 8 connections: "
  "$B" bench mqtt --mqtt-addr 127.0.0.1:11883 --topic q0 --connections 8 --messages 200000 --size 256 --qos 0 --json
  sleep 2; echo "  stored $(( $(hw q0) - before )) of 200000; dropped so far: $(curl -s -H "Authorization: Bearer $EDDY_TOKEN" 127.0.0.1:18091/metrics | awk '/^eddy_mqtt_qos0_dropped_total/ {s+=$2} END {print s+0}')"
  echo -n "run $r, mosquitto QoS 0, 8 connections: "
  "$B" bench mqtt --mqtt-addr 127.0.0.1:18883 --no-create --topic ref --connections 8 --messages 200000 --size 256 --qos 0 --json
done
# Bridge drain: the bridge's session exists; stop the node, queue 100,000
# messages in mosquitto, start the node and time until all are stored.
"$B" topic create drain >/dev/null
for _ in $(seq 1 100); do
  curl -s -H "Authorization: Bearer $EDDY_TOKEN" 127.0.0.1:18091/v1/bridges | grep -q '"subscribed":true' && break; sleep 0.1
done
kill "$EPID"; wait "$EPID" 2>/dev/null || true
"$B" bench mqtt --mqtt-addr 127.0.0.1:18883 --no-create --topic drain --connections 16 --messages 100000 --size 256 --qos 1 >/dev/null
t0=$(date +%s.%N)
start
for _ in $(seq 1 1200); do [ "$(hw drain)" -ge 100000 ] && break; sleep 0.05; done
t1=$(date +%s.%N)
echo "bridge drain: 100000 messages in $(python3 -c "print(round($t1-$t0,2))") s (including the node's start): $(python3 -c "print(round(100000/($t1-$t0)))") msgs/s"
grep VmRSS /proc/$EPID/status
