"""Every error block of every troubleshooting guide is diagnosed as its own scenario, and what the
catalog takes from the guides (anchors, diagnostic queries) is in them (tests/data/guides/)."""

from __future__ import annotations

import json
import re

import pytest

from shared.core.domain import Family
from shared.diagnosis.catalog import BY_ID, SCENARIOS
from shared.diagnosis.classifier import classify_text
from tests.guide_blocks import Block, anchors_by_url, guide_blocks, load_guides

BLOCKS = guide_blocks()


def _family(scenario: str) -> Family:
    return BY_ID[scenario].family


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_the_guides_yield_error_blocks_for_both_families() -> None:
    scenarios = {b.scenario for b in BLOCKS}
    assert {s for s in scenarios if s.startswith("aib.")} and {s for s in scenarios if s.startswith("um.")}
    # every section with an error block in the guides is one of ours
    assert len(scenarios) >= 20


def test_every_anchor_the_catalog_links_to_is_in_its_guide() -> None:
    anchors = anchors_by_url()
    linked = [s for s in SCENARIOS if s.doc.partition("#")[0] in anchors]
    assert {s.id for s in linked} >= {s.id for s in SCENARIOS if s.id.startswith(("um.", "aib."))}
    for scenario in linked:
        url, _, anchor = scenario.doc.partition("#")
        assert anchor in anchors[url], f"{scenario.id}: no section #{anchor} in {url}"


def test_every_diagnostic_query_of_the_catalog_is_one_of_the_guides() -> None:
    code = {_fold(text) for guide in load_guides() for text in guide.code()}
    queries = [q for s in SCENARIOS for q in s.queries]
    assert len(queries) >= 4
    for query in queries:
        # a placeholder ({computer}) stands where the guide has one of its own (fillInMachineName)
        shape = re.compile(re.sub(r"\\\{\w+\\\}", r"\\S+", re.escape(_fold(query))))
        assert any(shape.fullmatch(text) for text in code), f"not in the guides: {query!r}"


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: f"{b.guide[:3]}-{b.scenario}")
def test_guide_error_block_is_diagnosed_as_its_scenario(block: Block) -> None:
    d = classify_text(block.text)
    assert d.scenario == block.scenario, d.evidence
    assert d.evidence, "a diagnosis shows the lines it matched"
    assert d.doc is not None and d.doc.endswith("#" + BY_ID[block.scenario].anchor)


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: f"{b.guide[:3]}-{b.scenario}")
def test_guide_error_block_with_its_family_hint(block: Block) -> None:
    assert classify_text(block.text, _family(block.scenario)).scenario == block.scenario


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: f"{b.guide[:3]}-{b.scenario}")
def test_guide_error_block_escaped_inside_a_json_string(block: Block) -> None:
    """As it arrives inside an activity log statusMessage or an `az` error JSON."""
    wrapped = json.dumps({"error": {"code": "Failed", "message": block.text}})
    escaped_again = json.dumps(wrapped)  # double-encoded, as in statusMessage
    assert classify_text(escaped_again).scenario == block.scenario
