"""Wiring for pipeline tests: an App on Azurite and the Azure double, realistic events,
and a queue worker that behaves like the Functions host (redelivery, poison queue)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import AzureDouble
from shared.approvals.cards import Notifier
from shared.approvals.links import new_key
from shared.decisions.pipeline import Retry, handle_event, handle_job, handle_poison
from shared.decisions.policy import Policy, PolicyMode
from shared.state.jobs import JobQueue
from shared.state.tables import StateStore
from shared.wiring import App, use
from tests.azurite import Azurite
from tests.sandbox import Sleeps, make_context

PUBLIC_URL = "http://approvals.test"
MAX_DEQUEUE = 5  # host.json extensions.queues.maxDequeueCount


@pytest.fixture
def app(azurite: Azurite, store: StateStore, double: AzureDouble, tmp_path: Path, sleeps: Sleeps) -> Iterator[App]:
    queue = JobQueue(azurite.connection_string, name="jobs-" + uuid.uuid4().hex[:12])
    wired = App(store=store, queue=queue, ctx=make_context(double, sleeps), policy=Policy(PolicyMode.AUTO),
                notifier=Notifier(None, sink=tmp_path / "cards"), signing_keys=(new_key(),), public_url=PUBLIC_URL,
                card_retry_seconds=0)
    yield wired
    queue.client.delete_queue()


@pytest.fixture
def wired(app: App) -> Iterator[App]:
    """`app` installed as the process's wiring, as the Functions handlers find it."""
    use(app)
    yield app
    use(None)


def arm_failure_event(resource_id: str, *, event_id: str | None = None, operation: str = "run/action",
                      correlation: str = "c0ffee00-1b2c-4d3e-8f4a-5b6c7d8e9f00") -> dict[str, Any]:
    """A Microsoft.Resources.ResourceActionFailure event as Event Grid delivers it."""
    sub = resource_id.split("/")[2]
    group = resource_id.split("/")[4]
    action = f"Microsoft.VirtualMachineImages/imageTemplates/{operation}"
    return {
        "id": event_id or str(uuid.uuid4()),
        "topic": f"/subscriptions/{sub}/resourceGroups/{group}",
        "subject": resource_id,
        "eventType": "Microsoft.Resources.ResourceActionFailure",
        "eventTime": "2026-11-21T02:14:09.5123456Z",
        "dataVersion": "2",
        "metadataVersion": "1",
        "data": {
            "authorization": {"scope": resource_id, "action": action,
                              "evidence": {"role": "Contributor", "principalType": "ServicePrincipal"}},
            "claims": {"name": "Release Pipeline", "appid": "04b07795-8ddb-461a-bbee-02f9e1bf7b46"},
            "correlationId": correlation,
            "httpRequest": {"clientRequestId": str(uuid.uuid4()), "clientIpAddress": "20.61.4.7", "method": "POST",
                            "url": f"https://management.azure.com{resource_id}/run?api-version=2024-02-01"},
            "resourceProvider": "Microsoft.VirtualMachineImages",
            "resourceUri": resource_id,
            "operationName": action,
            "status": "Failed",
            "subscriptionId": sub,
            "tenantId": "b1d9a6c4-3e2f-4a7b-9c58-0e4d2f6a8b13",
        },
    }


def drain(app: App, *, max_dequeue: int = MAX_DEQUEUE, rounds: int = 50) -> list[dict[str, Any]]:
    """Runs queued jobs like the Functions host: a failed message is delivered again; after
    `max_dequeue` deliveries it goes to the poison handler. Returns the job summaries."""
    done: list[dict[str, Any]] = []
    client = app.queue.client
    for _ in range(rounds):
        messages = list(client.receive_messages(max_messages=32, visibility_timeout=30))
        if not messages:
            return done
        for message in messages:
            body = bytes(message.content)
            try:
                done.append(handle_job(body, app, dequeue_count=message.dequeue_count))
            except Retry:
                if message.dequeue_count >= max_dequeue:
                    handle_poison(body, app)
                    client.delete_message(message)
                else:
                    client.update_message(message, visibility_timeout=0)
                continue
            client.delete_message(message)
    raise AssertionError(f"the queue did not drain in {rounds} rounds")


def cards(tmp_path: Path) -> list[dict[str, Any]]:
    sink = tmp_path / "cards"
    return [json.loads(p.read_text()) for p in sorted(sink.glob("*.json"))] if sink.exists() else []


