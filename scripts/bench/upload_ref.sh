#!/usr/bin/env bash
# upload_ref.sh - the benchmark's "registry ingest limit": upload blob files
# from disk to a registry with curl, 8 at a time, nothing else.
#
#   scripts/bench/upload_ref.sh BASE_URL JOBS_FILE [MODE]
#
# JOBS_FILE has one line "REPOSITORY HEX PATH" per blob (benchlib.py blobs).
# Each blob is uploaded the plain two-step way, POST /v2/REPO/blobs/uploads/
# then PUT LOCATION?digest=sha256:HEX with the file as the body.
#
# MODE "batch" (the default, the reference the bench uses): one curl process
# opens every upload session (POSTs, 8 in parallel), a second one sends every
# file (PUTs, --parallel-max 8), both on kept-alive connections. Two curl
# processes in all, so the figure is the registry's, not curl's start-up.
# MODE "xargs": `xargs -P8`, two curl processes per blob (POST, then PUT);
# on a small machine the ~10 ms of CPU each curl start costs shows up.
set -euo pipefail
base=${1:?usage: upload_ref.sh BASE_URL JOBS_FILE [batch|xargs]}
jobs=${2:?usage: upload_ref.sh BASE_URL JOBS_FILE [batch|xargs]}
mode=${3:-batch}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fl-upload-ref-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if [ "$mode" = xargs ]; then
  # shellcheck disable=SC2317  # run by xargs through bash -c
  one() { # BASE REPO HEX FILE
    local loc sep
    loc=$(curl -sS -f -X POST -o /dev/null -D - "$1/v2/$2/blobs/uploads/" |
          tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
    case "$loc" in http*) ;; *) loc="$1$loc" ;; esac
    case "$loc" in *\?*) sep='&' ;; *) sep='?' ;; esac
    curl -sS -f -o /dev/null -H 'Expect:' -H 'Content-Type: application/octet-stream' \
      -T "$4" "$loc${sep}digest=sha256:$3"
  }
  export -f one
  # shellcheck disable=SC2016  # expanded by the inner bash
  xargs -P8 -n3 bash -c 'one "$0" "$@"' "$base" < "$jobs"
  exit 0
fi

# 1. open the upload sessions: one POST per blob, URL order kept in a config
: > "$tmp/post.cfg"
while read -r repo _; do
  printf 'url = "%s/v2/%s/blobs/uploads/"\nrequest = "POST"\noutput = "/dev/null"\n' \
    "$base" "$repo" >> "$tmp/post.cfg"
done < "$jobs"
curl -sS -f --no-progress-meter --parallel --parallel-max 8 \
  -w '%{url}\t%header{location}\n' -K "$tmp/post.cfg" > "$tmp/locations"

# 2. one PUT per blob to a session of its repository
python3 - "$jobs" "$tmp/locations" "$base" > "$tmp/put.cfg" <<'PY'
import sys, collections
jobs = [l.split() for l in open(sys.argv[1]) if l.strip()]
base = sys.argv[3]
free = collections.defaultdict(list)
for line in open(sys.argv[2]):
    url, loc = line.rstrip("\n").split("\t")
    free[url].append(loc.strip())
for repo, hexd, path in jobs:
    loc = free[base + "/v2/" + repo + "/blobs/uploads/"].pop()
    if not loc.startswith("http"):
        loc = base + loc
    loc += ("&" if "?" in loc else "?") + "digest=sha256:" + hexd
    print('upload-file = "%s"\nurl = "%s"\noutput = "/dev/null"' % (path, loc))
PY
curl -sS -f --no-progress-meter --parallel --parallel-max 8 -H 'Expect:' \
  -H 'Content-Type: application/octet-stream' -K "$tmp/put.cfg"
