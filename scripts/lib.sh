# Sourced by the bench scripts: a work dir with a release build of eddy in
# it ($W, $B), and a cleanup on exit that stops what the script started
# (the PIDs in PIDS) and removes the work dir.
set -euo pipefail
cd "$(dirname "$0")/.."
W=$(mktemp -d)
B=$W/eddy
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$B" ./cmd/eddy
PIDS=()
cleanup() {
  if [ ${#PIDS[@]} -gt 0 ]; then kill "${PIDS[@]}" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

# build_old REV: a release build of REV, $W/eddy-old, for the scripts
# that interleave an older build with this one.
build_old() {
  git worktree add -q --detach "$W/old" "$1"
  (cd "$W/old" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$W/eddy-old" ./cmd/eddy)
  git worktree remove --force "$W/old"
}

# start_node HTTP_PORT RAFT_PORT [MQTT_PORT [KAFKA_PORT]]: one node on
# loopback (MQTT and Kafka off without their ports) with its data in $W/d; waits until it is ready,
# sets PID and points the CLI at it (EDDY_SERVER, EDDY_TOKEN); exits with
# the node's log if it does not start.
start_node() {
  local mqtt=off kafka=off
  [ -n "${3:-}" ] && mqtt=127.0.0.1:$3
  [ -n "${4:-}" ] && kafka=127.0.0.1:$4
  EDDY_CONFIG_DIR=$W/conf "$B" serve --data-dir "$W/d" --http-addr "127.0.0.1:$1" --raft-addr "127.0.0.1:$2" --mqtt-addr "$mqtt" --kafka-addr "$kafka" >>"$W/log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 1 150); do
    if curl -sf "127.0.0.1:$1/readyz" >/dev/null; then
      export EDDY_SERVER=http://127.0.0.1:$1 EDDY_TOKEN
      EDDY_TOKEN=$(cat "$W/d/admin.token")
      return
    fi
    sleep 0.2
  done
  echo "node did not start"; cat "$W/log"; exit 1
}

# kafka_addr PREFIX I: node I's Kafka address (off without a prefix).
kafka_addr() { if [ -n "$1" ]; then echo "127.0.0.1:$1$2"; else echo off; fi; }

# start_cluster HTTP RAFT MQTT [KAFKA]: three nodes on loopback, node i on
# ports HTTPi, RAFTi, MQTTi (and KAFKAi) (port prefixes: start_cluster 1808 1710 1888 is
# 18081-3, 17101-3, 18881-3), data in $W/d1-3; waits until all are ready,
# sets NODES to their PIDs and points the CLI at node 1.
start_cluster() {
  local peers="1=127.0.0.1:${2}1,2=127.0.0.1:${2}2,3=127.0.0.1:${2}3"
  NODES=()
  for i in 1 2 3; do
    EDDY_CONFIG_DIR=$W/conf$i "$B" serve --node-id $i --data-dir "$W/d$i" --http-addr 127.0.0.1:$1$i \
      --raft-addr 127.0.0.1:$2$i --mqtt-addr 127.0.0.1:$3$i --kafka-addr "$(kafka_addr "${4:-}" $i)" --peers "$peers" >"$W/log$i" 2>&1 &
    PIDS+=($!)
    NODES+=($!)
  done
  for _ in $(seq 1 150); do
    local ok=1
    for i in 1 2 3; do curl -sf 127.0.0.1:$1$i/readyz >/dev/null || ok=0; done
    if [ $ok = 1 ]; then
      export EDDY_SERVER=http://127.0.0.1:${1}1 EDDY_TOKEN
      EDDY_TOKEN=$(cat "$W/d1/admin.token")
      return
    fi
    sleep 0.2
  done
  echo "cluster did not start"; cat "$W"/log*; exit 1
}

# noisy_load SECONDS SERVER TOKEN TOPIC: 8 clients on kept-alive
# connections producing one record per request to TOPIC for SECONDS,
# ignoring refusals (a noisy neighbour keeps going); adds the PID to PIDS
# and NOISY.
noisy_load() {
  /usr/bin/python3 - "$@" <<'PY' &
import http.client, sys, threading, time, urllib.parse
secs, server, token, topic = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
u = urllib.parse.urlparse(server)
end = time.time() + secs
def client():
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    while time.time() < end:
        try:
            c.request("POST", "/v1/topics/%s/records" % topic, body=b'{"records":[{"value":"x"}]}',
                      headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
            c.getresponse().read()
        except Exception:
            c.close()
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
            time.sleep(0.1)
threads = [threading.Thread(target=client) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
PY
  PIDS+=($!)
  NOISY=($!)
}

# post_lua: writes $W/post.lua, wrk's script for one record of 1,000 bytes
# per request (POST /v1/topics/.../records, the node's token).
post_lua() {
  cat >"$W/post.lua" <<LUA
wrk.method = "POST"
wrk.body = [[{"records":[{"value":"$(printf 'x%.0s' $(seq 1 1000))"}]}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $EDDY_TOKEN"
LUA
}

# py EXPR: prints EXPR over d, the JSON document on stdin (eddy ... --json).
py() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# ticks PID: the process's CPU so far, user + system, in ticks of 10 ms
# (/proc/PID/stat).
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# settle_memory: writes back and drops the clean page cache (as root;
# else does nothing), so a load starts with the memory it fills from
# what is free at rest. On this project's VM the kernel takes 5-8 times
# longer to give out memory once a few GB more than at rest are in use,
# page cache included (docs/kafka-figures.md, why RF 3 rounds fall):
# without it a script's later loads measure the host's memory, not Eddy.
# Off with SETTLE_MEMORY=0. settle, below, waits first.
settle_memory() {
  [ "${SETTLE_MEMORY:-1}" = 1 ] || return 0
  sync
  echo 1 2>/dev/null >/proc/sys/vm/drop_caches || true
}

# settle: waits SETTLE_IDLE seconds (8 unless set; 0: none), then
# settle_memory, so a load starts from a node, and a VM, at rest. Here a
# Kafka load to one partition on three nodes started just after two loads
# to eight partitions ran at two thirds of its rate, its nodes' writes
# copying into the page cache several times slower (perf), and 8-15 s
# later did not (docs/kafka-figures.md); the partitions of the loads
# before also go idle meanwhile (multiraft/sync.go).
settle() {
  sleep "${SETTLE_IDLE:-8}"
  settle_memory
}
