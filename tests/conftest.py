"""Shared fixtures and paths: the repository, and the test data it carries (tests/data/)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

pytest_plugins = ["tests.azurite", "tests.sandbox", "tests.pipeline_helpers"]

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
CONTRACT = DATA / "scenarios.json"


@cache
def contract() -> dict[str, Any]:
    """The scenario contract (tests/data/scenarios.json): scenario ids with their guide anchors and
    modes, and the remediation names that must exist."""
    data: dict[str, Any] = json.loads(CONTRACT.read_text(encoding="utf-8"))
    return data


def contract_ids() -> set[str]:
    return {row["id"] for row in contract()["scenarios"]}
