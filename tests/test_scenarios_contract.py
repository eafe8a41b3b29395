"""The catalog honours ../shared/scenarios.md, the public contract of scenario ids."""

from __future__ import annotations

import re

from shared.diagnosis.catalog import BY_ID
from tests.conftest import SHARED


def _contract_ids() -> set[str]:
    text = (SHARED / "scenarios.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| ((?:um|aib)\.[a-z0-9_]+) \|", text, re.MULTILINE))


def test_every_contract_id_is_in_the_catalog() -> None:
    ids = _contract_ids()
    assert len(ids) >= 30
    assert ids <= set(BY_ID), sorted(ids - set(BY_ID))


def test_every_seed_anchor_exists_in_a_guide() -> None:
    guides = "".join(p.read_text(encoding="utf-8") for p in (SHARED / "seeds").glob("*.txt"))
    for scenario in BY_ID.values():
        assert f'name="{scenario.anchor}"' in guides, scenario.id
