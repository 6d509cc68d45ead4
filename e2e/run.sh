#!/usr/bin/env bash
# e2e/run.sh quick|full [--only REGEX] [--jobs N] [--list]
#
# The end-to-end suite: real registries on loopback (e2e/harness), the real
# binary ($FREIGHTLINER_BIN, default bin/freightliner), skopeo as the
# independent judge. Scenarios live in e2e/scenarios/, the framework in
# e2e/lib/. Writes e2e/reports/results.json and per-scenario logs in
# e2e/reports/logs/, and ends with the line `e2e: N passed, M failed`;
# exits non-zero on any failure. Everything runs under one temp root that is
# removed at the end (E2E_KEEP=1 keeps it); no process of ours may survive.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT_DIR=$PWD
SUITE=${1:-quick}
shift || true
case "$SUITE" in
  quick | full | soak | fault-rate | serve-bench) ;;
  *) echo "usage: e2e/run.sh quick|full|soak|fault-rate|serve-bench [--only REGEX] [--jobs N] [--list]" >&2; exit 2 ;;
esac
PY=${PYTHON:-python3}
export FREIGHTLINER_BIN=${FREIGHTLINER_BIN:-$ROOT_DIR/bin/freightliner}

for tool in docker-registry skopeo openssl htpasswd pgrep "$PY"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "e2e: $tool is missing (scripts/setup.sh installs it)"
    echo "e2e: 0 passed, 1 failed"
    exit 1
  fi
done

E2E_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/fl-e2e-XXXXXX")
export E2E_ROOT

# Last resort if the runner itself dies: nothing under our root survives.
last_resort() {
  local pids
  pids=$(pgrep -f -- "$E2E_ROOT/" || true)
  if [ -n "$pids" ]; then
    echo "e2e: killing leftover processes: $pids" >&2
    kill -9 $pids 2>/dev/null || true
  fi
  [ "${E2E_KEEP:-}" = 1 ] || rm -rf "$E2E_ROOT"
}
trap last_resort EXIT
RUNNER=""
forward() { # the runner stops its scenarios and writes its report, then we go
  trap - INT TERM
  [ -n "$RUNNER" ] && kill -TERM "$RUNNER" 2>/dev/null && wait "$RUNNER"
  exit "$1"
}
trap 'forward 130' INT
trap 'forward 143' TERM

rm -f e2e/reports/results.json
"$PY" e2e/lib/runner.py "$SUITE" "$@" &
RUNNER=$!
wait "$RUNNER"
rc=$?
if [ $rc -ne 0 ] && ! grep -qs '"suite"' e2e/reports/results.json; then
  echo "e2e: the runner failed (exit $rc)"
  echo "e2e: 0 passed, 1 failed"
fi
exit $rc
