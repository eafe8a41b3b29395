"""Azure Monitor alerts as action groups send them: the common alert schema and the older
(non-common) webhook schemas, which carry the same facts under other names.

- common schema (`azureMonitorCommonAlertSchema`): essentials first, then the service's alertContext;
- `Microsoft.Insights/activityLogs` (activity log alerts without the common schema);
- `Microsoft.Insights/LogAlert` and the Log Analytics log alert without a schemaId (log search alerts
  up to API 2018-04-16, with their search results inline);
- `AzureMonitorMetricAlert` and the classic metric alert (`status` + `context`, no schemaId);
- `AIP Budget Notification` (budgets without the common schema).

A `Resolved` alert is parsed into a non-failure: it withdraws, it does not diagnose. So is an
activity log alert on an operation that succeeded or is still running (the rule matched a
`Succeeded`, `Started` or `Accepted` event), a Service Health communication whose stage says the
issue is over, and a Resource Health event whose resource is available again. A log search alert
that carries its rows (search results) becomes one failure per row; one that carries neither rows
nor dimensions (Log Alerts V2 rules that count rows) keeps its query and window as facts, so that
`shared.diagnosis.alert_rows` can run it again for that window.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core.domain import Failure, SourceKind
from shared.core.errors import PayloadError
from shared.diagnosis.envelopes._common import ARM_ID, family_of, is_failure_status, resource_id, subscription_of
from shared.diagnosis.envelopes._reader import Reader, describe, join

COMMON_SCHEMA = "azureMonitorCommonAlertSchema"
ACTIVITY_LOG_SCHEMA = "Microsoft.Insights/activityLogs"
LOG_ALERT_SCHEMA = "Microsoft.Insights/LogAlert"
METRIC_ALERT_SCHEMA = "AzureMonitorMetricAlert"
BUDGET_SCHEMA = "AIP Budget Notification"
SCHEMAS = (COMMON_SCHEMA, ACTIVITY_LOG_SCHEMA, LOG_ALERT_SCHEMA, METRIC_ALERT_SCHEMA, BUDGET_SCHEMA)
MAX_ROWS = 20  # rows of one alert diagnosed, whether carried inline or read again
_CONDITIONS = ("Fired", "Resolved")
_MAX_LEAVES = 64
_MAX_LEAF = 4000
_MAX_CELL = 2000
_LABELLED = frozenset({"code", "message", "Code", "Message", "status", "statusCode"})
# Service Health stages after which there is no issue any more (Planned / Active / InProgress are live).
_SERVICE_HEALTH_OVER = frozenset({"resolved", "complete", "completed", "rca", "canceled", "cancelled",
                                  "rescheduled"})
_RESOURCE_COLUMNS = ("_ResourceId", "ResourceId", "resourceId", "_resourceId", "ResourceURI")
_COMPUTER_COLUMNS = ("Computer", "ComputerName", "Resource")
_CORRELATION_COLUMNS = ("CorrelationId", "correlationId", "CorrelationID")
_OPERATION_COLUMNS = ("OperationNameValue", "OperationName")
_STATUS_COLUMNS = ("ActivityStatusValue", "InstallationStatus", "Status", "status")
_LEGACY_TIME = "%m/%d/%Y %I:%M:%S %p"  # "3/22/2019 1:36:31 PM", as some log search payloads write it


class UnsupportedAlertSchema(PayloadError):
    """A schemaId that is no alert schema this app reads (the field is `schemaId`)."""


def looks_like_alert(obj: dict[str, Any]) -> bool:
    return "schemaId" in obj or "schemaid" in obj or _is_legacy_log(obj) or _is_classic_metric(obj)


def _is_legacy_log(obj: dict[str, Any]) -> bool:
    return "AlertRuleName" in obj and "SearchQuery" in obj


def _is_classic_metric(obj: dict[str, Any]) -> bool:
    context = obj.get("context")
    return "status" in obj and isinstance(context, dict) and "conditionType" in context


def parse_alert(r: Reader) -> Failure:
    """The alert itself, in whichever schema it came (rows it carries are in `parse_alerts`)."""
    return _parse(r)[0]


def parse_alerts(r: Reader) -> list[Failure]:
    """The alert's failures: one per row it carries (at most MAX_ROWS), else the alert itself."""
    alert, rows = _parse(r)
    if rows and alert.failed:
        return from_rows(alert, rows)
    return [alert]


