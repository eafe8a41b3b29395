"""HTTP handlers, free of the Functions runtime so tests and the CLI share them.

Each returns (status, JSON body, headers); `function_app.py` only adapts them to
`func.HttpResponse`. Bad input is always a 4xx whose body names the field and problem.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from shared.core.errors import PayloadError

MAX_BODY = 4 * 1024 * 1024
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}

Response = tuple[int, Any, dict[str, str]]
# A host name (RFC 1123 labels), the only thing echoed into the handshake's answer header.
_ORIGIN = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                     r"[A-Za-z0-9])?)*")
log = logging.getLogger("remediator.http")


def _error(status: int, error: str, problem: str, field: str | None = None) -> Response:
    body: dict[str, Any] = {"error": error, "problem": problem}
    if field is not None:
        body["field"] = field
    return status, body, dict(JSON_HEADERS)


def diagnose(body: bytes, source: str | None) -> Response:
    """POST /api/diagnose: any supported payload or plain text in, its diagnosis out.

    An Event Grid subscription handshake is answered too, so the route can be used as a
    webhook endpoint while testing a subscription.
    """
    from shared.diagnosis.envelopes import family_hint
    from shared.diagnosis.offline import diagnose_input

    if len(body) > MAX_BODY:
        return _error(413, "payload too large", f"the body is {len(body)} bytes; the limit is {MAX_BODY}",
                      "(payload)")
    if not body.strip():
        return _error(400, "invalid payload", "the body is empty: send a payload or failure text", "(payload)")
    try:
        family = family_hint(source)
        code = _handshake(body)
        if code is not None:
            return 200, {"validationResponse": code}, dict(JSON_HEADERS)
        diagnoses, batch = diagnose_input(body, family)
    except PayloadError as exc:
        return _error(400, "invalid payload", exc.problem, exc.path)
    for d in diagnoses:
        failure = d.failure
        log.info(
            "diagnosed",
            extra={
                "scenario": d.scenario,
                "confidence": round(d.confidence, 3),
                "event_id": failure.event_id if failure else None,
                "target": failure.resource_id if failure else None,
            },
        )
    out = [d.to_dict() for d in diagnoses]
    return 200, (out if batch else out[0]), dict(JSON_HEADERS)


def webhook_handshake(headers: Mapping[str, str]) -> Response:
    """OPTIONS /api/diagnose: the CloudEvents webhook validation handshake (CloudEvents HTTP webhook
    spec, section 4, as Event Grid sends it for a CloudEvents 1.0 subscription): the request names its
    sender in `WebHook-Request-Origin`; the answer allows it in `WebHook-Allowed-Origin`, at any rate
    (`WebHook-Allowed-Rate: *`). The origin is echoed into a header, so only a host name is."""
    wanted = {k.lower(): v for k, v in headers.items()}
    origin = wanted.get("webhook-request-origin")
    if origin is None or not origin.strip():
        return _error(400, "invalid request", "required for the CloudEvents webhook validation handshake (an "
                      "OPTIONS request names its sender's host)", "WebHook-Request-Origin")
    origin = origin.strip()
    if not _ORIGIN.fullmatch(origin):
        return _error(400, "invalid request", "expected the sender's host name (e.g. eventgrid.azure.net)",
                      "WebHook-Request-Origin")
    answer = {"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*", "Allow": "POST, OPTIONS"}
    return 200, {"allowed_origin": origin, "allowed_rate": "*"}, dict(JSON_HEADERS) | answer


def _handshake(body: bytes) -> str | None:
    from shared.diagnosis.envelopes import validation_code

    head = body.lstrip()[:1]
    if head not in (b"{", b"[") or b"SubscriptionValidationEvent" not in body:
        return None
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return validation_code(value)


def scenarios() -> Response:
    """GET /api/scenarios: the catalog (ids, titles, remediations, doc links)."""
    from shared.diagnosis.catalog import SCENARIOS

    body = [
        {
            "id": s.id,
            "family": s.family.value,
            "title": s.title,
            "doc": s.doc,
            "remediations": [r.to_dict() for r in s.remediations],
        }
        for s in SCENARIOS
    ]
    return 200, body, dict(JSON_HEADERS)


def dumps(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False)
