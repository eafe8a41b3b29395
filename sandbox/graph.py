"""Azure Resource Graph (2021-03-01): POST /providers/Microsoft.ResourceGraph/resources.

Tables: `patchinstallationresources`, `patchassessmentresources`, `maintenanceresources` (Update
Manager's, columns and properties as learn.microsoft.com/azure/update-manager/query-logs lists them)
and `resources` (built from the double's ARM resources). Queries run on the KQL subset in
`kql.py`; a query outside it is a 400 with Resource Graph's error shape. Scope: rows of the
request's `subscriptions` (all of the tenant's when none are given). Paging as the spec's
examples: `$top`/`$skip`, `$skipToken` (opaque base64), `totalRecords`, `count`, `resultTruncated`.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from datetime import datetime, timedelta
from typing import Any

from sandbox import kql
from sandbox.base import ArmError, Context, Request, Response
from sandbox.state import type_of
from sandbox.util import utcnow

DEFAULT_TOP = 1000
_COLUMNS = ("id", "name", "type", "tenantId", "kind", "location", "resourceGroup", "subscriptionId", "managedBy",
            "sku", "plan", "properties", "tags", "identity", "zones", "extendedLocation")


def _error(message: str, detail_code: str, detail: str) -> ArmError:
    return ArmError(400, "BadRequest", message, details=[
        {"code": "InvalidQuery", "message": "Query is invalid. Please refer to the documentation for the Azure "
                                            "Resource Graph service and fix the error before retrying."},
        {"code": detail_code, "message": detail}])


def _resources_rows(ctx: Context) -> list[dict[str, Any]]:
    rows = []
    for resource in ctx.state.all_resources():
        resource_id = str(resource.get("id", ""))
        parts = [p for p in resource_id.split("/") if p]
        if len(parts) < 5 or parts[2].lower() != "resourcegroups":
            continue  # resource groups and subscriptions live in `resourcecontainers`
        rows.append({
            "id": resource_id, "name": resource.get("name"),
            "type": str(resource.get("type") or type_of(resource_id)).lower(), "tenantId": ctx.state.tenant_id,
            "kind": resource.get("kind", ""), "location": resource.get("location", ""),
            "resourceGroup": parts[3].lower(), "subscriptionId": parts[1], "managedBy": resource.get("managedBy", ""),
            "sku": resource.get("sku"), "plan": resource.get("plan"), "properties": resource.get("properties"),
            "tags": resource.get("tags"), "identity": resource.get("identity"), "zones": resource.get("zones"),
            "extendedLocation": resource.get("extendedLocation"),
        })
    return rows


def _table(ctx: Context, name: str, subscriptions: set[str] | None) -> kql.Table:
    key = name.lower()
    if key == "resources":
        rows = _resources_rows(ctx)
    elif key in ctx.state.graph_tables():
        rows = ctx.state.graph_rows(key)
    else:
        raise kql.KqlError(f"Table '{name}' could not be found. Please make sure the table name is correct and "
                           "available in the scope of the query.", kind="SemanticError")
    if subscriptions is not None:
        rows = [r for r in rows if str(r.get("subscriptionId", "")).lower() in subscriptions]
    columns = list(_COLUMNS)
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    types = {c: kql.infer_type(r.get(c) for r in rows) for c in columns}
    return kql.Table(tuple(columns), types, [{c: r.get(c) for c in columns} for r in rows])


def _json_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, datetime | timedelta):
        return kql.to_string(value)
    return value


def _skip_token(offset: int, query: str) -> str:
    raw = json.dumps({"$skip": offset, "q": zlib.crc32(query.encode())}).encode()
    return base64.b64encode(raw).decode()


def _read_token(token: str) -> int:
    try:
        data = json.loads(base64.b64decode(token, validate=True))
        return int(data["$skip"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ArmError(400, "BadRequest", "The $skipToken is invalid.", details=[
            {"code": "InvalidSkipToken", "message": "The skip token could not be decoded."}]) from None


def query(ctx: Context, request: Request) -> Response:
    body = request.json_object()
    text = body.get("query")
    if not isinstance(text, str) or not text.strip():
        raise ArmError(400, "BadRequest", "The query is required.", target="query")
    subs = body.get("subscriptions")
    if subs is not None and (not isinstance(subs, list) or not all(isinstance(s, str) for s in subs)):
        raise ArmError(400, "BadRequest", "'subscriptions' must be an array of subscription ids.",
                       target="subscriptions")
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise ArmError(400, "BadRequest", "'options' must be an object.", target="options")
    scope = {s.lower() for s in subs} if subs else None
    try:
        table = kql.run(text, lambda name: _table(ctx, name, scope), utcnow())
    except kql.KqlError as exc:
        code = "ParserFailure" if exc.kind == "SyntaxError" else "SemanticError"
        raise _error("Please provide below info when asking for support: timestamp = "
                     f"{utcnow().isoformat()}, correlationId = {request.headers.get('x-ms-client-request-id', '')}.",
                     code, str(exc)) from None
    top = options.get("$top")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 1000):
        raise ArmError(400, "BadRequest", "'$top' must be an integer between 1 and 1000.", target="options.$top")
    skip = options.get("$skip") or 0
    if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
        raise ArmError(400, "BadRequest", "'$skip' must be a non-negative integer.", target="options.$skip")
    if options.get("$skipToken"):
        skip = _read_token(str(options["$skipToken"]))
    limit = top or DEFAULT_TOP
    rows = table.rows[skip:skip + limit]
    fmt = options.get("resultFormat", "objectArray")
    if fmt not in ("objectArray", "table"):
        raise ArmError(400, "BadRequest", "'resultFormat' must be 'table' or 'objectArray'.",
                       target="options.resultFormat")
    data: Any
    if fmt == "table":
        data = {"columns": [{"name": c, "type": _graph_type(table.types.get(c, "string"))} for c in table.columns],
                "rows": [[_json_value(r.get(c)) for c in table.columns] for r in rows]}
    else:
        data = [{c: _json_value(r.get(c)) for c in table.columns} for r in rows]
    answer: dict[str, Any] = {"totalRecords": len(table.rows), "count": len(rows), "resultTruncated": "false",
                              "facets": [], "data": data}
    if skip + len(rows) < len(table.rows):
        answer["$skipToken"] = _skip_token(skip + len(rows), text)
    return Response.json(200, answer)


def _graph_type(kusto: str) -> str:
    return {"long": "integer", "int": "integer", "real": "number", "bool": "boolean", "dynamic": "object",
            "datetime": "datetime", "timespan": "timespan"}.get(kusto, "string")
