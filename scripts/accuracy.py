"""Per-scenario accuracy of the classifier over the labelled corpus (tests/corpus/*.jsonl).

Prints a table (scenario, lines, correct, accuracy) and the misses; exits 1 when the
overall accuracy is below --floor, so CI notices a regression.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.classifier import classify_text  # noqa: E402
from shared.domain import Family  # noqa: E402

CORPUS = ROOT / "tests" / "corpus"


def load(names: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in names:
        path = CORPUS / name
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                row = json.loads(line)
                row["_where"] = f"{name}:{number}"
                rows.append(row)
    return rows


def evaluate(rows: list[dict[str, Any]]) -> tuple[dict[str, list[int]], list[str]]:
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    misses: list[str] = []
    for row in rows:
        source = row.get("source")
        family = Family(source) if source else None
        got = classify_text(row["text"], family).scenario
        want = row["scenario"]
        stats[want][0] += 1
        if got == want:
            stats[want][1] += 1
        else:
            misses.append(f"{row['_where']}: want {want}, got {got}: {row['text'][:110]!r}")
    return stats, misses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="*", default=["guide.jsonl", "variants.jsonl", "unknown.jsonl"])
    parser.add_argument("--summary", action="store_true", help="only the totals and the misses")
    parser.add_argument("--floor", type=float, default=0.9, help="fail below this overall accuracy")
    args = parser.parse_args()
    present = [f for f in args.files if (CORPUS / f).exists()]
    if not present:
        print("accuracy: no corpus files found", file=sys.stderr)
        return 1
    stats, misses = evaluate(load(present))
    total = sum(n for n, _ in stats.values())
    correct = sum(c for _, c in stats.values())
    if not args.summary:
        print(f"{'scenario':42} {'lines':>5} {'right':>5} {'accuracy':>8}")
        for scenario in sorted(stats):
            n, c = stats[scenario]
            print(f"{scenario:42} {n:5d} {c:5d} {c / n:8.1%}")
    for miss in misses:
        print("miss", miss)
    overall = correct / total if total else 0.0
    print(f"overall: {correct}/{total} = {overall:.1%} over {', '.join(present)}")
    return 0 if overall >= args.floor else 1


if __name__ == "__main__":
    raise SystemExit(main())
