#!/usr/bin/env bash
# demo.sh - the README's main job: a real replication on this machine.
#
# Starts two Distribution registries on loopback in a temp directory, seeds
# the source with generated example images (Docker and OCI images, a
# multi-arch index, a cosign-style signature), replicates them with the
# packaged example policy scripts/examples/mirror.lua, checks the result
# with scripts/examples/verify.lua, prints a summary and cleans up. Needs
# no account and no network beyond loopback. `make demo` builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${FREIGHTLINER_BIN:-bin/freightliner}
WORK=$(mktemp -d /tmp/freightliner-demo-XXXXXX)

cleanup() {
  python3 e2e/harness/registry.py stop --dir "$WORK/src" 2>/dev/null || true
  python3 e2e/harness/registry.py stop --dir "$WORK/dst" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

echo "== starting two registries on loopback"
python3 e2e/harness/registry.py start --mode plain --dir "$WORK/src" >/dev/null &
python3 e2e/harness/registry.py start --mode plain --dir "$WORK/dst" >/dev/null &
wait
SRC=$(field "$WORK/src/info.json" host)
DST=$(field "$WORK/dst/info.json" host)
echo "   source      $SRC"
echo "   destination $DST"

echo "== seeding the source with example images"
python3 e2e/harness/seed.py --registry "http://$SRC" --spec small >/dev/null
"$BIN" run scripts/examples/verify.lua "$SRC" "$SRC" 'project-*' | tail -1 | sed 's/^/   /'

echo "== replicating with scripts/examples/mirror.lua"
"$BIN" run scripts/examples/mirror.lua "$SRC" "$DST" 'project-*'

echo "== a second run: everything is up to date"
"$BIN" run scripts/examples/mirror.lua "$SRC" "$DST" 'project-*' | tail -1

echo "== verifying the destination against the source"
"$BIN" run scripts/examples/verify.lua "$SRC" "$DST" 'project-*'
echo "== done: the same images, digest for digest, are in both registries"
