#!/usr/bin/env bash
# image.sh build [BUILD]   the container image, without a daemon (make image)
# image.sh test [BUILD]    build it, push it with Freightliner, inspect it,
#                          run it to replicate between loopback registries
#                          (make image-test)
#
# The base is made here, not pulled: a minimal tree holding the stripped
# binary, exactly the shared libraries it and lua-cjson link (ldd, with the
# dynamic loader), lua-cjson at the path Debian's Lua 5.4 searches, the CA
# bundle, /etc/passwd and /etc/group with the non-root user freightliner
# (65532), nsswitch.conf, and an empty /tmp. buildah (Debian) puts it in
# one layer FROM scratch with vfs storage and chroot isolation, in a
# private storage directory under BUILD/image (nothing shared with other
# users of buildah on the machine), sets the entrypoint `freightliner`,
# user 65532 and the OCI labels (version, revision, source, created, ...),
# and writes an OCI layout: BUILD/image/oci, tag VERSION. The layer's
# timestamps are the last commit's, so a rebuild of the same commit gives
# the same image.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:-build}
BUILD=${2:-build}
BIN=$ROOT/$BUILD/bin/freightliner
OUT=$ROOT/$BUILD/image
VERSION=$("$BIN" --version | sed -n '1s/^freightliner //p')
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$REVISION" != unknown ] && ! git diff --quiet HEAD 2>/dev/null; then REVISION=$REVISION-dirty; fi
EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
SOURCE=https://github.com/freightliner/freightliner
UID_=65532
CJSON=/usr/lib/x86_64-linux-gnu/lua/5.4/cjson.so
export BUILDAH_ISOLATION=chroot
BUILDAH=(buildah --root "$OUT/storage" --runroot "$OUT/run" --storage-driver vfs)

die() { echo "image.sh: $*" >&2; exit 1; }

make_tree() { # DIR: the image's root file system
  local t=$1 f lib
  rm -rf "$t"
  mkdir -p "$t"/{usr/local/bin,etc/ssl/certs,tmp,home/freightliner,work}
  chmod 1777 "$t/tmp"
  install -m 0755 -s "$BIN" "$t/usr/local/bin/freightliner"
  [ -e "$CJSON" ] || die "lua-cjson is not installed ($CJSON); scripts/setup.sh installs it"
  mkdir -p "$t$(dirname "$CJSON")"
  cp -L "$CJSON" "$t$CJSON"
  # The libraries as the loader resolves them, each at its resolved path
  # (the soname), plus the loader itself.
  for f in "$BIN" "$CJSON"; do
    ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'
  done | sort -u | while read -r lib; do
    mkdir -p "$t$(dirname "$lib")"
    cp -L "$lib" "$t$lib"
    strip --strip-unneeded "$t$lib" 2>/dev/null || true
  done
  cp -L /etc/ssl/certs/ca-certificates.crt "$t/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nfreightliner:x:%d:%d:Freightliner:/home/freightliner:/sbin/nologin\n' \
    "$UID_" "$UID_" >"$t/etc/passwd"
  printf 'root:x:0:\nfreightliner:x:%d:\n' "$UID_" >"$t/etc/group"
  printf 'hosts: files dns\n' >"$t/etc/nsswitch.conf"
  chown "$UID_:$UID_" "$t/home/freightliner" "$t/work"
  # Reproducible: every file dated at the commit.
  find "$t" -exec touch -h -d "@$EPOCH" {} +
}

build() {
  command -v buildah >/dev/null || die "buildah is not installed (apt-get install buildah)"
  [ -x "$BIN" ] || die "no $BIN: make build first"
  mkdir -p "$OUT"
  make_tree "$OUT/rootfs"
  # The tree as one tar, owners and order fixed.
  tar --sort=name --numeric-owner --mtime="@$EPOCH" -C "$OUT/rootfs" -cf "$OUT/rootfs.tar" .
  local ctr
  ctr=$("${BUILDAH[@]}" from scratch)
  # shellcheck disable=SC2064
  trap "${BUILDAH[*]} rm $ctr >/dev/null 2>&1 || true" RETURN
  "${BUILDAH[@]}" add "$ctr" "$OUT/rootfs.tar" / >/dev/null
  "${BUILDAH[@]}" config \
    --entrypoint '["/usr/local/bin/freightliner"]' --cmd '["--help"]' \
    --user "$UID_:$UID_" --workingdir /work \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --os linux --arch amd64 \
    --label org.opencontainers.image.title=freightliner \
    --label "org.opencontainers.image.description=Container image replicator: C core, Lua 5.4 policies" \
    --label "org.opencontainers.image.version=$VERSION" \
    --label "org.opencontainers.image.revision=$REVISION" \
    --label "org.opencontainers.image.source=$SOURCE" \
    --label "org.opencontainers.image.url=$SOURCE" \
    --label org.opencontainers.image.licenses=Apache-2.0 \
    --label "org.opencontainers.image.created=$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)" \
    "$ctr"
  rm -rf "$OUT/oci"
  "${BUILDAH[@]}" commit --quiet --format oci --timestamp "$EPOCH" --disable-compression=false --rm "$ctr" \
    "oci:$OUT/oci:$VERSION" >/dev/null
  trap - RETURN
  rm -f "$OUT/rootfs.tar"
  echo "image: $OUT/oci:$VERSION (OCI layout), revision $REVISION"
}

