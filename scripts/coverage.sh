#!/usr/bin/env bash
# coverage.sh - line coverage of src/ (gcov) and lua/stdlib (flcov), gated.
# `make coverage` calls it; .ci/run runs it as a gate.
#
# Configures build-cov/ with -DFL_COVERAGE=ON (gcov instrumentation, -O0),
# runs the cmocka, busted and quick end-to-end suites through
# scripts/run-tests.sh with the Lua collector on (tests/coverage/flcov.lua,
# loaded by busted and by every freightliner process the suites start),
# then prints both reports, lowest file first, and writes gcovr's HTML to
# build-cov/coverage/index.html and the Lua report to
# build-cov/coverage/lua.txt (with the missed lines of every file).
#
# Gates: C lines >= COV_C_MIN (85), Lua stdlib lines >= COV_LUA_MIN (80).
# Exits non-zero if a test failed or a gate is not met, after writing the
# reports anyway. COV_SUITES overrides the suites ("c lua e2e-quick").
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT_ABS=$PWD

BUILD=build-cov
C_MIN=${COV_C_MIN:-85}
LUA_MIN=${COV_LUA_MIN:-80}
read -r -a SUITES <<<"${COV_SUITES:-c lua e2e-quick}"
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
OUT=$BUILD/coverage

for tool in cmake gcovr gcov; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "coverage.sh: $tool not found; run scripts/setup.sh" >&2
    exit 1
  fi
done

echo "== coverage: building $BUILD (FL_COVERAGE=ON)"
# The engine copies on worker threads: without atomic counter updates the
# counters race and gcov writes negative branch counts that gcovr rejects.
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DFL_COVERAGE=ON \
  -DCMAKE_C_FLAGS=-fprofile-update=atomic >/dev/null || exit 1
cmake --build "$BUILD" -j "$JOBS" -- --no-print-directory >"$BUILD/build.log" 2>&1 || {
  tail -n 30 "$BUILD/build.log"
  exit 1
}

# Counters from an earlier run would add up with this one.
find "$BUILD" -name '*.gcda' -delete

LUA_COV="$ROOT_ABS/$BUILD/lua-cov"
rm -rf "$LUA_COV"
mkdir -p "$LUA_COV"
FL_LUA_COVERAGE_DIR="$LUA_COV" scripts/run-tests.sh "$BUILD" "${SUITES[@]}"
TEST_RC=$?

echo
echo "== coverage: src/ (gcovr)"
rm -rf "$OUT"
mkdir -p "$OUT"
gcovr --root . --object-directory "$BUILD" --filter 'src/' \
  --exclude-unreachable-branches --gcov-ignore-parse-errors --sort-percentage \
  --txt "$OUT/coverage.txt" \
  --html-details "$OUT/index.html" --html-title "Freightliner coverage" \
  --print-summary "$BUILD" >"$OUT/summary.txt" 2>"$OUT/gcovr.log"
GCOVR_RC=$?
if [ "$GCOVR_RC" -ne 0 ]; then
  echo "gcovr failed:"
  tail -n 20 "$OUT/gcovr.log"
  exit 1
fi
cat "$OUT/coverage.txt"
cat "$OUT/summary.txt"
echo "HTML report: $OUT/index.html"

echo
echo "== coverage: lua/stdlib (flcov)"
lua5.4 scripts/lua-coverage.lua "$LUA_COV" --root lua/stdlib --out "$OUT/lua.txt" --min "$LUA_MIN"
LUA_RC=$?
echo "Lua report with missed lines: $OUT/lua.txt"

echo
echo "== coverage gates"
C_PCT=$(sed -n 's/^lines: \([0-9.]*\)%.*/\1/p' "$OUT/summary.txt")
GATE_RC=0
if awk -v p="${C_PCT:-0}" -v m="$C_MIN" 'BEGIN { exit !(p >= m) }'; then
  echo "C lines:   ${C_PCT}% >= ${C_MIN}%: ok"
else
  echo "C lines:   ${C_PCT:-?}% is below the gate of ${C_MIN}%: FAILED"
  GATE_RC=1
fi
LUA_PCT=$(sed -n 's/^TOTAL .* \([0-9.]*\)%$/\1/p' "$OUT/lua.txt")
if [ "$LUA_RC" -eq 0 ]; then
  echo "Lua lines: ${LUA_PCT}% >= ${LUA_MIN}%: ok"
else
  echo "Lua lines: ${LUA_PCT:-?}% is below the gate of ${LUA_MIN}% (or no data): FAILED"
  GATE_RC=1
fi
[ "$TEST_RC" -eq 0 ] || echo "tests failed under coverage (exit $TEST_RC)"
[ "$TEST_RC" -eq 0 ] && [ "$GATE_RC" -eq 0 ]
