#!/usr/bin/env bash
# A Raft port against sockets that never finish a handshake: a node with
# Raft TLS (eddy cert's certificates), 15,000 silent sockets from 300
# loopback addresses held against its Raft port for 8 s (scripts/silent),
# the node's RSS and the sockets it holds 6.5 s in, and its /readyz then;
# 2 runs, interleaved with the build at REV when given
# (scripts/bench-raft-handshakes.sh c402cbe: before the bound).
. "$(dirname "$0")/lib.sh"
builds=(new)
if [ -n "${1:-}" ]; then build_old "$1"; builds=(old new); fi
go build -o "$W/silent" ./scripts/silent
"$B" cert create-ca --dir "$W/certs" >/dev/null
"$B" cert create-node node1 --dir "$W/certs" >/dev/null
for run in 1 2; do
  for b in "${builds[@]}"; do
    bin=$B; [ "$b" = old ] && bin=$W/eddy-old
    rm -rf "$W/d" "$W/conf"
    EDDY_RAFT_TLS_CERT=$W/certs/node1.pem EDDY_RAFT_TLS_KEY=$W/certs/node1.key EDDY_RAFT_TLS_CA=$W/certs/ca.pem EDDY_CONFIG_DIR=$W/conf \
      "$bin" serve --data-dir "$W/d" --http-addr 127.0.0.1:18097 --raft-addr 127.0.0.1:17197 --mqtt-addr off --kafka-addr off >>"$W/log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 150); do curl -sf 127.0.0.1:18097/readyz >/dev/null && break; sleep 0.2; done
    rss0=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    "$W/silent" -addr 127.0.0.1:17197 -n 15000 -d 8s >"$W/held" &
    flood=$!
    sleep 6.5
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    sockets=$(ss -Htn state established "( sport = :17197 )" | wc -l)
    ready=$(curl -s -o /dev/null -w '%{http_code} in %{time_total} s' -m 5 127.0.0.1:18097/readyz || true)
    wait "$flood"
    echo "$b, run $run: RSS $((rss0 / 1024)) MB idle, $((rss / 1024)) MB under the flood; $sockets sockets established on its Raft port, $(cat "$W/held") of the flood's open (held by the node); /readyz $ready"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
