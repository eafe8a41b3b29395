"""The operations API: alerts in, remediations on demand, operations, history, approvals.

Runtime-free like `shared.entry.diagnosis_api`: each handler takes plain values and returns
(status, body, headers); `function_app.py` adapts. Every refusal is a 4xx that names
the field and the problem.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from shared.core.errors import PayloadError
from shared.entry.diagnosis_api import JSON_HEADERS, MAX_BODY, Response
from shared.wiring import App

HTML_HEADERS = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
                "X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"}
_ID = re.compile(r"[0-9a-f]{32}")
_NAME = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
_LIMIT = re.compile(r"[0-9]{1,4}")
# Filter values go into a storage query (a URL): bounded, printable, encodable.
_FILTER_TEXT = {"target": 1024, "scenario": 200}
_UNFIT = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_EARLIEST, _LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC)
MAX_HISTORY = 500
MAX_PARAMS = 20
MAX_PARAM_NAME = 64
MAX_PARAM_CHARS = 1024
MAX_PARAMS_JSON = 16 * 1024  # a job message (with the target) stays well within the queue's 64 KiB


def _error(status: int, problem: str, field: str | None = None, error: str = "bad request") -> Response:
    body: dict[str, Any] = {"error": error, "problem": problem}
    if field is not None:
        body["field"] = field
    return status, body, dict(JSON_HEADERS)


def _shown(name: str) -> str:
    """A caller's field or parameter name, fit to name it back: as it is, or quoted and cut."""
    return name if 0 < len(name) <= 64 and not _UNFIT.search(name) else repr(name[:64])


def _json_body(body: bytes) -> Any:
    from shared.diagnosis.envelopes import check_unicode

    if len(body) > MAX_BODY:
        raise PayloadError("(body)", f"the body is {len(body)} bytes; the limit is {MAX_BODY}")
    try:
        value = json.loads(body)
    except RecursionError:
        raise PayloadError("(body)", "JSON nested too deeply") from None
    except ValueError as exc:
        raise PayloadError("(body)", f"not valid JSON: {exc}") from None
    try:
        check_unicode(value)
    except PayloadError as exc:
        raise PayloadError(exc.path if exc.path != "(payload)" else "(body)", exc.problem) from None
    return value


def alerts(app: App, body: bytes) -> Response:
    """POST /api/alerts: an Azure Monitor alert (common alert schema). Fired: diagnose and
    decide, once per alert firing. Resolved: withdraw the approvals it raised."""
    from shared.decisions.pipeline import Retry, diagnose_live, dispatch
    from shared.diagnosis.envelopes._reader import Reader
    from shared.diagnosis.envelopes.alerts import parse_alert

    if not body.strip():
        return _error(400, "the body is empty: send a common alert schema payload", "(body)")
    try:
        value = _json_body(body)
        if not isinstance(value, dict) or "schemaId" not in value:
            raise PayloadError("schemaId", "required: enable the common alert schema on the action group")
        # An alert, whatever else the object carries: this route does not take events or resources.
        failure = parse_alert(Reader(value))
    except PayloadError as exc:
        return _error(413 if "limit is" in exc.problem else 400, exc.problem, exc.path, "invalid payload")
    alert_id = failure.event_id or ""
    if not failure.failed:
        withdrawn = app.approvals.withdraw_for_alert(alert_id, "the alert resolved") if alert_id else []
        return 200, {"alert_id": alert_id, "condition": "Resolved",
                     "withdrawn": [a.id for a in withdrawn]}, dict(JSON_HEADERS)
    fired = failure.started_at.isoformat() if failure.started_at else ""
    key = f"alert:{alert_id}:{fired}"
    begun = app.ledger.begin(key, retry_failed=True)
    if not begun.owned:
        return 200, {"alert_id": alert_id, "duplicate": True, "state": begun.state}, dict(JSON_HEADERS)
    try:
        diagnosis = diagnose_live(app, failure)
        dispatched = dispatch(app, diagnosis, alert_id=alert_id)
    except Retry as exc:
        # Azure could not answer for now; action groups send a webhook again on a 503.
        app.ledger.fail(key, str(exc))
        return 503, {"error": "try again", "problem": str(exc)}, dict(JSON_HEADERS) | {"Retry-After": "60"}
    except Exception as exc:
        from remediations.runner import describe_error

        app.ledger.fail(key, describe_error(exc))
        raise
    result = {"alert_id": alert_id, "scenario": diagnosis.scenario, "title": diagnosis.title,
              "evidence": list(diagnosis.evidence), "dispatched": [d.to_dict() for d in dispatched]}
    app.ledger.complete(key, {"scenario": diagnosis.scenario})
    return 202, result, dict(JSON_HEADERS)


def list_remediations() -> Response:
    from remediations.base import registry
    from remediations.limits import Limits

    limits = Limits.from_env().describe()
    body = [{"name": r.name, "fixes": list(r.fixes), "mode": r.mode.value, "summary": r.summary,
             "target": r.target_kind, "params": dict(r.params), "limits": {n: limits[n] for n in r.limit_names}}
            for r in sorted(registry().items.values(), key=lambda r: r.name)]
    return 200, body, dict(JSON_HEADERS)


