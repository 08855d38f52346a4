#!/usr/bin/env bash
# Installs the npm reference implementations used as test peers (tests/interop),
# once: skipped while node_modules matches the lock file.
set -euo pipefail
cd "$(dirname "$0")/../tests/interop"
if [ -f node_modules/.package-lock.json ] && cmp -s package-lock.json node_modules/.riptide-installed-lock 2>/dev/null; then
    exit 0
fi
echo "setup: installing npm test peers"
npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json node_modules/.riptide-installed-lock
