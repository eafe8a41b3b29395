"""The scenario catalog: one row per troubleshooting-guide scenario (the ids of scenarios.md),
one module per family of guides. A row holds what identifies the scenario (signatures), what
the guide says to do (advice, diagnostic queries) and which remediations apply, with their
default mode. A new scenario is a row in its family's module, plus its corpus lines and tests.
"""

from __future__ import annotations

from shared.diagnosis.catalog import image_builder, update_management, update_manager
from shared.diagnosis.catalog.model import (
    ADVICE_ONLY,
    ADVICE_QUERIES,
    AIB_DOC,
    AUM_DOC,
    FAMILY_BONUS,
    FAMILY_WORDS,
    GENERIC_YIELD,
    MIN_SCORE,
    UM_DOC,
    Scenario,
    Sig,
    ref,
)
from shared.diagnosis.catalog.update_management import HRESULT_ADVICE, HRESULT_GENERIC, Q_OPERATION

SCENARIOS: tuple[Scenario, ...] = update_management.ROWS + update_manager.ROWS + image_builder.ROWS
BY_ID: dict[str, Scenario] = {s.id: s for s in SCENARIOS}

__all__ = [
    "ADVICE_ONLY", "ADVICE_QUERIES", "AIB_DOC", "AUM_DOC", "BY_ID", "FAMILY_BONUS", "FAMILY_WORDS", "GENERIC_YIELD",
    "HRESULT_ADVICE", "HRESULT_GENERIC", "MIN_SCORE", "Q_OPERATION", "SCENARIOS", "UM_DOC", "Scenario", "Sig", "ref",
]
