"""Shared fixtures: paths to the guides beside the repo and to the corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.azurite", "tests.sandbox", "tests.pipeline_helpers"]

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SEEDS = SHARED / "seeds"


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    if not SEEDS.is_dir():
        pytest.fail(f"the troubleshooting guides are expected at {SEEDS}")
    return SEEDS