def activity_alert(resource_id: str, *, condition: str = "Fired",
                   alert_guid: str = "8e1f2a3b-4c5d-4e6f-9a0b-1c2d3e4f5a6b",
                   message: str = "Builds finished but no artifacts were created.") -> dict[str, Any]:
    """An Activity Log alert on a failed image template run, in the common alert schema."""
    sub = resource_id.split("/")[2]
    status_message = json.dumps({"status": "Failed", "error": {"code": "PackerBuildFailed", "message": message}})
    return {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "alertId": f"/subscriptions/{sub}/providers/Microsoft.AlertsManagement/alerts/{alert_guid}",
                "alertRule": "aib-run-failed", "severity": "Sev2", "signalType": "Activity Log",
                "monitorCondition": condition, "monitoringService": "Activity Log - Administrative",
                "alertTargetIDs": [resource_id.lower()], "configurationItems": [resource_id.rsplit("/", 1)[-1]],
                "originAlertId": alert_guid, "firedDateTime": "2026-11-22T04:10:02.2210000Z",
                **({"resolvedDateTime": "2026-11-22T05:10:02.2210000Z"} if condition == "Resolved" else {}),
                "description": "", "essentialsVersion": "1.0", "alertContextVersion": "1.0",
            },
            "alertContext": {
                "authorization": {"action": "Microsoft.VirtualMachineImages/imageTemplates/run/action",
                                  "scope": resource_id},
                "channels": "Operation", "claims": json.dumps({"name": "Release Pipeline"}),
                "caller": "5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e", "correlationId": str(uuid.uuid4()),
                "eventSource": "Administrative", "eventTimestamp": "2026-11-22T04:09:51.1234567Z",
                "eventDataId": str(uuid.uuid4()), "level": "Error",
                "operationName": "Microsoft.VirtualMachineImages/imageTemplates/run/action",
                "operationId": str(uuid.uuid4()),
                "properties": {"statusCode": "Conflict", "statusMessage": status_message,
                               "eventCategory": "Administrative", "entity": resource_id},
                "status": "Failed", "subStatus": "",
            },
        },
    }


def principal_header(*names: str) -> dict[str, str]:
    """What App Service authentication sends for a signed-in user (X-MS-CLIENT-PRINCIPAL)."""
    import base64

    claims = [{"typ": "preferred_username", "val": n} for n in names]
    raw = json.dumps({"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles"})
    return {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(raw.encode()).decode()}


Links = dict[str, tuple[str, str]]  # decision -> (approval id, token)


def card_links(tmp_path: Path) -> Links:
    """decision -> (approval id, token), from the one approval card in the sink."""
    from urllib.parse import parse_qs, urlsplit

    [card] = [c for c in cards(tmp_path) if "Approval needed" in json.dumps(c)]
    out: Links = {}
    for action in card["attachments"][0]["content"]["actions"]:
        parts = urlsplit(action["url"])
        query = parse_qs(parts.query)
        if "decision" in query:
            out[query["decision"][0]] = (parts.path.rsplit("/", 1)[-1], query["token"][0])
    return out


@pytest.fixture
def proposed(app: App, double: AzureDouble, tmp_path: Path) -> Links:
    """A failure proposed for approval (suggest mode): its card's approve and reject links."""
    app.policy = Policy(PolicyMode.SUGGEST)
    handle_event(arm_failure_event(double.refs["template:tpl-rhel-noartifacts"]), app)
    return card_links(tmp_path)


def page_form(app: App, approval_id: str, decision: str, token: str,
              headers: dict[str, str] | None = None) -> dict[str, str]:
    """The hidden fields of the confirmation page's form, as a browser reads them (GET the link)."""
    import html
    import re

    from shared.entry import operations_api as api

    _, page, _ = api.approval_page(app, approval_id, {"decision": decision, "token": token}, headers or {})
    return {name: html.unescape(value) for name, value in
            re.findall(r"<input type='hidden' name='(\w+)' value='([^']*)'>", str(page))}


def post_decision(app: App, approval_id: str, decision: str, token: str,
                  headers: dict[str, str] | None = None) -> tuple[int, str]:
    """The confirmation page's form, posted as the browser posts it (read from the page first)."""
    from urllib.parse import urlencode

    from shared.entry import operations_api as api

    form = page_form(app, approval_id, decision, token, headers) or {"decision": decision, "token": token}
    body = urlencode(form).encode()
    status, page, _ = api.approval_decision(app, approval_id, {}, headers or {}, body)
    return status, str(page)
