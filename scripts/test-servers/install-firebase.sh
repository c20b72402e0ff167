#!/usr/bin/env bash
# Installs firebase-tools (its Cloud Storage emulator backs the gcs conformance suite) into the
# test-server cache. It is ~300 MB and takes minutes to install, so it is not a package
# dependency. Idempotent: does nothing when it is already installed.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${KURA_TEST_SERVER_CACHE:-$root/.cache/test-servers}"
prefix="$cache/firebase"

if [ -f "$prefix/node_modules/firebase-tools/package.json" ]; then
  echo "firebase-tools already installed in $prefix"
  exit 0
fi

mkdir -p "$prefix"
# A package.json of its own keeps npm from walking up into the project's.
[ -f "$prefix/package.json" ] || echo '{ "name": "kura-test-firebase", "private": true }' >"$prefix/package.json"
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error firebase-tools@15
echo "firebase-tools installed in $prefix"
