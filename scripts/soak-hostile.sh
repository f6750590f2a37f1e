#!/usr/bin/env bash
# The hostile soak (issue 12; `make soak-hostile`, not in CI, about 5
# minutes, bounded to 10): a 3-node cluster on 127.0.0.1; two well-behaved
# tenants (alpha: a plain topic; beta: a plain topic and one with the
# enrich transform) produce and consume for 20 s before and 20 s during an
# attack by tenant mallory and by unauthenticated sockets, all at once:
#   - 2,000 sockets that never send CONNECT, 60 CONNECTs declaring 16 MiB
#     a second, 500 idle HTTP sockets (pre-login exhaustion, descriptors)
#   - a slow but successful transform (170 ms a batch) produced to by 8
#     concurrent clients (noisy neighbour)
#   - compile bombs (blocks nested 60,000 deep) uploaded in a loop
#   - 20 uploads of distinct 7.5 MiB modules (module memory, storage quota)
#   - MQTT connects with alpha's client ids (session takeover)
#   - forged and garbage tokens
# It prints each well-behaved tenant's throughput before and during, and
# every node's RSS. Stops everything it started.
. "$(dirname "$0")/lib.sh"
export PY=/usr/bin/python3
start_cluster 1828 1720 1898
rss() { for p in "${NODES[@]}"; do awk '/VmRSS/ {printf "%d MB ", $2/1024}' /proc/$p/status; done; }
tenant_token() { # TENANT: create it, print an admin token of it
  "$B" tenant create "$1" --storage-bytes 0 >/dev/null
  "$B" token issue --tenant "$1" --scopes admin --ttl 1h
}
ALPHA=$(tenant_token alpha); BETA=$(tenant_token beta); MAL=$(tenant_token mallory)
"$B" transform build examples/transforms/enrich -o "$W/enrich.wasm" >/dev/null
"$B" transform build wasm/testdata/guests/slow -o "$W/slow.wasm" >/dev/null
"$B" topic create a --partitions 2 --replication-factor 3 --token "$ALPHA" >/dev/null
"$B" topic create b --partitions 2 --replication-factor 3 --token "$BETA" >/dev/null
"$B" topic create bt --partitions 2 --replication-factor 3 --token "$BETA" >/dev/null
"$B" transform deploy enrich "$W/enrich.wasm" --token "$BETA" >/dev/null
"$B" topic set-transform bt --module enrich --config '{"fields":{"site":"s1"}}' --token "$BETA" >/dev/null
"$B" topic create noisy --partitions 2 --replication-factor 3 --token "$MAL" >/dev/null
"$B" transform deploy slow "$W/slow.wasm" --token "$MAL" >/dev/null
"$B" topic set-transform noisy --module slow --config '170' --token "$MAL" >/dev/null

# measure LABEL: the well-behaved tenants' figures, at once, for 20 s.
measure() {
  local out=$W/m-$1
  "$B" bench produce --topic a --records 10000000 --size 512 --batch 100 --concurrency 4 --duration 20s --json --token "$ALPHA" >"$out.a" &
  local p1=$!
  "$B" bench produce --topic b --records 10000000 --size 512 --batch 100 --concurrency 4 --duration 20s --json --token "$BETA" \
    --server http://127.0.0.1:18282 >"$out.b" &
  local p2=$!
  "$B" bench produce --topic bt --records 10000000 --size 512 --value json --batch 100 --concurrency 4 --duration 20s --json \
    --token "$BETA" --server http://127.0.0.1:18283 >"$out.bt" &
  local p3=$!
  wait $p1 $p2 $p3
  "$B" bench consume --topic a --records 200000 --format batches --duration 20s --json --token "$ALPHA" >"$out.ca"
  for k in a b bt ca; do
    printf '%s %s %s\n' "$1" "$k" "$($PY -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["records_per_sec"]))' "$out.$k")"
  done >>"$W/figures"
}

echo "RSS after setup: $(rss)"
measure before
echo "RSS after the baseline: $(rss)"

# The attack, bounded to 90 s.
cat >"$W/attack.py" <<'PY'
import os, socket, struct, sys, time, threading
mqtt = [("127.0.0.1", 18981 + i) for i in range(3)]
http = [("127.0.0.1", 18281 + i) for i in range(3)]
end = time.time() + float(sys.argv[1])
held = []
def hold(addr, n):
    for _ in range(n):
        try:
            s = socket.create_connection(addr, timeout=2); held.append(s)
        except OSError:
            pass
def big_connects():
    while time.time() < end:
        for a in mqtt:
            for _ in range(20):
                try:
                    s = socket.create_connection(a, timeout=2)
                    s.sendall(b"\x10\xff\xff\xff\x07" + b"\x00" * 1024)  # declares 16 MiB
                    held.append(s)
                except OSError:
                    pass
        time.sleep(1)
