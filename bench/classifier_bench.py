"""Classifier figures: texts per second on guide-sized messages (one core), latency on
1 MB Packer logs, and `remediator diagnose --jsonl` lines per second (whole process).

Targets: >= 20,000 texts/s on one core; p99 <= 20 ms per 1 MB Packer log. The --jsonl
figure has no target: it is shown with the default workers (one per CPU) and with one,
both as measured (start-up included) and with the process's start-up subtracted.

"One core": the in-process figures run with the process pinned to a single CPU
(sched_setaffinity), single-threaded. texts/s is the median of several timed rounds.

A benchmark, not a test: it prints figures and writes bench/results/classifier.json.
Run: .venv/bin/python bench/classifier_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402
    OtherWork,
    machine,
    machine_line,
    other_work_line,
    percentile,
    table,
    verdict,
    write_results,
)
from shared.diagnosis.classifier import classify_text  # noqa: E402
from tests.guide_blocks import guide_blocks  # noqa: E402
from tests.packer_logs import customization_log  # noqa: E402

TARGET_TEXTS_PER_S = 20_000
TARGET_BIG_LOG_P99_MS = 20.0
TAILS = (
    "PACKER ERR ==> Builds finished but no artifacts were created.",
    "PACKER OUT ==> azure-arm: A system shutdown is in progress.(1115)\nPACKER OUT Build 'azure-arm' errored: "
    "unexpected EOF",
    "PACKER OUT     azure-arm: IMAGE_STATE_UNDEPLOYABLE\n" * 30,
)


@contextmanager
def one_core() -> Iterator[int | None]:
    """Pins this process to one CPU for the block (the CPU's number, or None where unsupported)."""
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    before = os.sched_getaffinity(0)
    cpu = max(before)  # the last CPU: away from whatever the shell and IRQs favour on CPU 0
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


def guide_sized_texts() -> list[str]:
    texts = [b.text for b in guide_blocks() if len(b.text) <= 2000]
    corpus = ROOT / "tests" / "corpus" / "variants.jsonl"
    if corpus.exists():
        texts += [json.loads(line)["text"] for line in corpus.read_text().splitlines() if line.strip()]
    return [t for t in texts if len(t) <= 2000]


def texts_per_second(texts: list[str], seconds: float) -> float:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for text in texts:
            classify_text(text)
        done += len(texts)
    return done / (time.perf_counter() - start)


def big_log_latencies(runs: int, logs: int) -> list[float]:
    """Seconds per classify_text call on ~1 MB customization logs (one untimed call per log first)."""
    texts = [customization_log(TAILS[i % len(TAILS)], size=1_000_000, seed=i) for i in range(logs)]
    for text in texts:
        classify_text(text)
    times: list[float] = []
    for i in range(runs):
        start = time.perf_counter()
        classify_text(texts[i % len(texts)])
        times.append(time.perf_counter() - start)
    return times


def _run_jsonl(payload: bytes, workers: int, expected: int) -> float:
    cmd = [sys.executable, "-m", "shared.entry.cli", "diagnose", "--jsonl", "--workers", str(workers)]
    start = time.perf_counter()
    out = subprocess.run(cmd, input=payload, capture_output=True, cwd=ROOT, check=True)
    elapsed = time.perf_counter() - start
    written = out.stdout.count(b"\n")
    if written != expected:
        raise RuntimeError(f"diagnose --jsonl wrote {written} lines for {expected}")
    return elapsed


def jsonl_figures(texts: list[str], lines: int, workers: int, repeats: int) -> dict[str, float]:
    """Whole-process lines/s (median of `repeats`), and with the start-up (an empty input) subtracted."""
    payload = "".join(
        json.dumps({"text": texts[i % len(texts)], "source": None}) + "\n" for i in range(lines)
    ).encode()
    startup = statistics.median(_run_jsonl(b"", workers, 0) for _ in range(3))
    elapsed = statistics.median(_run_jsonl(payload, workers, lines) for _ in range(repeats))
    return {"workers": workers, "lines": lines, "seconds": elapsed, "startup_s": startup,
            "lines_per_s": lines / elapsed, "lines_per_s_after_startup": lines / max(elapsed - startup, 1e-9)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="classifier throughput and latency")
    parser.add_argument("--quick", action="store_true", help="smoke run (a few seconds)")
    args = parser.parse_args(argv)
    quick = args.quick
    rounds, seconds = (3, 0.5) if quick else (7, 2.0)
    log_runs, log_count = (30, 3) if quick else (300, 6)
    jsonl_lines, jsonl_repeats = (10_000, 1) if quick else (60_000, 3)

    info = machine()
    print(machine_line(info))
    texts = guide_sized_texts()
    mean_len = statistics.mean(len(t) for t in texts)
    others = OtherWork()
    with one_core() as cpu:
        texts_per_second(texts, 0.2)  # warm-up: imports, caches, regex compilation
        rates = [texts_per_second(texts, seconds) for _ in range(rounds)]
        latencies = big_log_latencies(log_runs, log_count)
    rate = statistics.median(rates)
    p50, p90, p99 = (percentile(latencies, q) * 1e3 for q in (50, 90, 99))
    worst = max(latencies) * 1e3
    jsonl = [jsonl_figures(texts, jsonl_lines, w, jsonl_repeats) for w in sorted({os.cpu_count() or 1, 1},
                                                                                 reverse=True)]

    other_pct = others.percent()
    v_rate = verdict(rate, TARGET_TEXTS_PER_S, higher_is_better=True)
    v_p99 = verdict(p99, TARGET_BIG_LOG_P99_MS)
    rows: list[list[str]] = [
        ["classifier, one core (texts/s)", f"{rate:,.0f}", f">= {TARGET_TEXTS_PER_S:,}", v_rate,
         f"median of {rounds} x {seconds:g} s; min {min(rates):,.0f}, max {max(rates):,.0f}; "
         f"{len(texts)} texts, mean {mean_len:.0f} chars"],
        ["1 MB Packer log p50 (ms)", f"{p50:.1f}", "", "", f"{log_runs} calls over {log_count} logs"],
        ["1 MB Packer log p90 (ms)", f"{p90:.1f}", "", "", ""],
        ["1 MB Packer log p99 (ms)", f"{p99:.1f}", f"<= {TARGET_BIG_LOG_P99_MS:g}", v_p99, f"max {worst:.1f} ms"],
    ]
    for j in jsonl:
        rows.append([f"diagnose --jsonl, {j['workers']} worker(s) (lines/s)", f"{j['lines_per_s']:,.0f}", "", "",
                     f"{j['lines']:,} lines in {j['seconds']:.2f} s, start-up incl."])
        rows.append([f"  same, start-up ({j['startup_s'] * 1e3:.0f} ms) subtracted",
                     f"{j['lines_per_s_after_startup']:,.0f}", "", "", ""])
    print(f"\nclassifier ({'quick' if quick else 'full'}; pinned to CPU {cpu})")
    print(table(["figure", "value", "target", "verdict", "notes"], rows, align="lrrll"))
    print(other_work_line(other_pct))

    result: dict[str, Any] = {
        "name": "classifier",
        "mode": "quick" if quick else "full",
        "machine": info,
        "pinned_cpu": cpu,
        "other_work_pct": round(other_pct, 1),
        "texts": {"count": len(texts), "mean_chars": round(mean_len, 1)},
        "texts_per_s": {"median": round(rate, 1), "rounds": [round(r, 1) for r in rates], "seconds_each": seconds,
                        "target": TARGET_TEXTS_PER_S, "verdict": v_rate},
        "big_log_ms": {"runs": log_runs, "logs": log_count, "p50": round(p50, 3), "p90": round(p90, 3),
                       "p99": round(p99, 3), "max": round(worst, 3), "target_p99": TARGET_BIG_LOG_P99_MS,
                       "verdict": v_p99},
        "jsonl": [{k: round(v, 4) if isinstance(v, float) else v for k, v in j.items()} for j in jsonl],
        "verdicts": {"texts_per_s": v_rate, "big_log_p99": v_p99},
    }
    path = write_results("classifier", result)
    print(f"\nverdicts: texts/s {rate:,.0f} (>= {TARGET_TEXTS_PER_S:,}) {v_rate}, "
          f"1 MB log p99 {p99:.1f} ms (<= {TARGET_BIG_LOG_P99_MS:g} ms) {v_p99}")
    print(f"results: {path.relative_to(ROOT)}")
    return result


if __name__ == "__main__":
    main()
