"""Published sample payloads, sent as the host sends them: Azure Monitor's alert samples (the docs'
payload samples, the action group Test Action samples, the non-common webhook schemas), Event Grid's
and the SDK's events, and the REST API specs' examples. Each file in tests/fixtures/published/ is the
sample as published; README.md there names its source. Where a test changes a sample, it says what
and why (a docs placeholder filled in, a target from the local double, the query the deployment's own
rule sends)."""

from __future__ import annotations

import copy
import json
import logging
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

import function_app
from sandbox import AzureDouble
from sandbox.estate import Column, LogTable, Workspace
from shared.core.domain import Family, SourceKind
from shared.diagnosis.alert_rows import window_of
from shared.diagnosis.envelopes import parse_payload
from shared.entry.cli import main as cli
from shared.wiring import App
from tests.conftest import ROOT
from tests.fixtures.published import delivered, example_body, load

SUB = "aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e"


def _user(fn: Any) -> Any:
    return fn.build().get_user_function() if hasattr(fn, "build") else fn


def post_alert(payload: Any) -> tuple[int, dict[str, Any]]:
    req = func.HttpRequest(method="POST", url="/api/alerts", body=json.dumps(payload).encode())
    response: func.HttpResponse = _user(function_app.alerts)(req)
    return response.status_code, json.loads(response.get_body())


def post_diagnose(payload: Any) -> tuple[int, Any]:
    req = func.HttpRequest(method="POST", url="/api/diagnose", body=json.dumps(payload).encode())
    response: func.HttpResponse = _user(function_app.diagnose)(req)
    return response.status_code, json.loads(response.get_body())


def fresh(payload: dict[str, Any]) -> dict[str, Any]:
    """The sample with an alert id of its own (Test Action samples share theirs), so each test's
    firing is a new one for the ledger."""
    payload = copy.deepcopy(payload)
    essentials = payload["data"]["essentials"]
    essentials["alertId"] = f"/subscriptions/{SUB}/providers/Microsoft.AlertsManagement/alerts/{uuid.uuid4()}"
    return payload


def cpu_alert() -> dict[str, Any]:
    """The docs' "Sample alert payload" (a CPU metric alert), fired: its `<subscription ID>` placeholder
    filled in (no alert carries it), monitorCondition Fired and no resolvedDateTime."""
    text = json.dumps(load("monitor_common_metric_cpu_resolved.json")).replace("<subscription ID>", SUB)
    payload: dict[str, Any] = json.loads(text)
    payload["data"]["essentials"]["monitorCondition"] = "Fired"
    del payload["data"]["essentials"]["resolvedDateTime"]
    return fresh(payload)


# --- 1. enrichment evidence is about the failure's own resource, machines and time -------------------

@pytest.mark.parametrize("payload", [
    pytest.param(cpu_alert, id="cpu-metric"),
    pytest.param(lambda: fresh(load("monitor_test_action_metric_dynamic_threshold.json")), id="storage-metric"),
    pytest.param(lambda: fresh(load("monitor_test_action_availability_test.json")), id="availability-test"),
])
def test_alerts_of_other_resources_are_never_machines_not_showing(payload: Any, wired: App,
                                                                 double: AzureDouble) -> None:
    """Defect: with REMEDIATOR_WORKSPACE_ID set, each became `um.not_showing` on one unrelated
    OverQuota row of the workspace. The workspace is not read for them at all now."""
    assert wired.ctx.workspace_id is not None
    status, answer = post_alert(payload())
    assert status == 202 and answer["scenario"] == "unknown"
    assert not any("OverQuota" in e for e in answer["evidence"])
    assert double.requests_for("logs.query") == []