# The compressed size: the config and layers the manifest names.
compressed_size() { # REF (skopeo transport) -> bytes
  skopeo inspect --raw --tls-verify=false "$1" |
    python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["config"]["size"] + sum(l["size"] for l in m["layers"]))'
}

image_test() {
  build
  WORK=$(mktemp -d /tmp/freightliner-image-XXXXXX)
  # shellcheck source=lib/loopback.sh
  . scripts/lib/loopback.sh
  trap 'stop_registries; rm -rf "$WORK"' EXIT
  local reg src dst ref
  reg=$(start_registry images)
  ref=$reg/freightliner/freightliner:$VERSION

  echo "== push with Freightliner: oci:$OUT/oci:$VERSION -> $ref"
  "$BIN" replicate --no-progress "oci:$OUT/oci:$VERSION" "$ref"

  echo "== skopeo inspect docker://$ref"
  skopeo inspect --tls-verify=false "docker://$ref" >"$WORK/inspect.json"
  skopeo inspect --tls-verify=false --config "docker://$ref" >"$WORK/config.json"
  python3 - "$WORK/inspect.json" "$WORK/config.json" "$VERSION" "$REVISION" "$SOURCE" <<'PY'
import json, sys
inspect, config = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
version, revision, source = sys.argv[3:6]
labels = inspect["Labels"] or {}
cfg = config["config"]
want = {"org.opencontainers.image.version": version, "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.source": source}
bad = ["label %s = %r, want %r" % (k, labels.get(k), v) for k, v in want.items() if labels.get(k) != v]
if cfg.get("Entrypoint") != ["/usr/local/bin/freightliner"]:
    bad.append("entrypoint %r" % cfg.get("Entrypoint"))
if cfg.get("User") != "65532:65532":
    bad.append("user %r (must be non-root 65532)" % cfg.get("User"))
if inspect["Os"] != "linux" or inspect["Architecture"] != "amd64":
    bad.append("platform %s/%s" % (inspect["Os"], inspect["Architecture"]))
if len(inspect["Layers"]) != 1:
    bad.append("%d layers, want 1" % len(inspect["Layers"]))
for b in bad:
    print("FAIL: " + b, file=sys.stderr)
print("   labels, entrypoint, user %s, %s/%s: %s" % (cfg.get("User"), inspect["Os"], inspect["Architecture"],
      "ok" if not bad else "FAILED"))
sys.exit(1 if bad else 0)
PY
  local size
  size=$(compressed_size "docker://$ref")
  echo "   compressed size $size bytes ($(awk -v s="$size" 'BEGIN{printf "%.1f MiB", s/1048576}'))"
  [ "$size" -lt $((40 * 1024 * 1024)) ] || die "the image is $size bytes compressed, over 40 MiB"

  echo "== run the pushed image: pull with skopeo, unpack with umoci, chroot as $UID_"
  skopeo copy --quiet --src-tls-verify=false "docker://$ref" "oci:$WORK/pulled:$VERSION"
  umoci unpack --image "$WORK/pulled:$VERSION" "$WORK/bundle" >/dev/null
  local rootfs=$WORK/bundle/rootfs
  [ "$(stat -c %u "$rootfs/work")" = "$UID_" ] || die "/work in the image is not owned by $UID_"
  src=$(start_registry src)
  dst=$(start_registry dst)
  seed_small "$src"
  # The entrypoint, as the user and working directory of the image config.
  [ ! -e "$rootfs/bin/sh" ] && [ ! -e "$rootfs/usr/bin/sh" ] || die "the image has a shell; it should hold only the binary and its libraries"
  chroot --userspec="$UID_:$UID_" "$rootfs" /usr/local/bin/freightliner --version | head -1
  chroot --userspec="$UID_:$UID_" "$rootfs" /usr/local/bin/freightliner replicate --no-progress \
    --source "$src" --destination "$dst" --repository-pattern 'project-b/*' --dest-prefix fromimage \
    --checkpoint-file /work/run.ckpt --metrics-file /work/metrics.json
  [ -s "$rootfs/work/metrics.json" ] || die "the run in the image wrote no metrics"
  local n=0 repo tag want got
  for repo in project-b/tool project-b/dmulti; do
    for tag in $(skopeo list-tags --tls-verify=false "docker://$src/$repo" |
      python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["Tags"]))'); do
      want=$(skopeo_digest "$src/$repo:$tag")
      got=$(skopeo_digest "$dst/fromimage/$repo:$tag" 2>/dev/null || echo missing)
      [ "$got" = "$want" ] || die "$dst/fromimage/$repo:$tag is $got, want $want"
      n=$((n + 1))
    done
  done
  echo "image-test: ok (pushed by Freightliner, inspected, ran as $UID_ from the pulled image: $n images copied and checked; $size bytes compressed)"
}

case "$MODE" in
  build) build ;;
  test) image_test ;;
  *) die "usage: image.sh build|test [BUILD]" ;;
esac