def _parse(r: Reader) -> tuple[Failure, list[dict[str, Any]]]:
    schema = r.get("schemaId") if r.has("schemaId") else None
    if schema is None:
        if _is_legacy_log(dict(r.obj)):
            return _log_alert(r, None)
        if _is_classic_metric(dict(r.obj)):
            return _metric_alert(r, None), []
        raise PayloadError(r.at("schemaId"), "required field is missing")
    schema = r.req("schemaId")
    if schema == COMMON_SCHEMA:
        return _common(r)
    if schema == ACTIVITY_LOG_SCHEMA:
        return _activity_log(r), []
    if schema == LOG_ALERT_SCHEMA:
        return _log_alert(r.req_child("data"), schema)
    if schema == METRIC_ALERT_SCHEMA:
        return _metric_alert(r.req_child("data"), schema), []
    if schema == BUDGET_SCHEMA:
        return _budget(r.req_child("data")), []
    raise UnsupportedAlertSchema(
        r.at("schemaId"),
        f"unsupported alert schema {schema[:80]!r}; expected one of {', '.join(SCHEMAS)} (enable the common "
        f"alert schema, {COMMON_SCHEMA}, on the action group)",
    )


# --- the common alert schema -----------------------------------------------------------------------

def _common(r: Reader) -> tuple[Failure, list[dict[str, Any]]]:
    data = r.req_child("data")
    ess = data.req_child("essentials")
    condition = ess.req("monitorCondition")
    if condition not in _CONDITIONS:
        raise PayloadError(ess.at("monitorCondition"), f"expected 'Fired' or 'Resolved', got {condition!r}")
    service = ess.text("monitoringService") or ""
    signal = ess.text("signalType") or ""
    rule = ess.text("alertRule") or service or "alert"  # a budget alert names no rule
    targets = [t for t in ess.items("alertTargetIDs") if _is_id(t, ess.at("alertTargetIDs"))]
    items = [c for c in ess.items("configurationItems") if isinstance(c, str)]
    fired = ess.time("firedDateTime")
    resolved = ess.time("resolvedDateTime")
    alert_id = ess.ident("alertId") or ess.ident("originAlertId")
    texts: list[str] = [f"alert rule: {rule}"]
    description = ess.text("description")
    if description:
        texts.append(f"description: {description}")
    context = data.child("alertContext")
    operation = None
    status = condition
    live = True  # what the alert's context says of the signal: still a failure, or over
    correlation: list[str] = []
    facts: list[tuple[str, str]] = []
    rows: list[dict[str, Any]] = []
    if context is not None:
        if _is_activity(service, signal, context):
            activity = _activity(context, texts, service)
            operation, live = activity.operation, activity.live
            status = activity.status or status
            if activity.correlation:
                correlation.append(activity.correlation)
        elif context.has("SearchQuery"):  # log search alert V1 (Log Analytics, Application Insights)
            rows = _search(context, texts, facts)
        else:
            _conditions(context, texts, facts)
    resource = targets[0] if targets else None
    failed = condition == "Fired" and live
    facts = [("monitor_condition", condition), ("monitoring_service", service),
             ("severity", ess.text("severity") or ""), *facts]
    if resource and any(k == "search_query" for k, _ in facts):
        facts.append(("query_scope", resource))
    return Failure(
        source=SourceKind.ALERT,
        failed=failed,
        texts=tuple(texts),
        family=family_of(resource, operation, rule, *items, *(v for k, v in facts if k == "search_query")),
        resource_id=resource,
        subscription_id=subscription_of(resource),
        operation=operation,
        status=status if condition == "Fired" else "Resolved",
        event_id=alert_id,
        event_type=f"alert/{service or 'unknown'}",
        correlation_ids=tuple(correlation),
        started_at=fired,
        ended_at=resolved,
        facts=tuple(
            facts + [("alert_target", t) for t in targets[1:]] + [("configuration_item", c) for c in items]
        ),
    ), rows


