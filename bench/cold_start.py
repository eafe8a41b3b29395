"""Cold start: what a fresh Functions worker pays to load the app.

N rounds (default 30, --quick 5); in each round, in rotating order, a fresh process per candidate:
  floor         `import azure.functions` alone (what the Python worker loads anyway)
  function_app  `import function_app` (this app's bindings module, cwd = repo root)
  c7n           `import c7n_azure.function` (Cloud Custodian's Azure Functions entry point, from the
                c7n-azure PyPI package, installed once into .tools/c7n-venv with the same Python)
plus `python -c pass` for each interpreter, so interpreter start-up can be subtracted.

Per candidate: the import's own time (perf_counter around the import, in the child), the whole
process's wall time (parent side, fork to exit), that minus the interpreter's `-c pass` median,
CPU time, and peak resident memory (VmHWM from /proc/self/status, read by the child after the
import). Then the ratios against the targets: function_app / floor <= 1.5x and function_app / c7n
<= 0.35x (judged on the import time; the process-time ratios are shown beside it). Finally
`python -X importtime` attributes the import time to modules and packages.

A warm-up round (untimed) runs first, so .pyc files exist and the page cache is warm: these are
fresh-process figures on a warm disk, like a Functions worker restarting on the same instance.

Run: .venv/bin/python bench/cold_start.py [--quick] [--rounds N] [--no-c7n]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
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

C7N_VERSION = "0.7.52"  # c7n-azure, pinned (c7n 0.9.53 comes with it)
C7N_VENV = ROOT / ".tools" / "c7n-venv"
C7N_PYTHON = C7N_VENV / "bin" / "python"
VENV_PYTHON = Path(sys.executable)
TARGET_VS_FLOOR = 1.5
TARGET_VS_C7N = 0.35

# Runs in the child: time the import itself, then read peak and current RSS (kB) before printing.
CHILD = (
    "import time\n"
    "t = time.perf_counter()\n"
    "{statement}\n"
    "d = time.perf_counter() - t\n"
    "f = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines() if ':' in l)\n"
    "print(repr(d), f['VmHWM'].split()[0], f['VmRSS'].split()[0])\n"
)


@dataclass(frozen=True)
class Candidate:
    name: str
    python: Path
    module: str | None  # None: `pass` (interpreter start-up only)
    interpreter: str  # which `pass` baseline to subtract

    @property
    def statement(self) -> str:
        return f"import {self.module}" if self.module else "pass"


@dataclass
class Samples:
    wall: list[float] = field(default_factory=list)
    imp: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    hwm_kb: list[int] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME",
                 "PYTHONTRACEMALLOC", "PYTHONDEVMODE", "PYTHONWARNINGS"):
        env.pop(name, None)
    return env


def ensure_c7n(*, install: bool = True) -> str | None:
    """The c7n-azure version in .tools/c7n-venv, installing it there (once) if needed; None if unavailable."""
    probe = "import importlib.metadata as m, c7n_azure; print(m.version('c7n-azure'))"
    if C7N_PYTHON.exists():
        found = subprocess.run([str(C7N_PYTHON), "-c", probe], capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip() == C7N_VERSION:
            return C7N_VERSION
    if not install:
        return None
    print(f"installing c7n-azure=={C7N_VERSION} into {C7N_VENV.relative_to(ROOT)} (once; takes a minute) ...",
          flush=True)
    C7N_VENV.parent.mkdir(parents=True, exist_ok=True)
    steps = [[sys.executable, "-m", "venv", str(C7N_VENV)],
             [str(C7N_PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check",
              f"c7n-azure=={C7N_VERSION}"]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False, timeout=1800)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
            print(f"could not install c7n-azure ({' '.join(step[:4])} ...):\n{tail}", file=sys.stderr)
            return None
    return ensure_c7n(install=False)


def run_once(candidate: Candidate, env: dict[str, str]) -> tuple[float, float, float, int, int]:
    """(process wall s, import s, CPU s, VmHWM kB, VmRSS kB) of one fresh process."""
    code = CHILD.format(statement=candidate.statement)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([str(candidate.python), "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{candidate.name}: `{candidate.statement}` failed:\n{done.stderr[-2000:]}")
    imp, hwm, rss = done.stdout.split()
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, float(imp), cpu, int(hwm), int(rss)


# ------------------------------------------------------------------------------------------------
# -X importtime attribution

_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")


def importtime_rows(python: Path, statement: str, env: dict[str, str]) -> list[tuple[str, int, int, int]]:
    """(module, depth, self us, cumulative us) for every module the statement imported (start-up excluded)."""
    done = subprocess.run([str(python), "-X", "importtime", "-c", statement], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    rows: list[tuple[str, int, int, int]] = []
    for line in done.stderr.splitlines():
        found = _LINE.match(line)
        if found:
            depth = (len(found.group(3)) - 1) // 2
            rows.append((found.group(4), depth, int(found.group(1)), int(found.group(2))))
    # start-up imports end with `site` at depth 0; everything after it is the statement's
    ends = [i for i, (name, depth, _s, _c) in enumerate(rows) if name == "site" and depth == 0]
    return rows[ends[-1] + 1:] if ends else rows


def attribute(python: Path, module: str, env: dict[str, str], runs: int) -> dict[str, Any]:
    """Median self/cumulative time per module over `runs` processes, and self time summed per top-level package."""
    selfs: dict[str, list[int]] = {}
    cumul: dict[str, list[int]] = {}
    depth_of: dict[str, int] = {}
    order: list[str] = []
    for _ in range(runs):
        for name, depth, self_us, cum_us in importtime_rows(python, f"import {module}", env):
            if name not in depth_of:
                order.append(name)
            depth_of.setdefault(name, depth)
            selfs.setdefault(name, []).append(self_us)
            cumul.setdefault(name, []).append(cum_us)
    med_self = {n: statistics.median(v) for n, v in selfs.items()}
    med_cum = {n: statistics.median(v) for n, v in cumul.items()}
    packages: dict[str, float] = {}
    for name, value in med_self.items():
        top = name.split(".")[0]
        packages[top] = packages.get(top, 0.0) + value
    total = sum(med_self.values())
    return {
        "module": module,
        "runs": runs,
        "modules_imported": len(med_self),
        "total_self_ms": round(total / 1e3, 2),
        "by_cumulative": [{"module": n, "depth": depth_of[n], "cumulative_ms": round(med_cum[n] / 1e3, 2),
                           "self_ms": round(med_self[n] / 1e3, 2)}
                          for n in sorted(med_cum, key=lambda n: -med_cum[n])[:20]],
        "by_self": [{"module": n, "self_ms": round(med_self[n] / 1e3, 2)}
                    for n in sorted(med_self, key=lambda n: -med_self[n])[:15]],
        "by_package": [{"package": p, "self_ms": round(v / 1e3, 2), "share": round(v / total, 3) if total else 0.0}
                       for p, v in sorted(packages.items(), key=lambda kv: -kv[1])[:15]],
    }


# ------------------------------------------------------------------------------------------------


def summarise(samples: Samples) -> dict[str, float]:
    return {
        "process_ms_median": statistics.median(samples.wall) * 1e3,
        "process_ms_p90": percentile(samples.wall, 90) * 1e3,
        "import_ms_median": statistics.median(samples.imp) * 1e3,
        "import_ms_p90": percentile(samples.imp, 90) * 1e3,
        "cpu_ms_median": statistics.median(samples.cpu) * 1e3,
        "peak_rss_mb_median": statistics.median(samples.hwm_kb) / 1024,
        "rss_mb_median": statistics.median(samples.rss_kb) / 1024,
    }


def measure(candidates: list[Candidate], rounds: int, env: dict[str, str]) -> tuple[dict[str, Samples], float]:
    """One untimed warm-up round (.pyc written, page cache warm), then `rounds` rounds in rotating order."""
    samples = {c.name: Samples() for c in candidates}
    for candidate in candidates:
        run_once(candidate, env)
    started = time.perf_counter()
    for r in range(rounds):
        shift = r % len(candidates)
        for candidate in candidates[shift:] + candidates[:shift]:
            wall, imp, cpu, hwm, rss = run_once(candidate, env)
            s = samples[candidate.name]
            s.wall.append(wall)
            s.imp.append(imp)
            s.cpu.append(cpu)
            s.hwm_kb.append(hwm)
            s.rss_kb.append(rss)
    return samples, time.perf_counter() - started


def statistics_of(candidates: list[Candidate], samples: dict[str, Samples]) -> dict[str, dict[str, float]]:
    stats = {c.name: summarise(samples[c.name]) for c in candidates}
    for c in candidates:
        base = stats[c.interpreter]
        stats[c.name]["process_minus_startup_ms"] = stats[c.name]["process_ms_median"] - base["process_ms_median"]
        stats[c.name]["peak_rss_over_interpreter_mb"] = (stats[c.name]["peak_rss_mb_median"]
                                                         - base["peak_rss_mb_median"])
    return stats


def print_candidates(candidates: list[Candidate], stats: dict[str, dict[str, float]]) -> None:
    rows = []
    for c in candidates:
        st = stats[c.name]
        label = c.name if c.module is None else f"{c.name} ({c.module})"
        rows.append([label, f"{st['import_ms_median']:.1f}", f"{st['import_ms_p90']:.1f}",
                     f"{st['process_ms_median']:.1f}", f"{st['process_ms_p90']:.1f}",
                     f"{st['process_minus_startup_ms']:.1f}" if c.module else "-",
                     f"{st['cpu_ms_median']:.1f}", f"{st['peak_rss_mb_median']:.1f}",
                     f"{st['peak_rss_over_interpreter_mb']:+.1f}" if c.module else "-"])
    print(table(["candidate", "import p50", "import p90", "process p50", "process p90", "process-startup",
                 "CPU p50", "peak RSS", "RSS vs bare"], rows))


def compare(stats: dict[str, dict[str, float]], with_c7n: bool) -> list[dict[str, Any]]:
    """function_app against the floor and c7n on every metric; the import time is the gated one."""
    comparisons: list[dict[str, Any]] = []
    pairs = [("floor", TARGET_VS_FLOOR)] + ([("c7n", TARGET_VS_C7N)] if with_c7n else [])
    for other, target in pairs:
        for metric, label in (("import_ms_median", "import time"),
                              ("process_minus_startup_ms", "process - interpreter start-up"),
                              ("process_ms_median", "whole process"),
                              ("peak_rss_mb_median", "peak RSS")):
            base = stats[other][metric]
            value = stats["function_app"][metric] / base if base > 0 else float("nan")
            judged = metric == "import_ms_median"
            comparisons.append({"pair": f"function_app / {other}", "metric": label, "ratio": round(value, 3),
                                "target": target, "verdict": verdict(value, target) if judged else None,
                                "gate": judged})
    print("\nratios (the import time is the gate; the others are shown for context)")
    print(table(["ratio", "metric", "value", "target", "verdict"],
                [[c["pair"], c["metric"], f"{c['ratio']:.2f}x", f"<= {c['target']}x" if c["gate"] else "",
                  c["verdict"] or ""] for c in comparisons], align="llrrl"))
    return comparisons


def print_attribution(attributions: dict[str, dict[str, Any]], runs: int) -> None:
    fa = attributions["function_app"]
    print(f"\n`python -X importtime -c 'import function_app'` (median of {runs}; "
          f"{fa['modules_imported']} modules, {fa['total_self_ms']:.1f} ms self time in all)")
    print(table(["module (indent = nesting)", "cumulative ms", "self ms"],
                [["  " * e["depth"] + e["module"], f"{e['cumulative_ms']:.1f}", f"{e['self_ms']:.1f}"]
                 for e in fa["by_cumulative"][:15]], align="lrr"))
    print("\nself time by top-level package")
    print(table(["package", "function_app ms", "share"],
                [[p["package"], f"{p['self_ms']:.1f}", f"{p['share']:.0%}"] for p in fa["by_package"][:10]]))
    if "c7n" in attributions:
        c7 = attributions["c7n"]
        print(f"\nc7n_azure.function: {c7['modules_imported']} modules, {c7['total_self_ms']:.1f} ms self time; "
              "by top-level package")
        print(table(["package", "c7n ms", "share"],
                    [[p["package"], f"{p['self_ms']:.1f}", f"{p['share']:.0%}"] for p in c7["by_package"][:10]]))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="cold start of function_app against azure.functions and c7n")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 rounds, 1 importtime run")
    parser.add_argument("--rounds", type=int, default=None, help="fresh processes per candidate (default 30)")
    parser.add_argument("--no-c7n", action="store_true", help="skip Cloud Custodian (no install, no comparison)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 30)
    importtime_runs = 1 if args.quick else 5
    env = child_env()
    info = machine()
    print(machine_line(info))

    c7n_version = None if args.no_c7n else ensure_c7n()
    candidates = [
        Candidate("floor", VENV_PYTHON, "azure.functions", "python"),
        Candidate("function_app", VENV_PYTHON, "function_app", "python"),
        Candidate("python", VENV_PYTHON, None, "python"),
    ]
    if c7n_version:
        candidates += [Candidate("c7n", C7N_PYTHON, "c7n_azure.function", "python (c7n venv)"),
                       Candidate("python (c7n venv)", C7N_PYTHON, None, "python (c7n venv)")]
    others = OtherWork()
    samples, elapsed = measure(candidates, rounds, env)
    other_pct = others.percent()
    stats = statistics_of(candidates, samples)
    print(f"\ncold start: {rounds} rounds x {len(candidates)} fresh processes, rotating order "
          f"({elapsed:.0f} s); times in ms, memory in MB")
    print_candidates(candidates, stats)
    print(other_work_line(other_pct))
    comparisons = compare(stats, c7n_version is not None)

    attributions = {"function_app": attribute(VENV_PYTHON, "function_app", env, importtime_runs)}
    if c7n_version:
        attributions["c7n"] = attribute(C7N_PYTHON, "c7n_azure.function", env, importtime_runs)
    print_attribution(attributions, importtime_runs)

    gate = [c for c in comparisons if c["gate"]]
    result: dict[str, Any] = {
        "name": "cold_start",
        "mode": "quick" if args.quick else "full",
        "machine": info,
        "rounds": rounds,
        "other_work_pct": round(other_pct, 1),
        "c7n_azure_version": c7n_version,
        "candidates": {c.name: {"python": str(c.python), "statement": c.statement, **{
            k: round(v, 3) for k, v in stats[c.name].items()}} for c in candidates},
        "samples_ms": {c.name: {"import": [round(x * 1e3, 3) for x in samples[c.name].imp],
                                "process": [round(x * 1e3, 3) for x in samples[c.name].wall]} for c in candidates},
        "ratios": comparisons,
        "verdicts": {c["pair"]: c["verdict"] for c in gate},
        "importtime": attributions,
    }
    path = write_results("cold_start", result)
    print("\nverdicts: " + ", ".join(f"{c['pair']} = {c['ratio']:.2f}x (<= {c['target']}x) {c['verdict']}"
                                    for c in gate))
    print(f"results: {path.relative_to(ROOT)}")
    return result


if __name__ == "__main__":
    main()