def test_an_arm_write_failure_of_any_resource_is_not_machines_not_showing(wired: App, double: AzureDouble) -> None:
    """The docs' ResourceWriteSuccess event as a ResourceWriteFailure ("the same schema is used for
    ResourceWriteFailure ... with different values for eventType"), through the Event Grid trigger."""
    [event] = load("eventgrid_resource_write_success.json")
    event["eventType"] = "Microsoft.Resources.ResourceWriteFailure"
    event["data"]["status"] = "Failed"
    _user(function_app.on_event)(delivered(event))
    [record] = wired.audit.query(kind="diagnosis", event_id=event["id"])
    assert record.scenario == "unknown" and "OverQuota" not in (record.reason or "")
    assert double.requests_for("logs.query") == []


# --- 3. an activity log alert reports a failure only when its operation failed ----------------------

@pytest.mark.parametrize("status", ["Succeeded", "Started", "Accepted"])
def test_an_activity_log_alert_on_an_operation_that_did_not_fail_is_no_failure(
        status: str, wired: App, double: AzureDouble) -> None:
    """The Test Action activity log alert (a VM restart that Succeeded), and the same on an image
    template of the double: no rebuild is proposed for an operation that did not fail."""
    payload = fresh(load("monitor_test_action_activity_log.json"))
    payload["data"]["alertContext"]["status"] = status
    answer = post_alert(payload)
    assert answer == (200, {"alert_id": payload["data"]["essentials"]["alertId"], "condition": "Fired",
                            "scenario": "none", "status": status})
    tpl = double.refs["template:tpl-rhel-noartifacts"]  # its last run failed: a rebuild would be planned
    on_template = fresh(payload)
    on_template["data"]["essentials"]["alertTargetIDs"] = [tpl.lower()]
    on_template["data"]["alertContext"]["operationName"] = "Microsoft.VirtualMachineImages/imageTemplates/run/action"
    assert post_alert(on_template)[1]["scenario"] == "none"
    assert wired.approvals.pending() == [] and double.requests_for("imageTemplates.run", "POST") == []
    assert {r.scenario for r in wired.audit.query(kind="diagnosis")} == {"none"}


def test_the_same_alert_on_a_failed_run_is_diagnosed(wired: App, double: AzureDouble) -> None:
    tpl = double.refs["template:tpl-rhel-noartifacts"]
    payload = fresh(load("monitor_test_action_activity_log.json"))
    payload["data"]["essentials"]["alertTargetIDs"] = [tpl.lower()]
    payload["data"]["alertContext"] |= {"status": "Failed",
                                        "operationName": "Microsoft.VirtualMachineImages/imageTemplates/run/action"}
    status, answer = post_alert(payload)
    assert status == 202 and answer["scenario"] == "aib.no_artifacts"
    assert any(d["remediation"] == "rerun-image-build" for d in answer["dispatched"])


def test_a_resolved_service_health_communication_is_no_failure(wired: App) -> None:
    """The Test Action Service Health alert: monitorCondition Fired, stage (and status) Resolved."""
    payload = fresh(load("monitor_test_action_service_health.json"))
    status, answer = post_alert(payload)
    assert status == 200 and answer["scenario"] == "none" and answer["condition"] == "Fired"
    payload = fresh(payload)
    payload["data"]["alertContext"]["status"] = "Active"  # stage Resolved alone is enough
    assert post_alert(payload)[1]["scenario"] == "none"
    payload = fresh(payload)
    payload["data"]["alertContext"]["properties"]["stage"] = "Active"  # a live incident: recorded, unknown
    status, answer = post_alert(payload)
    assert status == 202 and answer["scenario"] == "unknown" and answer["dispatched"] == []


def test_a_resource_health_alert_of_an_unavailable_resource_is_a_failure_the_guides_do_not_place(
        wired: App) -> None:
    status, answer = post_alert(fresh(load("monitor_test_action_resource_health.json")))
    assert status == 202 and answer["scenario"] == "unknown"


# --- 4. a log alert without rows is followed to its rows ----------------------------------------------

