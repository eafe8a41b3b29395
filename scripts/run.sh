#!/usr/bin/env bash
# The main job on the embedded default: sweep the embedded sandbox (a local Azure double
# seeded with a failed estate), diagnose every failure and apply every remediation.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
exec .venv/bin/remediator sweep --sandbox --mode auto --approve-all "$@"
