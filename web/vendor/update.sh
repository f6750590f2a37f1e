#!/usr/bin/env bash
# Re-vendors the console's libraries from npm tarballs (npm pack; no Node
# code runs) and rewrites VERSIONS. Edit the versions below, run it, then
# `go test ./web` (hashes and the size budget) and the console e2e test.
set -euo pipefail
cd "$(dirname "$0")"
PREACT=11.2.0 HTM=3.1.1 UPLOT=1.6.32
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for p in preact@$PREACT htm@$HTM uplot@$UPLOT; do (cd "$tmp" && npm pack -s "$p" >/dev/null); done
for t in "$tmp"/*.tgz; do mkdir "${t%.tgz}"; tar xzf "$t" -C "${t%.tgz}" 2>/dev/null; done
strip() { sed -e 's|//# sourceMappingURL=[^ ]*$||' "$1"; } # no .map files are served
strip "$tmp/preact-$PREACT/package/dist/preact.mjs" > preact.mjs
# hooks' only bare import, made relative: no import map (no inline script) is needed.
strip "$tmp/preact-$PREACT/package/hooks/dist/hooks.mjs" | sed -e 's|from"preact"|from"./preact.mjs"|' > hooks.mjs
strip "$tmp/htm-$HTM/package/dist/htm.mjs" > htm.mjs
strip "$tmp/uplot-$UPLOT/package/dist/uPlot.iife.min.js" > uPlot.iife.min.js
cp "$tmp/uplot-$UPLOT/package/dist/uPlot.min.css" uPlot.min.css
cp "$tmp/preact-$PREACT/package/LICENSE" LICENSE.preact
cp "$tmp/htm-$HTM/package/LICENSE" LICENSE.htm
cp "$tmp/uplot-$UPLOT/package/LICENSE" LICENSE.uplot
{
  echo "# file sha256 package (npm tarball) license"
  for f in preact.mjs hooks.mjs htm.mjs uPlot.iife.min.js uPlot.min.css; do
    case $f in
      preact.mjs|hooks.mjs) pkg=preact@$PREACT lic=MIT ;;
      htm.mjs) pkg=htm@$HTM lic=Apache-2.0 ;;
      *) pkg=uplot@$UPLOT lic=MIT ;;
    esac
    echo "$f $(sha256sum "$f" | cut -d' ' -f1) $pkg $lic"
  done
} > VERSIONS
