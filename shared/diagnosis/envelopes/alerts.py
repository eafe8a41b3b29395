"""Azure Monitor common alert schema: essentials first, then the service's alertContext.

A `Resolved` alert is parsed into a non-failure: it withdraws, it does not diagnose.
"""

from __future__ import annotations

import json
from typing import Any

from shared.core.domain import Failure, SourceKind
from shared.core.errors import PayloadError
from shared.diagnosis.envelopes._common import family_of, resource_id, subscription_of
from shared.diagnosis.envelopes._reader import Reader, describe

COMMON_SCHEMA = "azureMonitorCommonAlertSchema"
_CONDITIONS = ("Fired", "Resolved")
_MAX_LEAVES = 64
_MAX_LEAF = 4000
_LABELLED = frozenset({"code", "message", "Code", "Message", "status", "statusCode"})


def looks_like_alert(obj: dict[str, Any]) -> bool:
    return "schemaId" in obj or "schemaid" in obj


def parse_alert(r: Reader) -> Failure:
    schema = r.req("schemaId")
    if schema != COMMON_SCHEMA:
        raise PayloadError(
            r.at("schemaId"),
            f"unsupported alert schema {schema!r}; enable the common alert schema ({COMMON_SCHEMA}) "
            "on the action group",
        )
    data = r.req_child("data")
    ess = data.req_child("essentials")
    condition = ess.req("monitorCondition")
    if condition not in _CONDITIONS:
        raise PayloadError(ess.at("monitorCondition"), f"expected 'Fired' or 'Resolved', got {condition!r}")
    rule = ess.req("alertRule")
    service = ess.text("monitoringService") or ""
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
    correlation: list[str] = []
    if context is not None:
        if service.startswith("Activity Log"):
            operation, status_text, corr = _activity(context, texts)
            status = status_text or status
            if corr:
                correlation.append(corr)
        else:
            _conditions(context, texts)
    resource_id = targets[0] if targets else None
    return Failure(
        source=SourceKind.ALERT,
        failed=condition == "Fired",
        texts=tuple(texts),
        family=family_of(resource_id, operation, rule, *items),
        resource_id=resource_id,
        subscription_id=subscription_of(resource_id),
        operation=operation,
        status=status if condition == "Fired" else "Resolved",
        event_id=alert_id,
        event_type=f"alert/{service or 'unknown'}",
        correlation_ids=tuple(correlation),
        started_at=fired,
        ended_at=resolved,
        facts=tuple(
            [("monitoring_service", service), ("severity", ess.text("severity") or "")]
            + [("alert_target", t) for t in targets[1:]]
            + [("configuration_item", c) for c in items]
        ),
    )


def _is_id(value: Any, path: str) -> bool:
    if not isinstance(value, str):
        raise PayloadError(path, f"expected an array of resource id strings, found {describe(value)}")
    resource_id(value, path)
    return True


def _activity(ctx: Reader, texts: list[str]) -> tuple[str | None, str | None, str | None]:
    """Activity Log alerts: the operation, its status, and the error inside properties."""
    operation = ctx.text("operationName")
    status = ctx.text("status")
    sub = ctx.text("subStatus")
    texts.append(f"{operation or 'operation'} {status or ''} {sub or ''}".strip())
    claims = ctx.get("claims")
    if claims is not None and not isinstance(claims, (str, dict)):
        raise PayloadError(ctx.at("claims"), f"expected a JSON string, got {describe(claims)}")
    props = ctx.get("properties")
    if isinstance(props, dict):
        for key, value in props.items():
            if isinstance(value, str) and value:
                texts.append(f"{key}: {_unwrap_json(value)}")
    return operation, status, ctx.text("correlationId")


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


def _conditions(ctx: Reader, texts: list[str]) -> None:
    """Log and metric alerts: the query or metric, and the dimension values that fired."""
    condition = ctx.child("condition")
    if condition is None:
        leaves: list[str] = []
        _leaves(ctx.obj, leaves)
        texts.extend(leaves)
        return
    for crit in condition.children("allOf"):
        for key in ("searchQuery", "metricName", "metricMeasureColumn"):
            value = crit.text(key)
            if value:
                texts.append(f"{key}: {value}")
        value = crit.get("metricValue")
        if value is not None:
            texts.append(f"metricValue: {value}")
        for dim in crit.children("dimensions"):
            name, val = dim.text("name"), dim.get("value")
            if name:
                texts.append(f"{name}: {val}")


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
