"""Azure Functions bindings (v2 programming model). Bindings only.

Every handler imports its implementation on first call: Functions import this module on
each cold start, and only `azure.functions` is paid for up front.
"""

from __future__ import annotations

import json

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


def _respond(result: tuple[int, object, dict[str, str]]) -> func.HttpResponse:
    status, body, headers = result
    return func.HttpResponse(
        json.dumps(body, ensure_ascii=False),
        status_code=status,
        headers={k: v for k, v in headers.items() if k.lower() != "content-type"},
        mimetype="application/json",
        charset="utf-8",
    )


@app.event_grid_trigger(arg_name="event")
def on_event(event: func.EventGridEvent) -> None:
    from shared.pipeline import eventgrid_dict, handle_event

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


@app.route(route="diagnose", methods=["POST"])
def diagnose(req: func.HttpRequest) -> func.HttpResponse:
    from shared.http_api import diagnose as handle

    return _respond(handle(req.get_body(), req.params.get("source")))


@app.route(route="scenarios", methods=["GET"])
def scenarios(req: func.HttpRequest) -> func.HttpResponse:
    from shared.http_api import scenarios as handle

    return _respond(handle())
