#!/usr/bin/env bash
# run-tests.sh BUILD_DIR [c|lua|e2e-quick|e2e-full]...
#
# Runs the test suites against an existing build and prints one count line
# per suite, then the closing line "N passed, N failed". Exits non-zero if
# any suite failed or ran no test. Called by `make test` (all quick suites)
# and the make test-* targets.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${1:-build}
shift || true
SUITES=("$@")
[ ${#SUITES[@]} -gt 0 ] || SUITES=(c lua e2e-quick)

TOTAL_PASS=0
TOTAL_FAIL=0
SUMMARY=()
LOGDIR="$BUILD/test-logs"
mkdir -p "$LOGDIR"

# Sanitizer builds: a sanitized core.so loaded into a stock lua5.4 needs the
# runtime preloaded.
PRELOAD=""
if grep -q 'FL_SANITIZE:STRING=.*address' "$BUILD/CMakeCache.txt" 2>/dev/null; then
  PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
elif grep -q 'FL_SANITIZE:STRING=thread' "$BUILD/CMakeCache.txt" 2>/dev/null; then
  PRELOAD="$(gcc -print-file-name=libtsan.so)"
fi

record() { # suite passed failed
  SUMMARY+=("$(printf '%-10s %4d passed, %d failed' "$1" "$2" "$3")")
  TOTAL_PASS=$((TOTAL_PASS + $2))
  TOTAL_FAIL=$((TOTAL_FAIL + $3))
}

run_c() {
  echo "== C unit tests (cmocka via ctest)"
  local log="$LOGDIR/ctest.log"
  (cd "$BUILD" && ctest -j "$(nproc)" --output-on-failure) 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local raw="$BUILD/Testing/Temporary/LastTest.log"
  local pass fail
  pass=$(grep -ao '\[  PASSED  \] [0-9]*' "$raw" 2>/dev/null | awk '{s+=$4} END {print s+0}')
  fail=$(grep -ao '\[  FAILED  \] [0-9]*' "$raw" 2>/dev/null | awk '{s+=$4} END {print s+0}')
  if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
  record "c" "$pass" "$fail"
}

run_lua() {
  echo "== Lua tests (busted)"
  local log="$LOGDIR/busted.log"
  LD_PRELOAD="$PRELOAD" FREIGHTLINER_BIN="$ROOT/$BUILD/bin/freightliner" \
    FREIGHTLINER_BUILD="$ROOT/$BUILD" \
    lua5.4 /usr/bin/busted --lpath="$ROOT/lua/stdlib/?.lua;$ROOT/lua/stdlib/?/init.lua;$ROOT/tests/lua/?.lua" \
      --cpath="$ROOT/$BUILD/lua/?.so" -o plainTerminal tests/lua 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line pass fail err
  line=$(grep -E '^[0-9]+ successes? / [0-9]+ failures? / [0-9]+ errors?' "$log" | tail -1)
  pass=$(echo "$line" | awk '{print $1+0}')
  fail=$(echo "$line" | awk '{print $4+0}')
  err=$(echo "$line" | awk '{print $7+0}')
  fail=$((fail + err))
  if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
  record "lua" "$pass" "$fail"
}

run_e2e() { # quick|full
  echo "== end-to-end ($1)"
  if [ ! -x e2e/run.sh ]; then
    echo "e2e/run.sh not present yet"
    return
  fi
  local log="$LOGDIR/e2e-$1.log"
  FREIGHTLINER_BIN="$ROOT/$BUILD/bin/freightliner" e2e/run.sh "$1" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line pass fail
  line=$(grep -E '^e2e: [0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
  pass=$(echo "$line" | awk '{print $2+0}')
  fail=$(echo "$line" | awk '{print $4+0}')
  if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
  record "e2e-$1" "$pass" "$fail"
}

for s in "${SUITES[@]}"; do
  case "$s" in
    c) run_c ;;
    lua) run_lua ;;
    e2e-quick) run_e2e quick ;;
    e2e-full) run_e2e full ;;
    *) echo "run-tests.sh: unknown suite '$s'" >&2; exit 2 ;;
  esac
done

echo
echo "== summary"
for line in "${SUMMARY[@]}"; do echo "$line"; done
echo "$TOTAL_PASS passed, $TOTAL_FAIL failed"
if [ "$TOTAL_FAIL" -ne 0 ] || [ "$TOTAL_PASS" -eq 0 ]; then
  exit 1
fi
