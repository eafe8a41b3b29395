"""The Update Manager sweep over a large estate: 5,000 VMs on the local Azure double.

The double (its HTTP server in this process) holds `sandbox.estate.fleet_estate(N)`: N VMs over 4
subscriptions x 5 resource groups, each assigned to its subscription's weekly schedule, with their
instance views, configuration assignments, the last run's `applyupdates` and `patchinstallationresources`
rows; about 10% failed that run (Failed, window exceeded, or deallocated). The unmodified Azure SDK
clients talk to it, as in the tests.

Measured per round, on a fresh double:
- `scan`: `shared.diagnosis.update_manager.scan`, the Update Manager discovery alone: four Resource
  Graph queries (resources, maintenanceresources, patchinstallationresources, patchassessmentresources)
  over the batches of subscriptions, every page, then every per-machine diagnosis;
- `sweep`: `shared.decisions.sweep.sweep` over the same subscriptions (observe mode, dry run): every
  discovery of the product (providers, image templates, Automation, Update Manager) and the planning of
  every remediation the findings name.
Checked: no request reads a machine one by one (only `resourceGraph.resources` and `providers.get`
during `scan`), and every failing machine of the fleet is found.

Target: the sweep of 5,000 VMs under 30 s.

Run: .venv/bin/python bench/update_manager_sweep.py [--quick] [--vms N] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import machine, machine_line, table, verdict, write_results  # noqa: E402
from remediations.context import Context  # noqa: E402
from remediations.limits import Limits  # noqa: E402
from remediations.vault import MemoryVault  # noqa: E402
from sandbox import AzureDouble  # noqa: E402
from sandbox.estate import fleet_estate  # noqa: E402
from shared.azure.clients import Clients  # noqa: E402
from shared.azure.endpoints import Endpoints  # noqa: E402
from shared.azure.retry import RetryPolicy  # noqa: E402
from shared.decisions.policy import Policy, PolicyMode  # noqa: E402
from shared.decisions.sweep import sweep  # noqa: E402
from shared.diagnosis.update_manager import scan  # noqa: E402

TARGET_SECONDS = 30.0


def _context(double: AzureDouble) -> Context:
    return Context(clients=Clients(Endpoints(arm=double.arm_url, logs=double.logs_url), polling_interval=0),
                   limits=Limits(), vault=MemoryVault(), retry=RetryPolicy(attempts=5, sleep=lambda _s: None),
                   workspace_id=None, sleep=lambda _s: None)


def _round(vms: int, seed: int) -> dict[str, Any]:
    estate = fleet_estate(vms, seed=seed)
    subscriptions = sorted(v for k, v in estate.refs.items() if k.startswith("fleet:subscription:"))
    with AzureDouble(estate=estate, poll_after=1) as double:
        ctx = _context(double)
        started = time.perf_counter()
        found = scan(ctx, subscriptions)
        scan_seconds = time.perf_counter() - started
        operations = Counter(r.operation for r in double.requests)
        double.clear_requests()
        started = time.perf_counter()
        findings = sweep(ctx, subscriptions, policy=Policy(PolicyMode.OBSERVE), dry_run=True)
        sweep_seconds = time.perf_counter() - started
    scenarios = Counter(f.diagnosis.scenario for f in found)
    # machines a diagnosis names: its own, and those merged into it (one window for a whole schedule)
    covered = {f.machine.rsplit("/", 1)[-1].lower() for f in found} | {
        line.removeprefix("also on ").rstrip(":").lower() for f in found for line in f.diagnosis.evidence
        if line.startswith("also on ")}
    return {"vms": vms, "scan_seconds": scan_seconds, "sweep_seconds": sweep_seconds,
            "graph_queries": operations.get("resourceGraph.resources", 0), "scan_requests": dict(operations),
            "diagnoses": len(found), "machines": len(covered), "fleet_failing": int(estate.refs["fleet:failing"]),
            "findings": len(findings), "scenarios": dict(scenarios)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Update Manager sweep over a large estate on the Azure double")
    parser.add_argument("--quick", action="store_true", help="1,000 VMs, one round")
    parser.add_argument("--vms", type=int, default=None, help="VMs in the estate (default 5,000)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds, each on a fresh double (default 3)")
    args = parser.parse_args(argv)
    vms = args.vms or (1000 if args.quick else 5000)
    rounds = args.rounds or (1 if args.quick else 3)
    info = machine()
    print(machine_line(info))
    results = [_round(vms, seed) for seed in range(rounds)]
    for r in results:
        per_machine = [op for op in r["scan_requests"] if op not in ("resourceGraph.resources", "providers.get")]
        if per_machine:
            raise SystemExit(f"the scan read machines one by one: {per_machine}")
        if r["machines"] < r["fleet_failing"]:
            raise SystemExit(f"the scan found {r['machines']} of the {r['fleet_failing']} failing machines")
    sweep_median = statistics.median(r["sweep_seconds"] for r in results)
    scan_median = statistics.median(r["scan_seconds"] for r in results)
    rows = [[i + 1, r["vms"], f"{r['scan_seconds']:.2f}", f"{r['sweep_seconds']:.2f}", r["graph_queries"],
             r["fleet_failing"], r["machines"], r["diagnoses"], r["findings"]] for i, r in enumerate(results)]
    print(table(["round", "VMs", "scan s", "sweep s", "graph queries", "failing (seeded)", "machines found",
                 "diagnoses", "findings"], rows))
    print("scenarios (last round): " + ", ".join(f"{k} {v}" for k, v in sorted(results[-1]["scenarios"].items())))
    print(table(["measure", "value", "target", "verdict"], [
        [f"sweep of {vms:,} VMs (median s)", f"{sweep_median:.2f}", f"<= {TARGET_SECONDS:.0f}",
         verdict(sweep_median, TARGET_SECONDS)],
        [f"Update Manager scan of {vms:,} VMs (median s)", f"{scan_median:.2f}", f"<= {TARGET_SECONDS:.0f}",
         verdict(scan_median, TARGET_SECONDS)],
    ]))
    result = {"machine": info, "vms": vms, "rounds": results, "sweep_median_seconds": sweep_median,
              "scan_median_seconds": scan_median, "target_seconds": TARGET_SECONDS,
              "verdict": verdict(sweep_median, TARGET_SECONDS)}
    print(f"results: {write_results('update_manager_sweep', result)}")
    return result


if __name__ == "__main__":
    main()
