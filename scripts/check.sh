#!/usr/bin/env bash
# check.sh - the static gates, run in parallel. `make check` calls it.
#
#   format   clang-format --dry-run --Werror on every C file in the tree
#   werror   a -DFL_WERROR=ON build in build-check/ (warnings are errors)
#   tidy     clang-tidy (.clang-tidy) over src/ and tools/, using
#            build-check/compile_commands.json, two files at a time
#   cppcheck cppcheck --enable=warning,performance,portability over src/ tools/
#   luacheck luacheck (.luacheckrc) over lua/ tests/lua scripts/examples tests/deploy
#   rockspec rockspec/*.rockspec parses and lists every lua/stdlib module
#   secrets  no credential-looking string committed (scripts/check-secrets.sh,
#            fixtures listed in .secrets-allow)
#   deps     every library the binary links is a Debian package within
#            scripts/versions.env (scripts/check-deps.sh; after werror)
#   symbols  after the werror build: its shared objects export only the
#            FL_API functions of include/freightliner.h and the static
#            library's globals all start with fl_ (scripts/check-symbols.sh)
#
# Each gate writes build-check/check-logs/GATE.log; at the end every gate is
# reported ok or FAILED (with the tail of its log). Exits 1 if any failed.
# "Every C file" is every *.c/*.h that git tracks or would add (untracked,
# not ignored), so new files are checked before their first commit.
#
# CHECK_BASE=REF (CI sets it for pull requests; `make check-changed`) checks
# only what changed since the merge base with REF, as the pre-commit hook
# does for staged files: format, tidy, cppcheck and luacheck see the changed
# files only; the -Werror build, rockspec, secrets and deps gates stay whole.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

BUILD=build-check
LOGS=$BUILD/check-logs
JOBS=${JOBS:-2}
CLANG_FORMAT=${CLANG_FORMAT:-clang-format-14}
CLANG_TIDY=${CLANG_TIDY:-clang-tidy-14}
command -v "$CLANG_FORMAT" >/dev/null 2>&1 || CLANG_FORMAT=clang-format
command -v "$CLANG_TIDY" >/dev/null 2>&1 || CLANG_TIDY=clang-tidy

missing=()
for tool in cmake "$CLANG_FORMAT" "$CLANG_TIDY" cppcheck luacheck git; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -ne 0 ]; then
  echo "check.sh: missing ${missing[*]}; run scripts/setup.sh" >&2
  exit 1
fi

