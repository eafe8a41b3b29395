"""The catalog and the remediation registry honour the scenario contract (tests/data/scenarios.json):
the public scenario ids, each with its guide section and the modes the product may act in, and the
remediation names that must exist.

What the contract names and the code does not have yet is listed below, each with why: its tests
are strict xfails, so the day it lands they fail (XPASS) until it is taken off the list.
"""

from __future__ import annotations

from typing import Any

import pytest

from remediations.base import registry
from shared.diagnosis.catalog import BY_ID, Scenario
from tests.conftest import contract
from tests.guide_blocks import anchors_by_url

# Contract ids not in the catalog yet (id -> why); none now: every row is there.
PENDING_SCENARIOS: dict[str, str] = {}
# Contract remediations not registered yet (name -> why); none now: every one is there.
PENDING_REMEDIATIONS: dict[str, str] = {}

ROWS: list[dict[str, Any]] = contract()["scenarios"]
REQUIRED: list[dict[str, Any]] = contract()["remediations"]
GUIDES: dict[str, str] = contract()["guides"]


def _pending(*reasons: str | None) -> list[pytest.MarkDecorator]:
    why = [r for r in reasons if r]
    return [pytest.mark.xfail(strict=True, reason="; ".join(why))] if why else []


def _catalog_row(scenario_id: str) -> Scenario:
    scenario = BY_ID.get(scenario_id)
    assert scenario is not None, f"{scenario_id} is not in the catalog"
    return scenario


def _by_scenario(rows: list[dict[str, Any]]) -> list[Any]:
    return [pytest.param(r, id=r["id"], marks=_pending(PENDING_SCENARIOS.get(r["id"]))) for r in rows]


def test_the_contract_is_whole() -> None:
    ids = [r["id"] for r in ROWS]
    assert len(ids) == len(set(ids)) >= 50
    assert {i.split(".")[0] for i in ids} == set(GUIDES) == {"um", "aum", "aib"}
    for row in ROWS:
        assert row["modes"] and set(row["modes"]) <= set(contract()["modes"]), row["id"]
        assert row["anchors"] or row["id"].startswith("aum."), f"{row['id']}: the contract names its section"
        for name, modes in row["remediations"].items():
            assert set(modes) <= set(row["modes"]) - {"advice"}, (row["id"], name)
    names = {r["name"] for r in REQUIRED}
    assert len(names) == len(REQUIRED) >= 17
    for required in REQUIRED:
        for fixed in required["fixes"]:
            assert fixed in ids and required["name"] in next(r for r in ROWS if r["id"] == fixed)["remediations"]
    assert set(PENDING_SCENARIOS) <= set(ids) and set(PENDING_REMEDIATIONS) <= names, "the lists name contract items"


def test_every_contract_anchor_is_a_section_of_its_guide() -> None:
    anchors = anchors_by_url()
    for row in ROWS:
        guide = GUIDES[row["id"].split(".")[0]]
        if row["anchors"]:
            assert set(row["anchors"]) & anchors[guide], f"{row['id']}: none of {row['anchors']} in {guide}"


@pytest.mark.parametrize("row", _by_scenario(ROWS))
def test_contract_scenario_is_in_the_catalog_linked_to_its_guide_section(row: dict[str, Any]) -> None:
    scenario = _catalog_row(row["id"])
    url, _, anchor = scenario.doc.partition("#")
    assert url == GUIDES[row["id"].split(".")[0]]
    assert anchor, "a diagnosis links to the guide's section"
    if row["anchors"]:
        assert anchor in row["anchors"]


@pytest.mark.parametrize("row", _by_scenario(ROWS))
def test_the_catalog_acts_no_more_freely_than_the_contract_allows(row: dict[str, Any]) -> None:
    offered = {r.mode.value for r in _catalog_row(row["id"]).remediations}
    assert offered <= set(row["modes"]) | {"advice"}, f"{row['id']}: the contract allows {row['modes']}"


PAIRS = [pytest.param(row["id"], name, modes, id=f"{row['id']}-{name}",
                      marks=_pending(PENDING_SCENARIOS.get(row["id"])))
         for row in ROWS for name, modes in row["remediations"].items()]


@pytest.mark.parametrize(("scenario", "name", "modes"), PAIRS)
def test_the_catalog_row_offers_each_remediation_the_contract_names(scenario: str, name: str,
                                                                    modes: list[str]) -> None:
    offered = {r.name: r.mode.value for r in _catalog_row(scenario).remediations}
    assert name in offered, f"{scenario} offers {sorted(offered)}"
    assert offered[name] in modes


@pytest.mark.parametrize("required", [pytest.param(r, id=r["name"], marks=_pending(PENDING_REMEDIATIONS.get(r["name"])))
                                      for r in REQUIRED])
def test_every_required_remediation_is_registered_and_fixes_its_scenarios(required: dict[str, Any]) -> None:
    items = registry().items
    assert required["name"] in items, f"{required['name']} is not registered"
    remediation = items[required["name"]]
    assert set(required["fixes"]) <= set(remediation.fixes)
    allowed = {m for row in ROWS if row["id"] in required["fixes"] for m in row["remediations"][required["name"]]}
    assert remediation.mode.value in allowed
