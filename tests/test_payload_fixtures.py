"""Every fixture payload (shaped like the real source) parses as expected, end to end
through the same path as the HTTP API: envelope -> Failure -> classifier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.core.errors import PayloadError
from shared.diagnosis.envelopes import validation_code
from shared.diagnosis.offline import diagnose_input

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "payloads"
EXPECTED: dict[str, dict[str, Any]] = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))


def test_every_fixture_has_an_expectation_and_back() -> None:
    files = {p.name for p in FIXTURES.glob("*.json")} - {"expected.json"}
    assert files == set(EXPECTED)
    assert sum("error_field" in e for e in EXPECTED.values()) >= 12


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if "failures" in e))
def test_valid_payload_parses_and_diagnoses_as_expected(name: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    diagnoses, _ = diagnose_input(raw)
    want = EXPECTED[name]["failures"]
    assert len(diagnoses) == len(want)
    for d, w in zip(diagnoses, want, strict=True):
        assert d.failure is not None
        got = {"source": d.failure.source.value, "failed": d.failure.failed, "resource_id": d.failure.resource_id,
               "status": d.failure.status, "scenario": d.scenario}
        assert {k: got[k] for k in w} == w


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if "validation" in e))
def test_validation_event_yields_its_code(name: str) -> None:
    assert validation_code(json.loads((FIXTURES / name).read_bytes())) == EXPECTED[name]["validation"]


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if "error_field" in e))
def test_invalid_payload_is_refused_naming_the_field(name: str) -> None:
    with pytest.raises(PayloadError) as err:
        diagnose_input((FIXTURES / name).read_bytes())
    assert err.value.path == EXPECTED[name]["error_field"]
    assert err.value.problem


def test_real_shapes_keep_their_timestamps_and_correlation() -> None:
    [d] = diagnose_input((FIXTURES / "maintenance_post_failed.json").read_bytes())[0]
    assert d.failure is not None
    assert d.failure.correlation_ids[0].endswith("/applyupdates/20261122020000")
    assert d.failure.started_at is not None and d.failure.ended_at is not None
    assert (d.failure.ended_at - d.failure.started_at).total_seconds() == 7200
