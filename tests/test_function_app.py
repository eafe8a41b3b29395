"""The Functions bindings, driven with the real azure.functions request/event objects."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest

import function_app
from sandbox import AzureDouble
from shared.core.errors import PayloadError
from shared.wiring import App
from tests.conftest import ROOT


def _user(fn: Any) -> Any:
    """The plain Python function behind a v2-model decorator."""
    return fn.build().get_user_function() if hasattr(fn, "build") else fn


def post(body: bytes, **params: str) -> func.HttpResponse:
    req = func.HttpRequest(method="POST", url="/api/diagnose", body=body, params=params)
    response: func.HttpResponse = _user(function_app.diagnose)(req)
    return response


def test_http_diagnose_answers_with_the_diagnosis() -> None:
    r = post(b"Error details: Failed to enable the Update solution")
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert json.loads(r.get_body())["scenario"] == "um.enable_failed"


def test_http_diagnose_refuses_a_bad_payload_naming_the_field() -> None:
    r = post(json.dumps({"specversion": "1.0", "id": "x", "type": "t"}).encode())
    assert r.status_code == 400
    body = json.loads(r.get_body())
    assert body["field"] == "source" and body["problem"] == "required field is missing"


@pytest.mark.parametrize(
    "body", [b"", b"{not json", json.dumps({"hello": "world"}).encode(), b"[" * 100_000 + b"]" * 100_000]
)
def test_http_diagnose_rejects_empty_malformed_and_unknown_bodies(body: bytes) -> None:
    r = post(body)
    assert r.status_code == 400 and json.loads(r.get_body())["problem"]


def test_http_diagnose_rejects_an_unknown_source_hint() -> None:
    r = post(b"some failure", source="windows")
    assert r.status_code == 400 and json.loads(r.get_body())["field"] == "source"


def test_http_diagnose_answers_the_event_grid_handshake() -> None:
    event = [{"id": "1", "topic": "t", "subject": "", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
              "eventTime": "2026-11-20T00:00:00Z", "data": {"validationCode": "ABC-123"},
              "dataVersion": "1", "metadataVersion": "1"}]
    r = post(json.dumps(event).encode())
    assert r.status_code == 200 and json.loads(r.get_body()) == {"validationResponse": "ABC-123"}


def test_http_payload_over_the_limit_is_413() -> None:
    r = post(b"x" * (4 * 1024 * 1024 + 1))
    assert r.status_code == 413


def test_scenarios_route_lists_the_catalog() -> None:
    req = func.HttpRequest(method="GET", url="/api/scenarios", body=b"")
    r = _user(function_app.scenarios)(req)
    ids = {s["id"] for s in json.loads(r.get_body())}
    assert "aib.build_timeout" in ids and "um.failed_to_start" in ids


def _event(data: dict[str, Any], event_type: str) -> func.EventGridEvent:
    return func.EventGridEvent(
        id="evt-1", data=data, topic="/subscriptions/s/resourceGroups/rg", subject="/subscriptions/s/x",
        event_type=event_type, event_time=datetime(2026, 11, 20, tzinfo=UTC), data_version="1",
    )


def test_event_grid_trigger_diagnoses_the_event(wired: App, double: AzureDouble,
                                                caplog: pytest.LogCaptureFixture) -> None:
    config = double.refs["maintenance:mc-prod-weekly"]
    data = {"correlationId": double.refs["maintenance-run:mc-prod-weekly"], "maintenanceConfigurationId": config,
            "status": "Failed", "startDateTime": "2026-11-20T00:00:00Z", "endDateTime": "2026-11-20T02:00:00Z"}
    caplog.set_level("INFO")
    _user(function_app.on_event)(_event(data, "Microsoft.Maintenance.PostMaintenanceEvent"))
    record = next(r for r in caplog.records if r.name == "remediator.pipeline" and "diagnosed" in r.getMessage())
    assert record.__dict__["event_id"] == "evt-1"
    assert record.__dict__["target"].endswith("/maintenanceConfigurations/mc-prod-weekly")
    assert wired.audit.query(kind="diagnosis", event_id="evt-1")


def test_event_grid_trigger_raises_on_a_malformed_event_so_it_is_retried(wired: App) -> None:
    with pytest.raises(PayloadError):
        _user(function_app.on_event)(_event({"status": 5}, "Microsoft.Maintenance.PostMaintenanceEvent"))


def test_queue_trigger_runs_the_job_and_the_poison_trigger_records_it(wired: App, double: AzureDouble) -> None:
    from shared.state.jobs import Job

    def message(mid: str, body: bytes) -> func.QueueMessage:
        """The message type the Functions worker hands a queue trigger (with its dequeue count)."""
        from azure.functions.queue import QueueMessage

        made: func.QueueMessage = QueueMessage(id=mid, body=body, dequeue_count=1)  # type: ignore[no-untyped-call]
        return made

    tpl = double.refs["template:tpl-rhel-noartifacts"]
    op = wired.operations.create(kind="manual", remediation="rerun-image-build", target=tpl)
    body = Job(op.id, "rerun-image-build", tpl).to_json().encode()
    _user(function_app.on_remediation)(message("m1", body))
    done = wired.operations.get(op.id)
    assert done is not None and done.status == "succeeded"
    assert len(double.requests_for("imageTemplates.run", "POST")) == 1
    other = wired.operations.create(kind="manual", remediation="rerun-image-build", target=tpl)
    _user(function_app.on_poison)(message("m2", Job(other.id, "rerun-image-build", tpl).to_json().encode()))
    failed = wired.operations.get(other.id)
    assert failed is not None and failed.status == "failed"


def test_cold_start_imports_no_azure_sdk_and_no_classifier() -> None:
    code = (
        "import sys, function_app; "
        "bad = [m for m in sys.modules if m.startswith(('azure.mgmt', 'azure.identity', 'azure.data', "
        "'azure.storage', 'azure.monitor', 'shared'))]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT, check=True, timeout=60)
    assert out.stdout.strip() == b"[]"


def test_the_app_wires_itself_from_settings_and_survives_an_unset_webhook_secret(
        azurite: Any, caplog: pytest.LogCaptureFixture) -> None:
    """As deployed: the webhook secret not set yet leaves App Service's reference unresolved."""
    import base64

    from shared.approvals.links import new_key
    from shared.wiring import App

    env = {"AzureWebJobsStorage": azurite.connection_string, "REMEDIATOR_SIGNING_KEY": base64.b64encode(
           new_key()).decode(), "REMEDIATOR_MODE": "auto", "WEBSITE_HOSTNAME": "func-x.azurewebsites.net",
           "REMEDIATOR_TEAMS_WEBHOOK_URL": "@Microsoft.KeyVault(SecretUri=https://kv-x.vault.azure.net/secrets/t/)"}
    wired = App.from_env(env)
    assert wired.notifier.webhook_url is None and "unresolved Key Vault reference" in caplog.text
    assert wired.public_url == "https://func-x.azurewebsites.net" and wired.policy.mode.value == "auto"
    with pytest.raises(ValueError, match="REMEDIATOR_SIGNING_KEY"):
        App.from_env({**env, "REMEDIATOR_SIGNING_KEY": "c2hvcnQ="})
