#!/usr/bin/env bash
# The main job on the embedded default: diagnose the bundled sample failures.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
exec .venv/bin/remediator diagnose --samples "$@"
