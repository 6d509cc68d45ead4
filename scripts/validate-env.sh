#!/usr/bin/env bash
# validate-env.sh - check that every tool and library Freightliner needs is
# present at the version pinned in scripts/versions.env.
#
# Prints one line per item: ok, missing, too old (or wrong major), with the
# version found and the pinned one. If anything is wrong, prints the command
# that fixes it and exits 1. `make validate-env` calls it.
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=versions.env disable=SC1091
. scripts/versions.env

BAD=0
FIX_PKGS=()

# version_ge A B: A >= B, comparing dotted numeric versions.
version_ge() {
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]
}

# first_version TEXT: the first dotted number in TEXT (1.2, 1.2.3, 20230311).
first_version() {
  grep -oE '[0-9]+(\.[0-9]+)+|[0-9]{6,}' <<<"$1" | head -1
}

pkg_version() { # Debian package -> upstream version, or nothing
  local v
  v=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$1" 2>/dev/null) || return 0
  case "$v" in
    installed\ *) v=${v#installed }; v=${v#*:}; first_version "$v" ;;
  esac
}

# report LABEL PACKAGE FOUND PIN RULE LIMIT
#   RULE is min (FOUND >= LIMIT), major (FOUND's major == LIMIT) or
#   range (LIMIT is "MIN MAX_EXCLUSIVE").
report() {
  local label=$1 pkg=$2 found=$3 pin=$4 rule=$5 limit=$6 state note=""
  if [ -z "$found" ]; then
    state=missing
  else
    case "$rule" in
      min) if version_ge "$found" "$limit"; then state=ok; else state="too old"; fi ;;
      major) if [ "${found%%.*}" = "$limit" ]; then state=ok; else state="wrong major"; fi ;;
      range)
        local lo=${limit% *} hi=${limit#* }
        if ! version_ge "$found" "$lo"; then state="too old"
        elif version_ge "$found" "$hi"; then state="too new"
        else state=ok; fi ;;
    esac
  fi
  if [ "$state" = ok ] && [ "$found" != "$pin" ]; then
    note=" (pinned $pin)"
  fi
  case "$rule" in
    min) rule=">= $limit" ;;
    major) rule="major $limit" ;;
    range) rule=">= ${limit% *}, < ${limit#* }" ;;
  esac
  printf '%-12s %-22s %-12s %s%s\n' "$state" "$label" "${found:--}" "$rule" "$note"
  if [ "$state" != ok ]; then
    BAD=$((BAD + 1))
    FIX_PKGS+=("$pkg")
  fi
}

tool_version() { # command args... -> first version in its output, or nothing
  command -v "$1" >/dev/null 2>&1 || return 0
  first_version "$("$@" 2>&1 | head -3)"
}

modversion() { # pkg-config module -> version, or nothing
  command -v pkg-config >/dev/null 2>&1 || return 0
  pkg-config --modversion "$1" 2>/dev/null
}

lua_module_version() { # module field -> version of a Lua 5.4 module
  command -v lua5.4 >/dev/null 2>&1 || return 0
  lua5.4 -e "local ok, m = pcall(require, '$1'); if ok then print(m.$2 or '') end" 2>/dev/null
}

# busted and luacheck are Lua scripts: ask the packaged runners.
busted_version() {
  [ -f /usr/bin/busted ] && command -v lua5.4 >/dev/null 2>&1 || return 0
  first_version "$(lua5.4 /usr/bin/busted --version 2>&1)"
}

echo "Checking the toolchain against scripts/versions.env (Debian $DEBIAN_RELEASE)"

# ---- compilers and build
report gcc build-essential "$(tool_version gcc -dumpfullversion)" "$GCC_VERSION" min "$GCC_MIN"
report make build-essential "$(tool_version make --version)" "$MAKE_VERSION" min "$MAKE_MIN"
report cmake cmake "$(tool_version cmake --version)" "$CMAKE_VERSION" min "$CMAKE_MIN"
report pkg-config pkg-config "$(tool_version pkg-config --version)" "$PKG_CONFIG_VERSION" min "$PKG_CONFIG_MIN"
report clang clang "$(tool_version clang --version)" "$CLANG_VERSION" major "$CLANG_MAJOR"
report libclang-rt libclang-rt-14-dev "$(pkg_version "libclang-rt-$CLANG_MAJOR-dev")" "$CLANG_VERSION" major "$CLANG_MAJOR"