def _is_id(value: Any, path: str) -> bool:
    if not isinstance(value, str):
        raise PayloadError(path, f"expected an array of resource id strings, found {describe(value)}")
    resource_id(value, path)
    return True


def _is_activity(service: str, signal: str, context: Reader) -> bool:
    low = service.lower().replace(" ", "")
    return (service.startswith("Activity Log") or low in ("servicehealth", "resourcehealth")
            or signal.replace(" ", "").lower() == "activitylog" or
            (context.has("operationName") and context.has("eventSource")))


class _Activity:
    __slots__ = ("correlation", "live", "operation", "status")

    def __init__(self, operation: str | None, status: str | None, correlation: str | None, live: bool) -> None:
        self.operation, self.status, self.correlation, self.live = operation, status, correlation, live


def _activity(ctx: Reader, texts: list[str], service: str = "") -> _Activity:
    """An activity log event: the operation, its status, the error inside properties, and whether
    it reports a failure at all (the status; Service Health's stage; Resource Health's state)."""
    operation = ctx.text("operationName")
    status = ctx.text("status")
    sub = ctx.text("subStatus")
    texts.append(f"{operation or 'operation'} {status or ''} {sub or ''}".strip())
    claims = ctx.get("claims")
    if claims is not None and not isinstance(claims, (str, dict)):
        raise PayloadError(ctx.at("claims"), f"expected a JSON string, got {describe(claims)}")
    props = ctx.get("properties")
    if props is not None and not isinstance(props, dict):
        raise PayloadError(ctx.at("properties"), f"expected an object, got {describe(props)}")
    props = props or {}
    for key, value in props.items():
        if isinstance(value, str) and value:
            texts.append(f"{key}: {_unwrap_json(value)}")
    source = str(ctx.get("eventSource") or "").lower()
    kind = (operation or "").lower()
    low_service = service.lower().replace(" ", "")
    if source == "servicehealth" or low_service == "servicehealth" or kind.startswith("microsoft.servicehealth/"):
        stage = str(props.get("stage") or "").strip().lower()
        live = stage not in _SERVICE_HEALTH_OVER and (status or "").lower() != "resolved"
    elif source == "resourcehealth" or low_service == "resourcehealth" or kind.startswith("microsoft.resourcehealth/"):
        health = str(props.get("currentHealthStatus") or "").strip().lower()
        live = health != "available" and (status or "").lower() != "resolved"
    else:
        live = status is None or is_failure_status(status)
    return _Activity(operation, status, ctx.text("correlationId"), live)


def _unwrap_json(value: str) -> str:
    """statusMessage is JSON inside a string; keep the error's code and message readable."""
    stripped = value.strip()
    if not stripped.startswith("{") or len(stripped) > 200_000:
        return value
    try:
        obj = json.loads(stripped)
    except (ValueError, RecursionError):
        return value
    leaves: list[str] = []
    _leaves(obj, leaves)
    return " | ".join(leaves) if leaves else value


