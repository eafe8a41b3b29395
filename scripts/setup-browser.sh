#!/usr/bin/env bash
# Installs what the browser tests need beyond node_modules: Debian's Chromium (the tests
# drive it headless with playwright-core; npm's browser downloads do not work here).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-browser: install Chromium (Debian package 'chromium') for the browser tests" >&2; exit 1
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "setup-browser: $(chromium --version 2>/dev/null | head -1)"
