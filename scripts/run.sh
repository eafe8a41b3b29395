#!/usr/bin/env bash
# The main job on the embedded default: sweep the embedded sandbox (a local Azure double
# seeded with a failed estate), diagnose every failure and apply every remediation.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
# The sandbox seeds one failure per remediable scenario (Image Builder, Automation, Update Manager): more
# changes than the default hourly circuit breaker (20) lets through in one sweep. A setting still wins.
export REMEDIATOR_MAX_CHANGES_PER_HOUR="${REMEDIATOR_MAX_CHANGES_PER_HOUR:-60}"
exec .venv/bin/remediator sweep --sandbox --mode auto --approve-all "$@"
