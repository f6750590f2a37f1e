#!/usr/bin/env bash
. "$(dirname "$0")/lib.sh"
go build -o "$W/eddy-sym" ./cmd/eddy
B=$W/eddy-sym
start_node 18091 17191 11883
"$B" bench mqtt --mqtt-addr 127.0.0.1:11883 --topic q1000 --connections 1000 --inflight 1 --messages 60000 --size 256 --qos 1 --json | head -c 300; echo
( sleep 3; perf record -F 2000 -g -p $PID -o /tmp/perf-mqtt.data -- sleep 5 >/dev/null 2>&1 ) & P2=$!
t0=$(ticks $PID)
"$B" bench mqtt --mqtt-addr 127.0.0.1:11883 --topic q1000 --no-create --connections 1000 --inflight 1 --messages 300000 --size 256 --qos 1 --json | head -c 300; echo
echo "cpu ticks $(( $(ticks $PID) - t0 ))"
wait $P2
