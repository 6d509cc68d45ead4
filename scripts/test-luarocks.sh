#!/usr/bin/env bash
# test-luarocks.sh [BUILD] - the LuaRocks path a Lua user takes: `luarocks
# make` (Debian's luarocks, Lua 5.4) on rockspec/*.rockspec, from a copy of
# the source tree, into a temporary --tree; then a stock lua5.4 with only
# that tree's paths (and the system's, for Debian's lua-cjson) runs the
# policy script tests/deploy/rock_policy.lua, which copies images between
# two real loopback registries; skopeo checks the destination digests
# against the source. BUILD is unused (LuaRocks builds its own copy).
# `make test-luarocks`; CI runs it (make test-deploy).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$(mktemp -d /tmp/freightliner-rocks-XXXXXX)
. scripts/lib/loopback.sh
trap 'stop_registries; rm -rf "$WORK"' EXIT

SPEC=$(ls rockspec/*.rockspec)
[ "$(echo "$SPEC" | wc -l)" = 1 ] || { echo "FAIL: more than one rockspec: $SPEC" >&2; exit 1; }
mkdir "$WORK/src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$WORK/src"
else # an unpacked dist tarball
  tar --exclude='./build*' --exclude=./bin --exclude=./dist --exclude='./deploy/kubernetes/test/node_modules' \
    -cf - . | tar -xf - -C "$WORK/src"
fi
echo "== luarocks make $SPEC --tree $WORK/tree"
(cd "$WORK/src" && luarocks --lua-version=5.4 --tree "$WORK/tree" make --deps-mode=none "$SPEC") \
  >"$WORK/luarocks.log" 2>&1 || { tail -40 "$WORK/luarocks.log"; echo "FAIL: luarocks make" >&2; exit 1; }
luarocks --lua-version=5.4 --tree "$WORK/tree" list --porcelain | grep -q '^freightliner' ||
  { echo "FAIL: luarocks list does not show freightliner" >&2; exit 1; }
# Every stdlib module and the C module are in the tree.
for m in $(cd lua/stdlib && find freightliner -name '*.lua' | sed 's/\.lua$//; s/\/init$//'); do
  f=$WORK/tree/share/lua/5.4/$m.lua
  [ -f "$f" ] || { echo "FAIL: the rock lacks $m ($f)" >&2; exit 1; }
done
[ -f "$WORK/tree/lib/lua/5.4/freightliner/core.so" ] || { echo "FAIL: the rock lacks freightliner/core.so" >&2; exit 1; }

SRC=$(start_registry src)
DST=$(start_registry dst)
seed_small "$SRC"

# The tree's paths, then Lua's defaults (;;) for Debian's cjson; run from
# / so nothing of the source tree can be picked up.
eval "$(luarocks --lua-version=5.4 --tree "$WORK/tree" path)"
export LUA_PATH="$LUA_PATH;;" LUA_CPATH="$LUA_CPATH;;"
OUT=$(cd / && lua5.4 "$OLDPWD/tests/deploy/rock_policy.lua" "$SRC" "$DST" 'project-b/*' rocks)
echo "$OUT" | sed 's/^/   /'
grep -q "^module $WORK/tree/lib/lua/5.4/freightliner/core.so$" <<<"$OUT" ||
  { echo "FAIL: freightliner.core was not loaded from the LuaRocks tree" >&2; exit 1; }
N=0
for repo in project-b/tool project-b/dmulti; do
  for tag in $(skopeo list-tags --tls-verify=false "docker://$SRC/$repo" | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["Tags"]))'); do
    case "$tag" in *.sig) continue ;; esac
    want=$(skopeo_digest "$SRC/$repo:$tag")
    got=$(skopeo_digest "$DST/rocks/$repo:$tag" 2>/dev/null || echo missing)
    [ "$got" = "$want" ] || { echo "FAIL: $DST/rocks/$repo:$tag is $got, want $want" >&2; exit 1; }
    N=$((N + 1))
  done
done
[ "$N" -ge 5 ] || { echo "FAIL: only $N images checked" >&2; exit 1; }
echo "test-luarocks: ok (luarocks make into a temp tree; lua5.4 copied $N images, digests checked with skopeo)"
