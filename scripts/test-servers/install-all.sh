#!/usr/bin/env bash
# Installs the heavy test servers that are not npm dependencies of the package, into the
# machine (apt) or a cache outside node_modules, so `npm install` stays light. Idempotent.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
for script in "$here"/install-*.sh; do
  [ "$(basename "$script")" = "install-all.sh" ] && continue
  echo "-- $(basename "$script")"
  bash "$script"
done
