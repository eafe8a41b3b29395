"""Classifier figures: texts per second on guide-sized messages (one core), latency on
1 MB Packer logs, and `remediator diagnose --jsonl` lines per second (whole process).

A benchmark, not a test: it prints figures. Run: .venv/bin/python bench/classifier_bench.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.classifier import classify_text  # noqa: E402
from tests.conftest import SEEDS  # noqa: E402
from tests.guide_blocks import guide_blocks  # noqa: E402
from tests.packer_logs import customization_log  # noqa: E402

TAILS = (
    "PACKER ERR ==> Builds finished but no artifacts were created.",
    "PACKER OUT ==> azure-arm: A system shutdown is in progress.(1115)\nPACKER OUT Build 'azure-arm' errored: "
    "unexpected EOF",
    "PACKER OUT     azure-arm: IMAGE_STATE_UNDEPLOYABLE\n" * 30,
)


def guide_sized_texts() -> list[str]:
    texts = [b.text for b in guide_blocks(SEEDS) if len(b.text) <= 2000]
    corpus = ROOT / "tests" / "corpus" / "variants.jsonl"
    if corpus.exists():
        texts += [json.loads(line)["text"] for line in corpus.read_text().splitlines() if line.strip()]
    return [t for t in texts if len(t) <= 2000]


def texts_per_second(texts: list[str], seconds: float = 3.0) -> float:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for text in texts:
            classify_text(text)
        done += len(texts)
    return done / (time.perf_counter() - start)


def big_log_latency(runs: int = 60) -> tuple[float, float]:
    logs = [customization_log(TAILS[i % len(TAILS)], size=1_000_000, seed=i) for i in range(6)]
    times: list[float] = []
    for i in range(runs):
        start = time.perf_counter()
        classify_text(logs[i % len(logs)])
        times.append(time.perf_counter() - start)
    times.sort()
    return statistics.median(times) * 1e3, times[max(0, int(len(times) * 0.99) - 1)] * 1e3


def jsonl_lines_per_second(texts: list[str], lines: int = 60_000) -> float:
    payload = "".join(
        json.dumps({"text": texts[i % len(texts)], "source": None}) + "\n" for i in range(lines)
    ).encode()
    cmd = [sys.executable, "-m", "shared.cli", "diagnose", "--jsonl"]
    start = time.perf_counter()
    out = subprocess.run(cmd, input=payload, capture_output=True, cwd=ROOT, check=True)
    elapsed = time.perf_counter() - start
    assert out.stdout.count(b"\n") == lines
    return lines / elapsed


def main() -> None:
    texts = guide_sized_texts()
    mean_len = statistics.mean(len(t) for t in texts)
    print(f"machine: {os.cpu_count()} cpu, python {sys.version.split()[0]}")
    print(f"classifier, one core: {texts_per_second(texts):,.0f} texts/s "
          f"({len(texts)} guide-sized texts, mean {mean_len:.0f} chars)")
    p50, p99 = big_log_latency()
    print(f"1 MB Packer log: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(f"diagnose --jsonl (whole process, incl. start-up): {jsonl_lines_per_second(texts):,.0f} lines/s")


if __name__ == "__main__":
    main()