def infra_query(name: str) -> str:
    """A query as infra/modules/alerts.bicep deploys it (read only)."""
    text = (ROOT / "infra" / "modules" / "alerts.bicep").read_text(encoding="utf-8")
    match = re.search(rf"var {name} = '''\n(.*?)'''", text, re.DOTALL)
    assert match, f"{name} is no longer in infra/modules/alerts.bicep"
    return match.group(1)


def rule_alert(workspace: str, rule: str, query: str, now: datetime) -> dict[str, Any]:
    """The Test Action "Log alert V2" sample as the deployment's own rule sends it: its rule name,
    its workspace as the target, its query, no dimensions (the rule counts rows), a 15-minute window."""
    payload = fresh(load("monitor_test_action_log_alert_v2.json"))
    essentials = payload["data"]["essentials"]
    essentials |= {"alertRule": rule, "alertTargetIDs": [workspace.lower()], "firedDateTime": now.isoformat()}
    condition = payload["data"]["alertContext"]["condition"]
    condition |= {"windowSize": "PT15M", "windowStartTime": (now - timedelta(minutes=15)).isoformat(),
                  "windowEndTime": now.isoformat()}
    condition["allOf"][0] |= {"searchQuery": query, "dimensions": [], "metricValue": 2.0}
    return payload


def add_workspace(double: AzureDouble, table: LogTable) -> str:
    resource = (f"/subscriptions/{double.refs['subscription']}/resourceGroups/rg-ops/providers/"
                f"Microsoft.OperationalInsights/workspaces/law-{uuid.uuid4().hex[:8]}")
    double.state.add_workspace(Workspace(str(uuid.uuid4()), resource, (table,)))
    return resource


def update_run_progress(rows: list[dict[str, Any]]) -> LogTable:
    names = ("TimeGenerated", "Computer", "ResourceId", "CorrelationId", "InstallationStatus", "ErrorResult",
             "Title")
    return LogTable("UpdateRunProgress", tuple(Column(n, "datetime" if n == "TimeGenerated" else "string")
                                               for n in names), tuple(rows))


def test_the_automation_rule_alert_leads_to_a_diagnosis_per_failed_machine(wired: App, double: AzureDouble) -> None:
    """Defect: the deployment's Automation rule (no dimensions) ended `unknown` with nothing done.
    Its query now runs again for its window, and each failed machine is diagnosed."""
    now = datetime.now(UTC).replace(microsecond=0)
    run = str(uuid.uuid4())

    def row(vm: str, status: str, error: str, minutes: int = 5) -> dict[str, Any]:
        return {"TimeGenerated": (now - timedelta(minutes=minutes)).isoformat(), "Computer": vm,
                "ResourceId": double.refs[vm], "CorrelationId": run, "InstallationStatus": status,
                "ErrorResult": error, "Title": "2024-11 Cumulative Update (KB5046616)"}

    workspace = add_workspace(double, update_run_progress([
        row("vm-app-01", "Failed", "0x8024402C"), row("vm-app-01", "Failed", "0x8024402C", 6),
        row("vm-app-02", "Failed", "0x80070005"), row("vm-web-01", "Succeeded", ""),
        row("vm-web-02", "Failed", "0x8024402C", minutes=60 * 24),  # an older run, outside the window
    ]))
    payload = rule_alert(workspace, "alert-automation-update-run-failed", infra_query("automationFailedRunsQuery"),
                         now)
    status, answer = post_alert(payload)
    assert status == 202
    by_target = {d["target"]: d for d in answer["diagnoses"]}
    assert set(by_target) == {double.refs["vm-app-01"], double.refs["vm-app-02"]}
    assert by_target[double.refs["vm-app-01"]]["scenario"] == "um.hresult"
    assert any("0x8024402C" in e for e in by_target[double.refs["vm-app-01"]]["evidence"])
    assert answer["scenario"] != "unknown"
    [request] = double.requests_for("logs.query")
    sent = json.loads(request.body)
    assert sent["query"].endswith("| take 20") and "UpdateRunProgress" in sent["query"]
    start, end = sent["timespan"].split("/")
    assert datetime.fromisoformat(end) - datetime.fromisoformat(start) == timedelta(minutes=15)
    assert len(wired.audit.query(kind="diagnosis")) == 2


