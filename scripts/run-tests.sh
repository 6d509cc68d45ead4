#!/usr/bin/env bash
# run-tests.sh BUILD_DIR [c|lua|e2e-quick|e2e-full]...
#
# Runs the test suites against an existing build and prints one count line
# per suite, then the closing line "N passed, N failed, N skipped". Exits
# non-zero if any suite failed, did not start, or ran no test: each suite's
# counts come from this run's own output, never from an earlier run's files.
# Called by `make test` (all quick suites) and the make test-* targets.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
BUILD=${1:-build}
shift || true
SUITES=("$@")
[ ${#SUITES[@]} -gt 0 ] || SUITES=(c lua e2e-quick)

TOTAL_PASS=0
TOTAL_FAIL=0
TOTAL_SKIP=0
SUMMARY=()
LOGDIR="$BUILD/test-logs"
mkdir -p "$LOGDIR"

# Sanitizer builds. The binary and the cmocka tests link the runtime
# themselves; a sanitized core.so loaded into the stock lua5.4 needs the
# runtime loaded first. It is preloaded with the dynamic loader's --preload
# option (glibc >= 2.33) rather than LD_PRELOAD, which every process the
# specs spawn would inherit: /bin/sh with libtsan preloaded crashes.
SANITIZE=$(sed -n 's/^FL_SANITIZE:STRING=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
LUA=(lua5.4)
PRELOAD=""
PRELOAD_EXTRA=""
case "$SANITIZE" in
  *address* | *undefined*)
    PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
    # lua_close() dlcloses core.so, so a leak found at exit would be
    # reported as "<unknown module>". A one-line dlclose() that does nothing,
    # preloaded after the runtime, keeps every module mapped until the end.
    # (Preloading core.so itself instead makes libcurl's dependencies
    # deadlock in their destructors at exit.)
    printf 'int dlclose(void *h);\nint dlclose(void *h) { (void)h; return 0; }\n' \
      >"$BUILD/nodlclose.c"
    if gcc -shared -fPIC -o "$BUILD/nodlclose.so" "$BUILD/nodlclose.c"; then
      PRELOAD_EXTRA="$ROOT/$BUILD/nodlclose.so"
    fi
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    # The loader, run directly as below, keeps an allocation for the
    # program's name that LeakSanitizer reports at exit: not ours.
    printf 'leak:add_name_to_object\n' >"$BUILD/lsan.supp"
    export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/$BUILD/lsan.supp:print_suppressions=0}
    ;;
  *thread*)
    PRELOAD="$(gcc -print-file-name=libtsan.so)"
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
    # With high-entropy ASLR (vm.mmap_rnd_bits > 28) ThreadSanitizer dies
    # with "FATAL: ThreadSanitizer: unexpected memory mapping". Running the
    # whole suite with randomisation off avoids it; the personality is
    # inherited by every process started below.
    if [ -z "${FL_TSAN_NORANDOM:-}" ]; then
      if setarch "$(uname -m)" -R true 2>/dev/null; then
        echo "tsan: running the tests with ASLR disabled (setarch -R)"
        FL_TSAN_NORANDOM=1 exec setarch "$(uname -m)" -R "$ROOT/scripts/run-tests.sh" "$BUILD" "${SUITES[@]}"
      fi
      echo "tsan: setarch -R is not permitted here; if ThreadSanitizer reports" \
        "'unexpected memory mapping', run: sysctl -w vm.mmap_rnd_bits=28"
    fi
    ;;
