"""The real-world corpus (tests/corpus/real/): texts copied from public issues, Q&A threads and doc
feedback, split once by thread into `dev` (tuned on) and `test` (never tuned on).

The `test` split gates the classifier: exact accuracy and the negatives it keeps `unknown`, both at
or over FLOOR. Its failures are reported as figures only, never item by item: reading the test
items while tuning would make it one more dev set.
"""

from __future__ import annotations

from collections import Counter

import pytest

from scripts.real_corpus import FAMILIES, SPLITS, Report, evaluate, family_of, load, split_of
from shared.diagnosis.catalog import BY_ID
from shared.diagnosis.classifier import classify_text
from tests.conftest import contract_ids

# The bar is 0.90 for both: on the grown test split (2026-12-03, 317 lines, measured once per
# corpus change, never tuned on) negatives kept unknown 91.1% meets it, exact 81.7% does NOT. The gates hold
# what was measured, rounded down, so nothing falls back; raise them as the classifier improves.
FLOOR = 0.90  # negatives kept unknown on test
EXACT_FLOOR = 0.85
KEYS = {"text", "label", "source", "service", "kind"}


@pytest.fixture(scope="module")
def test_report() -> Report:
    return evaluate(load("test"), "test")


def test_lines_are_well_formed_and_labelled_with_contract_ids() -> None:
    ids = contract_ids() | {"unknown"}
    rows = load()
    assert len(rows) > 300
    for row in rows:
        assert set(row) - {"_where", "_split"} == KEYS, row["_where"]
        assert row["label"] in ids, f"{row['_where']}: unknown label {row['label']}"
        assert row["label"] == "unknown" or row["label"] in BY_ID, f"{row['_where']}: no catalog row"
        assert row["text"].strip() and row["source"].strip(), row["_where"]


def test_the_split_is_by_thread_stable_and_a_third() -> None:
    rows = load()
    sides: dict[str, set[str]] = {}
    for row in rows:
        sides.setdefault(row["source"], set()).add(row["_split"])
    assert all(len(s) == 1 for s in sides.values()), "every item of one thread on the same side"
    assert split_of("hashicorp/packer#8658") == split_of(" hashicorp/packer#8658 ")  # a hash of the text, not hash()
    share = Counter(r["_split"] for r in rows)["test"] / len(rows)
    assert 0.25 <= share <= 0.42, share
    assert set(SPLITS) == {r["_split"] for r in rows}
    # every family has items on both sides
    for split in SPLITS:
        families = {family_of(r["label"]) for r in rows if r["_split"] == split}
        assert families == set(FAMILIES), (split, families)


def test_test_split_exact_accuracy_holds_the_floor(test_report: Report) -> None:
    n, right = test_report.total
    exact = right / n
    assert exact >= EXACT_FLOOR, f"test split exact {right}/{n} = {exact:.1%} < {EXACT_FLOOR:.0%}"


def test_test_split_keeps_the_negatives_unknown(test_report: Report) -> None:
    n, kept = test_report.per_family["negatives"]
    share = kept / n
    assert share >= FLOOR, f"test negatives unknown {kept}/{n} = {share:.1%} < {FLOOR:.0%}"


def test_confident_diagnoses_are_mostly_right_on_dev() -> None:
    report = evaluate(load("dev"), "dev")
    n, right = report.confident
    assert n >= 20 and right / n >= 0.9, f"dev precision at confidence >= 0.8: {right}/{n}"


def test_every_dev_diagnosis_shows_evidence_and_ranked_alternatives() -> None:
    for row in load("dev"):
        d = classify_text(row["text"])
        assert d.evidence, row["_where"]
        scores = [a.score for a in d.alternatives]
        assert scores == sorted(scores, reverse=True), row["_where"]
        assert all(a.reason and a.scenario != d.scenario for a in d.alternatives), row["_where"]
        if d.scenario not in ("unknown", "none"):
            assert 0.0 < d.confidence <= 0.99
