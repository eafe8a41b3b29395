"""The HTTP API described as OpenAPI 3.0: every route `function_app.py` binds.

`spec()` builds the document as a plain dict (nothing is read from disk, nothing heavy
is imported); `openapi_document()` is the handler behind `GET /api/openapi.json`.
Request schemas say what the handlers check (the alert common schema down to the
fields the envelope reads, the remediation request, the approval form); every 4xx a
handler can answer is listed, with the error body `{error, problem, field?}` for the
JSON routes and an HTML page for the approval links.
"""

from __future__ import annotations

from typing import Any

from shared.entry.diagnosis_api import JSON_HEADERS, MAX_BODY, Response

OPENAPI_VERSION = "3.0.3"
API_VERSION = "0.1.0"
# Kept equal to the handlers' limits (tests/test_openapi... checks them against shared.entry.operations_api).
MAX_FORM_BYTES = 16 * 1024
MAX_HISTORY = 500
MAX_ID_CHARS = 1024
MAX_PARAMS = 20
MAX_PARAM_CHARS = 1024
MAX_PARAM_NAME = 64
MAX_PARAMS_JSON = 16 * 1024
APPROVAL_ID_PATTERN = "^[0-9a-f]{32}$"
OPERATION_ID_PATTERN = "^[0-9a-f]{32}$"
REMEDIATION_NAME_PATTERN = "^[a-z][a-z0-9-]{1,62}$"

_FUNCTION_KEY: list[dict[str, list[str]]] = [{"functionKey": []}, {"functionKeyHeader": []}]
_ANONYMOUS: list[dict[str, list[str]]] = []


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}, **extra}


def _error(description: str, fields: list[str] | None = None) -> dict[str, Any]:
    """A JSON refusal; `fields` are the values `field` takes for this status on this route."""
    text = description + (f" `field` is one of: {', '.join(f'`{f}`' for f in fields)}." if fields else "")
    return _json(_ref("Error"), text)


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


_UNAUTHORIZED = {"description": "No function key, or a wrong one (answered by the Functions host; no body)."}