def test_the_update_manager_rule_alert_leads_to_a_diagnosis_per_failed_operation(wired: App,
                                                                                  double: AzureDouble) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    names = ("TimeGenerated", "CategoryValue", "OperationNameValue", "ActivityStatusValue", "_ResourceId",
             "CorrelationId")
    rows = [{"TimeGenerated": (now - timedelta(minutes=3)).isoformat(), "CategoryValue": "Administrative",
             "OperationNameValue": "Microsoft.Compute/virtualMachines/installPatches/action",
             "ActivityStatusValue": status, "_ResourceId": double.refs[vm].lower(), "CorrelationId": str(uuid.uuid4())}
            for vm, status in (("vm-web-01", "Failure"), ("vm-web-02", "Failed"), ("vm-app-01", "Succeeded"))]
    table = LogTable("AzureActivity", tuple(Column(n, "datetime" if n == "TimeGenerated" else "string")
                                            for n in names), tuple(rows))
    workspace = add_workspace(double, table)
    payload = rule_alert(workspace, "alert-update-manager-run-failed", infra_query("updateManagerFailedRunsQuery"),
                         now)
    status, answer = post_alert(payload)
    assert status == 202
    assert sorted(d["target"] for d in answer["diagnoses"]) == sorted(
        double.refs[vm].lower() for vm in ("vm-web-01", "vm-web-02"))
    [alert] = parse_payload(payload)
    assert alert.family is Family.UPDATE and alert.fact("dimensions") == "0"


def test_rows_read_again_are_bounded(wired: App, double: AzureDouble) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    vm = double.refs["vm-app-01"].rsplit("/", 1)[0]
    workspace = add_workspace(double, update_run_progress([
        {"TimeGenerated": (now - timedelta(minutes=2)).isoformat(), "Computer": f"vm-{i:02d}",
         "ResourceId": f"{vm}/vm-{i:02d}", "CorrelationId": "r", "InstallationStatus": "Failed", "ErrorResult": ""}
        for i in range(25)]))
    status, answer = post_alert(rule_alert(workspace, "alert-automation-update-run-failed",
                                           infra_query("automationFailedRunsQuery"), now))
    assert status == 202 and len(answer["diagnoses"]) == 20


def test_an_alert_whose_rows_cannot_be_read_for_now_is_answered_503_and_read_on_redelivery(
        wired: App, double: AzureDouble) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    workspace = add_workspace(double, update_run_progress([
        {"TimeGenerated": (now - timedelta(minutes=2)).isoformat(), "Computer": "vm-app-01",
         "ResourceId": double.refs["vm-app-01"], "CorrelationId": "r", "InstallationStatus": "Failed",
         "ErrorResult": "0x8024402C"}]))
    payload = rule_alert(workspace, "alert-automation-update-run-failed", infra_query("automationFailedRunsQuery"),
                         now)
    double.faults.fail_next("logs.query", 50, status=503)
    status, answer = post_alert(payload)
    assert status == 503 and "HTTP 503" in answer["problem"]
    double.faults.clear()
    status, answer = post_alert(payload)
    assert status == 202 and [d["scenario"] for d in answer["diagnoses"]] == ["um.hresult"]


def test_the_test_action_windows_empty_span_is_read_as_the_rules_window_size() -> None:
    """The Test Action sample's windowStartTime equals its windowEndTime; windowSize is PT1H."""
    [alert] = parse_payload(load("monitor_test_action_log_alert_v2.json"))
    start, end = window_of(alert, datetime.now(UTC))
    assert end == datetime(2025, 4, 15, 18, 8, 3, 626000, tzinfo=UTC) and end - start == timedelta(hours=1)


