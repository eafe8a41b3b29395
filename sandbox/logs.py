"""Log Analytics query API v1: POST /v1/workspaces/{workspaceId}/query (and GET, and the ARM-id
form /v1/{resourceId}/query), and POST /v1/$batch, answering `{"tables": [{"name": "PrimaryResult",
"columns": [{"name", "type"}], "rows": [[...]]}]}` as OperationalInsights.json and its examples do.

Queries run on the KQL subset in `kql.py` over the workspace's tables (the sandbox has Heartbeat,
Update, UpdateSummary, Operation). `timespan` (ISO 8601: a duration, start/end or start/duration)
bounds every table's `TimeGenerated`, as the service does. Errors use the service's shape:
`{"error": {"code": "BadArgumentError", "message": ..., "innererror": {"code": "SyntaxError"|...}}}`.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sandbox import kql
from sandbox.base import ArmError, Context, Request, Response
from sandbox.util import iso, parse_datetime, parse_duration, utcnow


def _bad_argument(inner_code: str, message: str) -> ArmError:
    return ArmError(400, "BadArgumentError", "The request had some invalid properties",
                    inner={"code": inner_code, "message": message})


def _error_body(error: ArmError) -> dict[str, Any]:
    return error.body()


def _bounds(timespan: Any, now: datetime) -> tuple[datetime, datetime] | None:
    if timespan in (None, ""):
        return None
    if not isinstance(timespan, str):
        raise _bad_argument("InvalidTimespan", "The timespan must be an ISO 8601 time interval.")
    try:
        if "/" not in timespan:
            return now - parse_duration(timespan), now
        first, second = timespan.split("/", 1)
        if first.upper().startswith("P"):
            end = parse_datetime(second)
            return end - parse_duration(first), end
        start = parse_datetime(first)
        if second.upper().startswith("P"):
            return start, start + parse_duration(second)
        return start, parse_datetime(second)
    except ValueError:
        raise _bad_argument("InvalidTimespan", f"'{timespan}' is not an ISO 8601 time interval.") from None


def _cell(value: Any, type_: str) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime):
        return iso(value, 7)
    if isinstance(value, timedelta):
        return kql.format_timespan(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    if type_ in ("string", "guid") and not isinstance(value, str):
        return kql.to_string(value)
    return value


def run_query(ctx: Context, workspace: str, body: Any) -> dict[str, Any]:
    """Runs one query body against a workspace; raises ArmError with the service's error shape."""
    ws = ctx.state.workspace(workspace)
    if ws is None:
        raise ArmError(404, "WorkspaceNotFoundError", f"The workspace {workspace} could not be found")
    if not isinstance(body, dict) or not isinstance(body.get("query"), str) or not body["query"].strip():
        raise _bad_argument("QueryMissing", "The 'query' property is required.")
    now = utcnow()
    bounds = _bounds(body.get("timespan"), now)

    def resolve(name: str) -> kql.Table:
        table = ctx.state.log_table(name, ws.customer_id)
        if table is None:
            raise kql.KqlError(f"'{name}': Failed to resolve table or column expression named '{name}'",
                               kind="SemanticError")
        if bounds is not None and "TimeGenerated" in table.types:
            start, end = bounds
            rows = [r for r in table.rows
                    if isinstance(r.get("TimeGenerated"), datetime) and start <= r["TimeGenerated"] <= end]
            return kql.Table(table.columns, table.types, rows)
        return table

    try:
        result = kql.run(body["query"], resolve, now)
    except kql.KqlError as exc:
        raise _bad_argument(exc.kind, str(exc)) from None
    return {"tables": [{
        "name": "PrimaryResult",
        "columns": [{"name": c, "type": result.types.get(c, "string")} for c in result.columns],
        "rows": [[_cell(r.get(c), result.types.get(c, "string")) for c in result.columns] for r in result.rows],
    }]}


def _answer(ctx: Context, workspace: str, body: Any) -> Response:
    try:
        return Response.json(200, run_query(ctx, workspace, body))
    except ArmError as error:
        return Response.json(error.status, _error_body(error))


def query_post(ctx: Context, request: Request) -> Response:
    try:
        body = request.json()
    except ArmError:
        return Response.json(400, _error_body(_bad_argument("InvalidJson", "The request body is not valid JSON.")))
    return _answer(ctx, request.param("workspace"), body)


def query_get(ctx: Context, request: Request) -> Response:
    body = {"query": request.query.get("query", ""), "timespan": request.query.get("timespan")}
    return _answer(ctx, request.param("workspace"), body)


def query_resource(ctx: Context, request: Request) -> Response:
    try:
        body = request.json()
    except ArmError:
        return Response.json(400, _error_body(_bad_argument("InvalidJson", "The request body is not valid JSON.")))
    return _answer(ctx, request.param("resource"), body)


def batch(ctx: Context, request: Request) -> Response:
    try:
        body = request.json_object()
    except ArmError:
        return Response.json(400, _error_body(_bad_argument("InvalidJson", "The request body is not valid JSON.")))
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        return Response.json(400, _error_body(_bad_argument("InvalidBatch", "'requests' must be a non-empty array.")))
    responses = []
    for item in requests:
        if not isinstance(item, dict) or "id" not in item:
            return Response.json(400, _error_body(_bad_argument("InvalidBatch", "Every request needs an 'id'.")))
        try:
            result: dict[str, Any] = run_query(ctx, str(item.get("workspace", "")), item.get("body"))
            responses.append({"id": item["id"], "status": 200, "body": result})
        except ArmError as error:
            responses.append({"id": item["id"], "status": error.status, "body": _error_body(error)})
    return Response.json(200, {"responses": responses})