# ---- libraries
report "lua5.4 (headers)" liblua5.4-dev "$(modversion lua5.4)" "$LUA_VERSION" range "$LUA_MIN $LUA_MAX_EXCLUSIVE"
report "lua5.4 (interpreter)" lua5.4 "$(tool_version lua5.4 -v)" "$LUA_VERSION" range "$LUA_MIN $LUA_MAX_EXCLUSIVE"
report "luac5.4" lua5.4 "$(tool_version luac5.4 -v)" "$LUA_VERSION" range "$LUA_MIN $LUA_MAX_EXCLUSIVE"
report libcurl libcurl4-openssl-dev "$(modversion libcurl)" "$LIBCURL_VERSION" min "$LIBCURL_MIN"
report "openssl (libssl)" libssl-dev "$(modversion openssl)" "$OPENSSL_VERSION" min "$OPENSSL_MIN"
report jansson libjansson-dev "$(modversion jansson)" "$JANSSON_VERSION" min "$JANSSON_MIN"
report libyaml libyaml-dev "$(modversion yaml-0.1)" "$LIBYAML_VERSION" min "$LIBYAML_MIN"
report cmocka libcmocka-dev "$(modversion cmocka)" "$CMOCKA_VERSION" min "$CMOCKA_MIN"
report readline libreadline-dev "$(modversion readline)" "$READLINE_VERSION" min "$READLINE_MIN"
report libmicrohttpd libmicrohttpd-dev "$(modversion libmicrohttpd)" "$LIBMICROHTTPD_VERSION" min "$LIBMICROHTTPD_MIN"

# ---- Lua side
report "lua-cjson (5.4)" lua-cjson "$(lua_module_version cjson _VERSION | grep -oE '[0-9.]+' | head -1)" "$LUA_CJSON_VERSION" min "$LUA_CJSON_MIN"
report busted lua-busted "$(busted_version)" "$BUSTED_VERSION" min "$BUSTED_MIN"
report luacheck lua-check "$(tool_version luacheck --version)" "$LUACHECK_VERSION" min "$LUACHECK_MIN"
report "lua-posix (5.1-5.3)" lua-posix "$(pkg_version lua-posix)" "$LUA_POSIX_VERSION" min "$LUA_POSIX_MIN"

# ---- static analysis and coverage
report clang-format clang-format "$(tool_version clang-format --version)" "$CLANG_FORMAT_VERSION" major "$CLANG_FORMAT_MAJOR"
report clang-tidy clang-tidy "$(tool_version clang-tidy --version)" "$CLANG_TIDY_VERSION" major "$CLANG_TIDY_MAJOR"
report cppcheck cppcheck "$(tool_version cppcheck --version)" "$CPPCHECK_VERSION" min "$CPPCHECK_MIN"
report gcovr gcovr "$(tool_version gcovr --version)" "$GCOVR_VERSION" min "$GCOVR_MIN"

# ---- registries, clients and benchmarks
report docker-registry docker-registry "$(tool_version docker-registry --version)" "$DOCKER_REGISTRY_VERSION" min "$DOCKER_REGISTRY_MIN"
report skopeo skopeo "$(tool_version skopeo --version)" "$SKOPEO_VERSION" min "$SKOPEO_MIN"
report "htpasswd" apache2-utils "$(command -v htpasswd >/dev/null && pkg_version apache2-utils)" "$APACHE2_UTILS_VERSION" min "$APACHE2_UTILS_MIN"
report hyperfine hyperfine "$(tool_version hyperfine --version)" "$HYPERFINE_VERSION" min "$HYPERFINE_MIN"
report prometheus prometheus "$(tool_version prometheus --version)" "$PROMETHEUS_VERSION" min "$PROMETHEUS_MIN"
report wrk wrk "$(pkg_version wrk)" "$WRK_VERSION" min "$WRK_MIN"

# ---- general tools (the Debian python3, not one earlier on PATH)
report python3 python3 "$(tool_version /usr/bin/python3 --version)" "$PYTHON3_VERSION" min "$PYTHON3_MIN"
report "openssl (cli)" openssl "$(tool_version openssl version)" "$OPENSSL_CLI_VERSION" min "$OPENSSL_CLI_MIN"
report curl curl "$(tool_version curl --version)" "$CURL_VERSION" min "$CURL_MIN"
report git git "$(tool_version git --version)" "$GIT_VERSION" min "$GIT_MIN"
report "pgrep (procps)" procps "$(tool_version pgrep --version)" "$PROCPS_VERSION" min "$PROCPS_MIN"
report ca-certificates ca-certificates "$([ -s /etc/ssl/certs/ca-certificates.crt ] && pkg_version ca-certificates)" "$CA_CERTIFICATES_VERSION" min "$CA_CERTIFICATES_MIN"

echo
if [ "$BAD" -eq 0 ]; then
  echo "validate-env: everything is present"
  exit 0
fi
mapfile -t FIX_PKGS < <(printf '%s\n' "${FIX_PKGS[@]}" | sort -u)
echo "validate-env: $BAD item(s) missing or at the wrong version. To fix:"
echo "  scripts/setup.sh"
echo "or:"
echo "  apt-get update && apt-get install -y ${FIX_PKGS[*]}"
exit 1