def _string(**extra: Any) -> dict[str, Any]:
    return {"type": "string", **extra}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI 3.0's null: `nullable`, and null among an enum's values (OAS 3.0.3 clarifies both are needed)."""
    out = {**schema, "nullable": True}
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


def _array(items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "array", "items": items, **extra}


def _object(properties: dict[str, Any], required: list[str] | None = None, *, closed: bool = False,
            **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if closed:
        schema["additionalProperties"] = False
    return schema | extra


def _schemas() -> dict[str, Any]:
    resource_id = _string(maxLength=MAX_ID_CHARS, pattern="^/subscriptions/[^/]+",
                          description="An Azure resource id (/subscriptions/<id>[/resourceGroups/<group>]"
                                      "[/providers/<namespace>/<type>/<name>...]).")
    time = _string(format="date-time")
    any_object = {"type": "object", "additionalProperties": True}
    return {
        "Error": _object({
            "error": _string(description="The kind of refusal, e.g. `invalid payload`, `bad request`, `not found`."),
            "problem": _string(minLength=1, description="What is wrong, in words."),
            "field": _string(description="The field, parameter or dotted payload path at fault; `(body)` or "
                                         "`(payload)` for the body as a whole."),
        }, ["error", "problem"]),

        # --- requests -------------------------------------------------------------------------
        "CommonAlert": _object({
            "schemaId": _string(description="`azureMonitorCommonAlertSchema` (recommended); the older webhook "
                                            "schemas `Microsoft.Insights/activityLogs`, `Microsoft.Insights/LogAlert`, "
                                            "`AzureMonitorMetricAlert`, `AIP Budget Notification` and the classic "
                                            "metric and Log Analytics alerts without a schemaId are read too."),
            "data": _object({
                "essentials": _object({
                    "alertId": _string(maxLength=MAX_ID_CHARS),
                    "originAlertId": _string(maxLength=MAX_ID_CHARS),
                    "alertRule": _string(minLength=1),
                    "monitorCondition": _string(enum=["Fired", "Resolved"]),
                    "monitoringService": _string(description="`Activity Log - ...` alerts have their "
                                                             "alertContext read as an activity log record."),
                    "severity": _string(),
                    "signalType": _string(),
                    "alertTargetIDs": _array(resource_id),
                    "configurationItems": _array({}),
                    "firedDateTime": time,
                    "resolvedDateTime": time,
                    "description": _string(),
                    "essentialsVersion": _string(),
                    "alertContextVersion": _string(),
                }, ["alertRule", "monitorCondition"], additionalProperties=True),
                "alertContext": _nullable({**any_object, "description": "Service-specific: an activity log "
                                           "record (operationName, status, properties.statusMessage, claims "
                                           "as a JSON string or object) or a log/metric condition "
                                           "(condition.allOf[].searchQuery, metricName, dimensions)."}),
            }, ["essentials"], additionalProperties=True),
        }, ["schemaId", "data"], additionalProperties=True),
        "RemediationRequest": _object({
            "target": _string(pattern="^/subscriptions/", maxLength=MAX_ID_CHARS,
                              description="The ARM resource id to act on (or /subscriptions/<id>); must be "
                                          "inside the allowed scopes."),
            "params": _object({}, additionalProperties=_string(maxLength=MAX_PARAM_CHARS),
                              maxProperties=MAX_PARAMS,
                              description="The remediation's parameters (GET /remediations lists them): names of "
                                          f"1 to {MAX_PARAM_NAME} characters, values of at most {MAX_PARAM_CHARS}, "
                                          f"at most {MAX_PARAMS_JSON} bytes as JSON."),
            "dry_run": {"type": "boolean", "default": False, "description": "Plan only; change nothing."},
        }, ["target"], closed=True),
        "ApprovalForm": _object({
            "decision": _string(enum=["approve", "reject"]),
            "token": _string(maxLength=1024, pattern="^[A-Za-z0-9_-]+$",
                             description="The signed, expiring token from the card's link."),
        }, ["decision", "token"]),
        "EventGridEvent": _object({
            "id": _string(minLength=1, maxLength=MAX_ID_CHARS),
            "eventType": _string(minLength=1),
            "subject": _string(),
            "eventTime": time,
            "topic": _string(),
            "data": {},
            "dataVersion": _string(),
            "metadataVersion": _string(),
        }, ["id", "eventType", "subject", "eventTime"], additionalProperties=True),
        "CloudEvent": _object({
            "specversion": _string(enum=["1.0"]),
            "id": _string(minLength=1, maxLength=MAX_ID_CHARS),
            "source": _string(minLength=1),
            "type": _string(minLength=1),
            "subject": _string(),
            "time": time,
            "data": {},
        }, ["specversion", "id", "source", "type"], additionalProperties=True),
        "FailureText": _object({
            "text": _string(minLength=1, description="A portal message, CLI output, a DevOps or Packer log."),
            "source": _string(enum=["aib", "update"], description="Which guide the text belongs to."),
        }, ["text"], closed=True),
        "ArmResource": _object({
            "id": resource_id,
            "type": _string(),
            "properties": any_object,
        }, ["properties"], additionalProperties=True,
            description="An image template or a software update configuration (machine) run, as GET returns it."),
        "ArmErrorBody": _object({
            "error": _object({"code": _string(), "message": _string(), "target": _string(),
                              "details": _array(any_object)}, additionalProperties=True),
        }, ["error"], additionalProperties=True),
        "ArmList": _object({"value": _array(any_object)}, ["value"], additionalProperties=True),
        "DiagnosePayload": {"anyOf": [
            _ref("EventGridEvent"), _ref("CloudEvent"), _ref("CommonAlert"), _ref("ArmResource"),
            _ref("ArmErrorBody"), _ref("ArmList"), _ref("FailureText"),
            _array({"anyOf": [_ref("EventGridEvent"), _ref("CloudEvent"), _ref("CommonAlert"), _ref("ArmResource"),
                              _ref("ArmErrorBody"), _ref("FailureText")]}, minItems=1, maxItems=5000),
        ]},

        # --- responses ------------------------------------------------------------------------
        "Failure": _object({
            "source": _string(enum=["eventgrid", "cloudevent", "alert", "maintenance", "image_template",
                                    "automation_run", "automation_machine_run", "text"]),
            "failed": {"type": "boolean"},
            "family": _nullable(_string(enum=["aib", "update"])),
            "resource_id": _nullable(_string()),
            "subscription_id": _nullable(_string()),
            "operation": _nullable(_string()),
            "status": _nullable(_string()),
            "event_id": _nullable(_string()),
            "event_type": _nullable(_string()),
            "correlation_ids": _array(_string()),
            "started_at": _nullable(time),
            "ended_at": _nullable(time),
            "facts": _object({}, additionalProperties=_string()),
        }, ["source", "failed"]),
        "RemediationRef": _object({"name": _string(), "mode": _string(enum=["auto", "approval", "advice"])},
                                  ["name", "mode"]),
        "Diagnosis": _object({
            "scenario": _string(description="A catalog scenario id, `unknown` or `none`."),
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "title": _string(),
            "evidence": _array(_string()),
            "remediations": _array(_ref("RemediationRef")),
            "doc": _nullable(_string()),
            "anchor": _nullable(_string()),
            "advice": _array(_string()),
            "queries": _array(_string()),
            "family": _nullable(_string(enum=["aib", "update"])),
            "details": _object({}, additionalProperties=_string()),
            "failure": _ref("Failure"),
        }, ["scenario", "confidence", "title"]),
        "ValidationResponse": _object({"validationResponse": _string()}, ["validationResponse"], closed=True),
        "Scenario": _object({
            "id": _string(), "family": _string(enum=["aib", "update"]), "title": _string(),
            "doc": _nullable(_string()), "remediations": _array(_ref("RemediationRef")),
        }, ["id", "family", "title", "remediations"]),
        "Dispatched": _object({
            "remediation": _string(), "target": _string(),
            "action": _string(enum=["queued", "proposed", "observed", "denied", "noop", "failed", "duplicate",
                                    "advice"]),
            "reason": _string(),
            "operation_id": _nullable(_string()),
            "approval_id": _nullable(_string()),
        }, ["remediation", "target", "action", "reason"]),
        "AlertAccepted": _object({
            "alert_id": _string(), "scenario": _string(), "title": _string(), "evidence": _array(_string()),
            "dispatched": _array(_ref("Dispatched")),
            "diagnoses": _array(_object({"scenario": _string(), "title": _string(), "evidence": _array(_string()),
                                         "target": _nullable(_string())}),
                                description="One per failure the alert stands for: each row it carries, or each "
                                            "row of a log search alert's query read again for its window."),
        }, ["alert_id", "scenario", "dispatched"]),
        "AlertHandled": _object({
            "alert_id": _string(),
            "condition": _string(enum=["Resolved", "Fired"],
                                 description="`Fired` with `scenario` `none`: the alert's signal is no failure "
                                             "(an operation that succeeded or is running, a resolved Service "
                                             "Health issue)."),
            "scenario": _string(), "status": _string(),
            "withdrawn": _array(_string(), description="Approvals withdrawn because the alert resolved."),
            "duplicate": {"type": "boolean", "description": "This firing was already handled."},
            "state": _string(description="The ledger state of the earlier delivery."),
            "refused": _string(description="An alert schema this app does not read: recorded in the audit trail "
                                           "and logged as an error, answered 200 (action groups do not send a "
                                           "4xx again)."),
            "field": _string(),
        }, ["alert_id"]),
        "Remediation": _object({
            "name": _string(), "fixes": _array(_string()), "mode": _string(enum=["auto", "approval", "advice"]),
            "summary": _string(), "target": _string(),
            "params": _object({}, additionalProperties=_string()),
            "limits": _object({}, additionalProperties=_string()),
        }, ["name", "mode", "target", "params", "limits"]),
        "OperationAccepted": _object({
            "operation_id": _string(pattern=OPERATION_ID_PATTERN),
            "status": _string(),
            "status_url": _string(),
        }, ["operation_id", "status", "status_url"]),
        "RequestDecided": _object({
            "status": _string(enum=["queued", "proposed", "observed", "noop", "failed"],
                              description="What policy made of the request: queued (an operation), proposed "
                              "(an approval and its card), observed (recorded only), noop (nothing to do)."),
            "reason": _string(),
            "requested_by": _string(),
            "operation_id": _string(pattern=OPERATION_ID_PATTERN),
            "status_url": _string(),
            "approval_id": _string(pattern=OPERATION_ID_PATTERN),
        }, ["status", "reason"]),
        "Operation": _object({
            "id": _string(pattern=OPERATION_ID_PATTERN),
            "kind": _string(enum=["manual", "auto", "approval"]),
            "remediation": _string(),
            "target": _string(),
            "params": _object({}, additionalProperties=_string()),
            "dry_run": {"type": "boolean"},
            "status": _string(enum=["queued", "running", "succeeded", "failed", "noop", "dry-run",
                                    "awaiting-approval"]),
            "result": any_object,
            "error": _nullable(_string()),
            "created_at": time,
            "updated_at": time,
        }, ["id", "kind", "remediation", "target", "status", "created_at", "updated_at"]),
        "AuditRecord": _object({
            "id": _string(),
            "at": _nullable(time),
            "kind": _string(enum=["diagnosis", "decision", "plan", "apply", "verify", "approval", "poison",
                                  "error"]),
            **{name: _nullable(_string()) for name in ("event_id", "operation_id", "target", "scenario",
                                                       "remediation", "decision", "reason", "actor", "error")},
            "changes": _array(_object({"resource_id": _string(), "field": _string(), "before": {}, "after": {}})),
            "result": _nullable(any_object),
            "duration_ms": _nullable({"type": "integer"}),
            "truncated": _array(_string(), description="Fields stored cut (too large)."),
        }, ["id", "kind"]),
        "History": _object({"records": _array(_ref("AuditRecord"))}, ["records"]),
    }


def _approval_id() -> dict[str, Any]:
    return {"name": "id", "in": "path", "required": True, "description": "The approval id (32 hex characters).",
            "schema": _string(pattern=APPROVAL_ID_PATTERN)}


def _query(name: str, description: str, schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


def _paths() -> dict[str, Any]:
    json_body: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}}
    return {
        "/diagnose": {"post": {
            "operationId": "diagnose",
            "tags": ["diagnosis"],
            "summary": "Diagnose any supported payload or plain failure text (changes nothing).",
            "description": "Answers an Event Grid subscription validation event with its code, so the route "
                           "can stand in for a webhook while a subscription is tested.",
            "parameters": [_query("source", "Which guide to read free text against (case-insensitive).",
                                  _string(enum=["aib", "update"]))],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": _ref("DiagnosePayload")},
                "text/plain": {"schema": _string(minLength=1, description="Failure text: a portal message, CLI "
                                                                          "output, a DevOps or Packer log.")},
            }, "description": f"At most {MAX_BODY} bytes. JSON is recognised by its first character; "
                              "anything else is failure text."},
            "responses": {
                "200": _json({"oneOf": [_ref("Diagnosis"), _array(_ref("Diagnosis")), _ref("ValidationResponse")]},
                             "The diagnosis (a list for a batch), or the validation handshake answer."),
                "400": _error("Empty body, not UTF-8, malformed JSON, JSON nested too deeply, an unrecognised "
                              "shape, or a payload field of the wrong type or missing: `field` is the dotted "
                              "path (`(payload)` for the whole body, `source` for the query parameter)."),
                "401": _UNAUTHORIZED,
                "413": _error(f"The body is over {MAX_BODY} bytes.", ["(payload)"]),
            },
        }, "options": {
            "operationId": "diagnoseWebhookHandshake",
            "tags": ["diagnosis"],
            "summary": "The CloudEvents webhook validation handshake, so a CloudEvents 1.0 subscription can "
                       "deliver to this route.",
            "parameters": [
                {"name": "WebHook-Request-Origin", "in": "header", "required": True, "schema": _string(),
                 "description": "The sender's host name (Event Grid: `eventgrid.azure.net`)."},
                {"name": "WebHook-Request-Rate", "in": "header", "required": False, "schema": _string(),
                 "description": "The delivery rate the sender asks for (any is allowed)."},
            ],
            "responses": {
                "200": _json(_object({"allowed_origin": _string(), "allowed_rate": _string()},
                                     ["allowed_origin"]),
                             "Allowed: `WebHook-Allowed-Origin` echoes the origin, `WebHook-Allowed-Rate` is `*`.",
                             headers={"WebHook-Allowed-Origin": {"schema": _string()},
                                      "WebHook-Allowed-Rate": {"schema": _string()}}),
                "400": _error("No `WebHook-Request-Origin`, or one that is no host name.",
                              ["WebHook-Request-Origin"]),
                "401": _UNAUTHORIZED,
            },
        }},
        "/scenarios": {"get": {
            "operationId": "listScenarios",
            "tags": ["diagnosis"],
            "summary": "The catalog of failure scenarios and their remediations.",
            "responses": {"200": _json(_array(_ref("Scenario")), "Every scenario."), "401": _UNAUTHORIZED},
        }},
        "/alerts": {"post": {
            "operationId": "receiveAlert",
            "tags": ["remediation"],
            "summary": "An Azure Monitor alert (common alert schema) from an action group webhook.",
            "description": "Fired: diagnose and decide, once per alert firing (a repeated delivery answers 200 "
                           "with `duplicate`). Resolved: withdraw the approvals the alert raised.",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("CommonAlert")}},
                            "description": f"At most {MAX_BODY} bytes."},
            "responses": {
                "200": _json(_ref("AlertHandled"), "Resolved (approvals withdrawn), a firing already handled, or an "
                                                  "alert schema refused (recorded)."),
                "202": _json(_ref("AlertAccepted"), "Diagnosed; what was queued, proposed or only observed."),
                "400": _error("Empty body, malformed JSON, not the common alert schema, or an alert field "
                              "missing or of the wrong type (`field` is its dotted path, e.g. "
                              "`data.essentials.monitorCondition`).", ["(body)", "schemaId", "data.essentials.*"]),
                "401": _UNAUTHORIZED,
                "413": _error(f"The body is over {MAX_BODY} bytes.", ["(body)"]),
                "503": _error("Azure could not answer for now (throttling, a server error): the action group "
                              "sends the alert again (`Retry-After` says when)."),
            },
        }},
        "/remediations": {"get": {
            "operationId": "listRemediations",
            "tags": ["remediation"],
            "summary": "The remediations that can be run, with their mode, parameters and limits.",
            "responses": {"200": _json(_array(_ref("Remediation")), "Every remediation, by name."),
                          "401": _UNAUTHORIZED},
        }},
        "/remediations/{name}": {"post": {
            "operationId": "runRemediation",
            "tags": ["remediation"],
            "summary": "Request one remediation on one target. The same policy as for every failure decides: "
                       "queued (an operation), proposed for approval (a card), or only recorded (observe).",
            "parameters": [{"name": "name", "in": "path", "required": True, "description": "A remediation name.",
                            "schema": _string(pattern=REMEDIATION_NAME_PATTERN)}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("RemediationRequest")}},
                            "description": f"At most {MAX_BODY} bytes."},
            "responses": {
                "200": _json(_ref("RequestDecided"), "Recorded only (observe) or nothing to do (noop)."),
                "202": _json(_ref("RequestDecided"),
                             "Queued (poll the operation at `status_url`, also sent as `Location`; a dry run "
                             "always is) or proposed for approval (`approval_id`)."),
                "400": _error("Malformed JSON, not an object, a field of the wrong type or an unknown field, a "
                              "target of another resource type, or a parameter the remediation does not take.",
                              ["(body)", "target", "params", "params.<name>", "dry_run", "<the unknown field>"]),
                "401": _UNAUTHORIZED,
                "403": _error("The target, or a resource the change would touch, is outside the allowed scopes.",
                              ["target"]),
                "404": _error("No remediation of that name.", ["name"]),
                "409": _error("The remediation cannot be planned on this target (the reason says why).", ["target"]),
                "413": _error(f"The body is over {MAX_BODY} bytes.", ["(body)"]),
                "503": _error("Azure could not answer while planning: send it again after Retry-After.", []),
            },
        }},
        "/operations/{id}": {"get": {
            "operationId": "getOperation",
            "tags": ["remediation"],
            "summary": "The status (and, once finished, the result) of an operation.",
            "parameters": [{"name": "id", "in": "path", "required": True, "description": "The operation id.",
                            "schema": _string(pattern=OPERATION_ID_PATTERN)}],
            "responses": {
                "200": _json(_ref("Operation"), "The operation."),
                "400": _error("Not an operation id (32 hex characters).", ["id"]),
                "401": _UNAUTHORIZED,
                "404": _error("No such operation.", ["id"]),
            },
        }},
        "/history": {"get": {
            "operationId": "history",
            "tags": ["remediation"],
            "summary": "The audit trail, newest first: what was seen, decided, changed and by whom.",
            "parameters": [
                _query("target", "Only records about this resource id.", _string(maxLength=MAX_ID_CHARS)),
                _query("scenario", "Only records of this scenario.", _string(maxLength=200)),
                _query("since", "From this time (inclusive; with a time zone).", _string(format="date-time")),
                _query("until", "Before this time (exclusive; with a time zone).", _string(format="date-time")),
                _query("limit", "At most this many records.",
                       {"type": "integer", "minimum": 1, "maximum": MAX_HISTORY, "default": 100}),
            ],
            "responses": {
                "200": _json(_ref("History"), "The matching records."),
                "400": _error("A parameter of the wrong form, or an unknown parameter (named in `field`).",
                              ["target", "scenario", "since", "until", "limit", "<the unknown parameter>"]),
                "401": _UNAUTHORIZED,
            },
        }},
        "/approvals/{id}": {
            "parameters": [_approval_id()],
            "get": {
                "operationId": "approvalPage",
                "tags": ["approval"],
                "summary": "The confirmation page an approval card links to: the plan and one button (changes "
                           "nothing; link previews are safe).",
                "security": _ANONYMOUS,
                "parameters": [
                    _query("decision", "What the link is for.", _string(enum=["approve", "reject"]), required=True),
                    _query("token", "The link's signed, expiring token.", _string(maxLength=1024), required=True),
                ],
                "responses": {
                    "200": _html("The plan and a button that POSTs the decision."),
                    "400": _html("The link names no decision or carries no token."),
                    "403": _html("The token is not valid (forged, altered, expired, for another approval or "
                                 "decision, signed with a retired key), or an approver list is set and the request "
                                 "has no signed-in user on it (App Service authentication's X-MS-CLIENT-PRINCIPAL). "
                                 "Recorded in the audit trail."),
                    "404": _html("No such approval."),
                    "409": _html("The approval is no longer pending (decided, expired or withdrawn)."),
                },
            },
            "post": {
                "operationId": "approvalDecision",
                "tags": ["approval"],
                "summary": "Record the decision (once); an approval queues the change.",
                "security": _ANONYMOUS,
                "parameters": [
                    _query("decision", "Instead of the form field.", _string(enum=["approve", "reject"])),
                    _query("token", "Instead of the form field.", _string(maxLength=1024)),
                ],
                "requestBody": {"required": False, "content": {
                    "application/x-www-form-urlencoded": {"schema": _ref("ApprovalForm")}},
                    "description": f"The confirmation page's form, at most {MAX_FORM_BYTES} bytes and 10 fields; "
                                   "its fields override the query's."},
                "responses": {
                    "200": _html("Rejected: nothing will change."),
                    "202": _html("Approved: the change is queued as an operation (linked from the page)."),
                    "400": _html("No decision or no token, or a form that is not UTF-8 url-encoded."),
                    "403": _html("The token is not valid, or an approver list is set and the request has no "
                                 "signed-in user on it. Recorded in the audit trail."),
                    "404": _html("No such approval."),
                    "409": _html("Already decided, expired or withdrawn: nothing was changed. Recorded."),
                    "413": _html(f"The form is over {MAX_FORM_BYTES} bytes."),
                },
            },
        },
        "/openapi.json": {"get": {
            "operationId": "openapi",
            "tags": ["meta"],
            "summary": "This document.",
            "responses": {"200": {"description": "The OpenAPI description of this API.", "content": json_body},
                          "401": _UNAUTHORIZED},
        }},
    }


def spec(base_url: str = "/api") -> dict[str, Any]:
    """The OpenAPI 3.0 document; `base_url` is the server URL the paths hang off."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Azure remediator",
            "version": API_VERSION,
            "description": "Diagnoses Azure Update Management and Azure VM Image Builder failures and runs "
                           "bounded remediations: directly, from alerts, or after a person approves. Every "
                           "refusal of a JSON route is a 4xx whose body names the problem and the field.",
        },
        "servers": [{"url": base_url}],
        "tags": [
            {"name": "diagnosis", "description": "Read-only: what failed and why."},
            {"name": "remediation", "description": "Alerts in, remediations on demand, operations, history."},
            {"name": "approval", "description": "The signed links on approval cards (no function key)."},
            {"name": "meta", "description": "About the API itself."},
        ],
        "security": _FUNCTION_KEY,
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "query", "name": "code",
                                "description": "A function (or host) key of the Function App."},
                "functionKeyHeader": {"type": "apiKey", "in": "header", "name": "x-functions-key",
                                      "description": "The same key, as a header."},
            },
            "schemas": _schemas(),
        },
    }


def openapi_document() -> Response:
    """GET /api/openapi.json."""
    return 200, spec(), dict(JSON_HEADERS) | {"Cache-Control": "private, max-age=300"}
