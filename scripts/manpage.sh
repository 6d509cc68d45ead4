#!/usr/bin/env bash
# manpage.sh BINARY OUT - write the man page freightliner.1 from the help
# text: help2man (Debian) reads `BINARY --help` and `--version` for NAME,
# SYNOPSIS and DESCRIPTION; a COMMANDS section is added with the usage of
# every command (`BINARY help COMMAND`), as preformatted text. The page is
# checked by `man -l` in scripts/test-install.sh. CMake runs this at build
# time (target freightliner_man) when help2man is installed.
set -euo pipefail
BIN=$1
OUT=$2
mkdir -p "$(dirname "$OUT")"
INC=$(mktemp)

roff_escape() { # text on stdin -> roff-safe preformatted lines
  sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/" -e 's/-/\\-/g'
}

# Command names: the lines of `--help` under "commands:" that start with two
# spaces and a lower-case word.
mapfile -t COMMANDS < <("$BIN" --help | sed -n '/^commands:/,/^$/p' |
  sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p')
[ ${#COMMANDS[@]} -gt 0 ] || { echo "manpage.sh: no commands in '$BIN --help'" >&2; exit 1; }

{
  echo "[COMMANDS]"
  for c in "${COMMANDS[@]}"; do
    echo ".SS $c"
    echo ".nf"
    "$BIN" help "$c" | roff_escape
    echo ".fi"
  done
  echo "[ENVIRONMENT]"
  echo ".TP"
  echo ".B FREIGHTLINER_LOG_LEVEL"
  echo "debug, info, warn, error or off; debug traces every HTTP request."
  echo ".TP"
  echo ".B FREIGHTLINER_LUA_PATH"
  echo "load the stdlib from this directory instead of the embedded copy."
  echo ".TP"
  echo ".B FREIGHTLINER_SHARD"
  echo "INDEX/COUNT: run one shard of replicate, replicate\\-tree or sync (see --shard)."
  echo ".TP"
  echo ".B JOB_COMPLETION_INDEX"
  echo "the shard index in a Kubernetes Indexed Job, with --shard-count COUNT."
  echo "[SEE ALSO]"
  echo "skopeo(1). The README and docs/ of the source distribution."
} >"$INC"

# help2man reads --help through a wrapper named freightliner that drops
# the title line (NAME has it) and spells the usage lines as help2man
# expects for the SYNOPSIS ("Usage:", then "  or:").
WRAPDIR=$(mktemp -d)
trap 'rm -rf "$INC" "$WRAPDIR"' EXIT
cat >"$WRAPDIR/freightliner" <<WRAPPER
#!/bin/sh
"$BIN" --help | sed -e '1{/^freightliner - /d}' -e '1{/^\$/d}' \\
  -e 's/^usage:/Usage:/' -e 's/^       freightliner /  or: freightliner /'
WRAPPER
chmod +x "$WRAPDIR/freightliner"
VERSION=$("$BIN" --version | sed -n '1s/^freightliner //p')
help2man --no-info --section=1 --version-string="$VERSION" \
  --name="copy container images between registries and OCI layouts" \
  --include="$INC" --output="$OUT.tmp" "$WRAPDIR/freightliner"
mv "$OUT.tmp" "$OUT"
