#!/usr/bin/env bash
# test-install.sh [BUILD] - `make install` into a DESTDIR, then check what a
# user gets: every file in its place, the installed binary runs, the man
# page renders with no warning from `man -l`, pkg-config finds the library,
# and a stock lua5.4 loads freightliner.core and the stdlib from the
# installed Lua 5.4 paths. `make test-install`; CI runs it (make test-deploy).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PREFIX=/usr/local
STAGE=$(mktemp -d /tmp/freightliner-install-XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
FAIL=0
fail() { echo "FAIL: $*" >&2; FAIL=1; }

make --no-print-directory install BUILD="$BUILD" PREFIX="$PREFIX" DESTDIR="$STAGE" >"$STAGE.log" 2>&1 ||
  { cat "$STAGE.log"; rm -f "$STAGE.log"; echo "make install failed" >&2; exit 1; }
rm -f "$STAGE.log"
ROOT=$STAGE$PREFIX

for f in bin/freightliner share/man/man1/freightliner.1 lib/libfreightliner.a \
  include/freightliner.h lib/pkgconfig/freightliner.pc \
  lib/lua/5.4/freightliner/core.so share/lua/5.4/freightliner/init.lua \
  share/lua/5.4/freightliner/cli.lua share/lua/5.4/freightliner/cmd/sync.lua \
  share/lua/5.4/freightliner/shard.lua; do
  [ -f "$ROOT/$f" ] || fail "make install did not install $PREFIX/$f"
done
# Nothing outside PREFIX, nothing but files CMake listed.
OUTSIDE=$(cd "$STAGE" && find . -type f ! -path ".$PREFIX/*")
[ -z "$OUTSIDE" ] || fail "files installed outside $PREFIX: $OUTSIDE"
# Every stdlib module is installed.
N_SRC=$(find lua/stdlib/freightliner -name '*.lua' | wc -l)
N_DST=$(find "$ROOT/share/lua/5.4/freightliner" -name '*.lua' | wc -l)
[ "$N_SRC" = "$N_DST" ] || fail "$N_SRC stdlib modules, $N_DST installed"

V=$("$ROOT/bin/freightliner" --version | head -1)
WANT="freightliner $(make --no-print-directory -s -f Makefile -p 2>/dev/null | sed -n 's/^VERSION := //p' | head -1)"
[ "$V" = "$WANT" ] || fail "installed binary says '$V', want '$WANT'"

# The man page: renders, no groff/man warning, and has every command.
WARN=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$ROOT/share/man/man1/freightliner.1" 2>&1 >"$STAGE/man.txt") || fail "man -l failed: $WARN"
[ -z "$WARN" ] || fail "man -l warnings: $WARN"
for c in replicate replicate-tree sync resume inspect run; do
  grep -q "usage: freightliner $c" "$STAGE/man.txt" || fail "the man page lacks the usage of $c"
done
grep -q '^SYNOPSIS' "$STAGE/man.txt" || fail "the man page has no SYNOPSIS"

# pkg-config: relocatable, so the staged file points into the stage.
PC=(env PKG_CONFIG_PATH="$ROOT/lib/pkgconfig" pkg-config)
[ "$("${PC[@]}" --modversion freightliner)" = "${WANT#freightliner }" ] || fail "pkg-config --modversion freightliner"
"${PC[@]}" --cflags freightliner | grep -q -- "-I$ROOT/lib/pkgconfig/../../include" ||
  fail "pkg-config --cflags: $("${PC[@]}" --cflags freightliner)"
"${PC[@]}" --libs freightliner | grep -q -- "-lfreightliner" || fail "pkg-config --libs"

# A stock lua5.4, with the installed tree's paths (as /usr/local is by default).
OUT=$(LUA_PATH="$ROOT/share/lua/5.4/?.lua;$ROOT/share/lua/5.4/?/init.lua;;" \
  LUA_CPATH="$ROOT/lib/lua/5.4/?.so;;" lua5.4 -e '
    local core = require("freightliner.core")
    local fl = require("freightliner")
    assert(package.searchpath("freightliner.core", package.cpath):find("lib/lua/5.4", 1, true))
    print(core.version, fl.digest.sha256("abc"))') || fail "lua5.4 could not load the installed module"
case "$OUT" in
  *"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") ;;
  *) fail "lua5.4 with the installed module printed: $OUT" ;;
esac

if [ "$FAIL" -ne 0 ]; then exit 1; fi
echo "test-install: ok ($(cd "$STAGE" && find . -type f | wc -l) files under DESTDIR$PREFIX, man page clean, pkg-config and lua5.4 find them)"
