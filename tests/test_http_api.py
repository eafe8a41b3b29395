"""The operations API through the Functions bindings: remediations on demand (202 and an
operation), operation status, history, and a clear 4xx for every bad request."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func
import pytest

import function_app
from remediations.base import registry
from sandbox import AzureDouble
from shared.wiring import App
from tests.pipeline_helpers import drain


def call(fn: Any, method: str, url: str, body: Any = b"", *, route: dict[str, str] | None = None,
         params: dict[str, str] | None = None) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = func.HttpRequest(method=method, url=url, body=raw, route_params=route or {}, params=params or {})
    handler = fn.build().get_user_function()
    response: func.HttpResponse = handler(req)
    text = response.get_body().decode()
    return response.status_code, (json.loads(text) if response.mimetype == "application/json" else text)


def run(name: str, body: Any) -> tuple[int, Any]:
    return call(function_app.run_remediation, "POST", f"/api/remediations/{name}", body, route={"name": name})


def test_remediations_route_lists_the_catalog_with_modes_and_limits(wired: App) -> None:
    status, body = call(function_app.remediations, "GET", "/api/remediations")
    assert status == 200
    by_name = {r["name"]: r for r in body}
    assert by_name["increase-image-build-timeout"]["limits"] == {"max_build_timeout": "960"}
    assert by_name["recreate-image-template"]["mode"] == "approval"
    assert set(by_name) == set(registry().items)


def test_a_named_remediation_runs_from_the_queue_and_its_operation_reports_the_result(
        wired: App, double: AzureDouble) -> None:
    tpl = double.refs["template:tpl-win2019-lowres"]
    status, body = run("increase-image-build-vm-size", {"target": tpl, "params": {"size": "Standard_D4ds_v4"}})
    assert status == 202 and body["status"] == "queued"
    assert double.requests_for("imageTemplates.patch") == [], "the HTTP call does not wait for the change"
    drain(wired)
    status, op = call(function_app.operation, "GET", "/api/operations/x", route={"id": body["operation_id"]})
    assert status == 200 and op["status"] == "succeeded"
    assert op["result"]["changes"][0]["after"] == "Standard_D4ds_v4"
    status, history = call(function_app.history, "GET", "/api/history", params={"target": tpl})
    assert status == 200 and history["records"][0]["remediation"] == "increase-image-build-vm-size"


def test_a_dry_run_reports_the_plan_and_changes_nothing(wired: App, double: AzureDouble) -> None:
    suc = double.refs["suc:weekly-windows-critical"]
    status, body = run("extend-maintenance-window", {"target": suc, "dry_run": True})
    assert status == 202
    drain(wired)
    _, op = call(function_app.operation, "GET", "/api/operations/x", route={"id": body["operation_id"]})
    assert op["status"] == "dry-run" and op["result"]["changes"][0]["after"] == "PT3H"
    assert double.requests_for("softwareUpdateConfigurations.put") == []


@pytest.mark.parametrize(("name", "body", "status", "field"), [
    ("no-such-fix", {"target": "/subscriptions/s"}, 404, "name"),
    ("rerun-image-build", b"{not json", 400, "(body)"),
    ("rerun-image-build", [], 400, "(body)"),
    ("rerun-image-build", {}, 400, "target"),
    ("rerun-image-build", {"target": "vm-01"}, 400, "target"),
    ("rerun-image-build", {"target": "/subscriptions/s", "params": {"a": 1}}, 400, "params"),
    ("rerun-image-build", {"target": "/subscriptions/s", "dry_run": "yes"}, 400, "dry_run"),
    ("rerun-image-build", {"target": "/subscriptions/s", "force": True}, 400, "force"),
    ("rerun-image-build", b"[" * 50_000 + b"]" * 50_000, 400, "(body)"),
    ("rerun-image-build", b"x" * (4 * 1024 * 1024 + 1), 413, "(body)"),
])
def test_bad_remediation_requests_get_a_4xx_naming_the_field(wired: App, name: str, body: Any, status: int,
                                                            field: str) -> None:
    got, answer = run(name, body)
    assert got == status and answer["field"] == field and answer["problem"]


def test_a_target_outside_the_allowed_scopes_is_forbidden(wired: App, double: AzureDouble) -> None:
    from shared.decisions.policy import Policy, PolicyMode

    wired.policy = Policy(PolicyMode.AUTO, allowed_scopes=("/subscriptions/00000000-0000-0000-0000-000000000000",))
    status, body = run("rerun-image-build", {"target": double.refs["template:tpl-rhel-noartifacts"]})
    assert status == 403 and body["field"] == "target"


@pytest.mark.parametrize(("params", "field"), [
    ({"since": "yesterday"}, "since"), ({"until": "2026-11-25T00:00:00"}, "until"), ({"limit": "0"}, "limit"),
    ({"limit": "abc"}, "limit"), ({"colour": "red"}, "colour"),
])
def test_bad_history_queries_get_a_4xx_naming_the_parameter(wired: App, params: dict[str, str], field: str) -> None:
    status, body = call(function_app.history, "GET", "/api/history", params=params)
    assert status == 400 and body["field"] == field


def test_unknown_and_malformed_operation_ids(wired: App) -> None:
    assert call(function_app.operation, "GET", "/", route={"id": "nope"})[0] == 400
    assert call(function_app.operation, "GET", "/", route={"id": "0" * 32})[0] == 404


@pytest.mark.parametrize(("body", "field"), [
    (b"", "(body)"), (b"{}", "schemaId"), (json.dumps({"schemaId": "Microsoft.Insights/activityLogs"}).encode(),
                                           "data"),
])
def test_bad_alerts_get_a_4xx_naming_the_field(wired: App, body: bytes, field: str) -> None:
    status, answer = call(function_app.alerts, "POST", "/api/alerts", body)
    assert status == 400 and answer["field"] == field


def test_an_alert_azure_cannot_answer_for_now_gets_a_503_to_be_sent_again(wired: App, double: AzureDouble) -> None:
    from tests.pipeline_helpers import activity_alert

    tpl = double.refs["template:tpl-rhel-noartifacts"]
    body = json.dumps(activity_alert(tpl)).encode()
    double.faults.fail_next("imageTemplates.get", 200, status=503)
    status, answer = call(function_app.alerts, "POST", "/api/alerts", body)
    assert status == 503 and "HTTP 503" in answer["problem"]
    double.faults.clear()
    status, answer = call(function_app.alerts, "POST", "/api/alerts", body)
    assert status == 202 and answer["scenario"] == "aib.no_artifacts"
    drain(wired)
    assert len(double.requests_for("imageTemplates.run", "POST")) == 1