def run_remediation(app: App, name: str, body: bytes, caller: str | None = None) -> Response:
    """POST /api/remediations/{name}: {"target": id, "params": {...}, "dry_run": bool} -> 202."""
    from remediations.base import registry
    from shared.state.jobs import Job

    if not _NAME.match(name or "") or name not in registry().items:
        return _error(404, f"no remediation {name!r}; GET /api/remediations lists them", "name", "not found")
    try:
        value = _json_body(body) if body.strip() else None
    except PayloadError as exc:
        return _error(413 if "limit is" in exc.problem else 400, exc.problem, exc.path)
    if not isinstance(value, dict):
        return _error(400, "expected a JSON object {\"target\": ..., \"params\": {...}, \"dry_run\": false}",
                      "(body)")
    target = value.get("target")
    if not isinstance(target, str) or not target.startswith("/subscriptions/") or len(target) > 1024:
        return _error(400, "required: an ARM resource id (or /subscriptions/<id>)", "target")
    params = value.get("params", {})
    if not isinstance(params, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in params.items()):
        return _error(400, "expected an object of string values", "params")
    if len(params) > MAX_PARAMS:
        return _error(400, f"at most {MAX_PARAMS} parameters", "params")
    if any(not 0 < len(k) <= MAX_PARAM_NAME or len(v) > MAX_PARAM_CHARS for k, v in params.items()):
        return _error(400, f"a parameter name has 1 to {MAX_PARAM_NAME} characters and a value at most "
                      f"{MAX_PARAM_CHARS}", "params")
    if len(json.dumps(params)) > MAX_PARAMS_JSON:
        return _error(400, f"the parameters take more than {MAX_PARAMS_JSON} bytes", "params")
    dry_run = value.get("dry_run", False)
    if not isinstance(dry_run, bool):
        return _error(400, "expected true or false", "dry_run")
    unknown = sorted(_shown(k) for k in set(value) - {"target", "params", "dry_run"})
    if unknown:
        return _error(400, f"unknown field(s): {', '.join(unknown[:5])}", unknown[0])
    if not app.policy.in_scope(target):
        return _error(403, f"{target} is outside the allowed scopes", "target", "forbidden")
    op = app.operations.create(kind="manual", remediation=name, target=target, params=params, dry_run=dry_run)
    app.queue.send(Job(op.id, name, target, params=params, dry_run=dry_run, requested_by=caller or "api",
                       reason="requested over HTTP"))
    return 202, {"operation_id": op.id, "status": op.status, "status_url": f"/api/operations/{op.id}"}, \
        dict(JSON_HEADERS) | {"Location": f"/api/operations/{op.id}"}


def get_operation(app: App, operation_id: str) -> Response:
    from shared.state.operations import operation_to_dict

    if not _ID.fullmatch(operation_id or ""):
        return _error(400, "an operation id is 32 hex characters", "id")
    op = app.operations.get(operation_id)
    if op is None:
        return _error(404, f"no operation {operation_id}", "id", "not found")
    return 200, operation_to_dict(op), dict(JSON_HEADERS)


def _time(params: Mapping[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00")) if len(raw) <= 64 else None
    except ValueError:
        value = None
    if value is None:
        raise PayloadError(name, f"expected an ISO 8601 time, got {raw[:40]!r}")
    if value.tzinfo is None:
        raise PayloadError(name, "give a time zone (e.g. 2026-11-25T00:00:00Z)")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before the first representable time
        utc = None
    if utc is None or not _EARLIEST <= utc <= _LATEST:
        raise PayloadError(name, "expected a time from 1970 to 9999")
    return utc


def _filter_text(params: Mapping[str, str], name: str) -> None:
    raw = params.get(name)
    if raw is not None and (len(raw) > _FILTER_TEXT[name] or _UNFIT.search(raw)):
        raise PayloadError(name, f"expected at most {_FILTER_TEXT[name]} printable characters")


def history(app: App, params: Mapping[str, str]) -> Response:
    """GET /api/history?target=&scenario=&since=&until=&limit=: the audit trail, newest first."""
    from shared.state.audit import audit_to_dict

    try:
        since, until = _time(params, "since"), _time(params, "until")
        raw_limit = params.get("limit", "100")
        if not _LIMIT.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= MAX_HISTORY:
            raise PayloadError("limit", f"expected a number from 1 to {MAX_HISTORY}")
        for name in _FILTER_TEXT:
            _filter_text(params, name)
    except PayloadError as exc:
        return _error(400, exc.problem, exc.path)
    unknown = sorted(_shown(k) for k in set(params) - {"target", "scenario", "since", "until", "limit", "code"})
    if unknown:
        return _error(400, f"unknown parameter(s): {', '.join(unknown[:5])}", unknown[0])
    records = app.audit.query(target=params.get("target") or None, scenario=params.get("scenario") or None,
                              since=since, until=until, limit=int(raw_limit))
    return 200, {"records": [audit_to_dict(r) for r in records]}, dict(JSON_HEADERS)


def approval_page(app: App, approval_id: str, params: Mapping[str, str], headers: Mapping[str, str]) -> Response:
    from shared.approvals.flow import confirmation

    page = confirmation(app, approval_id, params.get("decision"), params.get("token"), headers)
    return page.status, page.html, dict(HTML_HEADERS)


def approval_decision(app: App, approval_id: str, params: Mapping[str, str], headers: Mapping[str, str],
                      body: bytes) -> Response:
    """POST /api/approvals/{id}: the form from the confirmation page (or query parameters)."""
    from shared.approvals.flow import _page, decide

    form: dict[str, str] = dict(params)
    if body:
        if len(body) > 16 * 1024:
            return 413, _page("Form too large", "<p>The form is over 16 KiB.</p>", 413).html, dict(HTML_HEADERS)
        try:
            parsed = parse_qs(body.decode("utf-8"), strict_parsing=False, max_num_fields=10)
        except (UnicodeDecodeError, ValueError):
            return 400, _page("Bad form", "<p>The form could not be read.</p>", 400).html, dict(HTML_HEADERS)
        form |= {k: v[0] for k, v in parsed.items() if v}
    page = decide(app, approval_id, form.get("decision"), form.get("token"), headers)
    return page.status, page.html, dict(HTML_HEADERS)
