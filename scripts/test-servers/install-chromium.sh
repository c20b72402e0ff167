#!/bin/bash
# What the console's browser tests (test/console/) need beyond npm: Debian's Chromium at
# /usr/bin/chromium, driven headless by playwright-core (which downloads no browser of its own).
# Idempotent: installs only when it is missing.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y chromium
fi
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
