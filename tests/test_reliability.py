"""Reliability: remediations complete through throttling, server errors, dropped
connections and slow answers, and never change anything twice; a process killed between
a template's delete and its recreate loses nothing; storage restarting mid-run loses and
doubles no work; a burst of 1,000 events leaves every event with a final ledger state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from remediations.base import Result
from remediations.runner import execute
from sandbox import AzureDouble, sandbox_estate
from shared.azure.retry import RetryPolicy
from shared.decisions.pipeline import handle_event
from shared.decisions.policy import Policy, PolicyMode
from shared.wiring import App
from tests.azurite import Azurite
from tests.conftest import ROOT
from tests.pipeline_helpers import arm_failure_event, drain
from tests.sandbox import Sleeps, make_context
from tests.test_remediations import CASES, WRITES, target

WRITE_OPERATIONS = ("imageTemplates.run", "imageTemplates.put", "imageTemplates.delete", "imageTemplates.patch",
                    "softwareUpdateConfigurations.put", "maintenanceConfigurations.patch", "providers.register")


def applied_writes(double: AzureDouble) -> Counter[str]:
    """Writes the double carried out (answered 2xx): what changed, however often it was tried."""
    return Counter(f"{r.method} {r.operation}" for r in double.requests
                   if r.method in WRITES and 200 <= r.status < 300 and r.operation in WRITE_OPERATIONS)


def hostile(double: AzureDouble) -> None:
    double.faults.seed(7)
    double.faults.set_rate("*", 0.30, status=429, retry_after=1)  # reads: throttled
    for operation in WRITE_OPERATIONS:
        double.faults.set_rate(operation, 0.20, status=500, retry_after=None)  # writes: server errors
    double.faults.drop_rate("*", 0.05)
    double.faults.set_latency("*", 15)


@pytest.mark.parametrize(("name", "ref"), CASES, ids=[f"{n}:{r.split(':')[-1]}" for n, r in CASES])
def test_every_remediation_completes_under_faults_and_changes_once(name: str, ref: str) -> None:
    with AzureDouble(estate=sandbox_estate(), poll_after=1) as calm:
        calm_outcome = execute(name, target(calm, ref), {}, make_context(calm))
        expected = applied_writes(calm)
    with AzureDouble(estate=sandbox_estate(), poll_after=1) as rough:
        hostile(rough)
        sleeps = Sleeps()
        ctx = make_context(rough, sleeps)
        ctx.retry = RetryPolicy(attempts=12, sleep=sleeps, jitter=lambda: 0.0)
        outcome = execute(name, target(rough, ref), {}, ctx)
        assert outcome.result is Result.APPLIED, outcome.error
        assert [c.to_dict() for c in outcome.changes] == [c.to_dict() for c in calm_outcome.changes]
        assert applied_writes(rough) == expected, "every change happened exactly once"
        faulted = [r for r in rough.requests if r.status in (0, 429, 500)]
        assert faulted, "the double did inject faults"
        assert 1.0 in sleeps.calls, "Retry-After was honoured"
        rough.faults.clear()
        assert execute(name, target(rough, ref), {}, ctx).result is Result.NOOP


def test_a_process_killed_between_delete_and_recreate_is_restored_by_the_next_attempt(
        double: AzureDouble, tmp_path: Path) -> None:
    tpl = double.refs["template:tpl-win2022-timeout"]
    env = {**os.environ, "REMEDIATOR_ARM_ENDPOINT": double.arm_url, "REMEDIATOR_LOGS_ENDPOINT": double.logs_url,
           "REMEDIATOR_VAULT_DIR": str(tmp_path / "vault")}
    double.faults.set_latency("imageTemplates.put", 30_000)  # the recreate hangs: a window to kill in
    proc = subprocess.Popen([sys.executable, "-m", "shared.entry.cli", "run", "increase-image-build-timeout",
                             "--target", tpl, "--json"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while double.state.get(tpl) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert double.state.get(tpl) is None, "the template was deleted"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert list((tmp_path / "vault").glob("*.json")), "the definition was kept before the delete"
    double.faults.clear()
    double.state.finish_operations()
    if double.state.get(tpl) is None:  # the hung PUT never landed: the next attempt restores it
        again = subprocess.run([sys.executable, "-m", "shared.entry.cli", "run", "increase-image-build-timeout",
                                "--target", tpl, "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=120, check=False)
        assert again.returncode == 0, again.stdout + again.stderr
        assert '"action": "restore"' in again.stdout
    body = double.state.get(tpl)
    assert body is not None and body["properties"]["buildTimeoutInMinutes"] == 120
    assert body["properties"]["customize"], "the definition came back whole"
    assert not list((tmp_path / "vault").glob("*.json")), "the vault lets go once the template is back"


def _failed_templates(double: AzureDouble, count: int) -> list[str]:
    """`count` more templates whose last build produced no artifacts (each fixed by one rerun)."""
    import copy

    base = double.refs["template:tpl-rhel-noartifacts"]
    body = double.state.get(base)
    assert body is not None
    made = []
    for n in range(count):
        tid = f"{base}-{n:03d}"
        clone = copy.deepcopy(body)
        clone["id"], clone["name"] = tid, tid.rsplit("/", 1)[-1]
        double.state.put(tid, clone)
        made.append(tid)
    return made


def test_a_burst_of_1000_events_leaves_every_event_with_a_final_ledger_state(app: App, double: AzureDouble) -> None:
    app.policy = Policy(PolicyMode.AUTO, max_changes_per_hour=100)
    templates = _failed_templates(double, 50)
    events = [arm_failure_event(templates[n % 50]) for n in range(1000)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda e: handle_event(e, app), events))
    drain(app, rounds=200)
    for event in events:
        record = app.ledger.get(f"event:{event['id']}")
        assert record is not None and record.state == "completed", event["id"]
    runs = Counter(r.path.split("/imageTemplates/")[1].split("/")[0]
                   for r in double.requests_for("imageTemplates.run", "POST") if r.status < 300)
    assert len(runs) == 50 and set(runs.values()) == {1}, "one change per failure, none lost, none doubled"


def test_the_circuit_breaker_stops_a_storm_at_the_changes_per_hour_limit(app: App, double: AzureDouble) -> None:
    app.policy = Policy(PolicyMode.AUTO, max_changes_per_hour=20)
    templates = _failed_templates(double, 30)
    for tid in templates:
        handle_event(arm_failure_event(tid), app)
    results = Counter(d["result"] for d in drain(app))
    assert results == {"applied": 20, "failed": 10}
    assert len([r for r in double.requests_for("imageTemplates.run", "POST") if r.status < 300]) == 20
    refused = [r for r in app.audit.query(kind="apply") if r.decision == "failed"]
    assert len(refused) == 10 and all("circuit breaker" in (r.reason or "") for r in refused)


def test_storage_restarting_mid_run_loses_and_doubles_no_work(app: App, double: AzureDouble,
                                                             azurite: Azurite) -> None:
    templates = _failed_templates(double, 12)
    events = [arm_failure_event(t) for t in templates]
    for event in events[:6]:
        handle_event(event, app)
    azurite.restart()  # the data survives; connections in flight do not
    pending = list(events[6:])
    for _ in range(20):  # Event Grid redelivers what raised, with backoff
        retry = []
        for event in pending:
            try:
                handle_event(event, app)
            except Exception:  # a failed delivery is retried, as Event Grid does
                retry.append(event)
        pending = retry
        if not pending:
            break
        time.sleep(0.5)
    assert not pending
    drain(app)
    runs = Counter(r.path.split("/imageTemplates/")[1].split("/")[0]
                   for r in double.requests_for("imageTemplates.run", "POST") if r.status < 300)
    assert len(runs) == 12 and set(runs.values()) == {1}
    assert all(app.ledger.get(f"event:{e['id']}").state == "completed" for e in events)  # type: ignore[union-attr]