def _conditions(ctx: Reader, texts: list[str], facts: list[tuple[str, str]]) -> None:
    """Log and metric alerts: the query or metric, the dimension values that fired, and (log
    alerts) the query and its window, to read the rows again when the alert names none."""
    condition = ctx.child("condition")
    if condition is None:
        leaves: list[str] = []
        _leaves(ctx.obj, leaves)
        texts.extend(leaves)
        return
    dimensions = 0
    query = None
    for crit in condition.children("allOf"):
        for key in ("searchQuery", "metricName", "metricMeasureColumn"):
            value = crit.text(key)
            if value:
                texts.append(f"{key}: {value}")
        query = query or crit.text("searchQuery")
        value = crit.get("metricValue")
        if value is not None:
            texts.append(f"metricValue: {value}")
        for dim in crit.children("dimensions"):
            name, val = dim.text("name"), dim.get("value")
            if name:
                dimensions += 1
                texts.append(f"{name}: {val}")
                if name.lower() in ("computer", "computername") and isinstance(val, str) and val:
                    facts.append(("computer", val))
    if query:
        facts.append(("search_query", query))
        facts.append(("dimensions", str(dimensions)))
        _window(condition.time("windowStartTime"), condition.time("windowEndTime"), condition.text("windowSize"),
                facts)


def _window(start: datetime | None, end: datetime | None, size: str | None, facts: list[tuple[str, str]]) -> None:
    for name, value in (("window_start", _utc(start)), ("window_end", _utc(end))):
        if value is not None:
            facts.append((name, value.isoformat()))
    if size:
        facts.append(("window_size", size))


def _utc(value: datetime | None) -> datetime | None:
    """In UTC; None for none, or for a time UTC cannot hold (0001-01-01T00:00+14:00)."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        return None


# --- log search alerts with their rows -------------------------------------------------------------

def _search(ctx: Reader, texts: list[str], facts: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """A log search alert that carries its query, window and (usually) its search results."""
    query = ctx.req("SearchQuery")
    texts.append(f"searchQuery: {query}")
    facts.append(("search_query", query))
    start = _legacy_time(ctx, "SearchIntervalStartTimeUtc")
    end = _legacy_time(ctx, "SearchIntervalEndtimeUtc")
    _window(start, end, None, facts)
    for dim in ctx.children("Dimensions"):
        name, val = dim.text("name"), dim.get("value")
        if name:
            texts.append(f"{name}: {val}")
            if name.lower() in ("computer", "computername") and isinstance(val, str) and val:
                facts.append(("computer", val))
    workspace = ctx.text("WorkspaceId")
    if workspace:
        facts.append(("workspace_customer_id", workspace))
    results = ctx.child("SearchResults") or ctx.child("SearchResult")
    return _table_rows(results) if results is not None else []


def _legacy_time(r: Reader, key: str) -> datetime | None:
    value = r.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return datetime.strptime(value.strip(), _LEGACY_TIME).replace(tzinfo=UTC)
        except ValueError:
            pass
    return r.time(key)


def _table_rows(results: Reader) -> list[dict[str, Any]]:
    """The first table's rows as dicts (the query API's shape: columns [{name, type}], rows [[...]])."""
    tables = results.items("tables")
    if not tables:
        return []
    table = Reader(tables[0], join(results.at("tables"), 0))
    names: list[str] = []
    for i, column in enumerate(table.items("columns")):
        if not isinstance(column, dict) or not isinstance(column.get("name"), str):
            raise PayloadError(join(join(table.at("columns"), i), "name"), "expected a column name string")
        names.append(column["name"])
    out: list[dict[str, Any]] = []
    for i, row in enumerate(table.items("rows")[:MAX_ROWS]):
        if not isinstance(row, list):
            raise PayloadError(join(table.at("rows"), i), f"expected an array of cells, got {describe(row)}")
        out.append(dict(zip(names, row, strict=False)))
    return out


def _log_alert(r: Reader, schema: str | None) -> tuple[Failure, list[dict[str, Any]]]:
    """A log search alert without the common schema (Log Analytics or Application Insights)."""
    rule = r.req("AlertRuleName")
    texts = [f"alert rule: {rule}"]
    description = r.text("Description")
    if description:
        texts.append(f"description: {description}")
    facts: list[tuple[str, str]] = [("alert_schema", schema or "Log Analytics log alert (no schemaId)"),
                                    ("monitor_condition", "Fired")]
    rows = _search(r, texts, facts)
    subscription = r.text("SubscriptionId")
    resource = resource_id(r.ident("ResourceId"), r.at("ResourceId"))
    items = [c for c in r.items("AffectedConfigurationItems") if isinstance(c, str)]
    end = next((v for k, v in facts if k == "window_end"), None)
    when = datetime.fromisoformat(end) if end else None
    return Failure(
        source=SourceKind.ALERT,
        failed=True,  # these webhooks are sent when the rule fires only
        texts=tuple(texts),
        family=family_of(resource, rule, *items, *(v for k, v in facts if k == "search_query")),
        resource_id=resource,
        subscription_id=subscription or subscription_of(resource),
        status="Fired",
        event_type="alert/Log Analytics",
        started_at=when,
        facts=tuple(facts + [("severity", r.text("Severity") or "")] + [("configuration_item", c) for c in items]),
    ), rows


def from_rows(alert: Failure, rows: list[dict[str, Any]]) -> list[Failure]:
    """One failure per row of a log search alert (a failed run, machine or operation): the row's
    resource, machine, correlation and error, beside the alert's rule and window."""
    out: list[Failure] = []
    head = tuple(t for t in alert.texts if t.startswith(("alert rule:", "description:")))
    for row in rows[:MAX_ROWS]:
        cells = {str(k): _cell(v) for k, v in row.items() if not str(k).startswith("$")}
        texts = [*head, "; ".join(f"{k}: {v}" for k, v in cells.items() if v)[:_MAX_LEAF]]
        texts.extend(_errors(row))
        resource = next((v for k in _RESOURCE_COLUMNS if (v := cells.get(k)) and ARM_ID.fullmatch(v)), None)
        computer = next((v for k in _COMPUTER_COLUMNS if (v := cells.get(k))), None)
        correlation = next((v for k in _CORRELATION_COLUMNS if (v := cells.get(k))), None)
        operation = next((v for k in _OPERATION_COLUMNS if (v := cells.get(k))), None)
        status = next((v for k in _STATUS_COLUMNS if (v := cells.get(k))), None)
        facts = [f for f in alert.facts if f[0] not in ("dimensions", "computer")]
        if computer:
            facts.append(("target_computer", computer))
        out.append(Failure(
            source=alert.source,
            failed=True,
            texts=tuple(texts),
            family=family_of(resource, operation) or alert.family,
            resource_id=resource or alert.resource_id,
            subscription_id=subscription_of(resource) or alert.subscription_id,
            operation=operation or alert.operation,
            status=status or alert.status,
            event_id=alert.event_id,
            event_type=alert.event_type,
            correlation_ids=(correlation,) if correlation else alert.correlation_ids,
            started_at=alert.started_at,
            ended_at=alert.ended_at,
            facts=tuple(facts),
        ))
    return out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)[:_MAX_CELL]
    return str(value)[:_MAX_CELL]