def test_a_log_alert_that_carries_its_rows_is_one_failure_per_row() -> None:
    """The Test Action "Log alert V1 - Number of results" sample: its search results are inline."""
    [row] = parse_payload(load("monitor_test_action_log_alert_v1_number_of_results.json"))
    assert row.failed and row.fact("target_computer") == "test-computer"
    assert row.fact("search_query") == "Heartbeat"


# --- 5. the non-common webhook schemas are read --------------------------------------------------------

@pytest.mark.parametrize(("name", "scenario", "count"), [
    ("monitor_legacy_activity_log_administrative_vm_restart.json", "none", 1),
    ("monitor_legacy_activity_log_security.json", "unknown", 1),
    ("monitor_legacy_activity_log_recommendation.json", "unknown", 1),
    ("monitor_legacy_activity_log_resource_health.json", "unknown", 1),
    ("monitor_legacy_activity_log_service_health.json", "unknown", 1),
    ("monitor_legacy_log_alert_log_analytics.json", "unknown", 2),
    ("monitor_legacy_log_alert_application_insights.json", "unknown", 2),
    ("monitor_legacy_metric_alert_static.json", "unknown", 1),
    ("monitor_legacy_classic_metric_alert.json", "unknown", 1),
    ("monitor_legacy_budget_notification.json", "unknown", 1),
])
def test_older_webhook_schemas_are_understood(name: str, scenario: str, count: int, wired: App) -> None:
    """Defect: refused with 400, which action groups do not send again: the alert was lost."""
    status, answer = post_alert(load(name))
    if scenario == "none":
        assert (status, answer["scenario"]) == (200, "none")
    else:
        assert status == 202 and answer["scenario"] == scenario and len(answer["diagnoses"]) == count
    assert len(wired.audit.query(kind="diagnosis")) == count


def test_the_same_facts_under_other_names() -> None:
    [legacy] = parse_payload(load("monitor_legacy_activity_log_administrative_vm_restart.json"))
    assert (legacy.operation, legacy.status, legacy.failed) == (
        "Microsoft.Compute/virtualMachines/restart/action", "Succeeded", False)
    assert legacy.resource_id is not None and legacy.resource_id.endswith("/virtualMachines/test-VM")
    assert legacy.correlation_ids == ("aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa",)
    [metric] = parse_payload(load("monitor_legacy_metric_alert_static.json"))
    assert metric.failed and metric.resource_id is not None and metric.resource_id.endswith("/test-storageAccount")
    assert any("Transactions" in t for t in metric.texts)
    rows = parse_payload(load("monitor_legacy_log_alert_log_analytics.json"))
    assert [r.fact("target_computer") for r in rows] == ["33446677a", "33445566b"]


def test_an_alert_schema_it_does_not_read_is_accepted_recorded_and_logged_as_an_error(
        wired: App, caplog: pytest.LogCaptureFixture) -> None:
    payload = load("monitor_legacy_metric_alert_static.json")
    payload["schemaId"] = "Contoso.Monitoring/customAlert"
    status, answer = post_alert(payload)
    assert status == 200 and answer["field"] == "schemaId" and "Contoso.Monitoring/customAlert" in answer["refused"]
    [record] = wired.audit.query(kind="error")
    assert record.reason == "alert refused (schemaId)" and "Contoso.Monitoring/customAlert" in (record.error or "")
    assert any(r.levelno == logging.ERROR and "alert refused" in r.getMessage() for r in caplog.records)


def test_bad_alerts_still_get_a_4xx_naming_the_field(wired: App) -> None:
    payload = load("monitor_legacy_activity_log_security.json")
    del payload["data"]["context"]
    assert post_alert(payload) == (400, {"error": "invalid payload", "problem": "required object is missing",
                                         "field": "data.context"})
    payload = load("monitor_test_action_budget.json")
    payload["data"]["essentials"]["monitorCondition"] = "Maybe"
    status, answer = post_alert(payload)
    assert status == 400 and answer["field"] == "data.essentials.monitorCondition"


