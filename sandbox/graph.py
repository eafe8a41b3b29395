"""Azure Resource Graph (2021-03-01): POST /providers/Microsoft.ResourceGraph/resources.

Tables: `patchinstallationresources`, `patchassessmentresources`, `maintenanceresources` (Update
Manager's, columns and properties as learn.microsoft.com/azure/update-manager/query-logs lists them)
and `resources` (built from the double's ARM resources: a VM's row carries
`properties.extended.instanceView.powerState`, an Arc machine's `properties.status`; configuration
assignments live in `maintenanceresources`, not here). Queries run on the KQL subset in
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


_RUNNING = {"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"}


def _resources_rows(ctx: Context) -> list[dict[str, Any]]:
    """Rows of the `resources` table, from the stored resources (read, never changed: the rows share their
    nested values, and neither the KQL engine nor the answer's serialisation mutates them)."""
    rows = []
    powers = ctx.state.power_states()
    for resource in ctx.state.resources_view():
        resource_id = str(resource.get("id", ""))
        parts = [p for p in resource_id.split("/") if p]
        if len(parts) < 5 or parts[2].lower() != "resourcegroups":
            continue  # resource groups and subscriptions live in `resourcecontainers`
        type_ = str(resource.get("type") or type_of(resource_id)).lower()
        if type_ == "microsoft.maintenance/configurationassignments":
            continue  # `maintenanceresources`
        properties = resource.get("properties")
        if type_ == "microsoft.compute/virtualmachines":
            power = powers.get(resource_id.lower(), _RUNNING)
            properties = {**(properties or {}), "extended": {"instanceView": {"powerState": power}}}
        rows.append({
            "id": resource_id, "name": resource.get("name"), "type": type_, "tenantId": ctx.state.tenant_id,
            "kind": resource.get("kind", ""), "location": resource.get("location", ""),
            "resourceGroup": parts[3].lower(), "subscriptionId": parts[1], "managedBy": resource.get("managedBy", ""),
            "sku": resource.get("sku"), "plan": resource.get("plan"), "properties": properties,
            "tags": resource.get("tags"), "identity": resource.get("identity"), "zones": resource.get("zones"),
            "extendedLocation": resource.get("extendedLocation"),
        })
    return rows


def _full_table(ctx: Context, key: str) -> kql.Table | None:
    """A table over every subscription, built once per state version (a 5,000-VM sweep pages the same
    table several times)."""
    with ctx.state.lock:
        version = ctx.state.version
        cached = ctx.state.cache.get(f"graph:{key}")
        if cached is not None and cached[0] == version:
            table: kql.Table = cached[1]
            return table
        if key == "resources":
            rows = _resources_rows(ctx)
        elif key in ctx.state.graph_tables():
            rows = ctx.state.graph_table(key)
        else:
            return None
    columns = list(_COLUMNS)
    seen = set(columns)
    for row in rows:
        for k in row:
            if k not in seen:
                seen.add(k)
                columns.append(k)
    types = {c: kql.infer_type(r.get(c) for r in rows) for c in columns}
    table = kql.Table(tuple(columns), types, [{c: r.get(c) for c in columns} for r in rows])
    with ctx.state.lock:
        if ctx.state.version == version:
            ctx.state.cache[f"graph:{key}"] = (version, table)
    return table


def _table(ctx: Context, name: str, subscriptions: set[str] | None) -> kql.Table:
    table = _full_table(ctx, name.lower())
    if table is None:
        raise kql.KqlError(f"Table '{name}' could not be found. Please make sure the table name is correct and "
                           "available in the scope of the query.", kind="SemanticError")
    if subscriptions is None:
        return kql.Table(table.columns, table.types, list(table.rows))
    rows = [r for r in table.rows if str(r.get("subscriptionId", "")).lower() in subscriptions]
    return kql.Table(table.columns, table.types, rows)


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
