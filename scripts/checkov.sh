#!/usr/bin/env bash
# Static security checks of the Bicep in infra/ with checkov.
#
# checkov pins many libraries that clash with the app's own, so it lives in its own venv,
# .tools/checkov/, never in .venv/. The venv is created, and checkov installed from PyPI,
# only when it is missing or holds another checkov version; once it is there this script
# downloads nothing (no pip call, no checkov update check, no Prisma/Bridgecrew calls).
#
# Usage: scripts/checkov.sh [extra checkov args]
#   default output: checkov's JSON report on stdout (-o json), read by tests/test_infra.py
#   scripts/checkov.sh -o cli --quiet      human-readable, failed checks only
#   scripts/checkov.sh --install-only      create/update the venv, scan nothing
# Env:   CHECKOV_VERSION (default below), PYTHON (interpreter for the venv)
# Exit:  checkov's own: 0 when no check failed, 1 when one did; 2 on a setup error.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"
venv=".tools/checkov"
stamp="$venv/.installed"

if [ ! -x "$venv/bin/checkov" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$CHECKOV_VERSION" ]; then
  if [ ! -x "$venv/bin/python" ]; then
    PYTHON="${PYTHON:-}"
    if [ -z "$PYTHON" ]; then
      for candidate in python3.11 python3.12 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then PYTHON="$candidate"; break; fi
      done
    fi
    [ -n "$PYTHON" ] || { echo "checkov.sh: python3 is required" >&2; exit 2; }
    "$PYTHON" -m venv "$venv" || { echo "checkov.sh: could not create $venv" >&2; exit 2; }
  fi
  echo "checkov.sh: installing checkov $CHECKOV_VERSION into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION" >&2 \
    || { echo "checkov.sh: pip install checkov==$CHECKOV_VERSION failed" >&2; exit 2; }
  echo "$CHECKOV_VERSION" > "$stamp"
fi

if [ "${1:-}" = "--install-only" ]; then exit 0; fi

# Offline: no policy metadata download, no package update check, no colour codes.
export BC_SKIP_MAPPING=TRUE
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true
export ANSI_COLORS_DISABLED=true

has_output=0
for arg in "$@"; do
  case "$arg" in -o|--output|-o*|--output=*) has_output=1 ;; esac
done
if [ "$has_output" -eq 0 ]; then set -- -o json "$@"; fi

exec "$venv/bin/checkov" --framework bicep -d infra --compact --skip-download "$@"
