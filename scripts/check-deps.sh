#!/usr/bin/env bash
# check-deps.sh [BINARY] - every runtime dependency of the binary is a Debian
# package at a version that scripts/versions.env accepts.
#
# For each shared library the binary links (ldd), finds the Debian package
# that ships it (dpkg -S) and its version, and checks that version against
# the pin of the library it belongs to. A library from outside Debian's
# packages, or one with no pin, fails with the line to add. The Lua modules
# loaded at run time (lua-cjson) are checked the same way. `make check`
# runs it as the `deps` gate.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=versions.env disable=SC1091
. scripts/versions.env
BIN=${1:-build/bin/freightliner}
[ -x "$BIN" ] || { echo "check-deps: $BIN not built (make build)"; exit 1; }

# Debian runtime package (without the soname suffix) -> the pin it must meet.
# The C library and the compiler runtime come with the system.
pin_of() {
  case "$1" in
    libc6 | libgcc-s1) echo "system" ;;
    libcurl4) echo "LIBCURL_MIN" ;;
    libssl3) echo "OPENSSL_MIN" ;;
    libjansson4) echo "JANSSON_MIN" ;;
    libyaml-0-2) echo "LIBYAML_MIN" ;;
    liblua5.4-0) echo "LUA_MIN" ;;
    libreadline8) echo "READLINE_MIN" ;;
    libpcre2-8-0) echo "PCRE2_MIN" ;;
    zlib1g) echo "ZLIB_MIN" ;;
    libmicrohttpd12) echo "LIBMICROHTTPD_MIN" ;;
    lua-cjson) echo "LUA_CJSON_MIN" ;;
    *) echo "" ;;
  esac
}

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }

# Only direct dependencies: libcurl's own (nghttp2, ...) are libcurl4's
# business and come with it.
mapfile -t LIBS < <(readelf -d "$BIN" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
bad=0
check_pkg() { # what package
  local what=$1 pkg=$2 ver pin min
  ver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null)
  ver=${ver#*:}
  ver=$(grep -oE '^[0-9]+(\.[0-9]+)*' <<<"$ver")
  pin=$(pin_of "$pkg")
  if [ -z "$pin" ]; then
    echo "FAIL  $what: package $pkg has no pin; add it to scripts/versions.env and scripts/check-deps.sh"
    bad=$((bad + 1))
  elif [ "$pin" = system ]; then
    echo "ok    $what: $pkg $ver (system)"
  else
    min=${!pin:-}
    if [ -z "$min" ]; then
      echo "FAIL  $what: $pkg $ver: $pin is not set in scripts/versions.env"
      bad=$((bad + 1))
    elif version_ge "$ver" "$min"; then
      echo "ok    $what: $pkg $ver (>= $min, $pin)"
    else
      echo "FAIL  $what: $pkg $ver is older than $pin=$min"
      bad=$((bad + 1))
    fi
  fi
}

for lib in "${LIBS[@]}"; do
  case "$lib" in
    ld-linux*.so* | ld64.so*) # the dynamic loader itself: part of libc6
      check_pkg "$lib" libc6
      continue
      ;;
  esac
  path=$(ldd "$BIN" | awk -v l="$lib" '$1 == l { print $3 }')
  if [ -z "$path" ] || [ "$path" = "not" ]; then
    echo "FAIL  $lib: not found by the dynamic loader"
    bad=$((bad + 1))
    continue
  fi
  real=$(readlink -f "$path")
  owner=$(dpkg -S "$real" 2>/dev/null || dpkg -S "$path" 2>/dev/null || true)
  pkg=${owner%%:*}
  if [ -z "$pkg" ]; then
    echo "FAIL  $lib ($real): not shipped by any Debian package"
    bad=$((bad + 1))
    continue
  fi
  check_pkg "$lib" "$pkg"
done

# Lua C modules the stdlib requires at run time from the system
if grep -rqs 'require("cjson")\|require "cjson"\|require("cjson.safe")' lua/stdlib; then
  check_pkg "cjson (Lua module)" lua-cjson
fi

if [ "$bad" -ne 0 ]; then
  echo "check-deps: $bad runtime dependency problem(s)"
  exit 1
fi
echo "check-deps: ${#LIBS[@]} linked libraries, all Debian packages within scripts/versions.env"
