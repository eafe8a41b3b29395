#!/usr/bin/env bash
# The whole test suite: setup, ruff, mypy, pytest (and the classifier accuracy report).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/checkov.sh --install-only  # the Bicep scanner lives in its own venv (.tools/checkov)
./scripts/setup-browser.sh           # Debian's Chromium for the browser tests
echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
.venv/bin/mypy
echo "== classifier accuracy (corpus and guides)"
.venv/bin/python scripts/accuracy.py --summary
echo "== classifier accuracy (held-out sets 2 and 3, written apart from the classifier)"
.venv/bin/python scripts/accuracy.py tests/holdout2/*.jsonl --no-guides --summary --floor 0.9
echo "== classifier accuracy (real-world corpus: dev and the never-tuned test split, gated on test)"
.venv/bin/python scripts/real_corpus.py --summary --floor 0.85  # the measured level (85.9% exact on test); the goal is 0.9 (issue 13)
echo "== pytest"
.venv/bin/python -m pytest -q -n 2 "$@"
