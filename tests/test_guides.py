"""Every error block of every troubleshooting guide is diagnosed as its own scenario."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.core.domain import Family
from shared.diagnosis.catalog import BY_ID
from shared.diagnosis.classifier import classify_text
from tests.conftest import SEEDS
from tests.guide_blocks import Block, guide_blocks

BLOCKS = guide_blocks(SEEDS) if SEEDS.is_dir() else []


def _family(scenario: str) -> Family:
    return BY_ID[scenario].family


def test_the_guides_yield_error_blocks_for_both_families(seeds_dir: Path) -> None:
    scenarios = {b.scenario for b in guide_blocks(seeds_dir)}
    assert {s for s in scenarios if s.startswith("aib.")} and {s for s in scenarios if s.startswith("um.")}
    # every section with an error block in the guides is one of ours
    assert len(scenarios) >= 20


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: f"{b.seed[:3]}-{b.scenario}")
def test_guide_error_block_is_diagnosed_as_its_scenario(block: Block) -> None:
    d = classify_text(block.text)
    assert d.scenario == block.scenario, d.evidence
    assert d.evidence, "a diagnosis shows the lines it matched"
    assert d.doc is not None and d.doc.endswith("#" + BY_ID[block.scenario].anchor)


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: f"{b.seed[:3]}-{b.scenario}")
def test_guide_error_block_with_its_family_hint(block: Block) -> None:
    assert classify_text(block.text, _family(block.scenario)).scenario == block.scenario


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: f"{b.seed[:3]}-{b.scenario}")
def test_guide_error_block_escaped_inside_a_json_string(block: Block) -> None:
    """As it arrives inside an activity log statusMessage or an `az` error JSON."""
    import json

    wrapped = json.dumps({"error": {"code": "Failed", "message": block.text}})
    escaped_again = json.dumps(wrapped)  # double-encoded, as in statusMessage
    assert classify_text(escaped_again).scenario == block.scenario
