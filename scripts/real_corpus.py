"""Accuracy of the classifier on real failure texts (tests/corpus/real/*.jsonl).

The lines were copied from public GitHub issues, Q&A threads and doc feedback: Image Builder,
Packer azure-arm, Automation Update Management, Azure Update Manager, and other products'
failures that must stay `unknown`. Each line is {"text", "label", "source", "service", "kind"}.

The corpus is split once, by a stable hash of `source` (so every item of one thread falls on
the same side), into `dev` (two thirds: what the classifier may be tuned on) and `test` (a
third: never read while tuning; only its aggregate figures are printed, never its items).

Prints, per split: a per-scenario table, the figures per family (Image Builder, Update
Management, Update Manager, negatives), exact accuracy overall, the share of negatives kept
`unknown`, and the precision of diagnoses with confidence >= 0.8. The misses are listed for
`dev` only. With --floor, exits 1 when `test` falls under it (overall exact, or negatives kept
unknown).

Run: .venv/bin/python scripts/real_corpus.py [--summary] [--split dev|test|both] [--floor 0.9]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared.diagnosis.classifier import classify_text  # noqa: E402

REAL = ROOT / "tests" / "corpus" / "real"
SPLITS = ("dev", "test")
TEST_SHARE = 3  # one source in three goes to test
CONFIDENT = 0.8
FAMILIES = ("image_builder", "update_management", "update_manager", "negatives")


def split_of(source: str) -> str:
    """`test` for a third of the sources, `dev` for the rest: stable across runs, machines and
    Python versions (sha256, not hash()), and the same for every item of one thread."""
    digest = hashlib.sha256(source.strip().encode("utf-8")).digest()
    return "test" if int.from_bytes(digest[:8], "big") % TEST_SHARE == 0 else "dev"


def family_of(label: str) -> str:
    if label.startswith("aib."):
        return "image_builder"
    if label.startswith("um."):
        return "update_management"
    if label.startswith("aum."):
        return "update_manager"
    return "negatives"


def load(split: str | None = None, folder: Path = REAL) -> list[dict[str, Any]]:
    """The real corpus's lines (of one split, or all), each with `_where` (file:line) and `_split`."""
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            row = json.loads(line)
            row["_where"] = f"{path.name}:{number}"
            row["_split"] = split_of(row["source"])
            if split is None or row["_split"] == split:
                rows.append(row)
    return rows


@dataclass
class Report:
    split: str
    per_scenario: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    per_family: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    confident: list[int] = field(default_factory=lambda: [0, 0])  # [diagnoses at >= 0.8, right]
    hard_negatives: list[int] = field(default_factory=lambda: [0, 0])  # negatives.jsonl: [lines, unknown]
    misses: list[str] = field(default_factory=list)

    def __repr__(self) -> str:  # never the items, nor figures by accident (pytest prints fixtures' reprs)
        return f"Report({self.split!r})"

    @property
    def total(self) -> tuple[int, int]:
        return sum(n for n, _ in self.per_scenario.values()), sum(c for _, c in self.per_scenario.values())

    @property
    def exact(self) -> float:
        n, c = self.total
        return c / n if n else 0.0

    @property
    def negatives_unknown(self) -> float:
        n, c = self.per_family.get("negatives", [0, 0])
        return c / n if n else 1.0

    @property
    def precision(self) -> float:
        n, c = self.confident
        return c / n if n else 1.0


def evaluate(rows: list[dict[str, Any]], split: str) -> Report:
    report = Report(split)
    for row in rows:
        d = classify_text(row["text"])
        want = row["label"]
        right = d.scenario == want
        report.per_scenario[want][0] += 1
        report.per_scenario[want][1] += right
        fam = family_of(want)
        report.per_family[fam][0] += 1
        report.per_family[fam][1] += right
        if row["_where"].startswith("negatives."):
            report.hard_negatives[0] += 1
            report.hard_negatives[1] += d.scenario == "unknown"
        if d.scenario not in ("unknown", "none") and d.confidence >= CONFIDENT:
            report.confident[0] += 1
            report.confident[1] += right
        if not right and split == "dev":
            report.misses.append(f"{row['_where']} [{row['source']}]: want {want}, got {d.scenario} "
                                 f"({d.confidence:.2f}): {row['text'][:140]!r}")
    return report


def _pct(n: int, c: int) -> str:
    return f"{c:4d}/{n:<4d} {c / n:6.1%}" if n else "   -/0         "


def render(report: Report, *, per_scenario: bool = True, misses: bool = False) -> str:
    lines = [f"== {report.split}"]
    if per_scenario:
        lines.append(f"{'scenario':42} {'right/lines':>11} {'exact':>6}")
        for scenario in sorted(report.per_scenario, key=lambda s: (family_of(s), s)):
            n, c = report.per_scenario[scenario]
            lines.append(f"{scenario:42} {_pct(n, c)}")
    for fam in FAMILIES:
        n, c = report.per_family.get(fam, [0, 0])
        lines.append(f"{report.split} {fam:38} {_pct(n, c)}")
    n, c = report.total
    lines.append(f"{report.split} {'overall exact':38} {_pct(n, c)}")
    lines.append(f"{report.split} {'negatives kept unknown':38} {_pct(*report.per_family.get('negatives', [0, 0]))}")
    lines.append(f"{report.split} {'hard negatives (negatives.jsonl) unknown':38} {_pct(*report.hard_negatives)}")
    lines.append(f"{report.split} {'precision at confidence >= 0.8':38} {_pct(*report.confident)}")
    if misses:
        lines.extend(f"miss {m}" for m in report.misses)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--summary", action="store_true", help="tables and totals only (no dev misses)")
    parser.add_argument("--split", choices=("dev", "test", "both"), default="both")
    parser.add_argument("--floor", type=float, default=None,
                        help="exit 1 when test's exact accuracy or its negatives kept unknown fall under it")
    args = parser.parse_args(argv)
    rows = load()
    if not rows:
        print(f"real_corpus: no lines under {REAL}", file=sys.stderr)
        return 1
    wanted = SPLITS if args.split == "both" else (args.split,)
    reports = {s: evaluate([r for r in rows if r["_split"] == s], s) for s in wanted}
    for split in wanted:
        print(render(reports[split], misses=not args.summary and split == "dev"))
    if args.floor is None or "test" not in reports:
        return 0
    test = reports["test"]
    failed = [f"{name} {value:.1%} < {args.floor:.0%}" for name, value in
              (("exact", test.exact), ("negatives unknown", test.negatives_unknown)) if value < args.floor]
    if failed:
        print("real_corpus: test split under the floor: " + ", ".join(failed), file=sys.stderr)
        return 1
    print(f"real_corpus: test split at or over the floor {args.floor:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
