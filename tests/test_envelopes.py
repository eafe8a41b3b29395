"""Envelopes: each source's real schema parsed once; invalid payloads name the field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from shared.core.domain import Family, SourceKind
from shared.core.errors import PayloadError
from shared.diagnosis.envelopes import parse_input, parse_payload, validation_code

SUB = "5f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
TEMPLATE = (f"/subscriptions/{SUB}/resourceGroups/rg-img/providers/Microsoft.VirtualMachineImages/"
            "imageTemplates/ubuntu-golden")


def resource_event(event_type: str = "Microsoft.Resources.ResourceActionFailure") -> dict[str, Any]:
    return {
        "id": "4b1b0c8e-2f1a-4c3e-9d2b-7c0e5f6a8b9c",
        "topic": f"/subscriptions/{SUB}/resourceGroups/rg-img",
        "subject": TEMPLATE,
        "eventType": event_type,
        "eventTime": "2026-11-20T03:04:05.1234567Z",
        "data": {
            "authorization": {"scope": TEMPLATE, "action": "Microsoft.VirtualMachineImages/imageTemplates/run/action"},
            "claims": {"appid": "0000"},
            "correlationId": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
            "httpRequest": {"clientRequestId": "x", "clientIpAddress": "10.0.0.4", "method": "POST", "url": "..."},
            "operationName": "Microsoft.VirtualMachineImages/imageTemplates/run/action",
            "resourceProvider": "Microsoft.VirtualMachineImages",
            "resourceUri": TEMPLATE,
            "status": "Failed",
            "subscriptionId": SUB,
            "tenantId": "72f988bf-0000-4000-8000-2d7cd011db47",
        },
        "dataVersion": "2",
        "metadataVersion": "1",
    }


def alert(condition: str = "Fired") -> dict[str, Any]:
    return {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "alertId": f"/subscriptions/{SUB}/providers/Microsoft.AlertsManagement/alerts/abc",
                "alertRule": "update-runs-failed",
                "severity": "Sev2",
                "signalType": "Log",
                "monitorCondition": condition,
                "monitoringService": "Log Alerts V2",
                "alertTargetIDs": [f"/subscriptions/{SUB}/resourcegroups/rg-ops/providers/microsoft.automation/"
                                   "automationaccounts/aa-patch"],
                "configurationItems": ["aa-patch"],
                "originAlertId": "x",
                "firedDateTime": "2026-11-20T03:10:00.000Z",
                "essentialsVersion": "1.0",
                "alertContextVersion": "1.0",
            },
            "alertContext": {
                "properties": {},
                "conditionType": "LogQueryCriteria",
                "condition": {
                    "windowSize": "PT15M",
                    "allOf": [{
                        "searchQuery": "UpdateRunProgress | where InstallationStatus == 'MaintenanceWindowExceeded'",
                        "metricMeasureColumn": None,
                        "targetResourceTypes": "['Microsoft.Automation/automationAccounts']",
                        "operator": "GreaterThan", "threshold": "0", "timeAggregation": "Count",
                        "dimensions": [{"name": "Computer", "value": "web-01"},
                                       {"name": "InstallationStatus", "value": "MaintenanceWindowExceeded"}],
                        "metricValue": 3.0, "failingPeriods": {"numberOfEvaluationPeriods": 1,
                                                               "minFailingPeriodsToAlert": 1},
                        "linkToSearchResultsAPI": "https://api.loganalytics.io/v1/workspaces/w/query?query=x",
                    }],
                    "windowStartTime": "2026-11-20T02:55:00Z",
                    "windowEndTime": "2026-11-20T03:10:00Z",
                },
            },
        },
    }


def test_resource_action_failure_becomes_an_image_builder_failure() -> None:
    [f] = parse_payload(resource_event())
    assert f.failed and f.source is SourceKind.EVENTGRID
    assert f.family is Family.AIB and f.resource_id == TEMPLATE and f.subscription_id == SUB
    assert f.operation == "Microsoft.VirtualMachineImages/imageTemplates/run/action"
    assert f.correlation_ids == ("9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",)
    assert f.started_at is not None and f.started_at.year == 2026


def test_resource_action_success_is_not_a_failure() -> None:
    [f] = parse_payload(resource_event("Microsoft.Resources.ResourceActionSuccess"))
    assert not f.failed


def test_batch_of_events_gives_one_failure_each_in_order() -> None:
    events = [resource_event(), resource_event("Microsoft.Resources.ResourceActionSuccess"), resource_event()]
    events[2]["id"] = "second-failure"
    failures = parse_payload(events)
    assert [f.failed for f in failures] == [True, False, True]
    assert failures[2].event_id == "second-failure"


def test_cloudevent_carries_the_same_failure() -> None:
    eg = resource_event()
    ce = {"specversion": "1.0", "id": eg["id"], "source": eg["topic"], "subject": eg["subject"],
          "type": eg["eventType"], "time": eg["eventTime"], "data": eg["data"]}
    [f] = parse_payload(ce)
    assert f.source is SourceKind.CLOUDEVENT and f.failed and f.resource_id == TEMPLATE


def test_post_maintenance_event_reads_keys_case_insensitively() -> None:
    config = f"/subscriptions/{SUB}/resourceGroups/rg-ops/providers/Microsoft.Maintenance/maintenanceConfigurations/mc1"
    event = {"id": "e1", "subject": config, "eventType": "Microsoft.Maintenance.PostMaintenanceEvent",
             "eventTime": "2026-11-20T04:00:00Z", "dataVersion": "1.0",
             "data": {"CorrelationId": "c1", "MaintenanceConfigurationId": config, "Status": "Failed",
                      "StartDateTime": "2026-11-20T02:00:00Z", "EndDateTime": "2026-11-20T04:00:00Z",
                      "ResourceSubscriptionIds": [SUB]}}
    [f] = parse_payload(event)
    assert f.source is SourceKind.MAINTENANCE and f.failed and f.status == "Failed"
    assert f.resource_id == config and f.correlation_ids == ("c1",) and f.family is Family.UPDATE
    event["eventType"] = "Microsoft.Maintenance.PreMaintenanceEvent"
    assert not parse_payload(event)[0].failed


def test_log_alert_dimensions_reach_the_failure_text() -> None:
    [f] = parse_payload(alert())
    assert f.failed and f.source is SourceKind.ALERT and f.family is Family.UPDATE
    assert any("MaintenanceWindowExceeded" in t for t in f.texts)


def test_resolved_alert_is_not_a_failure() -> None:
    [f] = parse_payload(alert("Resolved"))
    assert not f.failed and f.status == "Resolved"


def test_subscription_validation_handshake_code() -> None:
    event = {"id": "v", "subject": "", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
             "eventTime": "2026-11-20T04:00:00Z", "data": {"validationCode": "512d38b6-c7b8-40c8-89fe"}}
    assert validation_code([event]) == "512d38b6-c7b8-40c8-89fe"
    [f] = parse_payload([event])
    assert not f.failed and f.fact("validation_code") == "512d38b6-c7b8-40c8-89fe"


def test_image_template_get_body_with_failed_run() -> None:
    body: dict[str, Any] = {"id": TEMPLATE, "type": "Microsoft.VirtualMachineImages/imageTemplates", "properties": {
        "provisioningState": "Succeeded", "buildTimeoutInMinutes": 240, "vmProfile": {"vmSize": "Standard_D1_v2"},
        "lastRunStatus": {"startTime": "2026-11-20T01:00:00Z", "endTime": "2026-11-20T05:00:00Z", "runState": "Failed",
                          "message": "Packer build command has failed: exit status 1. Image Build log location: "
                          "https://abc123.blob.core.windows.net/packerlogs/0f0e/customization.log. "
                          "OperationId: 1a2b-3c. Use this operationId"}}}
    [f] = parse_payload(body)
    assert f.failed and f.status == "Failed" and f.source is SourceKind.IMAGE_TEMPLATE
    assert f.fact("build_log_url") == "https://abc123.blob.core.windows.net/packerlogs/0f0e/customization.log"
    assert f.fact("vm_size") == "Standard_D1_v2" and f.fact("build_timeout_minutes") == "240"
    running = copy.deepcopy(body)
    running["properties"]["lastRunStatus"]["runState"] = "Running"
    assert not parse_payload(running)[0].failed


def test_machine_run_list_yields_each_machine() -> None:
    base = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Automation/automationAccounts/aa"
    runs = {"value": [
        {"id": f"{base}/softwareUpdateConfigurationMachineRuns/m{i}", "name": f"m{i}",
         "properties": {"targetComputer": f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/"
                        f"virtualMachines/vm{i}", "status": status, "correlationId": "run-1",
                        "error": {"code": "", "message": ""}}}
        for i, status in enumerate(["Succeeded", "FailedToStart", "MaintenanceWindowExceeded"])]}
    failures = parse_payload(runs)
    assert [f.failed for f in failures] == [False, True, True]
    assert failures[1].source is SourceKind.AUTOMATION_MACHINE_RUN
    assert failures[1].fact("target_computer", ).endswith("/vm1")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.pop("eventType"), "eventType"),
        (lambda e: e.__setitem__("eventTime", "yesterday"), "eventTime"),
        (lambda e: e.__setitem__("data", "not an object"), "data"),
        (lambda e: e.__setitem__("id", 42), "id"),
    ],
)
def test_invalid_event_grid_event_names_the_field(mutate: Any, field: str) -> None:
    event = resource_event()
    mutate(event)
    with pytest.raises(PayloadError) as err:
        parse_payload(event)
    assert err.value.path == field


def test_invalid_element_of_a_batch_is_named_by_index() -> None:
    events = [resource_event(), resource_event()]
    del events[1]["subject"]
    with pytest.raises(PayloadError) as err:
        parse_payload(events)
    assert err.value.path == "[1].subject"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda a: a["data"].pop("essentials"), "data.essentials"),
        (lambda a: a["data"]["essentials"].__setitem__("monitorCondition", "Maybe"),
         "data.essentials.monitorCondition"),
        (lambda a: a["data"]["essentials"].__setitem__("alertTargetIDs", "one"), "data.essentials.alertTargetIDs"),
        # An older webhook schema is read, not refused: this one lacks its data.context.activityLog.
        (lambda a: a.__setitem__("schemaId", "Microsoft.Insights/activityLogs"), "data.context"),
        (lambda a: a.__setitem__("schemaId", "Contoso.Custom/alerts"), "schemaId"),
        (lambda a: a["data"]["essentials"].__setitem__("alertRule", 5), "data.essentials.alertRule"),
    ],
)
def test_invalid_alert_names_the_field(mutate: Any, field: str) -> None:
    payload = alert()
    mutate(payload)
    with pytest.raises(PayloadError) as err:
        parse_payload(payload)
    assert err.value.path == field
    assert err.value.problem


def test_cloudevent_of_another_version_is_refused() -> None:
    with pytest.raises(PayloadError, match="specversion"):
        parse_payload({"specversion": "0.3", "id": "x", "source": "s", "type": "t"})


def test_unknown_shape_is_refused_strictly_but_read_as_text_leniently() -> None:
    raw = json.dumps({"Message": "Machine is already registered to a different account."})
    with pytest.raises(PayloadError, match="unrecognised payload"):
        parse_input(raw)
    failures, batch = parse_input(raw, lenient=True)
    assert failures[0].source is SourceKind.TEXT and not batch


def test_empty_and_broken_inputs_are_refused() -> None:
    for raw in (b"", b"   \n", b"[]", b'{"eventType": "x", ', b"\xff\xfe\x00"):
        with pytest.raises(PayloadError):
            parse_input(raw)


def test_truncated_json_is_text_only_for_the_lenient_cli() -> None:
    failures, _ = parse_input(b'{"status":"Failed", "message": "Builds finished but no artifacts', lenient=True)
    assert failures[0].source is SourceKind.TEXT
