#!/usr/bin/env bash
# check-symbols.sh [BUILD_DIR] - symbol visibility gate (`make check` runs it
# on build-check/ after the -Werror build; run it by hand on build/).
#
#   1. include/freightliner.h: every function it declares is marked FL_API.
#   2. Every shared object built (lua/freightliner/core.so, lib/*.so*)
#      exports nothing but the FL_API functions of freightliner.h
#      (nm -D --defined-only); core.so exports luaopen_freightliner_core.
#   3. The static library (lib/libfreightliner.a): every global symbol it
#      defines starts with the one prefix `fl_` (luaopen_freightliner_core
#      aside), so linking it into a program cannot collide with anything.
#
# Prints each offending symbol with what to do about it; exits 1 if any.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BUILD=${1:-build}
HEADER=${FL_HEADER:-include/freightliner.h}
status=0

command -v nm >/dev/null 2>&1 || { echo "check-symbols: nm not found (binutils)" >&2; exit 1; }

# The allow-list and the unmarked declarations, from the header itself.
# A declaration starts at column 0; its name is the identifier before the
# first '(' (it may continue on the next lines).
mapfile -t parsed < <(python3 - "$HEADER" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
for stmt in re.finditer(r"^(?![#\s}])([^;{}#]*?)\b([A-Za-z_]\w*)\s*\(([^;{}]*)\)[^;{}]*;",
                        text, flags=re.M):
    head, name = stmt.group(1), stmt.group(2)
    if head.lstrip().startswith("typedef"):
        continue
    print(("ok " if re.search(r"\bFL_API\b", head) else "unmarked ") + name)
EOF
)
allowed=()
for line in "${parsed[@]}"; do
  case $line in
    "ok "*) allowed+=("${line#ok }") ;;
    "unmarked "*)
      echo "$HEADER: ${line#unmarked } is declared without FL_API (add FL_API, or move it to an internal header)"
      status=1 ;;
  esac
done
if [ ${#allowed[@]} -eq 0 ]; then
  echo "check-symbols: found no FL_API function in $HEADER" >&2
  exit 1
fi
is_allowed() {
  local a
  for a in "${allowed[@]}"; do [ "$a" = "$1" ] && return 0; done
  return 1
}

shopt -s nullglob
objects=("$BUILD"/lua/freightliner/core.so "$BUILD"/lib/*.so "$BUILD"/lib/*.so.*)
checked=0
for so in "${objects[@]}"; do
  if [ ! -f "$so" ] || [ -L "$so" ]; then continue; fi
  checked=$((checked + 1))
  leaks=0
  while read -r sym; do
    is_allowed "$sym" && continue
    echo "$so: exports internal symbol $sym (make it static, or hidden: only FL_API functions of $HEADER may be exported)"
    leaks=$((leaks + 1))
  done < <(nm -D --defined-only "$so" | awk 'NF >= 3 && $2 ~ /^[TDBRVWiu]$/ { print $3 }' |
           grep -Ev '^(_init|_fini|_edata|_end|__bss_start)$' | sed 's/@.*//' | sort -u)
  [ "$leaks" -eq 0 ] || status=1
  case $so in
    */core.so)
      if ! nm -D --defined-only "$so" | awk '{ print $3 }' | grep -qx luaopen_freightliner_core; then
        echo "$so: does not export luaopen_freightliner_core (require would fail)"
        status=1
      fi ;;
  esac
done
if [ "$checked" -eq 0 ]; then
  echo "check-symbols: no shared object under $BUILD (build first)" >&2
  exit 1
fi

lib="$BUILD/lib/libfreightliner.a"
if [ -f "$lib" ]; then
  while read -r sym; do
    echo "$lib: global symbol $sym lacks the fl_ prefix (rename it fl_..., or make it static)"
    status=1
  done < <(nm -g --defined-only "$lib" 2>/dev/null | awk 'NF == 3 { print $3 }' |
           grep -Ev '^(fl_|luaopen_freightliner_core$)' | sort -u)
fi

if [ "$status" -eq 0 ]; then
  echo "check-symbols: $checked shared object(s) export only the ${#allowed[@]} FL_API functions of $HEADER; $lib uses the fl_ prefix"
fi
exit "$status"
