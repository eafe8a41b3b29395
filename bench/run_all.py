"""Runs every benchmark (cold start, classifier, end to end) one after the other and prints one
combined table with the machine it ran on. Each script's own output is shown as it runs; the
combined figures go to bench/results/all.json and bench/results/summary.md (a Markdown table to
paste into a README).

Other work on the machine skews every figure: --wait-quiet N waits up to N seconds for the other
processes to use under 15% of the cores before each script (the reading is kept with the results).

Run: .venv/bin/python bench/run_all.py [--quick] [--wait-quiet 300]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import RESULTS, machine, machine_line, read_results, table, wait_until_quiet, write_results  # noqa: E402

SCRIPTS = (("cold_start", "cold_start.py"), ("classifier", "classifier_bench.py"), ("end_to_end", "end_to_end.py"))
QUIET_PCT = 15.0

Row = list[str]


def _f(value: Any, fmt: str = ".1f") -> str:
    return format(value, fmt) if isinstance(value, int | float) else "n/a"


def cold_rows(r: dict[str, Any]) -> list[Row]:
    c = r["candidates"]
    names = [n for n in ("function_app", "floor", "c7n") if n in c]
    rows: list[Row] = [
        ["cold start", f"import p50 / p90 (ms): {' / '.join(names)}",
         "  ".join(f"{_f(c[n]['import_ms_median'])}/{_f(c[n]['import_ms_p90'])}" for n in names), "", ""],
        ["cold start", "whole process p50 (ms), same order",
         " / ".join(_f(c[n]["process_ms_median"]) for n in names), "", ""],
        ["cold start", "peak RSS (MB), same order", " / ".join(_f(c[n]["peak_rss_mb_median"]) for n in names), "",
         ""],
    ]
    for ratio in r["ratios"]:
        if ratio["gate"]:
            rows.append(["cold start", f"{ratio['pair']} (import time)", f"{ratio['ratio']:.2f}x",
                         f"<= {ratio['target']}x", ratio["verdict"]])
    return rows


def classifier_rows(r: dict[str, Any]) -> list[Row]:
    t, b = r["texts_per_s"], r["big_log_ms"]
    rows: list[Row] = [
        ["classifier", "texts/s, one core (guide-sized)", f"{t['median']:,.0f}", f">= {t['target']:,}", t["verdict"]],
        ["classifier", "1 MB Packer log p50 / p99 (ms)", f"{b['p50']:.1f} / {b['p99']:.1f}",
         f"p99 <= {b['target_p99']:g}", b["verdict"]],
    ]
    for j in r["jsonl"]:
        rows.append(["classifier", f"diagnose --jsonl lines/s, {j['workers']} worker(s) (after start-up)",
                     f"{j['lines_per_s']:,.0f} ({j['lines_per_s_after_startup']:,.0f})", "", ""])
    return rows


def e2e_rows(r: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for s in r["scenarios"]:
        rows.append(["end to end", f"double {s['latency_ms']} ms, concurrency {s['label']}: events/s, p50/p99 ms",
                     f"{s['events_per_s']:.1f}  {s['latency_ms_p50']:.0f}/{s['latency_ms_p99']:.0f}", "", ""])
    n = sum(s["events"] for s in r["scenarios"])
    rows.append(["end to end", f"every event applied once, ledger completed ({n} events)",
                 "yes" if r["verified"] else "NO", "all", "PASS" if r["verified"] else "MISS"])
    return rows


def to_markdown(headers: list[str], rows: list[Row]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="all benchmarks, one combined table")
    parser.add_argument("--quick", action="store_true", help="smoke run of every script")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help=f"wait up to this long for other work to drop under {QUIET_PCT:g}%% of the cores")
    parser.add_argument("--only", default="", help="comma-separated subset: cold_start,classifier,end_to_end")
    args = parser.parse_args(argv)
    wanted = {w.strip() for w in args.only.split(",") if w.strip()}

    info = machine()
    print(machine_line(info), flush=True)
    runs: dict[str, dict[str, Any]] = {}
    for name, script in SCRIPTS:
        if wanted and name not in wanted:
            continue
        quiet = wait_until_quiet(QUIET_PCT, args.wait_quiet) if args.wait_quiet > 0 else None
        print(f"\n=== {script}{' --quick' if args.quick else ''}"
              + (f" (other work: {quiet:.0f}% of the cores)" if quiet is not None else "") + " ===", flush=True)
        cmd = [sys.executable, str(ROOT / "bench" / script), *(["--quick"] if args.quick else [])]
        started = time.perf_counter()
        code = subprocess.run(cmd, cwd=ROOT, check=False).returncode
        runs[name] = {"exit_code": code, "seconds": round(time.perf_counter() - started, 1), "others_busy_pct": quiet}

    rows: list[Row] = []
    for name, build in (("cold_start", cold_rows), ("classifier", classifier_rows), ("end_to_end", e2e_rows)):
        if name not in runs:
            continue
        result = read_results(name)
        if runs[name]["exit_code"] != 0 or result is None:
            rows.append([name.replace("_", " "), f"script failed (exit {runs[name]['exit_code']})", "", "", "MISS"])
            continue
        rows += build(result)
        runs[name]["machine_at_start"] = result.get("machine")
        others = result.get("other_work_pct")
        if others is None and result.get("scenarios"):
            others = max(s.get("other_work_pct", 0.0) for s in result["scenarios"])
        runs[name]["other_work_pct"] = others
        rows.append([name.replace("_", " "), "other work on the machine during the run (% of cores; max per row)",
                     _f(others, ".0f"), "< 15", "ok" if isinstance(others, int | float) and others < 15 else "SKEWED"])

    headers = ["area", "figure", "value", "target", "verdict"]
    m = info
    header = (f"{m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), {m['ram_gib']} GiB RAM, "
              f"{m['implementation']} {m['python']}, {m['os']}, {m['date']}"
              f"{' (quick)' if args.quick else ''}")
    print(f"\n=== combined ({sum(r['seconds'] for r in runs.values()):.0f} s) ===")
    print(f"machine: {header}")
    print(table(headers, rows, align="llrll"))
    markdown = f"Machine: {header}\n\n{to_markdown(headers, rows)}\n"
    (RESULTS / "summary.md").parent.mkdir(parents=True, exist_ok=True)
    write_results("all", {"name": "all", "mode": "quick" if args.quick else "full", "machine": info, "runs": runs,
                          "headers": headers, "rows": rows})
    (RESULTS / "summary.md").write_text(markdown)
    print(f"results: {(RESULTS / 'all.json').relative_to(ROOT)}, {(RESULTS / 'summary.md').relative_to(ROOT)}")
    failed = [n for n, r in runs.items() if r["exit_code"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
