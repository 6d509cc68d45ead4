#!/usr/bin/env bash
# coverage.sh - line coverage of src/ from the C and Lua suites.
# `make coverage` calls it.
#
# Configures build-cov/ with -DFL_COVERAGE=ON (gcov instrumentation, -O0),
# runs the cmocka and busted suites through scripts/run-tests.sh (busted
# drives the instrumented binary and core.so, so both count), then prints
# gcovr's text report and summary and writes an HTML report to
# build-cov/coverage/index.html. Exits non-zero if a test failed, after
# writing the report anyway.
#
# Lua coverage of lua/stdlib would need luacov, which Debian 12 does not
# package; docs/TESTING.md says so.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

BUILD=build-cov
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

scripts/run-tests.sh "$BUILD" c lua
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
echo "Lua coverage of lua/stdlib: not measured (luacov is not packaged in Debian 12)"
exit "$TEST_RC"
