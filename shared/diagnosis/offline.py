"""The diagnosis pipeline shared by the Functions, the HTTP API and the CLI.

payload -> envelope -> Failure -> classify -> Diagnosis, from the payload alone (no Azure
call): what `remediator diagnose` and `/api/diagnose` answer. The triggers diagnose through
`shared.diagnosis.enrichment.diagnose`, which reads Azure first.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from shared.core.domain import Diagnosis, Family
from shared.diagnosis.classifier import classify
from shared.diagnosis.envelopes import is_batch, parse_input, parse_payload


def diagnose_input(raw: str | bytes, family: Family | None = None, *, lenient: bool = False) -> tuple[
    list[Diagnosis], bool
]:
    """Diagnoses for raw input (JSON or text), and whether the input was a batch."""
    failures, batch = parse_input(raw, family, lenient=lenient)
    return [classify(f) for f in failures], batch


def diagnose_payload(value: Any, family: Family | None = None) -> tuple[list[Diagnosis], bool]:
    return [classify(f) for f in parse_payload(value, family)], is_batch(value)


_STATIC = ("title", "remediations", "doc", "anchor", "queries")


@cache
def _static_json(scenario: str, title: str) -> str:
    """Fields fixed by the scenario (title, remediations, doc, queries), serialised once.

    Keyed by id and title, which together fix those fields for every diagnosis."""
    from shared.diagnosis.catalog import BY_ID

    row = BY_ID.get(scenario)
    static: dict[str, Any] = {
        "title": title,
        "remediations": [r.to_dict() for r in row.remediations] if row else (
            [{"name": "follow-guide", "mode": "advice"}] if scenario == "unknown" else []),
        "doc": row.doc if row else None,
        "anchor": row.anchor if row else None,
        "queries": list(row.queries) if row else [],
    }
    return json.dumps(static, ensure_ascii=False)[1:-1]


def result_json(d: Diagnosis) -> str:
    """One diagnosis as a compact JSON object, the --jsonl line. Same fields as
    `Diagnosis.to_dict()`; on the hot path, so the scenario's fixed fields are cached."""
    dynamic: dict[str, Any] = {
        "scenario": d.scenario,
        "confidence": round(d.confidence, 3),
        "evidence": list(d.evidence),
        "advice": list(d.advice),
        "family": d.family.value if d.family else None,
        "details": dict(d.details),
        "alternatives": [a.to_dict() for a in d.alternatives],
    }
    if d.failure is not None:
        dynamic["failure"] = d.failure.to_dict()
    return json.dumps(dynamic, ensure_ascii=False)[:-1] + ", " + _static_json(d.scenario, d.title) + "}"
