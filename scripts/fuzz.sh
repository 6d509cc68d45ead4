#!/usr/bin/env bash
# fuzz.sh [SECONDS] - build the libFuzzer targets in tests/fuzz with clang
# (ASan + UBSan) and run each for SECONDS (default 30) from its checked-in
# seed corpus (tests/fuzz/corpus/NAME) and its regression inputs
# (tests/fuzz/regressions/NAME: every input that ever crashed a target,
# replayed first on every run). New inputs go to a scratch corpus under
# build-fuzz/, never into the repository. A crash fails the run and its
# input is copied to tests/fuzz/regressions/NAME/ so that it can be
# committed as a regression test once fixed.
#
# Allocations are bounded as they are for a hostile registry: a single
# allocation above FUZZ_MALLOC_MB (default 256) or a resident set above
# FUZZ_RSS_MB (default 1024) counts as a crash.
#
# `make fuzz` runs 30 s per target; .ci/run runs the smoke form
# (`make fuzz-smoke`, 10 s per target).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-30}
MALLOC_MB=${FUZZ_MALLOC_MB:-256}
RSS_MB=${FUZZ_RSS_MB:-1024}
OUT=build-fuzz
mkdir -p "$OUT/obj"
CC=${CC:-clang}
CFLAGS="-g -O1 -fsanitize=fuzzer-no-link,address,undefined -Iinclude -Isrc
        $(pkg-config --cflags lua5.4) -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE"
# shellcheck disable=SC2046
LIBS="$(pkg-config --libs libcurl openssl jansson lua5.4 yaml-0.1 zlib) -lpthread -lm"
# The code under test: the core, registry and trust layers (new files there are
# picked up without editing this script), the Lua pieces the YAML target
# needs and serve's request router and cron parser (no HTTP server). Compiled once, linked into every target.
CORE=$(ls src/core/*.c src/registry/*.c src/trust/*.c src/lua/lua_util.c src/lua/l_yaml.c \
  src/serve/route.c src/serve/cron.c)

objs=()
for src in $CORE; do
  obj="$OUT/obj/$(echo "$src" | tr / _).o"
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ]; then
    # shellcheck disable=SC2086
    $CC $CFLAGS -c -o "$obj" "$src"
  fi
  objs+=("$obj")
done

status=0
for target in tests/fuzz/fuzz_*.c; do
  name=$(basename "$target" .c)
  short=${name#fuzz_}
  corpus=tests/fuzz/corpus/$short
  regressions=tests/fuzz/regressions/$short
  echo "== $name (${SECONDS_EACH}s)"
  # shellcheck disable=SC2086
  $CC ${CFLAGS//fuzzer-no-link/fuzzer} -o "$OUT/$name" "$target" "${objs[@]}" $LIBS
  mkdir -p "$OUT/corpus-$name" "$OUT/crash-$name"
  dirs=("$OUT/corpus-$name" "$corpus")
  [ -d "$regressions" ] && dirs+=("$regressions")
  if ! "$OUT/$name" -max_total_time="$SECONDS_EACH" -malloc_limit_mb="$MALLOC_MB" \
      -rss_limit_mb="$RSS_MB" -artifact_prefix="$OUT/crash-$name/" \
      "${dirs[@]}" 2>"$OUT/$name.log"; then
    echo "   FAILED: see $OUT/$name.log"
    tail -20 "$OUT/$name.log"
    mkdir -p "$regressions"
    for crash in "$OUT/crash-$name"/*; do
      [ -f "$crash" ] || continue
      cp "$crash" "$regressions/"
      echo "   kept $regressions/$(basename "$crash") (commit it with the fix)"
    done
    status=1
  else
    grep -E '^(#[0-9]+|Done)' "$OUT/$name.log" | tail -1 | sed 's/^/   /'
  fi
done
exit $status
