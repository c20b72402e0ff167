#!/bin/bash
# What the console's browser tests (test/console/) need beyond npm: Debian's Chromium at
# /usr/bin/chromium, driven headless by playwright-core (which downloads no browser of its own),
# and CJK fonts so the screenshots of the Japanese search show the text (the tests read the DOM,
# not the pixels, and pass without them). Idempotent: installs only what is missing.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
if ! fc-list 2>/dev/null | grep -qi "cjk"; then missing+=(fonts-noto-cjk); fi
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y "${missing[@]}"
fi
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
