#!/usr/bin/env bash
# setup.sh - install what is missing to build, test and check Freightliner
# on Debian 12, with apt-get only (nothing is downloaded from elsewhere).
#
# Idempotent: packages already installed are left alone, and `apt-get
# update` runs only when something has to be installed. Works as root
# without sudo, and through sudo otherwise. `make setup` calls it; so do
# .ci/run and the CI workflow. The pinned versions are in versions.env;
# scripts/validate-env.sh checks them.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config git ca-certificates
  # libraries
  liblua5.4-dev libcurl4-openssl-dev libssl-dev libyaml-dev libjansson-dev
  libreadline-dev libcmocka-dev libpcre2-dev
  libreadline-dev libcmocka-dev zlib1g-dev
  libreadline-dev libcmocka-dev libmicrohttpd-dev
  # Lua runtime and test tools
  lua5.4 lua-cjson lua-busted lua-check lua-posix
  # static analysis, sanitizers, coverage
  clang clang-format clang-tidy cppcheck gcovr libclang-rt-14-dev
  # registries, clients and benchmarks for the tests and e2e (e2e/run.sh
  # uses pgrep, from procps, which a minimal Debian image lacks)
  docker-registry skopeo apache2-utils openssl python3 curl hyperfine procps
  # memory checking in the e2e suite (e2e/scenarios/memcheck.py)
  valgrind
  # deploy (issue #14): the man page, its check, the LuaRocks test, and the
  # daemonless image build (make image / image-test)
  help2man man-db luarocks buildah umoci
  # serve: a real Prometheus scrapes it (promtool checks the exposition), wrk loads it
  prometheus wrk
)
# The Kubernetes manifest check (deploy/kubernetes/validate.sh) runs an npm
# package under Node.js; a Node.js from elsewhere (with its own npm) is kept.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "setup.sh: not root and sudo is not available; run as root:" >&2
    echo "  apt-get install ${PACKAGES[*]}" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup.sh: apt-get not found; this script targets Debian 12" >&2
  exit 1
fi

installed() { # package -> 0 if installed
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

MISSING=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || MISSING+=("$p")
done

if [ ${#MISSING[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages are installed"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
echo "setup: installing ${MISSING[*]}"
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
  --no-install-recommends -o Dpkg::Use-Pty=0 "${MISSING[@]}" >/dev/null

# The docker-registry package starts a system service on port 5000; the
# tests start registries of their own, so it must not hold the port.
for p in "${MISSING[@]}"; do
  [ "$p" = docker-registry ] || continue
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    "${SUDO[@]}" systemctl disable --now docker-registry >/dev/null 2>&1 || true
  else
    "${SUDO[@]}" service docker-registry stop >/dev/null 2>&1 || true
  fi
  echo "setup: stopped and disabled the docker-registry system service"
done

STILL=()
for p in "${MISSING[@]}"; do
  installed "$p" || STILL+=("$p")
done
if [ ${#STILL[@]} -ne 0 ]; then
  echo "setup: failed to install ${STILL[*]}" >&2
  exit 1
fi
echo "setup: installed ${#MISSING[@]} package(s)"
