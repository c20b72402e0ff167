#!/bin/bash
# What the S3 endpoint's client tests (test/cli/s3-clients.test.ts) need beyond npm: Debian's
# AWS CLI (/usr/bin/aws) and rclone (/usr/bin/rclone), driven against `kura serve --s3-port`.
# Idempotent: installs only what is missing.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=()
[ -x /usr/bin/aws ] || missing+=(awscli)
[ -x /usr/bin/rclone ] || missing+=(rclone)
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y "${missing[@]}"
fi
echo "s3 clients: $(/usr/bin/aws --version 2>&1 | head -1); $(/usr/bin/rclone version 2>/dev/null | head -1)"
