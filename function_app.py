"""Azure Functions bindings (v2 programming model). Bindings only.

Every handler imports its implementation on first call: Functions import this module on
each cold start, and only `azure.functions` is paid for up front.
"""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
QUEUE = "remediations"  # shared.state.jobs.QUEUE; a literal here keeps start-up free of imports


def _respond(result: tuple[int, Any, dict[str, str]]) -> func.HttpResponse:
    status, body, headers = result
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "application/json")
    others = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    if content_type.startswith("text/html"):
        return func.HttpResponse(body, status_code=status, headers=others, mimetype="text/html", charset="utf-8")
    return func.HttpResponse(json.dumps(body, ensure_ascii=False), status_code=status, headers=others,
                             mimetype="application/json", charset="utf-8")


def _caller(req: func.HttpRequest) -> str | None:
    from shared.approvals.flow import caller
    from shared.wiring import app as wired

    return caller(wired(), dict(req.headers))


# The annotation stays `func.EventGridEvent`: the worker accepts it for either schema (a Union it
# would refuse), and `EventGridEventInConverter.decode` hands over a `func.CloudEvent` (id, source,
# type, time, subject, data, extension attributes; no topic, event_type or event_time) when the
# subscription delivers CloudEvents 1.0, and a `func.EventGridEvent` for the Event Grid schema.
@app.event_grid_trigger(arg_name="event")
def on_event(event: func.EventGridEvent) -> None:
    from shared.decisions.pipeline import eventgrid_dict, handle_event

    delivered: object = event
    if isinstance(delivered, func.CloudEvent):
        from shared.diagnosis.envelopes.events import cloudevent_dict

        handle_event(
            cloudevent_dict(
                event_id=delivered.id,
                source=delivered.source,
                event_type=delivered.type,
                specversion=delivered.specversion,
                subject=delivered.subject,
                time=delivered.time.isoformat() if delivered.time else None,
                data=delivered.get_json(),
                datacontenttype=delivered.datacontenttype,
                dataschema=delivered.dataschema,
                extensions=delivered.extension_attrs,
            )
        )
        return
    handle_event(
        eventgrid_dict(
            event_id=event.id,
            topic=event.topic,
            subject=event.subject,
            event_type=event.event_type,
            event_time=event.event_time.isoformat() if event.event_time else None,
            data=event.get_json(),
            data_version=event.data_version,
        )
    )


@app.queue_trigger(arg_name="message", queue_name=QUEUE, connection="AzureWebJobsStorage")
def on_remediation(message: func.QueueMessage) -> None:
    from shared.decisions.pipeline import handle_job

    handle_job(message.get_body(), dequeue_count=message.dequeue_count or 1)


@app.queue_trigger(arg_name="message", queue_name=QUEUE + "-poison", connection="AzureWebJobsStorage")
def on_poison(message: func.QueueMessage) -> None:
    from shared.decisions.pipeline import handle_poison

    handle_poison(message.get_body())


@app.timer_trigger(arg_name="timer", schedule="%REMEDIATOR_SWEEP_SCHEDULE%", run_on_startup=False)
def on_sweep(timer: func.TimerRequest) -> None:
    from shared.decisions.pipeline import subscriptions_of, sweep_tick
    from shared.wiring import app as wired

    state = wired()
    sweep_tick(state, subscriptions_of(state.policy.allowed_scopes))


# OPTIONS: the CloudEvents webhook validation handshake (WebHook-Request-Origin ->
# WebHook-Allowed-Origin), without which a CloudEvents subscription to this route cannot be created.
@app.route(route="diagnose", methods=["POST", "OPTIONS"])
def diagnose(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entry.diagnosis_api import diagnose as handle
    from shared.entry.diagnosis_api import webhook_handshake

    if req.method.upper() == "OPTIONS":
        return _respond(webhook_handshake(dict(req.headers)))
    return _respond(handle(req.get_body(), req.params.get("source")))


@app.route(route="scenarios", methods=["GET"])
def scenarios(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entry.diagnosis_api import scenarios as handle

    return _respond(handle())


@app.route(route="alerts", methods=["POST"])
def alerts(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entry.operations_api import alerts as handle
    from shared.wiring import app as wired

    return _respond(handle(wired(), req.get_body()))


@app.route(route="remediations", methods=["GET"])
def remediations(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entry.operations_api import list_remediations

    return _respond(list_remediations())


@app.route(route="remediations/{name}", methods=["POST"])
def run_remediation(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entry.operations_api import run_remediation as handle
    from shared.wiring import app as wired

    return _respond(handle(wired(), req.route_params.get("name", ""), req.get_body(), _caller(req)))


@app.route(route="operations/{id}", methods=["GET"])
def operation(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entry.operations_api import get_operation
    from shared.wiring import app as wired

    return _respond(get_operation(wired(), req.route_params.get("id", "")))


@app.route(route="history", methods=["GET"])
def history(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entry.operations_api import history as handle
    from shared.wiring import app as wired

    return _respond(handle(wired(), dict(req.params)))


@app.route(route="openapi.json", methods=["GET"])
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entry.openapi import openapi_document

    return _respond(openapi_document())


# Approval links carry their own signed, expiring, single-use token (and, with App Service
# authentication on, a signed-in approver): no function key, so they open from Teams.
@app.route(route="approvals/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def approval_page(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entry.operations_api import approval_page as handle
    from shared.wiring import app as wired

    return _respond(handle(wired(), req.route_params.get("id", ""), dict(req.params), dict(req.headers)))


@app.route(route="approvals/{id}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def approval_decision(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entry.operations_api import approval_decision as handle
    from shared.wiring import app as wired

    return _respond(handle(wired(), req.route_params.get("id", ""), dict(req.params), dict(req.headers),
                           req.get_body()))
