#!/bin/bash
# Installs Ceph radosgw (+ a monitor and an OSD) from Debian for the s3-radosgw test suite.
# Idempotent: does nothing when `radosgw` is already on PATH. Needs root (or sudo) and apt.
set -euo pipefail
if command -v radosgw >/dev/null 2>&1; then
  echo "radosgw already installed: $(command -v radosgw)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y radosgw ceph-mon ceph-osd
echo "radosgw installed: $(command -v radosgw)"
