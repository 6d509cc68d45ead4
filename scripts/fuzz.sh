#!/usr/bin/env bash
# fuzz.sh [SECONDS] - build the libFuzzer targets in tests/fuzz with clang
# (ASan + UBSan) and run each for SECONDS (default 30) from its checked-in
# seed corpus (tests/fuzz/corpus/NAME). New inputs go to a scratch corpus
# under build-fuzz/, never into the repository; a crash leaves its input in
# build-fuzz/crash-* and fails the run (turn it into a regression test).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-30}
OUT=build-fuzz
mkdir -p "$OUT"
CC=${CC:-clang}
CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc $(pkg-config --cflags lua5.4) -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE"
# shellcheck disable=SC2046
LIBS="$(pkg-config --libs libcurl openssl jansson lua5.4 yaml-0.1) -lpthread -lm"
CORE="src/core/error.c src/core/digest.c src/core/log.c src/registry/reference.c
      src/registry/auth.c src/registry/credentials.c src/registry/manifest.c
      src/registry/endpoint.c src/registry/http.c src/lua/lua_util.c src/lua/l_yaml.c
      src/serve/route.c src/serve/cron.c"
status=0
for target in tests/fuzz/fuzz_*.c; do
  name=$(basename "$target" .c)
  corpus=tests/fuzz/corpus/${name#fuzz_}
  echo "== $name (${SECONDS_EACH}s)"
  # shellcheck disable=SC2086
  $CC $CFLAGS -o "$OUT/$name" "$target" $CORE $LIBS
  mkdir -p "$OUT/corpus-$name"
  if ! "$OUT/$name" -max_total_time="$SECONDS_EACH" -artifact_prefix="$OUT/" \
      "$OUT/corpus-$name" "$corpus" 2>"$OUT/$name.log"; then
    echo "   FAILED: see $OUT/$name.log"; tail -20 "$OUT/$name.log"; status=1
  else
    grep -E '^(#[0-9]+|Done)' "$OUT/$name.log" | tail -1 | sed 's/^/   /'
  fi
done
exit $status
