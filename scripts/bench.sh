#!/usr/bin/env bash
# bench.sh - Freightliner against skopeo, on real registries on loopback.
# `make bench` builds, then runs this. What it measures and the figures it
# gave are in docs/BENCHMARKS.md.
#
# 1. Starts a source registry (Debian's docker-registry, plain HTTP, in a
#    temp directory) and seeds it: `seed.py --spec fleet` (16 repositories x
#    4 tags x 3 layers of 1 MiB, a shared base layer, Docker and OCI media
#    types, one multi-arch index) and `seed.py --spec big` (one 256 MiB layer).
# 2. For each of BENCH_RUNS runs (the order of the tools alternates run to
#    run), on a fresh destination registry per tool:
#      freightliner      `freightliner replicate --repository-pattern '*'`
#      freightliner-lua  `freightliner run scripts/bench/copy_all.lua`
#                        (fl.parallel + fl.copy, 8 at a time)
#      skopeo            `skopeo sync --all --src yaml` (every repository)
#      upload-ref        curl uploading the unique blob files, 8 at a time
#                        (scripts/bench/upload_ref.sh): the registry's ingest
#                        limit
#    a cold copy, a check that every destination digest equals the source's
#    (the bench fails if not), then a no-op re-run (everything up to date).
#    Wall time, user+sys CPU and peak RSS come from /usr/bin/time; the CPU
#    the registries and every other process used meanwhile from /proc.
# 3. Prints medians, ratios against the goals, every run, and writes
#    build/bench/results.json.
# 4. Traces one more (untimed) copy and no-op: every HTTP request by
#    registry and kind (scripts/bench/requests.py), also in the JSON.
#
# Environment (defaults in brackets):
#   BENCH_RUNS [3]  BENCH_REPOS [16]  BENCH_TAGS [4]  BENCH_LAYER_SIZE [1048576]
#   BENCH_BIG_SIZE [268435456] (0: no big image)  BENCH_WORKERS [8]
#   BENCH_TOOLS ["freightliner freightliner-lua skopeo upload-ref"]
#   BENCH_UPLOAD_MODE [batch] (or xargs, see upload_ref.sh)
#   BENCH_OUT [build/bench/results.json]  BENCH_KEEP [0] (keep the temp dir)
#   BENCH_QUIET_WAIT [20] (seconds to wait for other processes to go idle)
#   BENCH_TRACE [1] (then one untimed cold copy + no-op with the debug log:
#   every request by registry and kind, scripts/bench/requests.py)
#   FREIGHTLINER_BIN [build/bin/freightliner]  TMPDIR [/tmp]
# Quick run: BENCH_RUNS=1 BENCH_REPOS=4 BENCH_BIG_SIZE=16777216 make bench
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${BENCH_RUNS:-3}
REPOS=${BENCH_REPOS:-16}
TAGS=${BENCH_TAGS:-4}
LAYER=${BENCH_LAYER_SIZE:-1048576}
BIG=${BENCH_BIG_SIZE:-268435456}
WORKERS=${BENCH_WORKERS:-8}
read -r -a TOOLS <<< "${BENCH_TOOLS:-freightliner freightliner-lua skopeo upload-ref}"
UPLOAD_MODE=${BENCH_UPLOAD_MODE:-batch}
OUT=${BENCH_OUT:-$ROOT/build/bench/results.json}
# build/, not bin/: bin/freightliner is a symlink that `make sanitize` and
# `make tsan` re-point at their instrumented builds
BIN=${FREIGHTLINER_BIN:-$ROOT/build/bin/freightliner}
LIB=$ROOT/scripts/bench/benchlib.py
REG=$ROOT/e2e/harness/registry.py
SEED=$ROOT/e2e/harness/seed.py
TICK=$(getconf CLK_TCK)

die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }

# ---- preflight ----------------------------------------------------------------
[ -x "$BIN" ] || die "$BIN is missing: run 'make build' (or 'make bench')"
if ldd "$BIN" 2>/dev/null | grep -Eq 'lib(asan|tsan|ubsan|msan)'; then
  die "$BIN is a sanitizer build; benchmark a release build (make build)"
