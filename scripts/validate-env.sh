#!/usr/bin/env bash
# validate-env.sh - check that every tool and library Freightliner needs is
# present at the version pinned in scripts/versions.env.
#
# Prints one line per item: ok, missing, too old (or wrong major), with the
# version found and the pinned one; then the project's own set-up: the
# config files the gates read (fail tier: a gate cannot run without them)
# and the git pre-commit hook (warn tier: commits still work, unchecked).
# Every finding says FAIL or WARN and the command that fixes it. Exits 1 on
# any FAIL, 0 otherwise (warnings included). `make validate-env` calls it.
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
  local shown=$state
  [ "$state" = ok ] || shown="FAIL $state"
  printf '%-16s %-22s %-12s %s%s\n' "$shown" "$label" "${found:--}" "$rule" "$note"
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
report pcre2 libpcre2-dev "$(modversion libpcre2-8)" "$PCRE2_VERSION" min "$PCRE2_MIN"
report zlib zlib1g-dev "$(modversion zlib)" "$ZLIB_VERSION" min "$ZLIB_MIN"
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
report valgrind valgrind "$(tool_version valgrind --version)" "$VALGRIND_VERSION" min "$VALGRIND_MIN"
report prometheus prometheus "$(tool_version prometheus --version)" "$PROMETHEUS_VERSION" min "$PROMETHEUS_MIN"
report wrk wrk "$(pkg_version wrk)" "$WRK_VERSION" min "$WRK_MIN"

# ---- general tools (the Debian python3, not one earlier on PATH)
report python3 python3 "$(tool_version /usr/bin/python3 --version)" "$PYTHON3_VERSION" min "$PYTHON3_MIN"
report "openssl (cli)" openssl "$(tool_version openssl version)" "$OPENSSL_CLI_VERSION" min "$OPENSSL_CLI_MIN"
report curl curl "$(tool_version curl --version)" "$CURL_VERSION" min "$CURL_MIN"
report git git "$(tool_version git --version)" "$GIT_VERSION" min "$GIT_MIN"
report "pgrep (procps)" procps "$(tool_version pgrep --version)" "$PROCPS_VERSION" min "$PROCPS_MIN"
report ca-certificates ca-certificates "$([ -s /etc/ssl/certs/ca-certificates.crt ] && pkg_version ca-certificates)" "$CA_CERTIFICATES_VERSION" min "$CA_CERTIFICATES_MIN"

# ---- deploy (issue #14)
report help2man help2man "$(tool_version help2man --version)" "$HELP2MAN_VERSION" min "$HELP2MAN_MIN"
report "man (man-db)" man-db "$(tool_version man --version)" "$MAN_DB_VERSION" min "$MAN_DB_MIN"
report luarocks luarocks "$(tool_version luarocks --version)" "$LUAROCKS_VERSION" min "$LUAROCKS_MIN"
report buildah buildah "$(tool_version buildah --version)" "$BUILDAH_VERSION" min "$BUILDAH_MIN"
report umoci umoci "$(tool_version umoci --version)" "$UMOCI_VERSION" min "$UMOCI_MIN"
report "node (npm)" nodejs "$(tool_version node --version)" "$NODEJS_MIN" min "$NODEJS_MIN"

# ---- the project's own set-up
WARN=0
CONFIG_BAD=0
echo
echo "Checking the project's set-up"
for f in .clang-format .clang-tidy .luacheckrc scripts/versions.env .secrets-allow; do
  if [ -s "$f" ]; then
    printf '%-16s %s\n' ok "$f"
  else
    printf '%-16s %s: missing or empty; the gates read it (fix: git checkout -- %s)\n' FAIL "$f" "$f"
    CONFIG_BAD=$((CONFIG_BAD + 1))
  fi
done
if command -v git >/dev/null 2>&1 && git rev-parse --git-dir >/dev/null 2>&1; then
  HOOK=$(git rev-parse --git-path hooks)/pre-commit
  if [ -L "$HOOK" ] && [ "$(readlink "$HOOK")" = "$PWD/scripts/pre-commit" ]; then
    printf '%-16s %s\n' ok "pre-commit hook"
  else
    printf '%-16s %s\n' WARN "pre-commit hook not installed: commits are not checked (fix: make hooks)"
    WARN=$((WARN + 1))
  fi
fi

echo
if [ "$CONFIG_BAD" -ne 0 ]; then
  echo "validate-env: FAIL: $CONFIG_BAD config file(s) missing (see above)"
fi
if [ "$BAD" -eq 0 ] && [ "$CONFIG_BAD" -eq 0 ]; then
  echo "validate-env: everything is present ($WARN warning(s))"
  exit 0
fi
[ "$BAD" -eq 0 ] && exit 1
mapfile -t FIX_PKGS < <(printf '%s\n' "${FIX_PKGS[@]}" | sort -u)
echo "validate-env: FAIL: $BAD item(s) missing or at the wrong version. To fix:"
echo "  scripts/setup.sh"
echo "or:"
echo "  apt-get update && apt-get install -y ${FIX_PKGS[*]}"
exit 1
