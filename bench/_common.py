"""What every benchmark script shares: the machine's description, percentiles, PASS/MISS
verdicts, plain-text tables and the JSON results in bench/results/ (never committed)."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
_GITIGNORE = "*\n!.gitignore\n"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def verdict(value: float, target: float, *, higher_is_better: bool = False) -> str:
    if math.isnan(value):
        return "MISS"
    ok = value >= target if higher_is_better else value <= target
    return "PASS" if ok else "MISS"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return math.nan


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def others_busy(seconds: float = 0.5) -> float:
    """Percent of all cores busy over `seconds` while this process sleeps: other work on the machine,
    which would skew every figure (others may be running test suites here)."""
    try:
        busy0, total0 = _cpu_times()
        time.sleep(seconds)
        busy1, total1 = _cpu_times()
    except (OSError, IndexError, ValueError):
        return math.nan
    return 100.0 * (busy1 - busy0) / max(total1 - total0, 1)


def _tree_cpu_seconds(pids: Sequence[int]) -> float:
    """CPU of this process, its waited-for children, and the given live processes."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:13]) / os.sysconf("SC_CLK_TCK")  # utime stime
    return total


class OtherWork:
    """How much CPU *other* processes used while a benchmark ran: all CPUs' busy time (/proc/stat)
    minus this process's, its children's, and any live helper's (e.g. Azurite) given by pid.
    Reported beside the figures: above ~15% of the cores they are skewed."""

    def __init__(self, pids: Sequence[int] = ()) -> None:
        self.start(pids)

    def start(self, pids: Sequence[int] = ()) -> None:
        self._pids = list(pids)
        self._wall = time.monotonic()
        self._busy, _ = _cpu_times()
        self._ours = _tree_cpu_seconds(self._pids)

    def percent(self, pids: Sequence[int] | None = None) -> float:
        """Percent of all cores used by others since start (helpers started since: pass their pids)."""
        pids = self._pids if pids is None else list(pids)
        wall = time.monotonic() - self._wall
        busy, _ = _cpu_times()
        busy_s = (busy - self._busy) / os.sysconf("SC_CLK_TCK")
        ours = _tree_cpu_seconds(pids) - self._ours
        cores = os.cpu_count() or 1
        return max(0.0, 100.0 * (busy_s - ours) / max(wall * cores, 1e-9))


def other_work_line(pct: float) -> str:
    note = "  <- figures skewed by other work" if pct >= 15 else ""
    return f"other work during the run: {pct:.0f}% of the cores{note}"


def wait_until_quiet(limit_pct: float, max_wait: float) -> float:
    """Waits (up to `max_wait` s) until other work uses under `limit_pct`% of the cores; returns the last reading."""
    deadline = time.monotonic() + max_wait
    reading = others_busy()
    while reading >= limit_pct and time.monotonic() < deadline:
        reading = others_busy(2.0)
    return reading


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, Python, the date, and how busy the machine was with other work."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "ram_gib": round(_ram_gib(), 1),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg_1min": round(load1, 2),
        "others_busy_pct": round(others_busy(), 1),
    }


def machine_line(info: dict[str, Any] | None = None) -> str:
    m = info or machine()
    line = (f"machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, "
            f"{m['implementation']} {m['python']}, {m['os']}, {m['date']}; "
            f"other work at start: {m['others_busy_pct']:.0f}% of the cores, load {m['loadavg_1min']:.2f}")
    if m["others_busy_pct"] >= 15:
        line += "\n  WARNING: the machine is busy with other work: figures will be low and noisy"
    return line


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, align: str | None = None) -> str:
    """A plain-text table; `align` has one letter per column, 'l' or 'r' (default: first left, rest right)."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    how = align or ("l" + "r" * (len(headers) - 1))

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, how, strict=True))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])]).rstrip()


def write_results(name: str, data: dict[str, Any]) -> Path:
    """bench/results/<name>.json (the folder's .gitignore keeps results out of git)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    ignore = RESULTS / ".gitignore"
    if not ignore.exists():
        ignore.write_text(_GITIGNORE)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    return path


def read_results(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    value = json.loads(path.read_text())
    return value if isinstance(value, dict) else None


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"
