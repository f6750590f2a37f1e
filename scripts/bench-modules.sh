#!/usr/bin/env bash
# Transform module memory (issue 12, item 5): node RSS after N uploads of
# distinct 7.5 MiB modules (the enrich Go guest padded with a custom
# section of random bytes, so each has its own hash), 8 transforms x 5 kept
# versions, then after a restart; and the disk the module store uses.
# Usage: scripts/bench-modules.sh [uploads, default 40]
. "$(dirname "$0")/lib.sh"
N=${1:-40}
"$B" transform build examples/transforms/enrich -o "$W/enrich.wasm" >/dev/null
start_node 18091 17191
rss() { awk '/VmRSS/ {printf "%d MB", $2/1024}' /proc/$PID/status; }
echo "idle: $(rss)"
for i in $(seq 1 "$N"); do
  /usr/bin/python3 - "$W/enrich.wasm" "$W/m.wasm" <<'PY'
import os, sys
src, dst = sys.argv[1], sys.argv[2]
base = open(src, 'rb').read()
pad = 7_680 * 1024 - len(base) - 16
name = b'pad'
body = bytes([len(name)]) + name + os.urandom(pad)
n, leb = len(body), b''
while True:
    c = n & 0x7f; n >>= 7
    leb += bytes([c | (0x80 if n else 0)])
    if not n: break
open(dst, 'wb').write(base + b'\x00' + leb + body)
PY
  "$B" transform deploy "m$(( i % 8 ))" "$W/m.wasm" >/dev/null
done
echo "after $N uploads of 7.5 MiB: $(rss); module store $(du -sm "$W/d/modules" | cut -f1) MB in $(ls "$W/d/modules" | wc -l) files"
kill "$PID"; wait "$PID" 2>/dev/null || true
start_node 18091 17191
echo "after a restart: $(rss)"
