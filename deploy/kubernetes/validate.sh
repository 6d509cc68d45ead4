#!/usr/bin/env bash
# validate.sh - check deploy/kubernetes/*.yaml (make test-kubernetes; CI):
#   1. npm ci of test/package.json (kubernetes-models, yaml; exact versions
#      in test/package-lock.json) into test/node_modules (git-ignored);
#   2. test/validate.mjs --self-test: YAML parse, Kubernetes OpenAPI
#      schemas, the deploy rules, and mutations the checks must reject;
#   3. the ConfigMap's sync file through `freightliner validate-config`;
#   4. test/run_manifests.py: the CronJob's and the Indexed Job's container
#      args run with the real binary against loopback registries, with the
#      Secret and ConfigMap wired as the manifests wire them.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
BIN=${FREIGHTLINER_BIN:-$ROOT/bin/freightliner}
command -v node >/dev/null && command -v npm >/dev/null ||
  { echo "validate.sh: node and npm are needed (scripts/setup.sh installs them)" >&2; exit 1; }

echo "== npm ci (kubernetes-models, yaml)"
LOCK_SUM=$(sha256sum test/package-lock.json | cut -d' ' -f1)
if [ "$(cat test/node_modules/.freightliner-lock 2>/dev/null)" != "$LOCK_SUM" ]; then
  (cd test && npm ci --no-audit --no-fund --loglevel=error)
  echo "$LOCK_SUM" >test/node_modules/.freightliner-lock
fi
echo "== schemas and rules"
node test/validate.mjs --self-test ./*.yaml

echo "== the sync file of the ConfigMap"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
node -e '
  const { parseAllDocuments } = require(process.argv[1] + "/node_modules/yaml");
  const fs = require("fs");
  const cm = parseAllDocuments(fs.readFileSync("configmap.yaml", "utf8"))[0].toJS();
  process.stdout.write(cm.data["sync.yaml"]);' "$PWD/test" >"$TMP/sync.yaml"
"$BIN" validate-config "$TMP/sync.yaml"

echo "== the pods' commands, run against loopback registries"
FREIGHTLINER_BIN=$BIN python3 test/run_manifests.py
echo "test-kubernetes: ok"
