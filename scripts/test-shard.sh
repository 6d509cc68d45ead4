#!/usr/bin/env bash
# test-shard.sh [BUILD] - sharded replication against real loopback
# registries: three shards (replicate, sync, replicate-tree; --shard,
# FREIGHTLINER_SHARD, --shard-count + JOB_COMPLETION_INDEX) run at once;
# the union of what they copied is everything, the intersection nothing,
# and each checkpoint and metrics file covers only its shard
# (tests/deploy/shard_test.py). `make test-shard`; CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
FREIGHTLINER_BIN=${FREIGHTLINER_BIN:-$PWD/$BUILD/bin/freightliner} exec python3 tests/deploy/shard_test.py
