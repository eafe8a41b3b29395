"""Update Manager's maintenance events end to end: the real SDK clients against the Azure double, the
events as Microsoft publishes them, the failed run fanned out per machine, the pre-run gate report,
and the sweep over Resource Graph.

The events follow the Event Grid schema of learn.microsoft.com/azure/event-grid/event-schema-maintenance-configuration
("Azure Maintenance Configuration as an Event Grid source"): `id` = the run's applyUpdates id, `subject` = the
configuration's *name*, `data` = correlationId (the run id), maintenanceConfigurationId, startDateTime,
endDateTime, resourceSubscriptionIds, and `status` (post only) or `cancellationCutOffDateTime` (pre only).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox import AzureDouble
from shared.decisions.pipeline import handle_event
from shared.decisions.policy import Policy, PolicyMode
from shared.decisions.sweep import Suspect, discover, sweep
from shared.decisions.update_manager import gate_card
from shared.diagnosis.envelopes import parse_payload
from shared.diagnosis.update_manager import gate
from shared.wiring import App


def _start(run_id: str) -> datetime:
    return datetime.strptime(run_id.rsplit("/", 1)[-1], "%Y%m%d%H%M%S").replace(tzinfo=UTC)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def maintenance_event(double: AzureDouble, kind: str, run_id: str, config_id: str, *, status: str | None = None,
                      event_id: str | None = None) -> dict[str, Any]:
    """A Microsoft.Maintenance.Pre/PostMaintenanceEvent in the Event Grid schema, as the page shows it."""
    start = _start(run_id)
    data: dict[str, Any] = {"correlationId": run_id, "maintenanceConfigurationId": config_id,
                            "startDateTime": _iso(start), "endDateTime": _iso(start + timedelta(hours=3)),
                            "resourceSubscriptionIds": [double.refs["um:subscription"]]}
    if kind == "PostMaintenanceEvent":
        data["status"] = status or "Failed"
        when = start + timedelta(hours=3, minutes=5)
    else:
        data["cancellationCutOffDateTime"] = _iso(start - timedelta(minutes=10))
        when = start - timedelta(minutes=35)
    return {"id": event_id or run_id, "topic": config_id, "subject": config_id.rsplit("/", 1)[-1],
            "data": data, "eventType": f"Microsoft.Maintenance.{kind}", "eventTime": _iso(when),
            "dataVersion": "1.0", "metadataVersion": "1"}


def _by_machine(app: App, event_id: str) -> dict[str, str]:
    return {str(r.target).rsplit("/", 1)[-1]: str(r.scenario) for r in app.audit.query(kind="diagnosis",
                                                                                       event_id=event_id)}


def test_a_failed_windows_run_is_diagnosed_per_machine(app: App, double: AzureDouble) -> None:
    run, config = double.refs["um:run:win"], double.refs["um:schedule:win"]
    diagnoses = handle_event(maintenance_event(double, "PostMaintenanceEvent", run, config, event_id="post-win"), app)
    by_scenario = {d.scenario: d for d in diagnoses}
    assert set(by_scenario) == {"aum.machine_unavailable", "um.maintenance_window_exceeded",
                                "aum.schedule_not_triggered", "aum.schedule_prereq_not_set"}
    assert "um.run_failed_linux" not in by_scenario, "a Windows run never gets the Linux package-manager scenario"
    assert by_scenario["aum.machine_unavailable"].failure is not None
    assert by_scenario["aum.machine_unavailable"].failure.resource_id == double.refs["aum.machine_unavailable:vm"]
    assert "patchinstallationresources.errorDetails.code: ShutdownOrUnresponsive" in \
        by_scenario["aum.machine_unavailable"].evidence
    audited = _by_machine(app, "post-win")
    assert audited["vm-um-off-01"] == "aum.machine_unavailable"
    assert audited["vm-um-missed-01"] == "aum.schedule_not_triggered"
    assert audited["mc-um-win-weekly"] == "um.maintenance_window_exceeded", "the window is the schedule's"
    assert "vm-um-ok-01" not in audited, "a machine that succeeded is no failure"
    decided = {(r.remediation, str(r.target).rsplit("/", 1)[-1])
               for r in app.audit.query(kind="decision", event_id="post-win")}
    assert ("extend-maintenance-window", "mc-um-win-weekly") in decided


def test_a_failed_linux_run_names_each_machines_own_cause(app: App, double: AzureDouble) -> None:
    run, config = double.refs["um:run:linux"], double.refs["um:schedule:linux"]
    handle_event(maintenance_event(double, "PostMaintenanceEvent", run, config, event_id="post-lnx"), app)
    audited = _by_machine(app, "post-lnx")
    assert audited["vm-um-sudo-01"] == "aum.linux_sudo_check_failed"
    assert audited["vm-um-rebootfail-01"] == "aum.reboot_not_completed"
    assert audited["vm-um-pkgmgr-01"] == "um.run_failed_linux"
    assert audited["vm-um-xenial-01"] == "aum.os_not_supported"
    assert "vm-um-dyn-01" not in audited


def test_the_run_is_read_from_resource_graph_by_its_correlation_id(app: App, double: AzureDouble) -> None:
    run, config = double.refs["um:run:win"], double.refs["um:schedule:win"]
    double.clear_requests()
    handle_event(maintenance_event(double, "PostMaintenanceEvent", run, config, event_id="post-graph"), app)
    queries = [json.loads(r.body or b"{}")["query"] for r in double.requests_for("resourceGraph.resources")]
    assert any("patchinstallationresources" in q and run.lower() in q.lower() for q in queries)
    assert any("maintenanceresources" in q and run.lower() in q.lower() for q in queries)


def test_a_run_cancelled_by_a_user_is_no_failure(app: App, double: AzureDouble) -> None:
    run, config = double.refs["none:user-cancelled-run"], double.refs["none:user-cancelled-schedule"]
    diagnoses = handle_event(maintenance_event(double, "PostMaintenanceEvent", run, config, status="Cancelled",
                                               event_id="post-usercancel"), app)
    assert [d.scenario for d in diagnoses] == ["none"]
    assert any("cancelled using cancellation API" in e for e in diagnoses[0].evidence)
    assert app.audit.query(kind="decision", event_id="post-usercancel") == []


def test_a_run_cancelled_by_the_platform_is_a_failure_of_each_of_its_machines(app: App, double: AzureDouble) -> None:
    run = double.refs["aum.run_cancelled_by_platform:run"]
    config = double.refs["aum.run_cancelled_by_platform:schedule"]
    diagnoses = handle_event(maintenance_event(double, "PostMaintenanceEvent", run, config, status="Cancelled",
                                               event_id="post-platform"), app)
    [cancelled] = diagnoses
    assert cancelled.scenario == "aum.run_cancelled_by_platform"
    assert cancelled.failure is not None
    assert cancelled.failure.resource_id == double.refs["aum.run_cancelled_by_platform:vm"]
    assert any("internal platform failure" in e for e in cancelled.evidence)
    assert [r.name for r in cancelled.remediations] == ["install-patches-now"]


def test_the_pre_maintenance_gate_reports_what_will_fail_and_why(app: App, double: AzureDouble,
                                                                 tmp_path: Path) -> None:
    run, config = double.refs["um:run:win"], double.refs["um:schedule:win"]
    diagnoses = handle_event(maintenance_event(double, "PreMaintenanceEvent", run, config, event_id="pre-win"), app)
    at_risk = {str(d.failure.resource_id).rsplit("/", 1)[-1]: d.scenario for d in diagnoses if d.failure}
    assert at_risk == {"vm-um-off-01": "aum.machine_unavailable", "vm-um-byos-01": "aum.schedule_prereq_not_set",
                       "vm-um-specialized-01": "aum.schedule_prereq_not_set"}
    off = next(d for d in diagnoses if d.scenario == "aum.machine_unavailable")
    assert "resources.powerState: PowerState/deallocated" in off.evidence
    assert [r.name for r in off.remediations] == ["start-machines-before-window"]
    [summary] = [r for r in app.audit.query(kind="diagnosis", event_id="pre-win") if r.decision == "gate"]
    assert summary.result is not None
    verdicts = {m["machine"].rsplit("/", 1)[-1]: m["verdict"] for m in summary.result["machines"]}
    assert verdicts["vm-um-ok-01"] == "ok" and verdicts["vm-um-off-01"] == "will fail"
    cards = list((tmp_path / "cards").glob("*gate-*.json"))
    assert len(cards) == 1, "one card per run"
    card = json.loads(cards[0].read_text())["attachments"][0]["content"]
    text = json.dumps(card)
    assert "3 of 6 machine(s) will fail" in text and "vm-um-off-01" in text and "Cancel until" in text
    assert not [r for r in double.requests if r.method in ("PUT", "PATCH", "POST", "DELETE")
                and "resourcegraph" not in r.path.lower()], "the gate changes nothing, and cancels no run"


def test_a_gate_event_delivered_twice_sends_one_card(app: App, double: AzureDouble, tmp_path: Path) -> None:
    run, config = double.refs["um:run:win"], double.refs["um:schedule:win"]
    event = maintenance_event(double, "PreMaintenanceEvent", run, config, event_id="pre-twice")
    handle_event(event, app)
    assert handle_event(event, app) == []
    assert len(list((tmp_path / "cards").glob("*gate-*.json"))) == 1


def test_the_gate_names_a_subscription_not_registered_for_maintenance(app: App, double: AzureDouble) -> None:
    run, config = double.refs["um:run:win"], double.refs["um:schedule:win"]
    double.state.set_provider_state("Microsoft.Maintenance", "NotRegistered", double.refs["um:subscription"])
    [event] = parse_payload(maintenance_event(double, "PreMaintenanceEvent", run, config))
    report = gate(app.ctx, event)
    scenarios = {line.machine.rsplit("/", 1)[-1]: line.scenario for line in report.at_risk}
    assert scenarios["vm-um-ok-01"] == "aum.provider_not_registered"
    found = next(d for d in report.diagnoses if d.diagnosis.scenario == "aum.provider_not_registered")
    assert found.target == f"/subscriptions/{double.refs['um:subscription']}"
    assert ("namespace", "Microsoft.Maintenance") in found.diagnosis.details


def test_the_gate_decides_by_the_cut_off_the_event_states(app: App, double: AzureDouble) -> None:
    """PreMaintenanceEvent carries cancellationCutOffDateTime (learn.microsoft.com/azure/update-manager/
    pre-post-events-schedule-maintenance-configuration, event schema): the gate's deadline is that time,
    not one worked out from the start."""
    run, config = double.refs["um:run:win"], double.refs["um:schedule:win"]
    event = maintenance_event(double, "PreMaintenanceEvent", run, config)
    event["data"]["cancellationCutOffDateTime"] = _iso(_start(run) - timedelta(minutes=25))
    [failure] = parse_payload(event)
    report = gate(app.ctx, failure)
    assert report.cancellation_cutoff == _start(run) - timedelta(minutes=25)
    del event["data"]["cancellationCutOffDateTime"]
    [without] = parse_payload(event)
    assert gate(app.ctx, without).cancellation_cutoff == _start(run) - timedelta(minutes=10)


def test_a_gate_card_with_many_machines_stays_within_teams_limits(app: App, double: AzureDouble) -> None:
    from shared.approvals.cards import MAX_CARD_BYTES, message
    from shared.diagnosis.update_manager import GateLine, GateReport

    lines = tuple(GateLine(f"/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm-{i}",
                           "will fail", "aum.machine_unavailable",
                           ("resources.powerState: PowerState/deallocated " * 8,))
                  for i in range(400))
    card = gate_card(GateReport("/subscriptions/s/resourceGroups/g/providers/Microsoft.Maintenance/"
                                "maintenanceConfigurations/mc", "run", datetime(2026, 11, 28, 3, tzinfo=UTC), None,
                                lines, ()))
    assert len(json.dumps(message(card)).encode()) <= MAX_CARD_BYTES
    assert "more (the audit trail has every machine)" in json.dumps(card)


AUM_SWEPT = {
    "aum.schedule_prereq_not_set": "aum.schedule_prereq_not_set:vm",
    "aum.periodic_assessment_not_enabled": "aum.periodic_assessment_not_enabled:vm",
    "aum.machine_unavailable": "aum.machine_unavailable:vm",
    "aum.extension_failed": "aum.extension_failed:vm",
    "aum.auto_assessment_not_running": "aum.auto_assessment_not_running:vm",
    "aum.internal_execution_error": "aum.internal_execution_error:vm",
    "aum.reboot_required": "aum.reboot_required:vm",
    "aum.reboot_not_completed": "aum.reboot_not_completed:vm",
    "aum.schedule_not_triggered": "aum.schedule_not_triggered:vm",
    "aum.dynamic_scope_miss": "aum.dynamic_scope_miss:vm",
    "aum.linux_sudo_check_failed": "aum.linux_sudo_check_failed:vm",
    "aum.os_not_supported": "aum.os_not_supported:vm",
    "aum.arc_disconnected": "aum.arc_disconnected:machine",
    "aum.run_cancelled_by_platform": "aum.run_cancelled_by_platform:vm",
    "aum.pre_event_failed": "aum.pre_event_failed:schedule",
    "aum.configuration_invalid": "aum.configuration_invalid:schedule",
    "um.maintenance_window_exceeded": "um.maintenance_window_exceeded:schedule",
    "um.run_failed_linux": "um.run_failed_linux:vm",
    "um.hresult": "um.hresult:vm",
}


@pytest.fixture
def um_subscriptions(double: AzureDouble) -> list[str]:
    return [double.refs["um:subscription"], double.refs["aum.provider_not_registered:subscription"]]


def test_the_sweep_finds_each_update_manager_failure_from_resource_graph(double: AzureDouble, app: App,
                                                                         um_subscriptions: list[str]) -> None:
    double.clear_requests()
    suspects = [s for s in discover(app.ctx, um_subscriptions) if isinstance(s, Suspect)]
    found = {(s.diagnosis.scenario, s.target.lower()) for s in suspects
             if isinstance(s, Suspect) and s.diagnosis is not None}
    for scenario, ref in AUM_SWEPT.items():
        assert (scenario, double.refs[ref].lower()) in found, scenario
    noreg = f"/subscriptions/{double.refs['aum.provider_not_registered:subscription']}".lower()
    assert ("aum.provider_not_registered", noreg) in found
    assert not [s for s in found if s[1] == double.refs["um:vm-succeeded"].lower()]
    for suspect in suspects:
        assert suspect.diagnosis is not None and suspect.diagnosis.evidence
    per_machine = {r.operation for r in double.requests} - {"resourceGraph.resources", "providers.get"}
    assert not [op for op in per_machine if op.startswith(("virtualMachines", "machines", "hybrid"))], per_machine


def test_a_sweep_and_a_failed_run_event_make_one_change_to_the_window(app: App, double: AzureDouble,
                                                                      um_subscriptions: list[str]) -> None:
    from shared.decisions.pipeline import sweep_tick
    from tests.pipeline_helpers import drain

    run, config = double.refs["um:run:win"], double.refs["um:schedule:win"]
    handle_event(maintenance_event(double, "PostMaintenanceEvent", run, config, event_id="post-once"), app)
    sweep_tick(app, um_subscriptions)
    drain(app)
    name = config.rsplit("/", 1)[-1]
    patches = [r for r in double.requests if r.method in ("PUT", "PATCH") and r.path.lower().endswith(name.lower())]
    assert len(patches) == 1, [r.path for r in patches]


def test_the_cli_sweep_reports_update_manager_findings_with_their_guide_links(double: AzureDouble, app: App,
                                                                              um_subscriptions: list[str]) -> None:
    findings = sweep(app.ctx, um_subscriptions, policy=Policy(PolicyMode.OBSERVE), dry_run=True)
    by_scenario = {f.scenario for f in findings}
    assert set(AUM_SWEPT) - {"um.hresult"} <= by_scenario
    prereqs = {f.resource.rsplit("/", 1)[-1]: f for f in findings if f.scenario == "aum.schedule_prereq_not_set"}
    # No osProfile: the API cannot set patch settings, so it is advice; the others are fixable (observed here).
    assert prereqs["vm-um-specialized-01"].decision == "advice" and prereqs["vm-um-specialized-01"].evidence
    assert all(f.decision == "observed" for name, f in prereqs.items() if name != "vm-um-specialized-01")