fi
if [ ! -x /usr/bin/time ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    note "installing GNU time (/usr/bin/time)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
  else
    die "/usr/bin/time is missing: apt-get install time"
  fi
fi
for t in docker-registry skopeo curl python3 ldd; do
  command -v "$t" >/dev/null || die "$t is missing (scripts/setup.sh installs it)"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/freightliner-bench-XXXXXX")
STARTED=()   # registry directories to stop on exit

cleanup() {
  local d
  for d in "${STARTED[@]}"; do
    python3 "$REG" stop --dir "$d" 2>/dev/null || true
  done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then note "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

start_registry() { # DIR
  mkdir -p "$1"
  STARTED+=("$1")
  python3 "$REG" start --mode plain --dir "$1" > /dev/null
}

stop_registry() { # DIR: stop it and free its disk
  python3 "$REG" stop --dir "$1" 2>/dev/null || true
  rm -rf "$1"
}

proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# user nice system irq softirq of all CPUs (not idle, iowait or steal)
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }

# Other processes share this machine: before a measurement, wait (up to
# BENCH_QUIET_WAIT seconds) until less than a quarter of a CPU is busy.
wait_quiet() {
  local i b0 b1
  for ((i = 0; i < ${BENCH_QUIET_WAIT:-20}; i++)); do
    b0=$(busy_ticks); sleep 1; b1=$(busy_ticks)
    if [ $(((b1 - b0) * 4)) -lt "$TICK" ]; then return 0; fi
  done
  note "the machine stayed busy (other processes); measuring anyway"
  return 1
}

mkdir -p "$WORK/logs"
ROWS=$WORK/rows.jsonl
: > "$ROWS"
SEQ=0

# measure TOOL PHASE RUN DST_DIR CMD... : time CMD, append one JSON row
measure() {
  local tool=$1 phase=$2 run=$3 dstdir=$4
  shift 4
  local log="$WORK/logs/run$run-$tool-$phase.log" tf="$WORK/time.out"
  local dpid b0 s0 d0 t0 t1 b1 s1 d1 rc=0 load quiet=1
  dpid=$(field "$dstdir/info.json" pid)
  sync # the previous tool's dirty pages are not this tool's I/O
  wait_quiet || quiet=0
  load=$(cut -d' ' -f1 /proc/loadavg)
  b0=$(busy_ticks); s0=$(proc_ticks "$SRC_PID"); d0=$(proc_ticks "$dpid")
  t0=$EPOCHREALTIME
  /usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" > "$log" 2>&1 || rc=$?
  t1=$EPOCHREALTIME
  b1=$(busy_ticks); s1=$(proc_ticks "$SRC_PID"); d1=$(proc_ticks "$dpid")
  if [ "$rc" != 0 ]; then
    tail -20 "$log" >&2
    die "$tool ($phase, run $run) failed with status $rc; log above ($log)"
  fi
  SEQ=$((SEQ + 1))
  local u s m
  read -r _ u s m < <(tail -1 "$tf")
  python3 - "$tool" "$phase" "$run" "$SEQ" "$t0" "$t1" "$u" "$s" "$m" \
      "$((s1 - s0))" "$((d1 - d0))" "$((b1 - b0))" "$TICK" "$load" "$quiet" >> "$ROWS" <<'PY'
import json, sys
tool, phase, run, seq, t0, t1, u, s, m, sreg, dreg, busy, tick, load, quiet = sys.argv[1:]
tick = float(tick)
u, s = float(u), float(s)
src_cpu, dst_cpu = int(sreg) / tick, int(dreg) / tick
if tool == "upload-ref":
    src_cpu = 0.0  # the source registry is not involved
other = int(busy) / tick - u - s - src_cpu - dst_cpu
print(json.dumps({"tool": tool, "phase": phase, "run": int(run), "seq": int(seq),
                  "wall_s": round(float(t1) - float(t0), 3), "user_s": u, "sys_s": s,
                  "maxrss_kib": int(m), "src_cpu_s": round(src_cpu, 2),
                  "dst_cpu_s": round(dst_cpu, 2), "other_cpu_s": round(max(other, 0.0), 2),
                  "loadavg_before": float(load), "quiet_before": quiet == "1"}))
PY
  tail -1 "$ROWS" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("bench:   %-17s %-5s %7.2f s wall  %6.2f s CPU  %6.1f MiB  (registries: src %.2f s, dst %.2f s CPU; others %.2f s)" % (r["tool"], r["phase"], r["wall_s"], r["user_s"]+r["sys_s"], r["maxrss_kib"]/1024, r["src_cpu_s"], r["dst_cpu_s"], r["other_cpu_s"]))' >&2
}

# ---- 1. the source ---------------------------------------------------------------
note "work directory $WORK"
note "starting the source registry and seeding it (fleet: $REPOS x $TAGS x 3 x $LAYER B; big: $BIG B)"
start_registry "$WORK/src"
SRC=$(field "$WORK/src/info.json" host)
SRC_PID=$(field "$WORK/src/info.json" pid)
python3 "$SEED" --registry "http://$SRC" --spec fleet --repos "$REPOS" --tags "$TAGS" \
  --layer-size "$LAYER" --out "$WORK/fleet.json" > /dev/null
if [ "$BIG" -gt 0 ]; then
  python3 "$SEED" --registry "http://$SRC" --spec big --big-size "$BIG" \
    --out "$WORK/big.json" > /dev/null
fi
NTAGS=$(python3 - "$WORK"/fleet.json "$WORK"/big.json <<'PY'
import json, os, sys
print(sum(len(json.load(open(p))["images"]) for p in sys.argv[1:] if os.path.exists(p)))
PY
)
read -r NBLOBS BLOB_BYTES < <(python3 "$LIB" blobs --data "$WORK/src/data" --out "$WORK/blobs.txt")
python3 "$LIB" sync-yaml --registry "$SRC" --out "$WORK/sync.yaml"
note "source $SRC: $NTAGS tags, $NBLOBS unique blobs, $BLOB_BYTES bytes"

python3 - "$WORK/meta.json" <<PY
import json, os, platform, subprocess, sys, time
def out(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return None
mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "0")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
json.dump({
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "nproc": os.cpu_count(), "mem_total_mib": int(mem) // 1024, "cpu": cpu,
    "kernel": platform.release(),
    "freightliner": out("$BIN", "--version"), "freightliner_bin": os.path.realpath("$BIN"),
    "skopeo": out("skopeo", "--version"), "docker_registry": out("docker-registry", "--version"),
    "curl": (out("curl", "--version") or "").split("\n")[0],
    "commit": out("git", "-C", "$ROOT", "describe", "--always", "--dirty"),
    "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
    "config": {"runs": $RUNS, "repos": $REPOS, "tags": $TAGS, "layer_size": $LAYER,
               "big_size": $BIG, "workers": $WORKERS, "tools": "${TOOLS[*]}",
               "upload_mode": "$UPLOAD_MODE"},
    "source": {"tags": $NTAGS, "unique_blobs": $NBLOBS, "blob_bytes": $BLOB_BYTES},
}, open(sys.argv[1], "w"), indent=2)
PY

# ---- 2. the runs ----------------------------------------------------------------
check_noop() { # LOG PATTERN: a no-op must have copied nothing
  grep -Eq "$2" "$1" || { tail -5 "$1" >&2; die "the no-op re-run copied something: $1"; }
}

bench_tool() { # TOOL RUN
  local tool=$1 run=$2 d="$WORK/dst-$1-$2" dst
  start_registry "$d"
  dst=$(field "$d/info.json" host)
  case $tool in
    freightliner)
      local cmd=("$BIN" replicate --source "$SRC" --destination "$dst" --repository-pattern '*'
                 --parallel-workers "$WORKERS" --no-progress)
      measure "$tool" cold "$run" "$d" "${cmd[@]}"
      python3 "$LIB" verify --src "$SRC" --dst "$dst" >&2 || die "$tool: the copy is wrong"
      measure "$tool" noop "$run" "$d" "${cmd[@]}"
      check_noop "$WORK/logs/run$run-$tool-noop.log" "^0 images replicated, $NTAGS up to date, 0 failed"
      ;;
    freightliner-lua)
      local cmd=("$BIN" run "$ROOT/scripts/bench/copy_all.lua" "$SRC" "$dst" "$WORKERS")
      measure "$tool" cold "$run" "$d" "${cmd[@]}"
      python3 "$LIB" verify --src "$SRC" --dst "$dst" >&2 || die "$tool: the copy is wrong"
      measure "$tool" noop "$run" "$d" "${cmd[@]}"
      check_noop "$WORK/logs/run$run-$tool-noop.log" "^0 images copied, $NTAGS up to date"
      ;;
    skopeo)
      # --src yaml: every repository of the catalog, [] = all tags; the
      # destination is DST/<last path component> (skopeo sync's naming)
      local cmd=(skopeo sync --all --preserve-digests --src yaml --dest docker
                 --dest-tls-verify=false "$WORK/sync.yaml" "$dst")
      measure "$tool" cold "$run" "$d" "${cmd[@]}"
      python3 "$LIB" verify --src "$SRC" --dst "$dst" --map basename >&2 ||
        die "$tool: the copy is wrong"
      measure "$tool" noop "$run" "$d" "${cmd[@]}"
      ;;
    upload-ref)
      measure "$tool" cold "$run" "$d" "$ROOT/scripts/bench/upload_ref.sh" "http://$dst" \
        "$WORK/blobs.txt" "$UPLOAD_MODE"
      python3 "$LIB" verify-blobs --dst "$dst" --jobs "$WORK/blobs.txt" >&2 ||
        die "$tool: the upload is incomplete"
      ;;
    *) die "unknown tool $tool (BENCH_TOOLS)" ;;
  esac
  stop_registry "$d"
}