mkdir -p "$LOGS"
rm -f "$LOGS"/*.log

mapfile -t C_FILES < <(git ls-files --cached --others --exclude-standard \
  -- '*.c' '*.h' | sort -u)
LUA_DIRS=()
for d in lua tests/lua scripts/examples tests/deploy; do
  [ -d "$d" ] && LUA_DIRS+=("$d")
done
TIDY_ONLY="" # newline-separated absolute paths, or empty for all
if [ -n "${CHECK_BASE:-}" ]; then
  if ! BASE=$(git merge-base HEAD "$CHECK_BASE" 2>/dev/null); then
    echo "check.sh: CHECK_BASE=$CHECK_BASE: no merge base with HEAD (fetch it first)" >&2
    exit 1
  fi
  mapfile -t CHANGED < <({ git diff --name-only --diff-filter=ACMR "$BASE"; \
    git ls-files --others --exclude-standard; } | sort -u)
  mapfile -t C_FILES < <(printf '%s\n' "${CHANGED[@]}" | grep -E '\.[ch]$' || true)
  mapfile -t LUA_DIRS < <(printf '%s\n' "${CHANGED[@]}" | grep -E '\.lua$' || true)
  TIDY_ONLY=$(printf "$PWD/%s\n" "${C_FILES[@]}")
  echo "check: changed since $(git rev-parse --short "$BASE") ($CHECK_BASE):" \
    "${#C_FILES[@]} C file(s), ${#LUA_DIRS[@]} Lua file(s)"
fi

START=$(date +%s)

# The werror build and clang-tidy share one configured tree, so configure it
# before anything runs in parallel.
echo "check: configuring $BUILD (FL_WERROR=ON)"
if ! cmake -S . -B "$BUILD" -DFL_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$LOGS/configure.log" 2>&1; then
  echo "FAILED configure"
  tail -n 30 "$LOGS/configure.log"
  exit 1
fi

gate_format() {
  # The full diagnostics go to format-details.log; this log lists the files.
  local f out n bad=0
  : >"$LOGS/format-details.log"
  for f in "${C_FILES[@]}"; do
    [ -f "$f" ] || continue
    out=$("$CLANG_FORMAT" --dry-run "$f" 2>&1)
    n=$(grep -c 'warning:' <<<"$out")
    if [ "$n" -ne 0 ]; then
      printf '%s\n' "$out" >>"$LOGS/format-details.log"
      echo "$f: $n place(s) not clang-formatted (fix: $CLANG_FORMAT -i $f)"
      bad=$((bad + 1))
    fi
  done
  echo "format: ${#C_FILES[@]} files, $bad not formatted (details: $LOGS/format-details.log)"
  [ "$bad" -eq 0 ]
}

gate_werror() {
  # -k: report every file that fails, not just the first.
  cmake --build "$BUILD" -j "$JOBS" -- -k --no-print-directory
}

gate_tidy() {
  # Only the project's own translation units under src/ and tools/; their
  # headers are covered through HeaderFilterRegex in .clang-tidy.
  TIDY_ONLY=$TIDY_ONLY python3 - "$BUILD/compile_commands.json" "$PWD" <<'EOF' |
import json, os, sys
root = sys.argv[2].rstrip("/") + "/"
only = set(filter(None, os.environ.get("TIDY_ONLY", "").split("\n")))
files = {e["file"] for e in json.load(open(sys.argv[1]))
         if e["file"].startswith((root + "src/", root + "tools/"))
         and (not only or e["file"] in only)}
# Largest first, so the two workers finish close together.
for f in sorted(files, key=lambda f: -os.path.getsize(f)):
    print(f)
EOF
    xargs -r -P "$JOBS" -n 1 "$CLANG_TIDY" -p "$BUILD" --quiet
}

CPPCHECK_FILES=(src tools)
if [ -n "${CHECK_BASE:-}" ]; then
  mapfile -t CPPCHECK_FILES < <(printf '%s\n' "${C_FILES[@]}" | grep -E '^(src|tools)/.*\.c$' || true)
fi

gate_cppcheck() {
  [ ${#CPPCHECK_FILES[@]} -gt 0 ] || { echo "no changed C sources"; return 0; }
  cppcheck --enable=warning,performance,portability --error-exitcode=1 \
    --inline-suppr --suppress=missingIncludeSystem --std=c11 \
    --library=posix --library=scripts/cppcheck/jansson.cfg -q -j "$JOBS" \
    -I include -I src \
    -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE "${CPPCHECK_FILES[@]}"
}

gate_luacheck() {
  [ ${#LUA_DIRS[@]} -gt 0 ] || return 0
  luacheck --no-color --codes --formatter plain "${LUA_DIRS[@]}"
}

gate_rockspec() {
  # The rockspec loads (in an empty environment, as LuaRocks loads it) and
  # lists exactly the modules under lua/stdlib. (luacheck given a rockspec
  # checks the files it lists, not the rockspec.)
  local spec
  for spec in rockspec/*.rockspec; do
    [ -f "$spec" ] || continue
    find lua/stdlib -name '*.lua' | sort | SPEC=$spec lua5.4 -e '
      local path = os.getenv("SPEC")
      local env = {}
      local chunk, err = loadfile(path, "t", env)
      if not chunk then io.stderr:write(err, "\n") os.exit(1) end
      chunk()
      local listed, ok = {}, true
      for mod, file in pairs(((env.build or {}).install or {}).lua or {}) do
        listed[file] = mod
      end
      for file in io.lines() do
        if listed[file] then
          listed[file] = nil
        else
          ok = false
          local mod = file:gsub("^lua/stdlib/", ""):gsub("%.lua$", "")
            :gsub("/init$", ""):gsub("/", ".")
          print(("%s: add to build.install.lua: [%q] = %q,"):format(path, mod, file))
        end
      end
      for file, mod in pairs(listed) do
        ok = false
        print(("%s: %s is listed as %s but does not exist"):format(path, file, mod))
      end
      os.exit(ok and 0 or 1)' || return 1
  done
}

gate_secrets() {
  scripts/check-secrets.sh
}

GATES=(format werror tidy cppcheck luacheck rockspec secrets)
declare -A PIDS
for g in "${GATES[@]}"; do
  (
    t0=$(date +%s)
    "gate_$g" >"$LOGS/$g.log" 2>&1
    rc=$?
    echo "$(($(date +%s) - t0))" >"$LOGS/$g.time"
    exit "$rc"
  ) &
  PIDS[$g]=$!
done

FAILED=()
for g in "${GATES[@]}"; do
  if wait "${PIDS[$g]}"; then
    printf 'ok      %-9s %3ss\n' "$g" "$(cat "$LOGS/$g.time")"
  else
    FAILED+=("$g")
    printf 'FAILED  %-9s %3ss  (log: %s)\n' "$g" "$(cat "$LOGS/$g.time")" "$LOGS/$g.log"
  fi
done

# Gates that need the werror build's products run once it is done.
if [[ " ${FAILED[*]} " == *" werror "* ]]; then
  FAILED+=("symbols")
  echo "not run symbols (the werror build failed)" >"$LOGS/symbols.log"
  printf 'FAILED  %-9s %3ss  (the werror build failed)\n' symbols 0
else
  t0=$(date +%s)
  if scripts/check-symbols.sh "$BUILD" >"$LOGS/symbols.log" 2>&1; then
    printf 'ok      %-9s %3ss\n' symbols "$(($(date +%s) - t0))"
  else
    FAILED+=("symbols")
    printf 'FAILED  %-9s %3ss  (log: %s)\n' symbols "$(($(date +%s) - t0))" "$LOGS/symbols.log"
  fi
fi
GATES+=(symbols)

# What to show of a failed gate: its diagnostics' first lines, or the tail.
summarize() { # gate
  local log="$LOGS/$1.log" pattern=""
  case "$1" in
    werror) pattern='error:|warning:' ;;
    tidy) pattern='^[^ ].*(error|warning):' ;;
    cppcheck) pattern='(error|warning|performance|portability):' ;;
  esac
  if [ -n "$pattern" ] && grep -Eq "$pattern" "$log"; then
    grep -E "$pattern" "$log" | sort -u | head -n 60
  else
    grep -v '^[0-9]* warnings\? generated\.$' "$log" | tail -n 40
  fi
}

# deps reads the binary the werror gate built, so it runs after it.
GATES+=(deps)
t0=$(date +%s)
if [[ " ${FAILED[*]} " != *" werror "* ]] &&
  scripts/check-deps.sh "$BUILD/bin/freightliner" >"$LOGS/deps.log" 2>&1; then
  printf 'ok      %-9s %3ss\n' deps "$(($(date +%s) - t0))"
else
  [[ " ${FAILED[*]} " == *" werror "* ]] && echo "deps: not checked, the build failed" >"$LOGS/deps.log"
  FAILED+=(deps)
  printf 'FAILED  %-9s %3ss  (log: %s)\n' deps "$(($(date +%s) - t0))" "$LOGS/deps.log"
fi

for g in "${FAILED[@]}"; do
  echo
  echo "---- $g ($LOGS/$g.log)"
  summarize "$g"
done

echo
if [ ${#FAILED[@]} -ne 0 ]; then
  echo "check: ${#FAILED[@]} gate(s) FAILED (${FAILED[*]}) in $(($(date +%s) - START))s"
  exit 1
fi
echo "check: all ${#GATES[@]} gates ok in $(($(date +%s) - START))s"
