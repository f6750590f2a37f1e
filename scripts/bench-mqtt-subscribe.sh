#!/usr/bin/env bash
# MQTT subscription figures (issue 17): one node (release build) and
# Debian's mosquitto (no persistence) on 127.0.0.1, in one run, 2 runs each:
#   - fan-out: 1,000 subscribers of <topic>/#, one device publishes 1,000
#     messages (QoS 1, 8 in flight) as fast as they are acknowledged:
#     deliveries/s; then 200 messages at 20/s (20,000 deliveries/s):
#     publish-to-receipt p50/p99; Eddy and mosquitto with the same
#     generator (eddy bench mqtt --subscribers)
#   - catch-up of a persistent session after an outage: 100,000 records of
#     100 bytes produced over HTTP while it was away (mosquitto_sub -C):
#     records/s from its CONNECT to the last record
#   - a clean session during a full-speed burst of 100,000 records: how
#     many it receives
#   - memory: the node's RSS with 1,000 devices connected idle, and with
#     1,000 subscribed idle, against none
#   - a slow subscriber: the QoS 1 ingest rate of 100 devices without, then
#     with, a subscriber of everything they publish that never reads
# Stops what it started.
. "$(dirname "$0")/lib.sh"
printf 'listener 18884 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1000\n' >"$W/mosq.conf"
/usr/sbin/mosquitto -c "$W/mosq.conf" >"$W/mosq.log" 2>&1 &
PIDS+=($!)
# 1,000 subscribers and a publisher from 127.0.0.1: over the per-address cap.
export EDDY_MAX_CONNECTIONS_PER_IP=4000
start_node 18098 17198 11898
rss() { awk '/^VmRSS/ {print int($2/1024)}' "/proc/$PID/status"; }
sub() { mosquitto_sub -h 127.0.0.1 -p 11898 -u default -P "$EDDY_TOKEN" -V mqttv5 -q 1 "$@"; }
fan() { "$B" bench mqtt --qos 1 --inflight 8 --size 100 --messages 1000 --subscribers 1000 --duration 120s "$@"; }
for run in 1 2; do
  echo "run $run: eddy fan-out: $(fan --mqtt-addr 127.0.0.1:11898 --topic "f$run")"
  echo "run $run: mosquitto fan-out: $(fan --mqtt-addr 127.0.0.1:18884 --no-create --topic "f$run")"
  echo "run $run: eddy fan-out at 20 msgs/s: $(fan --mqtt-addr 127.0.0.1:11898 --topic "r$run" --messages 200 --rate 20)"
  echo "run $run: mosquitto fan-out at 20 msgs/s: $(fan --mqtt-addr 127.0.0.1:18884 --no-create --topic "r$run" --messages 200 --rate 20)"

  "$B" topic create "c$run" --partitions 3 >/dev/null
  # Subscribe once (the session's place is set), then go away.
  sub -c -x 86400 -i "dev-$run" -t "c$run/#" -W 2 >/dev/null 2>&1 || true
  "$B" bench produce --topic "c$run" --records 100000 --size 100 --batch 1000 --concurrency 4 --json >/dev/null
  start=$(date +%s%N)
  n=$(sub -c -x 86400 -i "dev-$run" -t "c$run/#" -C 100000 -W 120 | wc -l)
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  echo "run $run: persistent session catch-up: $n records in $ms ms, $(( n * 1000 / (ms + 1) )) records/s"

  "$B" topic create "l$run" --partitions 3 >/dev/null
  sub -t "l$run/#" -C 100000 -W 60 >"$W/live$run" 2>&1 &
  SUB=$!
  sleep 1
  "$B" bench produce --topic "l$run" --records 100000 --size 100 --batch 1000 --concurrency 4 --json >/dev/null
  wait $SUB || true
  echo "run $run: clean session during a full-speed burst: $(grep -vc '^Timed out' "$W/live$run") of 100000 received"

  base=$(rss)
  "$B" bench mqtt --mqtt-addr 127.0.0.1:11898 --topic "idle$run" --connections 1000 --rate 0.01 --messages 1000 --duration 8s --json >/dev/null &
  BP=$!; sleep 6; idle=$(rss); wait $BP || true
  fan --mqtt-addr 127.0.0.1:11898 --topic "held$run" --messages 1 --hold 6s >/dev/null &
  BP=$!; sleep 6; subscribed=$(rss); wait $BP || true
  echo "run $run: node RSS: ${base} MB with no device; 1,000 connected idle: ${idle} MB; 1,000 subscribed idle: ${subscribed} MB"

  ingest() { "$B" bench mqtt --mqtt-addr 127.0.0.1:11898 --topic "slow$run" --connections 100 --qos 1 --messages 60000 --size 256 --json | sed 's/.*"msgs_per_sec":\([0-9]*\).*/\1/'; }
  echo "run $run: 100 devices, QoS 1, no subscriber: $(ingest) msgs/s"
  /usr/bin/python3 - "$EDDY_TOKEN" "slow$run/#" <<'PY' &
import socket, struct, sys, time
def s(b): return struct.pack(">H", len(b)) + b
def rl(n):
    out = b""
    while True:
        d, n = n % 128, n // 128
        out += bytes([d | (128 if n else 0)])
        if not n: return out
tok, flt = sys.argv[1].encode(), sys.argv[2].encode()
c = socket.create_connection(("127.0.0.1", 11898))
c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
body = s(b"MQTT") + bytes([5, 0xC2]) + struct.pack(">H", 60) + b"\x00" + s(b"never-reads") + s(b"default") + s(tok)
c.sendall(b"\x10" + rl(len(body)) + body)
sub = struct.pack(">H", 1) + b"\x00" + s(flt) + b"\x01"
c.sendall(b"\x82" + rl(len(sub)) + sub)
time.sleep(60)  # and never reads
PY
  SLOW=$!; PIDS+=("$SLOW"); sleep 1
  echo "run $run: 100 devices, QoS 1, a subscriber that never reads: $(ingest) msgs/s; node RSS $(rss) MB"
  kill "$SLOW" 2>/dev/null || true
done
