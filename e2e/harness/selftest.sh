#!/usr/bin/env bash
# selftest.sh - prove the e2e harness works end to end, with outside tools.
#
# For every registry mode (plain, htpasswd, tls, mtls, token, token-tls):
# start a registry in a temp dir (registry.py), seed the `small` preset
# (seed.py), then check with curl (catalog, manifests by tag: digest, media
# type and sha256 of the bytes; a config blob; refusals without credentials
# or client certificate) and with skopeo (inspect, inspect --raw, copy to an
# OCI layout incl. a whole index with --all, wrong credentials refused), and
# stop it. Then: token expiry (ttl 3 s -> the registry answers 401), the
# OAuth2 POST /token password and refresh_token grants, fleet and big (a
# streamed, chunked upload) on a small scale, re-seeding (all blobs skipped,
# same digests), and the Python module API (context manager).
#
# The checks run in parallel, each stopping at its first failure; the script
# exits non-zero if any failed. Temp dirs and every process started here are
# removed on exit (trap). Usage: e2e/harness/selftest.sh [MODE...] (modes
# given: only those, without the extra checks).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# The interpreter itself, not a version-manager shim: it is run many times.
PY=${PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
WORK=$(mktemp -d /tmp/fl-harness-selftest-XXXXXX)
BG=()
T0=$SECONDS

# On exit: end the background checks started below (by pid), stop every
# registry under $WORK (each dir with an info.json), remove $WORK.
cleanup() {
  local rc=$? p d
  for p in "${BG[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${BG[@]}"; do wait "$p" 2>/dev/null || true; done
  # One interpreter stops them all (registry.stop is idempotent).
  "$PY" - "$HERE" "$WORK"/*/ <<'EOF' >/dev/null 2>&1 || true
import sys
sys.path.insert(0, sys.argv[1])
import registry
for d in sys.argv[2:]:
    registry.stop(d)
EOF
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# jget FILE KEY...: a value from a JSON file ("" for null); keys may be indexes.
jget() {
  "$PY" - "$@" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    v = v[int(k)] if isinstance(v, list) else v[k]
print("" if v is None else (json.dumps(v) if isinstance(v, (dict, list)) else v))
EOF
}

# info_vars FILE: shell assignments (url host ca cert key certdir user pass
# tokurl pid tpid) from a registry.py info.json, for eval.
info_vars() {
  "$PY" - "$1" <<'EOF'
import json, shlex, sys
i = json.load(open(sys.argv[1]))
names = {"url": "url", "host": "host", "ca": "ca", "cert": "client_cert", "key": "client_key",
         "certdir": "cert_dir", "user": "username", "pass": "password", "tokurl": "token_url",
         "pid": "pid", "tpid": "token_pid"}
for var, k in names.items():
    print("%s=%s" % (var, shlex.quote("" if i.get(k) is None else str(i[k]))))
EOF
}

# start_registry MODE NAME [ARGS...]: start, remember for cleanup; echo its dir.
start_registry() {
  local mode=$1 name=$2 dir="$WORK/$2"
  shift 2
  "$PY" "$HERE/registry.py" start --mode "$mode" --dir "$dir" "$@" >"$WORK/$name.start.json" \
    || fail "$mode: registry.py start failed"
  "$PY" -c 'import json,sys; a,b=(json.load(open(p)) for p in sys.argv[1:]); sys.exit(a!=b)' \
      "$WORK/$name.start.json" "$dir/info.json" || fail "$mode: stdout JSON != info.json"
}

# A mode's check run. Globals set per mode: INFO, CURL (array), SKOPEO_FLAGS
# (array: TLS + creds for inspect), SEED_FLAGS (array).
check_mode() {
  local mode=$1 t=$SECONDS
  local dir="$WORK/$mode"
  start_registry "$mode" "$mode"
  INFO="$dir/info.json"
  local url host ca cert key certdir user pass tokurl pid tpid
  eval "$(info_vars "$INFO")"
  [ "$host" = "${url#*://}" ] || fail "$mode: host/url disagree"
  kill -0 "$pid" || fail "$mode: registry pid $pid not running"

  # --- seed
  SEED_FLAGS=(--registry "$url")
  [ -n "$ca" ] && SEED_FLAGS+=(--ca "$ca")
  [ -n "$cert" ] && SEED_FLAGS+=(--cert "$cert" --key "$key")
  [ -n "$user" ] && SEED_FLAGS+=(--user "$user" --password "$pass")
  "$PY" "$HERE/seed.py" "${SEED_FLAGS[@]}" --spec small --out "$dir/seed.json" >"$dir/seed.stdout" \
    || fail "$mode: seeding small failed"
  cmp -s <(tr -d '\n' <"$dir/seed.stdout") <(tr -d '\n' <"$dir/seed.json") \
    || fail "$mode: seed stdout != --out file"
  local n
  n=$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["images"]))' "$dir/seed.json")
  [ "$n" = 15 ] || fail "$mode: expected 15 images in the summary, got $n"

  # --- curl
  CURL=(curl -sS --max-time 20)
  [ -n "$ca" ] && CURL+=(--cacert "$ca")
  local -a AUTH=() NOCERT=("${CURL[@]}")
  [ -n "$cert" ] && CURL+=(--cert "$cert" --key "$key")
  case $mode in
    htpasswd) AUTH=(-u "$user:$pass") ;;
    token*)
      # One token for the catalog and pull on every seeded repository.
      local q="service=freightliner-test&scope=registry:catalog:*" r tok
      for r in $("$PY" -c 'import json,sys; print(" ".join(sorted({i["repo"] for i in json.load(open(sys.argv[1]))["images"]})))' "$dir/seed.json"); do
        q+="&scope=repository:$r:pull"
      done
      tok=$("${CURL[@]}" -u "$user:$pass" "$tokurl?$q" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["token"])') \
        || fail "$mode: no token from $tokurl"
      AUTH=(-H "Authorization: Bearer $tok")
      # An anonymous token carries no access: the registry refuses it.
      local anon code
      anon=$("${CURL[@]}" "$tokurl?service=freightliner-test&scope=repository:project-a/app:pull" \
        | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["token"])')
      code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $anon" \
        "$url/v2/project-a/app/manifests/v1.0")
      [ "$code" = 401 ] || fail "$mode: anonymous token got $code, want 401"
      code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -u "$user:wrong" "$tokurl?service=freightliner-test")
      [ "$code" = 401 ] || fail "$mode: wrong password at the token service got $code, want 401"
      ;;
  esac
  if [ -n "$user" ]; then
    local code
    code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$url/v2/project-a/app/manifests/v1.0")
    [ "$code" = 401 ] || fail "$mode: no credentials got $code, want 401"
  fi
  if [ "$mode" = mtls ]; then
    if "${NOCERT[@]}" -o /dev/null "$url/v2/" 2>/dev/null; then
      fail "mtls: a request without a client certificate succeeded"
    fi
  fi
  "${CURL[@]}" "${AUTH[@]}" "$url/v2/_catalog" >"$dir/catalog.json" || fail "$mode: catalog"
  "$PY" - "$dir/catalog.json" <<'EOF' || fail "$mode: catalog lacks seeded repositories"
import json, sys
repos = set(json.load(open(sys.argv[1]))["repositories"])
want = {"project-a/app", "project-a/web", "project-a/multi", "project-b/tool", "project-b/dmulti"}
sys.exit(0 if want <= repos else 1)
EOF
  local accept="application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json"
  accept+=",application/vnd.docker.distribution.manifest.v2+json"
  accept+=",application/vnd.docker.distribution.manifest.list.v2+json"
  local repo tag digest mt got_d got_mt sum
  while read -r repo tag digest mt; do
    "${CURL[@]}" "${AUTH[@]}" -H "Accept: $accept" -D "$dir/h" -o "$dir/m" -f \
      "$url/v2/$repo/manifests/$tag" || fail "$mode: GET manifest $repo:$tag"
    got_d=$(tr -d '\r' <"$dir/h" | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
    got_mt=$(tr -d '\r' <"$dir/h" | awk -F': ' 'tolower($1)=="content-type"{print $2}')
    sum="sha256:$(sha256sum <"$dir/m" | cut -d' ' -f1)"
    [ "$got_d" = "$digest" ] && [ "$sum" = "$digest" ] \
      || fail "$mode: $repo:$tag digest header=$got_d body=$sum, seeded $digest"
    [ "$got_mt" = "$mt" ] || fail "$mode: $repo:$tag media type $got_mt, seeded $mt"
  done < <("$PY" -c 'import json,sys
for i in json.load(open(sys.argv[1]))["images"]: print(i["repo"], i["tag"], i["digest"], i["media_type"])' "$dir/seed.json")
  local cfg
  cfg=$("${CURL[@]}" "${AUTH[@]}" -H "Accept: $accept" "$url/v2/project-a/app/manifests/v1.0" \
    | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["config"]["digest"])')
  sum="sha256:$("${CURL[@]}" "${AUTH[@]}" -L "$url/v2/project-a/app/blobs/$cfg" | sha256sum | cut -d' ' -f1)"
  [ "$sum" = "$cfg" ] || fail "$mode: config blob digest $sum != $cfg"

  # --- skopeo
  local -a SK=()
  if [ -n "$certdir" ]; then SK=(--cert-dir "$certdir" --tls-verify=true); else SK=(--tls-verify=false); fi
  local -a CREDS=()
  [ -n "$user" ] && CREDS=(--creds "$user:$pass")
  local want
  want=$("$PY" -c 'import json,sys
print(next(i["digest"] for i in json.load(open(sys.argv[1]))["images"] if i["repo"]=="project-a/app" and i["tag"]=="v1.0"))' "$dir/seed.json")
  skopeo inspect "${SK[@]}" "${CREDS[@]}" "docker://$host/project-a/app:v1.0" >"$dir/inspect.json" \
    || fail "$mode: skopeo inspect"
  [ "$(jget "$dir/inspect.json" Digest)" = "$want" ] || fail "$mode: skopeo digest differs"
  [ "$(jget "$dir/inspect.json" Labels org.opencontainers.image.version)" = v1.0 ] \
    || fail "$mode: skopeo sees no version label"
  want=$("$PY" -c 'import json,sys
print(next(i["digest"] for i in json.load(open(sys.argv[1]))["images"] if i["repo"]=="project-a/multi"))' "$dir/seed.json")
  sum="sha256:$(skopeo inspect --raw "${SK[@]}" "${CREDS[@]}" "docker://$host/project-a/multi:v1" | sha256sum | cut -d' ' -f1)"
  [ "$sum" = "$want" ] || fail "$mode: skopeo inspect --raw of the index: $sum != $want"
  local -a SRC=()
  if [ -n "$certdir" ]; then SRC=(--src-cert-dir "$certdir" --src-tls-verify=true); else SRC=(--src-tls-verify=false); fi
  [ -n "$user" ] && SRC+=(--src-creds "$user:$pass")
  skopeo --insecure-policy copy -q "${SRC[@]}" "docker://$host/project-a/app:v1.1" "oci:$dir/oci:app" \
    || fail "$mode: skopeo copy of an image"
  skopeo --insecure-policy copy -q --all "${SRC[@]}" "docker://$host/project-a/multi:v1" "oci:$dir/oci:multi" \
    || fail "$mode: skopeo copy --all of the index"
  skopeo --insecure-policy copy -q --all "${SRC[@]}" "docker://$host/project-b/dmulti:v1" "oci:$dir/oci:dmulti" \
    || fail "$mode: skopeo copy --all of the manifest list"
  sum="sha256:$(skopeo inspect --raw "oci:$dir/oci:multi" | sha256sum | cut -d' ' -f1)"
  [ "$sum" = "$want" ] || fail "$mode: the OCI layout's index digest $sum != $want"
  skopeo inspect "oci:$dir/oci:app" >/dev/null || fail "$mode: the copied image does not inspect"
  if [ -n "$user" ]; then
    if skopeo inspect "${SK[@]}" --creds "$user:wrong" "docker://$host/project-a/app:v1.0" >/dev/null 2>&1; then
      fail "$mode: skopeo with a wrong password succeeded"
    fi
  fi

  # --- stop (twice: idempotent) and check that the processes are gone
  "$PY" "$HERE/registry.py" stop --dir "$dir" || fail "$mode: stop"
  "$PY" "$HERE/registry.py" stop --dir "$dir" || fail "$mode: second stop"
  ! kill -0 "$pid" 2>/dev/null || fail "$mode: registry $pid still running after stop"
  [ -z "$tpid" ] || ! kill -0 "$tpid" 2>/dev/null || fail "$mode: token issuer $tpid still running"
  say "ok   $mode ($((SECONDS - t))s: seed small $(jget "$dir/seed.json" stats seconds)s)"
}

check_token_expiry() {
  local t=$SECONDS dir="$WORK/expiry"
  start_registry token expiry --token-ttl 3
  # Timing-sensitive part in one process (no process spawns between steps):
  # a fresh token works, the same token 4.5 s later (ttl 3) gets 401. And
  # the OAuth2 form grants: password (offline -> refresh_token),
  # refresh_token, unknown refresh token and wrong password refused.
  "$PY" - "$dir/info.json" <<'EOF' || fail "token expiry / OAuth2 grants"
import base64, json, sys, time, urllib.error, urllib.parse, urllib.request
info = json.load(open(sys.argv[1]))
basic = base64.b64encode(("%s:%s" % (info["username"], info["password"])).encode()).decode()
def call(url, headers=None, data=None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
def catalog(tok):
    return call(info["url"] + "/v2/_catalog", {"Authorization": "Bearer " + tok})[0]
st, body = call(info["token_url"] + "?service=freightliner-test&scope=registry:catalog:*",
                {"Authorization": "Basic " + basic})
d = json.loads(body)
issued = time.monotonic()
assert st == 200 and d["expires_in"] == 3, (st, d)
assert catalog(d["token"]) == 200, "fresh token refused"
form = lambda **kw: urllib.parse.urlencode(kw).encode()
st, body = call(info["token_url"], data=form(
    grant_type="password", service="freightliner-test", client_id="selftest",
    access_type="offline", scope="registry:catalog:*",
    username=info["username"], password=info["password"]))
g = json.loads(body)
assert st == 200 and g["access_token"] and g["refresh_token"], (st, g)
st, body = call(info["token_url"], data=form(
    grant_type="refresh_token", service="freightliner-test", client_id="selftest",
    scope="registry:catalog:*", refresh_token=g["refresh_token"]))
assert st == 200 and catalog(json.loads(body)["access_token"]) == 200, (st, body)
st, _ = call(info["token_url"], data=form(grant_type="refresh_token", refresh_token="nope"))
assert st == 401, st
st, _ = call(info["token_url"], data=form(grant_type="password", username="x", password="y"))
assert st == 401, st
time.sleep(max(0, issued + 4.5 - time.monotonic()))
assert catalog(d["token"]) == 401, "a token past its ttl was still accepted"
EOF
  # The seeder gets a new token when the registry refuses an old one.
  local url host ca cert key certdir user pass tokurl pid tpid
  eval "$(info_vars "$dir/info.json")"
  "$PY" "$HERE/seed.py" --registry "$url" --user "$user" --password "$pass" --spec small \
    --jobs 1 >/dev/null || fail "expiry: seeding with 3 s tokens"
  "$PY" "$HERE/registry.py" stop --dir "$dir"
  say "ok   token expiry + OAuth2 grants ($((SECONDS - t))s)"
}

check_fleet_big() {
  local t=$SECONDS dir="$WORK/bulk"
  start_registry plain bulk
  local url
  url=$(jget "$dir/info.json" url)
  "$PY" "$HERE/seed.py" --registry "$url" --spec fleet --repos 3 --tags 2 --layer-size 100000 \
    --out "$dir/fleet.json" >/dev/null || fail "fleet: seeding"
  [ "$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["images"]))' "$dir/fleet.json")" = 7 ] \
    || fail "fleet: expected 3x2 images + 1 index"
  # Same seed again: nothing uploaded, same digests.
  "$PY" "$HERE/seed.py" --registry "$url" --spec fleet --repos 3 --tags 2 --layer-size 100000 \
    --out "$dir/fleet2.json" >/dev/null || fail "fleet: re-seeding"
  "$PY" - "$dir/fleet.json" "$dir/fleet2.json" <<'EOF' || fail "fleet: re-seed was not a no-op"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert [i["digest"] for i in a["images"]] == [i["digest"] for i in b["images"]]
assert b["stats"]["blobs_uploaded"] == 0 and b["stats"]["bytes_uploaded"] == 0, b["stats"]
EOF
  # A streamed layer above the 32 MiB threshold: POST, 8 MiB PATCHes, PUT.
  "$PY" "$HERE/seed.py" --registry "$url" --spec big --big-size $((40 << 20)) \
    --out "$dir/big.json" >/dev/null || fail "big: seeding"
  "$PY" - "$dir/big.json" <<'EOF' || fail "big: unexpected stats"
import json, sys
s = json.load(open(sys.argv[1]))["stats"]
assert s["bytes_uploaded"] > 40 << 20 and s["requests"] >= 7, s
EOF
  skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$(jget "$dir/info.json" host)/big/layer:v1" \
    "oci:$dir/oci:big" || fail "big: skopeo copy"
  "$PY" "$HERE/registry.py" stop --dir "$dir"
  say "ok   fleet/big/re-seed ($((SECONDS - t))s)"
}

check_module_api() {
  local t=$SECONDS
  "$PY" - "$HERE" <<'EOF' || fail "module API"
import os, sys
sys.path.insert(0, sys.argv[1])
import registry, seed
with registry.Registry("htpasswd", user="alice", password="s3cret") as info:
    d, pid = info["dir"], info["pid"]
    assert info["username"] == "alice" and os.path.exists(os.path.join(d, "info.json"))
    s = seed.seed(info["url"], "small", seed=7, user="alice", password="s3cret")
    assert len(s["images"]) == 15, s
assert not os.path.exists(d), "temp dir left behind"
assert not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split(")")[1].split()[0] == "Z"
EOF
  say "ok   module API ($((SECONDS - t))s)"
}

# Each check runs in the background with its own log; they are independent
# (own registries, own dirs), so the whole run takes as long as the slowest.
NAMES=()
run_bg() {
  local name=$1
  shift
  ( "$@" ) >"$WORK/$name.log" 2>&1 &
  BG+=($!)
  NAMES+=("$name")
}
# The checks are independent (own registries, own dirs). They run in
# $SELFTEST_JOBS (default 3) background lanes, each lane one check after
# another, every check in its own subshell with its own log.
CHECKS=()
if [ $# -gt 0 ]; then
  for m in "$@"; do CHECKS+=("$m check_mode $m"); done
else
  for m in plain htpasswd tls mtls token token-tls; do CHECKS+=("$m check_mode $m"); done
  CHECKS+=("expiry check_token_expiry" "bulk check_fleet_big" "module check_module_api")
fi
lane() {
  local c
  for c in "$@"; do
    set -- $c
    ( "${@:2}" ) >"$WORK/$1.log" 2>&1 || echo "$1" >>"$WORK/failed"
  done
}
LANES=${SELFTEST_JOBS:-3}
for ((l = 0; l < LANES; l++)); do
  mine=()
  for ((i = l; i < ${#CHECKS[@]}; i += LANES)); do mine+=("${CHECKS[$i]}"); done
  [ ${#mine[@]} -gt 0 ] || continue
  lane "${mine[@]}" &
  BG+=($!)
done
for p in "${BG[@]}"; do wait "$p" || true; done
BG=()
for c in "${CHECKS[@]}"; do
  name=${c%% *}
  if grep -qx "$name" "$WORK/failed" 2>/dev/null; then say "---- $name failed:"; fi
  cat "$WORK/$name.log" 2>/dev/null || true
done
[ ! -s "$WORK/failed" ] || fail "failed: $(tr '\n' ' ' <"$WORK/failed")"
left=$(pgrep -af -- "$WORK" || true)
[ -z "$left" ] || fail "processes left running: $left"
say "selftest passed in $((SECONDS - T0))s"