threads = [threading.Thread(target=hold, args=(mqtt[i % 3], 700)) for i in range(3)]
threads += [threading.Thread(target=hold, args=(http[i % 3], 170)) for i in range(3)]
threads.append(threading.Thread(target=big_connects))
for t in threads: t.start()
for t in threads: t.join()
while time.time() < end:
    time.sleep(1)
print("attack sockets opened: %d" % len(held))
PY
cat >"$W/bomb.py" <<'PY'
import sys
def leb(n):
    out = b""
    while True:
        c = n & 0x7f; n >>= 7
        out += bytes([c | (0x80 if n else 0)])
        if not n: return out
d = 60000
fn = b"\x00" + b"\x02\x40" * d + b"\x0b" * d + b"\x0b"
sec = lambda i, c: bytes([i]) + leb(len(c)) + c
m = b"\x00asm\x01\x00\x00\x00" + sec(1, b"\x01\x60\x00\x00") + sec(3, b"\x01\x00") + sec(10, b"\x01" + leb(len(fn)) + fn)
open(sys.argv[1], "wb").write(m)
PY
$PY "$W/bomb.py" "$W/bomb.wasm"
cat >"$W/pad.py" <<'PY'
import os, sys
base = open(sys.argv[1], "rb").read()
body = b"\x03pad" + os.urandom(7_680 * 1024 - len(base) - 16)
n, leb = len(body), b""
while True:
    c = n & 0x7f; n >>= 7
    leb += bytes([c | (0x80 if n else 0)])
    if not n: break
open(sys.argv[2], "wb").write(base + b"\x00" + leb + body)
PY
timeout 100 $PY "$W/attack.py" 90 >"$W/attack.log" 2>&1 &
PIDS+=($!)
noisy_load 85 http://127.0.0.1:18281 "$MAL" noisy
(
  end=$((SECONDS + 85))
  i=0
  while [ $SECONDS -lt $end ]; do
    i=$((i + 1))
    curl -s -m 5 -XPUT -H "Authorization: Bearer $MAL" -H 'Content-Type: application/wasm' --data-binary @"$W/bomb.wasm" \
      127.0.0.1:18281/v1/transforms/bomb >>"$W/bomb.log"; echo >>"$W/bomb.log"
    if [ $i -le 20 ]; then
      $PY "$W/pad.py" "$W/enrich.wasm" "$W/pad.wasm"
      curl -s -m 30 -XPUT -H "Authorization: Bearer $MAL" -H 'Content-Type: application/wasm' --data-binary @"$W/pad.wasm" \
        127.0.0.1:18282/v1/transforms/pad$((i % 4)) >>"$W/pad.log"; echo >>"$W/pad.log"
    fi
    for n in 1 2 3; do
      timeout 3 mosquitto_pub -h 127.0.0.1 -p 1898$n -V mqttv5 -u mallory -P "$MAL" -i "alpha-dev-$i" -t x -m y -q 0 2>/dev/null || true
    done
    for _ in $(seq 1 20); do
      curl -s -m 2 -o /dev/null -H "Authorization: Bearer eyJhbGciOiJub25lIn0.e30.$RANDOM" 127.0.0.1:1828$((RANDOM % 3 + 1))/v1/topics
    done
  done
) &
PIDS+=($!)
sleep 15
echo "RSS under attack: $(rss)"
measure during
echo "RSS under attack, after measuring: $(rss)"
wait "${PIDS[@]:3}" 2>/dev/null || true
echo "RSS after the attack: $(rss)"
cat "$W/attack.log"
echo "compile bombs refused: $(grep -c invalid_module "$W/bomb.log") of $(grep -c . "$W/bomb.log")"
echo "7.5 MiB module uploads: $(grep -c '"version"' "$W/pad.log") accepted, $(grep -c limit_exceeded "$W/pad.log") refused by the storage quota"
curl -s -H "Authorization: Bearer $EDDY_TOKEN" 127.0.0.1:18281/metrics |
  grep -E '^eddy_transform_(cpu_budget_refusals_total|errors_total)\{topic="mallory' | sed 's/^/noisy tenant: /'
for i in 1 2 3; do
  curl -sf 127.0.0.1:1828$i/readyz >/dev/null && echo "node $i: ready" || echo "node $i: NOT READY"
done
echo
echo "well-behaved tenants, records/s (before -> during the attack):"
$PY - "$W/figures" <<'PY'
import sys
f = {}
for line in open(sys.argv[1]):
    phase, k, v = line.split()
    f.setdefault(k, {})[phase] = int(v)
names = {"a": "alpha produce (plain)", "b": "beta produce (plain)", "bt": "beta produce (transform)", "ca": "alpha consume"}
for k in ["a", "b", "bt", "ca"]:
    b, d = f[k].get("before", 0), f[k].get("during", 0)
    print("  %-26s %8d -> %8d  (%+.0f%%)" % (names[k], b, d, (d - b) * 100.0 / max(b, 1)))
PY
