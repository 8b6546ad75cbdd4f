#!/usr/bin/env bash
# Installs the official `openai` npm client that ServerClientTest drives the server with, into
# test-data/assets/node (gitignored). Idempotent: nothing happens when the pinned version is there.
#
#   test-data/serve/setup.sh      # what CI runs before mvn verify (bin/test runs every setup.sh)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="$(cd "$here/.." && pwd)/assets/node"
version=6.30.1
installed="$dest/node_modules/openai/package.json"
if [ -f "$installed" ] && grep -q "\"version\": \"$version\"" "$installed"; then
  exit 0
fi
mkdir -p "$dest"
echo "serve/setup.sh: installing openai@$version into $dest" >&2
npm install --silent --no-audit --no-fund --prefix "$dest" "openai@$version" >/dev/null
grep -q "\"version\": \"$version\"" "$installed"
