"""The labelled corpus: real-world variants per scenario, and texts that must stay unknown."""

from __future__ import annotations

import json
from collections import Counter

from scripts.accuracy import evaluate, guide_rows, load
from shared.diagnosis.catalog import BY_ID
from tests.conftest import ROOT, contract_ids

CORPUS = sorted((ROOT / "tests" / "corpus").glob("*.jsonl"))


def test_every_scenario_has_at_least_three_variants_beyond_the_guides() -> None:
    counts = Counter(row["scenario"] for row in load(CORPUS))
    thin = {s: counts[s] for s in contract_ids() & set(BY_ID) if counts[s] < 3}
    assert not thin, f"scenarios with fewer than 3 corpus variants: {thin}"
    assert counts["unknown"] >= 20, "texts that must stay unknown keep the classifier honest"


def test_corpus_lines_are_well_formed() -> None:
    ids = contract_ids() | {"unknown"}
    for path in CORPUS:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            row = json.loads(line)
            assert row["scenario"] in ids, f"{path.name}:{number}: unknown label {row['scenario']}"
            assert row.get("source") in (None, "aib", "update"), f"{path.name}:{number}"
            assert row["text"].strip(), f"{path.name}:{number}: empty text"


def test_accuracy_over_corpus_and_guides_holds_per_scenario() -> None:
    stats, misses = evaluate(load(CORPUS) + guide_rows())
    total = sum(n for n, _ in stats.values())
    correct = sum(c for _, c in stats.values())
    assert correct / total >= 0.95, misses
    weak = {s: f"{c}/{n}" for s, (n, c) in stats.items() if c / n < 0.75}
    assert not weak, (weak, misses)
