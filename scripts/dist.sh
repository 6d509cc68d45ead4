#!/usr/bin/env bash
# dist.sh dist OUTDIR VERSION   write OUTDIR/freightliner-VERSION.tar.gz
# dist.sh test TARBALL          extract it in a temp dir and build it there
#
# The tarball holds every file git tracks, as it is in the work tree, under
# freightliner-VERSION/, reproducibly (sorted, owner 0, mtime of the last
# commit, gzip without a timestamp). `make dist` and `make dist-test` call
# this. The test runs the README's build (`make build`, which installs what
# is missing first) in the extracted tree with no git repository around it,
# then the built binary, and `make demo` (a real replication).
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  dist)
    OUT=$2 VERSION=$3
    [ -n "$VERSION" ] || { echo "dist.sh: no version (include/freightliner.h)" >&2; exit 2; }
    # The rockspec must name the same version.
    if ! ls rockspec/freightliner-"$VERSION"-*.rockspec >/dev/null 2>&1; then
      echo "dist.sh: no rockspec/freightliner-$VERSION-*.rockspec for version $VERSION" >&2
      exit 2
    fi
    LUA_VERSION=$(sed -n 's/^  VERSION = "\(.*\)",$/\1/p' lua/stdlib/freightliner/init.lua)
    if [ "$LUA_VERSION" != "$VERSION" ]; then
      echo "dist.sh: lua/stdlib/freightliner/init.lua says VERSION = \"$LUA_VERSION\", the header $VERSION" >&2
      exit 2
    fi
    NAME=freightliner-$VERSION
    mkdir -p "$OUT"
    MTIME=$(git log -1 --format=%cI 2>/dev/null || date -u +%FT%TZ)
    TMP="$OUT/.$NAME.tar.gz.tmp"
    git ls-files -z | tar --null -T - --sort=name --owner=0 --group=0 \
      --numeric-owner --mtime="$MTIME" --transform="s|^|$NAME/|" -cf - |
      gzip -n -9 >"$TMP"
    mv "$TMP" "$OUT/$NAME.tar.gz"
    echo "dist: $OUT/$NAME.tar.gz ($(du -h "$OUT/$NAME.tar.gz" | cut -f1), $(tar -tzf "$OUT/$NAME.tar.gz" | wc -l) entries)"
    ;;
  test)
    TARBALL=$(realpath "$2")
    WORK=$(mktemp -d /tmp/freightliner-dist-XXXXXX)
    trap 'rm -rf "$WORK"' EXIT
    tar -xzf "$TARBALL" -C "$WORK"
    DIR=$(find "$WORK" -mindepth 1 -maxdepth 1 -type d)
    [ "$(basename "$DIR")" = "$(basename "$TARBALL" .tar.gz)" ] ||
      { echo "dist-test: the tarball's top directory is $(basename "$DIR")" >&2; exit 1; }
    echo "== make build in $DIR"
    (cd "$DIR" && GIT_DIR=/nonexistent make build >"$WORK/build.log" 2>&1) ||
      { tail -30 "$WORK/build.log"; echo "dist-test: make build failed" >&2; exit 1; }
    V=$("$DIR/bin/freightliner" --version | head -1)
    [ "$V" = "freightliner $(basename "$DIR" | sed 's/^freightliner-//')" ] ||
      { echo "dist-test: the built binary says '$V'" >&2; exit 1; }
    [ -s "$DIR/build/man/freightliner.1" ] || { echo "dist-test: no man page built" >&2; exit 1; }
    echo "== make demo in $DIR"
    (cd "$DIR" && GIT_DIR=/nonexistent make demo) | tail -3
    echo "dist-test: ok ($V builds and replicates from the tarball)"
    ;;
  *)
    echo "usage: dist.sh dist OUTDIR VERSION | dist.sh test TARBALL" >&2
    exit 2
    ;;
esac
