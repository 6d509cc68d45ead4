#!/usr/bin/env bash
# token_race.sh [MODE] [RUNS] [PARALLEL]: reproduces the Bearer-token race
# (intermittent "answered HTTP 401" on blob uploads when several copies into
# one token-auth registry start at once). Each run: a fresh `token` (or
# token-tls) registry, two images copied concurrently with fl.parallel.
# PARALLEL copies of the loop run side by side to load the CPU, which is
# when it shows (about 1 run in 10 on 2 cores). Exit 1 if any run failed.
set -u
MODE=${1:-token}; RUNS=${2:-12}; PARALLEL=${3:-3}
cd "$(dirname "$0")/../.." || exit 2
H=$PWD/e2e/harness
BIN=${FREIGHTLINER_BIN:-$PWD/bin/freightliner}
D=$(mktemp -d /tmp/fl-token-race-XXXXXX)
trap 'for i in "$D"/*/info.json; do [ -e "$i" ] && python3 "$H/registry.py" stop --dir "$(dirname "$i")"; done; rm -rf "$D"' EXIT
python3 "$H/registry.py" start --mode plain --dir "$D/src" >/dev/null || exit 2
SRC=$(python3 -c "import json;print(json.load(open('$D/src/info.json'))['host'])")
python3 "$H/seed.py" --registry "http://$SRC" --spec small >/dev/null || exit 2
cat >"$D/copy.lua" <<'LUA'
local src, dst, ca = arg[1], arg[2], arg[3]
fl.registry_options(dst, { username = "fluser", password_env = "PW", ca_file = ca ~= "" and ca or nil })
local bad = 0
fl.parallel({ "project-a/app:v1.0", "project-a/multi:v1" }, function(img)
  local r, msg, code = fl.copy(src .. "/" .. img, dst .. "/" .. img)
  if not r then bad = bad + 1; print("FAILED", img, code, msg) end
end, { concurrency = 4 })
return bad > 0 and 1 or 0
LUA
loop() { # $1: loop id
  local fails=0 i dir
  for i in $(seq "$RUNS"); do
    dir="$D/dst-$1-$i"
    python3 "$H/registry.py" start --mode "$MODE" --dir "$dir" >/dev/null || continue
    eval "$(python3 -c "import json;i=json.load(open('$dir/info.json'));print('DST=%s PW=%s CA=%s' % (i['host'], i['password'], i['ca'] or ''))")"
    if ! PW=$PW "$BIN" run "$D/copy.lua" "$SRC" "$DST" "$CA"; then
      fails=$((fails + 1))
      echo "loop $1 run $i failed; token requests:"; grep -o 'GET /token?[^ ]*' "$dir/token.log"
    fi
    python3 "$H/registry.py" stop --dir "$dir"
  done
  echo "loop $1: $fails of $RUNS runs failed"
  [ "$fails" -eq 0 ]
}
rc=0
for l in $(seq "$PARALLEL"); do loop "$l" & done
for l in $(seq "$PARALLEL"); do wait -n || rc=1; done
exit $rc
