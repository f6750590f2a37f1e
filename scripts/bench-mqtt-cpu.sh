#!/usr/bin/env bash
# MQTT QoS 1 (issue 17): Eddy (one node, release build, RF 1) and Debian's
# mosquitto (no persistence) side by side with the same generator, and the
# CPU each broker spends per message (from /proc, user + system), for 10
# and 1,000 connections with 1 and 16 publishes in flight each. The
# generator shares the machine: the ratio of throughputs follows the ratio
# of CPU per message. With OLD_REV, that build runs too, interleaved, a
# fresh node for each load. Env: RUNS="1 2" (rounds), CS, IS (connections
# and in-flight lists), N (messages a load), NODE_GOGC (the node's GOGC),
# GEN (the eddy binary whose bench mqtt generates the load: another
# build's generator; this build's by default).
# Stops everything it started.
# Usage: scripts/bench-mqtt-cpu.sh [OLD_REV]
OLD=${1:-}
. "$(dirname "$0")/lib.sh"
NEW=$B
if [ -n "$OLD" ]; then
  build_old "$OLD"
fi
printf 'listener 18883 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n' >"$W/mosq.conf"
/usr/sbin/mosquitto -c "$W/mosq.conf" >"$W/mosq.log" 2>&1 &
MP=$!; PIDS+=($MP)
fresh_node() { # BUILD: a fresh node of that build (MQTT on 11883)
  B=$1
  rm -rf "$W/d" "$W/conf"
  [ -n "${NODE_GOGC:-}" ] && export GOGC=$NODE_GOGC
  start_node 18091 17191 11883
  unset GOGC
  B=$NEW # the generator is this build's
}
run() { # name port pid conns inflight extra
  local t0 t1 out
  t0=$(ticks $3)
  out=$("${GEN:-$B}" bench mqtt --mqtt-addr 127.0.0.1:$2 $6 --topic "q$4" --connections $4 --inflight $5 --messages ${N:-60000} --size 256 --qos 1 --json)
  t1=$(ticks $3)
  echo "$1 c=$4 i=$5: $(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.0f msgs/s p50 %.2f ms" % (d["msgs_per_sec"], d["p50_ms"]))') broker cpu $(( (t1-t0)*10000000/${N:-60000}/1000 )) us/msg"
}
[ -z "$OLD" ] && fresh_node "$NEW"
for r in ${RUNS:-1 2}; do
  echo "round $r"
  for c in ${CS:-10 1000}; do for i in ${IS:-1 16}; do
    if [ -n "$OLD" ]; then
      fresh_node "$W/eddy-old"
      run "eddy $OLD" 11883 $PID $c $i ""
      kill "$PID"; wait "$PID" 2>/dev/null || true
      fresh_node "$NEW"
      run eddy 11883 $PID $c $i ""
      kill "$PID"; wait "$PID" 2>/dev/null || true
    else
      run eddy 11883 $PID $c $i ""
    fi
    run mosquitto 18883 $MP $c $i "--no-create"
  done; done
done
