#!/bin/bash
# What the fault suite (test/fault/) needs beyond npm: PostgreSQL server binaries (initdb,
# pg_ctl — it runs a private cluster it can stop with -m immediate), redis-server and redis-cli
# (a private instance it freezes and kills), runuser (PostgreSQL refuses to run as root) and
# mount (a 16 MiB tmpfs it fills; needs root); curl and jq for the docs-examples test. Idempotent: installs only what is missing.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=()
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && ! command -v pg_ctl >/dev/null 2>&1; then
  missing+=(postgresql)
fi
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
command -v mount >/dev/null 2>&1 || missing+=(mount)
# The docs-examples test runs README.md's and docs/http.md's shell blocks as written.
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v jq >/dev/null 2>&1 || missing+=(jq)
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y "${missing[@]}"
fi
echo "fault tools: pg_ctl $(ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | tail -1 || command -v pg_ctl), $(command -v redis-server), $(command -v runuser), $(command -v mount)"
if [ "$(id -u)" -ne 0 ]; then
  echo "note: not root: the disk-full fault test cannot mount its tmpfs (it fails with CI=true)"
fi