def _errors(row: dict[str, Any]) -> list[str]:
    """Error cells (ErrorResult, Errors = make_set(...), ...) as lines of their own: each is evidence."""
    out: list[str] = []
    for key, value in row.items():
        if "error" not in str(key).lower() or value in (None, "", []):
            continue
        items: Any = value
        if isinstance(value, str) and value.strip().startswith("["):
            try:
                items = json.loads(value)
            except (ValueError, RecursionError):
                items = value
        for item in items if isinstance(items, list) else [items]:
            if item not in (None, ""):
                out.append(f"{key}: {_cell(item)}")
    return out[:_MAX_LEAVES]


# --- the other non-common schemas -------------------------------------------------------------------

def _activity_log(r: Reader) -> Failure:
    """`Microsoft.Insights/activityLogs`: data.status and data.context.activityLog (the event)."""
    data = r.req_child("data")
    state = data.text("status")
    event = data.req_child("context").req_child("activityLog")
    texts: list[str] = []
    description = event.text("description")
    if description:
        texts.append(f"description: {description}")
    activity = _activity(event, texts)
    resource = resource_id(event.ident("resourceId"), event.at("resourceId"))
    resolved = (state or "").lower() in ("resolved", "deactivated")
    when = event.time("eventTimestamp")
    return Failure(
        source=SourceKind.ALERT,
        failed=activity.live and not resolved,
        texts=tuple(texts),
        family=family_of(resource, activity.operation, event.text("resourceProviderName")),
        resource_id=resource,
        subscription_id=event.text("subscriptionId") or subscription_of(resource),
        operation=activity.operation,
        status="Resolved" if resolved else (activity.status or state),
        event_id=event.ident("eventDataId") or event.ident("operationId"),
        event_type=f"alert/Activity Log - {event.text('eventSource') or 'unknown'}",
        correlation_ids=(activity.correlation,) if activity.correlation else (),
        started_at=when,
        facts=(("alert_schema", ACTIVITY_LOG_SCHEMA), ("monitor_condition", "Resolved" if resolved else "Fired"),
               ("monitoring_service", event.text("eventSource") or "")),
    )