for run in $(seq 1 "$RUNS"); do
  order=("${TOOLS[@]}")
  if [ $((run % 2)) = 0 ]; then # alternate the order run to run
    order=()
    for ((i = ${#TOOLS[@]} - 1; i >= 0; i--)); do order+=("${TOOLS[i]}"); done
  fi
  note "run $run of $RUNS: ${order[*]} (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  for tool in "${order[@]}"; do bench_tool "$tool" "$run"; done
done

# ---- 3. the report ---------------------------------------------------------------
python3 "$LIB" report --data "$ROWS" --meta "$WORK/meta.json" --json "$OUT"

# ---- 4. where the requests go (not timed) -------------------------------------
# One more cold copy and no-op with the debug log, on a fresh destination:
# every request Freightliner made, by registry and kind.
if [ "${BENCH_TRACE:-1}" = 1 ]; then
  d="$WORK/dst-trace"
  start_registry "$d"
  dst=$(field "$d/info.json" host)
  for phase in cold noop; do
    FREIGHTLINER_LOG_LEVEL=debug "$BIN" replicate --source "$SRC" --destination "$dst" \
      --repository-pattern '*' --parallel-workers "$WORKERS" --no-progress \
      > "$WORK/logs/trace-$phase.log" 2>&1 || die "traced $phase copy failed"
    echo
    python3 "$ROOT/scripts/bench/requests.py" --log "$WORK/logs/trace-$phase.log" --src "$SRC" \
      --title "freightliner replicate, $phase (traced, not timed)" --json "$WORK/trace-$phase.json"
  done
  stop_registry "$d"
  python3 - "$OUT" "$WORK/trace-cold.json" "$WORK/trace-noop.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))
res["trace"] = {"cold": json.load(open(sys.argv[2])), "noop": json.load(open(sys.argv[3]))}
with open(sys.argv[1], "w") as f:
    json.dump(res, f, indent=2)
    f.write("\n")
PY
fi

# ---- 5. history --------------------------------------------------------------
# One line per run in bench/history.jsonl (commit, date, machine kind, medians,
# ratios); `make bench-compare` flags a ratio more than 10% worse than the
# last run of the same machine kind and size. BENCH_HISTORY=0 skips it.
if [ "${BENCH_HISTORY:-1}" = 1 ]; then
  python3 "$ROOT/scripts/bench/history.py" append "$OUT" \
    --history "${BENCH_HISTORY_FILE:-$ROOT/bench/history.jsonl}"
fi
