#!/usr/bin/env bash
# check-secrets.sh - no credential-looking string is committed.
#
# Scans every file git tracks (and new files not ignored) for private keys,
# cloud and forge tokens, Basic-auth headers and literal passwords in
# configs. A test fixture that must contain one is listed, with the reason,
# in .secrets-allow (one "PATH-GLOB  # why" per line); nothing else is
# exempt. `make check` runs it as the `secrets` gate.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

PATTERNS=(
  '-----BEGIN ([A-Z]+ )?PRIVATE KEY-----'
  'AKIA[0-9A-Z]{16}'
  'gh[pousr]_[A-Za-z0-9]{36,}'
  'glpat-[A-Za-z0-9_-]{20,}'
  'xox[abpr]-[A-Za-z0-9-]{10,}'
  'AIza[0-9A-Za-z_-]{35}'
  'Authorization: Basic [A-Za-z0-9+/=]{12,}'
  '"auth": *"[A-Za-z0-9+/=]{12,}"'
  '(password|secret|token) *[:=] *"[^"$ {]{8,}"'
)

ALLOW=()
if [ -f .secrets-allow ]; then
  while read -r glob _; do
    [ -n "$glob" ] && [ "${glob:0:1}" != "#" ] && ALLOW+=("$glob")
  done <.secrets-allow
fi

allowed() {
  local f=$1 g
  for g in "${ALLOW[@]}"; do
    # shellcheck disable=SC2053
    [[ $f == $g ]] && return 0
  done
  return 1
}

# One grep over every file for all patterns at once; the allow-list is
# applied to its findings.
ARGS=()
for p in "${PATTERNS[@]}"; do ARGS+=(-e "$p"); done
found=0
while IFS= read -r hit; do
  f=${hit%%:*}
  allowed "$f" && continue
  rest=${hit#*:}
  echo "$f:${rest%%:*}: looks like a credential"
  found=$((found + 1))
done < <(git ls-files -z --cached --others --exclude-standard |
  xargs -0 -r grep -EnIH "${ARGS[@]}" -- 2>/dev/null)

if [ "$found" -ne 0 ]; then
  echo "check-secrets: $found credential-looking string(s). Remove them, or, for a"
  echo "test fixture, add its path and the reason to .secrets-allow."
  exit 1
fi
echo "check-secrets: no credential-looking strings (allow-list: ${#ALLOW[@]} entries)"