# --- 6. a valid alert of a kind the product does not act on --------------------------------------------

@pytest.mark.parametrize("name", ["monitor_test_action_budget.json", "monitor_test_action_cost_budget.json"])
def test_a_budget_alert_is_accepted_recorded_and_unknown(name: str, wired: App) -> None:
    """Defect: `alertRule: null` (and `alertTargetIDs: null`) refused as malformed."""
    status, answer = post_alert(fresh(load(name)))
    assert status == 202 and answer["scenario"] == "unknown" and answer["dispatched"] == []
    [record] = wired.audit.query(kind="diagnosis")
    assert record.scenario == "unknown"
    [failure] = parse_payload(load(name))
    assert failure.source is SourceKind.ALERT and failure.event_type == "alert/CostAlerts"


# --- 7. Update Manager applyUpdates, and JSON of no failure shape -----------------------------------------

def test_an_apply_updates_get_body_is_understood_over_http() -> None:
    """Defect: 400 over HTTP. The spec example (status Completed) is no failure."""
    status, answer = post_diagnose(example_body("spec_maintenance_2023-10-01-preview_ApplyUpdates_Get.json"))
    assert status == 200 and answer["scenario"] == "none"
    assert answer["failure"]["source"] == "maintenance" and answer["failure"]["status"] == "Completed"
    assert answer["failure"]["resource_id"].endswith("/virtualMachineScaleSets/smdtest1")
    status, listing = post_diagnose(example_body("spec_maintenance_2023-04-01_ApplyUpdatesResourceGroup_List.json"))
    assert status == 200 and [d["scenario"] for d in listing] == ["none"]


@pytest.mark.parametrize("status", ["RetryNow", "RetryLater"])
def test_a_failed_apply_updates_is_a_failure_with_its_resource_and_status(status: str) -> None:
    """The spec example with a status the spec describes as "Updates installation failed"."""
    body = example_body("spec_maintenance_2023-10-01-preview_ApplyUpdates_Get.json")
    body["properties"]["status"] = status
    code, answer = post_diagnose(body)
    assert code == 200 and answer["scenario"] != "none"
    failure = answer["failure"]
    assert failure["failed"] and failure["status"] == status and failure["family"] == "update"
    assert failure["resource_id"] == body["properties"]["resourceId"]
    assert failure["correlation_ids"] == [body["id"]]


@pytest.mark.parametrize(("name", "whole"), [
    ("spec_maintenance_2023-10-01-preview_ApplyUpdates_Get.json", False),
    ("spec_maintenance_2023-04-01_MaintenanceConfigurations_GetForResource_GuestOSPatchLinux.json", False),
    ("spec_maintenance_2023-04-01_ApplyUpdatesResourceGroup_List.json", False),
    ("spec_imagebuilder_2024-02-01_ListImageTemplates.json", False),
    ("spec_imagebuilder_2024-02-01_ListImageTemplates.json", True),
    ("spec_maintenance_2023-04-01_MaintenanceConfigurations_GetForResource_GuestOSPatchLinux.json", True),
])
def test_the_cli_reads_json_of_no_failure_shape_as_no_failure(name: str, whole: bool, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Defect: the CLI's text fallback turned a configuration, a listing or a `Completed` run into a
    failure. `whole`: the spec example file itself, as someone might paste it."""
    path = tmp_path / "body.json"
    path.write_text(json.dumps(load(name) if whole else example_body(name)), encoding="utf-8")
    assert cli(["diagnose", "--json", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {d["scenario"] for d in (out if isinstance(out, list) else [out])} == {"none"}


def test_the_cli_still_reads_error_json_as_failure_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = example_body("spec_maintenance_2023-04-01_MaintenanceConfigurations_GetForResource_GuestOSPatchLinux.json")
    body["properties"]["installPatches"]["rebootSetting"] = "Reboot failed: Machine is already registered"
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    assert cli(["diagnose", "--json", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["failure"]["source"] == "text" and out["failure"]["failed"]
