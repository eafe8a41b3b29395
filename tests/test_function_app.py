"""The Functions bindings, driven as the host drives them: azure.functions request objects, and events
through azure.functions' own trigger converter over published event JSON in both schemas."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from typing import Any

import azure.functions as func
import pytest

import function_app
from sandbox import AzureDouble
from shared.core.errors import PayloadError
from shared.wiring import App
from tests.conftest import ROOT
from tests.fixtures.published import HERE as PUBLISHED
from tests.fixtures.published import delivered
from tests.fixtures.published import load as published


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


def event_diagnoses(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("event diagnosed")]


def test_the_converter_hands_a_cloudevent_for_a_cloudevents_delivery() -> None:
    """What azure.functions really gives the trigger, for the docs' event in both schemas."""
    [eg] = published("eventgrid_resource_write_success.json")
    [ce] = published("cloudevent_resource_write_success.json")
    assert isinstance(delivered(eg), func.EventGridEvent) and not isinstance(delivered(eg), func.CloudEvent)
    cloud = delivered(ce)
    assert isinstance(cloud, func.CloudEvent) and not hasattr(cloud, "event_type") and not hasattr(cloud, "topic")
    assert cloud.type == "Microsoft.Resources.ResourceWriteSuccess" and cloud.source == ce["source"]


@pytest.mark.parametrize("name", [
    "eventgrid_resource_write_success.json", "cloudevent_resource_write_success.json",
    "eventgrid_maintenance_post_event.txt", "cloudevent_maintenance_post_event.txt",
    "sdk_eventgrid_eg_storage_dict.json", "sdk_eventgrid_cloud_storage_dict.json",
    "sdk_eventgrid_cloud_custom_dict_with_extensions.json",
])
def test_event_grid_trigger_takes_published_events_in_both_schemas(name: str, wired: App, double: AzureDouble) -> None:
    """Defect: `on_event` read `event.topic` / `event.event_type` from a `func.CloudEvent`
    (AttributeError). Now both schemas reach the envelope; each event is handled once and recorded."""
    value = published(name)
    event = value[0] if isinstance(value, list) else value
    _user(function_app.on_event)(delivered(event))
    [record] = wired.audit.query(kind="diagnosis", event_id=event["id"])
    assert record.scenario == "none"  # a success, or an event type this app does not act on
    _user(function_app.on_event)(delivered(event))  # delivered again: handled once
    assert len(wired.audit.query(kind="diagnosis", event_id=event["id"])) == 1


def test_a_cloudevents_failure_is_diagnosed_through_the_trigger(wired: App, double: AzureDouble,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """The docs' CloudEvents resource event, as a ResourceActionFailure ("the same schema is used for
    ResourceActionFailure ... with different values for eventType") on a template of the double."""
    [ce] = published("cloudevent_resource_write_success.json")
    tpl = double.refs["template:tpl-rhel-noartifacts"]
    ce |= {"type": "Microsoft.Resources.ResourceActionFailure", "subject": tpl, "id": "ce-action-failure-1"}
    ce["data"] |= {"resourceUri": tpl, "status": "Failed", "resourceProvider": "Microsoft.VirtualMachineImages",
                   "operationName": "Microsoft.VirtualMachineImages/imageTemplates/run/action"}
    caplog.set_level("INFO")
    _user(function_app.on_event)(delivered(ce))
    [record] = wired.audit.query(kind="diagnosis", event_id="ce-action-failure-1")
    assert record.scenario == "aib.no_artifacts"
    [logged] = event_diagnoses(caplog)
    assert logged.__dict__["event_id"] == "ce-action-failure-1" and logged.__dict__["target"] == tpl


def test_a_binary_cloudevent_is_refused_naming_the_field_so_it_is_retried(wired: App) -> None:
    """The SDK's `data_base64` test event: refused (Event Grid retries, then dead-letters), not a crash."""
    with pytest.raises(PayloadError) as err:
        _user(function_app.on_event)(delivered(published("sdk_eventgrid_cloud_custom_dict_base64.json")))
    assert err.value.path == "data_base64"


def test_event_grid_trigger_diagnoses_the_event(wired: App, double: AzureDouble,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """The docs' PostMaintenanceEvent (Event Grid schema), failed, on a configuration of the double."""
    [event] = published("eventgrid_maintenance_post_event.txt")
    config = double.refs["maintenance:mc-prod-weekly"]
    event |= {"id": "evt-1", "topic": config, "subject": config.rsplit("/", 1)[-1]}
    event["data"] |= {"correlationId": double.refs["maintenance-run:mc-prod-weekly"],
                      "maintenanceConfigurationId": config, "status": "Failed",
                      "startDateTime": "2026-11-20T00:00:00Z", "endDateTime": "2026-11-20T02:00:00Z"}
    caplog.set_level("INFO")
    _user(function_app.on_event)(delivered(event))
    record = event_diagnoses(caplog)[0]
    assert record.__dict__["event_id"] == "evt-1"
    assert record.__dict__["target"].endswith("/maintenanceConfigurations/mc-prod-weekly")
    assert wired.audit.query(kind="diagnosis", event_id="evt-1")


def test_event_grid_trigger_raises_on_a_malformed_event_so_it_is_retried(wired: App) -> None:
    [event] = published("eventgrid_maintenance_post_event.txt")
    event["data"]["status"] = 5
    with pytest.raises(PayloadError) as err:
        _user(function_app.on_event)(delivered(event))
    assert err.value.path == "data.status"


def options(headers: dict[str, str]) -> func.HttpResponse:
    req = func.HttpRequest(method="OPTIONS", url="/api/diagnose", body=b"", headers=headers)
    response: func.HttpResponse = _user(function_app.diagnose)(req)
    return response


def test_diagnose_answers_the_cloudevents_webhook_validation_handshake() -> None:
    """The CloudEvents HTTP webhook spec's validation request (section 4.1; Event Grid sends it with
    `WebHook-Request-Origin: eventgrid.azure.net` before it creates a CloudEvents subscription)."""
    sample = json.loads((PUBLISHED / "cloudevents_webhook_validation_handshake.json").read_text())
    for origin in (sample["request"]["headers"]["WebHook-Request-Origin"], "eventgrid.azure.net"):
        r = options(sample["request"]["headers"] | {"WebHook-Request-Origin": origin})
        assert r.status_code == 200
        assert r.headers["WebHook-Allowed-Origin"] == origin
        assert r.headers["WebHook-Allowed-Rate"] == "*"  # MUST be returned: the request asked for a rate
        assert "POST" in r.headers["Allow"]
    lower = options({"webhook-request-origin": "eventgrid.azure.net"})
    assert lower.status_code == 200 and lower.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"


@pytest.mark.parametrize("headers", [{}, {"WebHook-Request-Origin": ""},
                                     {"WebHook-Request-Origin": "evil.example\r\nSet-Cookie: x=1"},
                                     {"WebHook-Request-Origin": "https://eventgrid.azure.net/"}])
def test_a_handshake_without_a_host_name_origin_is_refused_naming_the_header(headers: dict[str, str]) -> None:
    r = options(headers)
    assert r.status_code == 400 and "WebHook-Allowed-Origin" not in r.headers
    body = json.loads(r.get_body())
    assert body["field"] == "WebHook-Request-Origin" and body["problem"]


def test_the_diagnose_route_is_bound_for_post_and_options() -> None:
    [binding] = [b for b in function_app.diagnose.build().get_bindings() if b.type == "httpTrigger"]
    assert {str(m.value) for m in binding.methods} == {"POST", "OPTIONS"}


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