def _metric_alert(r: Reader, schema: str | None) -> Failure:
    """`AzureMonitorMetricAlert` (data) or the classic metric alert (no schemaId): status + context."""
    state = r.req("status")
    if state not in ("Activated", "Resolved"):
        raise PayloadError(r.at("status"), f"expected 'Activated' or 'Resolved', got {state[:40]!r}")
    ctx = r.req_child("context")
    rule = ctx.text("name") or ctx.text("id") or "metric alert"
    texts = [f"alert rule: {rule}"]
    description = ctx.text("description")
    if description:
        texts.append(f"description: {description}")
    facts: list[tuple[str, str]] = [("alert_schema", schema or "classic metric alert (no schemaId)"),
                                    ("monitor_condition", "Fired" if state == "Activated" else "Resolved")]
    condition = ctx.child("condition")
    if condition is not None and condition.has("allOf"):
        _conditions(ctx, texts, facts)
    elif condition is not None:
        leaves: list[str] = []
        _leaves(condition.obj, leaves)
        texts.extend(f"condition: {leaf}" for leaf in leaves)
    resource = resource_id(ctx.ident("resourceId"), ctx.at("resourceId"))
    rule_id = ctx.ident("id")
    return Failure(
        source=SourceKind.ALERT,
        failed=state == "Activated",
        texts=tuple(texts),
        family=family_of(resource, rule),
        resource_id=resource,
        subscription_id=ctx.text("subscriptionId") or subscription_of(resource),
        status="Fired" if state == "Activated" else "Resolved",
        event_id=rule_id,
        event_type="alert/Metric",
        started_at=ctx.time("timestamp"),
        facts=(*facts, ("severity", ctx.text("severity") or "")),
    )


def _budget(data: Reader) -> Failure:
    """`AIP Budget Notification`: a budget threshold crossed; nothing the guides act on."""
    name = data.text("BudgetName") or "budget"
    leaves: list[str] = []
    _leaves(data.obj, leaves)
    return Failure(
        source=SourceKind.ALERT,
        failed=True,
        texts=(f"alert rule: budget {name}", *(f"budget: {leaf}" for leaf in leaves[:16])),
        subscription_id=data.text("SubscriptionId"),
        status="Fired",
        event_type="alert/CostAlerts",
        facts=(("alert_schema", BUDGET_SCHEMA), ("monitor_condition", "Fired"), ("monitoring_service", "CostAlerts")),
    )


def _leaves(obj: Any, out: list[str], depth: int = 0) -> None:
    """String leaves of nested JSON, bounded in count, size and depth."""
    if len(out) >= _MAX_LEAVES or depth > 12:
        return
    if isinstance(obj, str):
        if obj.strip():
            out.append(obj[:_MAX_LEAF])
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(value, (str, int, float)) and not isinstance(value, bool) and key in _LABELLED:
                out.append(f"{key}={value}"[:_MAX_LEAF])
                continue
            _leaves(value, out, depth + 1)
    elif isinstance(obj, list):
        for value in obj:
            _leaves(value, out, depth + 1)
