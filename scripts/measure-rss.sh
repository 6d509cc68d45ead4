#!/usr/bin/env bash
# measure-rss.sh [BIN] - the peak RSS of real replications, which the
# Kubernetes manifests' memory requests and limits are set from
# (deploy/kubernetes, README "Deploy"). Seeds a loopback registry with the
# harness's fleet (16 repositories x 4 tags, 1 MiB layers) and one image
# with a 256 MiB layer, then replicates everything with 4, 8 and 16
# workers and a sync file, and prints each run's peak RSS (getrusage of a
# small parent, so no other process's high-water mark is counted).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-bin/freightliner}")
WORK=$(mktemp -d /tmp/freightliner-rss-XXXXXX)
. scripts/lib/loopback.sh
trap 'stop_registries; rm -rf "$WORK"' EXIT
SRC=$(start_registry src)
DST=$(start_registry dst)
python3 e2e/harness/seed.py --registry "http://$SRC" --spec fleet >/dev/null
python3 e2e/harness/seed.py --registry "http://$SRC" --spec big >/dev/null
peak() { # command... -> its output's last line and the peak RSS
  python3 -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
print("%-60s peak RSS %.1f MiB (exit %d)" % (r.stdout.strip().splitlines()[-1][:60],
      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, r.returncode))' "$@"
}
for n in 4 8 16; do
  printf 'replicate, %2d workers: ' "$n"
  peak "$BIN" replicate --source "$SRC" --destination "$DST" --repository-pattern '*' \
    --dest-prefix "p$n" --parallel-workers "$n" --no-progress
done
printf 'version: 1\nregistries:\n  s: { host: %s }\n  d: { host: %s }\nsync:\n  - source: { registry: s, repository_pattern: "*" }\n    destination: { registry: d, prefix: sync }\n' \
  "$SRC" "$DST" >"$WORK/sync.yaml"
printf 'sync, 8 workers:          '
peak "$BIN" sync --config "$WORK/sync.yaml" --no-progress
printf 'sync again (up to date):  '
peak "$BIN" sync --config "$WORK/sync.yaml" --no-progress
