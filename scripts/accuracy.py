"""Per-scenario accuracy of the classifier over the labelled corpus.

The corpus is every `tests/corpus/*.jsonl` file (real-world variants and texts that must
stay `unknown`) plus the error blocks of the guides themselves (`tests/data/guides/`).
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

from shared.core.domain import Family  # noqa: E402
from shared.diagnosis.classifier import classify_text  # noqa: E402
from tests.guide_blocks import GUIDES, guide_blocks  # noqa: E402

CORPUS = ROOT / "tests" / "corpus"


def load(paths: list[Path]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                row = json.loads(line)
                row["_where"] = f"{path.name}:{number}"
                rows.append(row)
    return rows


def guide_rows(guides: Path = GUIDES) -> list[dict[str, Any]]:
    return [{"scenario": b.scenario, "source": None, "text": b.text, "_where": f"guide {b.guide[:3]}"}
            for b in guide_blocks(guides)]


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="*", type=Path, help="corpus files (default: tests/corpus/*.jsonl)")
    parser.add_argument("--no-guides", action="store_true", help="leave out the guides' own error blocks")
    parser.add_argument("--summary", action="store_true", help="only the totals and the misses")
    parser.add_argument("--floor", type=float, default=0.9, help="fail below this overall accuracy")
    args = parser.parse_args(argv)
    files: list[Path] = args.files or sorted(CORPUS.glob("*.jsonl"))
    rows = load(files)
    if not args.no_guides:
        rows += guide_rows()
    if not rows:
        print("accuracy: no corpus lines found", file=sys.stderr)
        return 1
    stats, misses = evaluate(rows)
    total = sum(n for n, _ in stats.values())
    correct = sum(c for _, c in stats.values())
    if not args.summary:
        print(f"{'scenario':42} {'lines':>5} {'right':>5} {'accuracy':>8}")
        for scenario in sorted(stats):
            n, c = stats[scenario]
            print(f"{scenario:42} {n:5d} {c:5d} {c / n:8.1%}")
    for miss in misses:
        print("miss", miss)
    overall = correct / total
    names = [f.name for f in files] + ([] if args.no_guides else ["guides"])
    print(f"overall: {correct}/{total} = {overall:.1%} over {', '.join(names)}")
    return 0 if overall >= args.floor else 1


if __name__ == "__main__":
    raise SystemExit(main())
