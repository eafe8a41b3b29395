"""The operations API: alerts in, remediations on demand, operations, history, approvals.

Runtime-free like `shared.entry.diagnosis_api`: each handler takes plain values and returns
(status, body, headers); `function_app.py` adapts. Every refusal is a 4xx that names
the field and the problem.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from shared.core.errors import PayloadError
from shared.entry.diagnosis_api import JSON_HEADERS, MAX_BODY, Response
from shared.wiring import App

HTML_HEADERS = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
                "X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                           "frame-ancestors 'none'"}
_ID = re.compile(r"[0-9a-f]{32}")
_NAME = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
_LIMIT = re.compile(r"[0-9]{1,4}")
# Filter values go into a storage query (a URL): bounded, printable, encodable.
_FILTER_TEXT = {"target": 1024, "scenario": 200}
_UNFIT = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_EARLIEST, _LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC)
log = logging.getLogger("remediator.http")
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
    """POST /api/alerts: an Azure Monitor alert (common alert schema, or an older webhook schema).
    Fired: diagnose and decide, once per alert firing (once per row for a log search alert).
    Resolved: withdraw the approvals it raised. A schema it does not read: recorded, answered 200."""
    from shared.diagnosis.envelopes._reader import Reader
    from shared.diagnosis.envelopes.alerts import UnsupportedAlertSchema, looks_like_alert, parse_alerts

    if not body.strip():
        return _error(400, "the body is empty: send a common alert schema payload", "(body)")
    try:
        value = _json_body(body)
        if not isinstance(value, dict) or not looks_like_alert(value):
            raise PayloadError("schemaId", "required: enable the common alert schema on the action group")
        # An alert (common schema or an older webhook schema), whatever else the object carries: this
        # route does not take events or resources. One failure per row the alert carries.
        failures = parse_alerts(Reader(value))
    except UnsupportedAlertSchema as exc:
        return _refused(app, exc, body)
    except PayloadError as exc:
        return _error(413 if "limit is" in exc.problem else 400, exc.problem, exc.path, "invalid payload")
    alert_id = failures[0].event_id or ""
    try:
        return _alert(app, failures, alert_id, body)
    except Exception as exc:
        if not _storage_transient(exc):
            raise
        # Table or queue storage could not answer for now: action groups send the webhook again on a 503.
        return 503, {"error": "try again", "problem": f"state storage is unavailable: {type(exc).__name__}"}, \
            dict(JSON_HEADERS) | {"Retry-After": "60"}


def _storage_transient(exc: BaseException) -> bool:
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    from shared.state.tables import Contention

    if isinstance(exc, (ServiceRequestError, ServiceResponseError, Contention, ConnectionError, TimeoutError)):
        return True
    return isinstance(exc, HttpResponseError) and (exc.status_code in (408, 429) or (exc.status_code or 0) >= 500)


def _refused(app: App, exc: PayloadError, body: bytes) -> Response:
    """An alert in a schema this app does not read: answered 200 (an action group does not send a 4xx
    again, so it would be lost either way), recorded in the audit trail and logged as an error."""
    from shared.state.audit import AuditRecord

    log.error("alert refused: %s: %s", exc.path, exc.problem)
    try:
        app.audit.record(AuditRecord(kind="error", reason=f"alert refused ({exc.path})", error=exc.problem,
                                     result={"body": body[:4000].decode("utf-8", "replace")}))
    except Exception as error:
        if not _storage_transient(error):
            raise
        return 503, {"error": "try again", "problem": f"state storage is unavailable: {type(error).__name__}"}, \
            dict(JSON_HEADERS) | {"Retry-After": "60"}
    return 200, {"alert_id": "", "refused": exc.problem, "field": exc.path}, dict(JSON_HEADERS)


def _alert(app: App, failures: list[Any], alert_id: str, body: bytes) -> Response:
    from shared.decisions.pipeline import Retry, diagnose_live, dispatch
    from shared.diagnosis.alert_rows import RowsUnavailable, alert_failures

    failure = failures[0]
    condition = failure.fact("monitor_condition") or ("Resolved" if failure.status == "Resolved" else "Fired")
    if not failure.failed and condition == "Fired":
        # Fired, but the signal is no failure: an activity log event that Succeeded, Started or was
        # Accepted, a Service Health communication whose issue is resolved, a resource available again.
        diagnosis = diagnose_live(app, failure)  # scenario `none`, recorded in the audit trail
        dispatch(app, diagnosis, alert_id=alert_id)
        return 200, {"alert_id": alert_id, "condition": "Fired", "scenario": diagnosis.scenario,
                     "status": failure.status or ""}, dict(JSON_HEADERS)
    if not failure.failed:
        withdrawn = app.approvals.withdraw_for_alert(alert_id, "the alert resolved") if alert_id else []
        for approval in withdrawn:  # a withdrawn proposal releases its failure: a new firing proposes again
            if approval.plan.get("fix_key"):
                app.proposals.fail(str(approval.plan["fix_key"]), "withdrawn: the alert resolved")
        return 200, {"alert_id": alert_id, "condition": "Resolved",
                     "withdrawn": [a.id for a in withdrawn]}, dict(JSON_HEADERS)
    fired = failure.started_at.isoformat() if failure.started_at else ""
    # An alert without its id or firing time is keyed on its own bytes: two such alerts never share a key.
    key = f"alert:{alert_id}:{fired}" if alert_id and fired else \
        f"alert-body:{hashlib.sha256(body).hexdigest()[:32]}"
    begun = app.ledger.begin(key, retry_failed=True)
    if not begun.owned:
        return 200, {"alert_id": alert_id, "duplicate": True, "state": begun.state}, dict(JSON_HEADERS)
    try:
        # A log alert that names no row is followed to its rows: one diagnosis per failed run or machine.
        diagnoses = [diagnose_live(app, f) for f in alert_failures(failures, app.ctx)]
        dispatched = [d for diagnosis in diagnoses for d in dispatch(app, diagnosis, alert_id=alert_id)]
    except (Retry, RowsUnavailable) as exc:
        # Azure could not answer for now; action groups send a webhook again on a 503.
        app.ledger.fail(key, str(exc))
        return 503, {"error": "try again", "problem": str(exc)}, dict(JSON_HEADERS) | {"Retry-After": "60"}
    except Exception as exc:
        from remediations.runner import describe_error

        app.ledger.fail(key, describe_error(exc))
        raise
    diagnosis = next((d for d in diagnoses if d.scenario not in ("none", "unknown")), diagnoses[0])
    result = {"alert_id": alert_id, "scenario": diagnosis.scenario, "title": diagnosis.title,
              "evidence": list(diagnosis.evidence), "dispatched": [d.to_dict() for d in dispatched],
              "diagnoses": [{"scenario": d.scenario, "title": d.title, "evidence": list(d.evidence),
                             "target": d.failure.resource_id if d.failure else None} for d in diagnoses]}
    app.ledger.complete(key, {"scenario": diagnosis.scenario, "scenarios": [d.scenario for d in diagnoses]})
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
    from remediations.base import check_request

    remediation = registry().items[name]
    try:
        target = check_request(remediation, target, params)
    except PayloadError as exc:
        return _error(400, exc.problem, exc.path)
    requested_by = caller or "function key holder"
    if not app.policy.in_scope(target):
        return _error(403, f"{target} is outside the allowed scopes", "target", "forbidden")
    if dry_run:  # changes nothing: planned in the queue whatever the mode
        op = app.operations.create(kind="manual", remediation=name, target=target, params=params, dry_run=True)
        app.queue.send(Job(op.id, name, target, params=params, dry_run=True, requested_by=requested_by,
                           reason="dry run requested over HTTP"))
        return 202, {"operation_id": op.id, "status": "queued", "status_url": f"/api/operations/{op.id}",
                     "reason": "a dry run changes nothing: planned in the queue", "requested_by": requested_by}, \
            dict(JSON_HEADERS) | {"Location": f"/api/operations/{op.id}"}
    return _requested(app, remediation, target, params, requested_by)


def _requested(app: App, remediation: Any, target: str, params: dict[str, str], requested_by: str) -> Response:
    """A manual run is a request: the same policy as everything else decides it (an approval-mode
    fix becomes a proposal with its card; observe records and changes nothing)."""
    from shared.decisions.pipeline import Request, Retry, decide

    request = Request(remediation.name, remediation.mode, target, params=params, scenario="manual",
                      title=f"{remediation.name} requested by {requested_by}", requested_by=requested_by,
                      kind="manual", evidence=(f"requested over HTTP by {requested_by}",))
    try:
        done = decide(app, request)
    except Retry as exc:
        return 503, {"error": "try again", "problem": str(exc)}, dict(JSON_HEADERS) | {"Retry-After": "30"}
    body: dict[str, Any] = {"status": done.action, "reason": done.reason, "requested_by": requested_by}
    if done.action == "queued":
        op_id = done.operation_id
        return 202, body | {"operation_id": op_id, "status_url": f"/api/operations/{op_id}"}, \
            dict(JSON_HEADERS) | {"Location": f"/api/operations/{op_id}"}
    if done.action == "proposed":
        return 202, body | {"approval_id": done.approval_id}, dict(JSON_HEADERS)
    if done.action == "denied":
        return _error(403, done.reason, "target", "forbidden")
    if done.action == "failed":
        return _error(409, done.reason, "target", "cannot be planned")
    return 200, body, dict(JSON_HEADERS)  # observed, noop


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
    from shared.decisions.pipeline import approval_still_allowed

    form: dict[str, str] = dict(params)
    if body:
        if len(body) > 16 * 1024:
            return 413, _page("Form too large", "<p>The form is over 16 KiB.</p>", 413).html, dict(HTML_HEADERS)
        try:
            parsed = parse_qs(body.decode("utf-8"), strict_parsing=False, max_num_fields=10)
        except (UnicodeDecodeError, ValueError):
            return 400, _page("Bad form", "<p>The form could not be read.</p>", 400).html, dict(HTML_HEADERS)
        form |= {k: v[0] for k, v in parsed.items() if v}
    page = decide(app, approval_id, form.get("decision"), form.get("token"), headers, page=form.get("page"),
                  still_allowed=approval_still_allowed)
    return page.status, page.html, dict(HTML_HEADERS)
