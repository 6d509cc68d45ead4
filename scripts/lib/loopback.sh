# loopback.sh - sourced by the deploy tests (scripts/test-*.sh, image.sh):
# real Distribution registries on 127.0.0.1 in a work directory, removed at
# exit. Needs $WORK set (a temp dir) before start_registry is called.
#
#   start_registry NAME [MODE]   start WORK/NAME (plain by default); prints host:port
#   seed_small HOST              push the harness's "small" preset
#   field FILE KEY               a key of a JSON file
#   stop_registries              (on EXIT) stop every registry started
LOOPBACK_STARTED=()

field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

start_registry() {
  local name=$1 mode=${2:-plain}
  python3 e2e/harness/registry.py start --mode "$mode" --dir "$WORK/$name" >/dev/null
  LOOPBACK_STARTED+=("$WORK/$name")
  field "$WORK/$name/info.json" host
}

seed_small() {
  python3 e2e/harness/seed.py --registry "http://$1" --spec small --out "$WORK/seed-$1.json" >/dev/null
}

stop_registries() {
  local d
  for d in "${LOOPBACK_STARTED[@]}"; do
    python3 e2e/harness/registry.py stop --dir "$d" >/dev/null 2>&1 || true
  done
}

# skopeo_digest REF: the manifest digest of a loopback image (plain HTTP).
skopeo_digest() {
  skopeo inspect --tls-verify=false --raw "docker://$1" | sha256sum | sed 's/^\([0-9a-f]*\).*/sha256:\1/'
}
