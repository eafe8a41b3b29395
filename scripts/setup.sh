#!/usr/bin/env bash
# Installs everything the project needs into the repo: .venv/ (Python deps + the
# `remediator` command) and node_modules/ (Azurite). Idempotent: re-runs only when the requirement files change.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PYTHON="$candidate"; break; fi
  done
fi
[ -n "$PYTHON" ] || { echo "setup: Python 3.11 is required" >&2; exit 1; }
"$PYTHON" - <<'PY' || { echo "setup: Python >= 3.11 is required" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

# Azurite (the Azure Storage emulator the state tests and local runs use), pinned in package-lock.json.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
  || { echo "setup: Node.js and npm are required (for Azurite, the Storage emulator)" >&2; exit 1; }
npm_stamp="node_modules/.installed"
npm_want="$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)"
if [ ! -f "$npm_stamp" ] || [ "$(cat "$npm_stamp")" != "$npm_want" ] || [ ! -x node_modules/.bin/azurite ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$npm_want" > "$npm_stamp"
  echo "setup: node_modules ready (azurite $(node_modules/.bin/azurite --version))"
fi

stamp=".venv/.installed"
want="$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x .venv/bin/remediator ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
echo "$want" > "$stamp"
echo "setup: .venv ready ($(.venv/bin/python --version))"