esac
if [ -n "$PRELOAD" ]; then
  LUA_BIN=$(command -v lua5.4)
  LDSO=$(readelf -l "$LUA_BIN" 2>/dev/null |
    sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
  if [ -n "$LDSO" ] && "$LDSO" --help 2>/dev/null | grep -q -- '--preload'; then
    LUA=("$LDSO" --preload "$PRELOAD${PRELOAD_EXTRA:+ $PRELOAD_EXTRA}" "$LUA_BIN")
  else
    LUA=(env LD_PRELOAD="$PRELOAD" "$LUA_BIN")
  fi
fi

# record SUITE PASSED FAILED [SKIPPED]: a suite that ran no test counts as
# one failure, so a suite that cannot start or finds nothing fails the run.
# Lua line coverage (scripts/coverage.sh sets FL_LUA_COVERAGE_DIR): busted
# loads the collector first, and every freightliner process the suites start
# loads it through FREIGHTLINER_LUA_INIT.
COV_INIT=()
if [ -n "${FL_LUA_COVERAGE_DIR:-}" ]; then
  COV_INIT=(-e "dofile('$ROOT/tests/coverage/flcov.lua')")
  export FREIGHTLINER_LUA_INIT="@$ROOT/tests/coverage/flcov.lua"
fi

record() {
  local pass=$2 fail=$3 skip=${4:-0} note=""
  if [ "$pass" -eq 0 ] && [ "$fail" -eq 0 ]; then
    fail=1
    note="  (ran no test: counted as a failure)"
  fi
  SUMMARY+=("$(printf '%-10s %4d passed, %d failed, %d skipped%s' "$1" "$pass" "$fail" "$skip" "$note")")
  TOTAL_PASS=$((TOTAL_PASS + pass))
  TOTAL_FAIL=$((TOTAL_FAIL + fail))
  TOTAL_SKIP=$((TOTAL_SKIP + skip))
}

run_c() {
  echo "== C unit tests (cmocka via ctest)"
  local log="$LOGDIR/ctest.log"
  # ctest writes every test's output to LastTest.log; it is removed first
  # so that the counts below can only come from this run.
  local raw="$BUILD/Testing/Temporary/LastTest.log"
  rm -f "$raw"
  (cd "$BUILD" && ctest -j "$(nproc)" --output-on-failure) 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local pass fail skip
  pass=$(grep -ao '\[  PASSED  \] [0-9]*' "$raw" 2>/dev/null | awk '{s+=$4} END {print s+0}')
  fail=$(grep -ao '\[  FAILED  \] [0-9]*' "$raw" 2>/dev/null | awk '{s+=$4} END {print s+0}')
  skip=$(grep -ao '\[  SKIPPED \] [0-9]*' "$raw" 2>/dev/null | awk '{s+=$4} END {print s+0}')
  if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
  record "c" "$pass" "$fail" "$skip"
}

run_lua() {
  echo "== Lua tests (busted)"
  # stdout is line-buffered (-e ... setvbuf) so the count line is written
  # even when a sanitizer ends the process at exit without flushing stdio.
  local log="$LOGDIR/busted.log"
  # A run that hangs (a process stuck at exit) fails after LUA_TIMEOUT s.
  FREIGHTLINER_BIN="$ROOT/$BUILD/bin/freightliner" \
    FREIGHTLINER_BUILD="$ROOT/$BUILD" \
    timeout --foreground -k 10 "${LUA_TIMEOUT:-1800}" "${LUA[@]}" -e 'io.stdout:setvbuf("line")' "${COV_INIT[@]}" /usr/bin/busted --lpath="$ROOT/lua/stdlib/?.lua;$ROOT/lua/stdlib/?/init.lua;$ROOT/tests/lua/?.lua" \
      --cpath="$ROOT/$BUILD/lua/?.so" -o plainTerminal tests/lua 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line pass fail err skip
  # busted: "N success(es) / N failure(s) / N error(s) / N pending : T seconds"
  line=$(grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' "$log" | tail -1)
  pass=$(echo "$line" | awk '{print $1+0}')
  fail=$(echo "$line" | awk '{print $4+0}')
  err=$(echo "$line" | awk '{print $7+0}')
  skip=$(echo "$line" | awk '{print $10+0}')
  fail=$((fail + err))
  if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
  record "lua" "$pass" "$fail" "$skip"
}

run_e2e() { # quick|full
  echo "== end-to-end ($1)"
  if [ ! -x e2e/run.sh ]; then
    echo "e2e/run.sh is missing or not executable"
    record "e2e-$1" 0 1
    return
  fi
  local log="$LOGDIR/e2e-$1.log"
  FREIGHTLINER_BIN="$ROOT/$BUILD/bin/freightliner" e2e/run.sh "$1" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line pass fail skip
  line=$(grep -E '^e2e: [0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
  pass=$(echo "$line" | awk '{print $2+0}')
  fail=$(echo "$line" | awk '{print $4+0}')
  skip=$(echo "$line" | sed -n 's/.*, \([0-9]*\) skipped.*/\1/p')
  if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
  record "e2e-$1" "$pass" "$fail" "${skip:-0}"
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
echo "$TOTAL_PASS passed, $TOTAL_FAIL failed, $TOTAL_SKIP skipped"
if [ "$TOTAL_FAIL" -ne 0 ] || [ "$TOTAL_PASS" -eq 0 ]; then
  exit 1
fi
