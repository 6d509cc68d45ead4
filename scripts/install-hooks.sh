#!/usr/bin/env bash
# install-hooks.sh - install scripts/pre-commit as the git pre-commit hook.
# `make hooks` calls it. The hook is a symlink, so edits to scripts/pre-commit
# take effect at once; an existing hook that is not ours is moved aside to
# pre-commit.local (it is not run).
set -euo pipefail
cd "$(dirname "$0")/.."
HOOKS=$(git rev-parse --git-path hooks)
mkdir -p "$HOOKS"
HOOK=$HOOKS/pre-commit
TARGET=$(pwd)/scripts/pre-commit

if [ -L "$HOOK" ] && [ "$(readlink "$HOOK")" = "$TARGET" ]; then
  echo "hooks: pre-commit already installed ($HOOK -> scripts/pre-commit)"
  exit 0
fi
if [ -e "$HOOK" ] || [ -L "$HOOK" ]; then
  mv "$HOOK" "$HOOK.local"
  echo "hooks: kept the previous hook as $HOOK.local (run it yourself if needed)"
fi
ln -s "$TARGET" "$HOOK"
chmod +x scripts/pre-commit
echo "hooks: installed $HOOK -> scripts/pre-commit"
