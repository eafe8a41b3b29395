"""Envelopes: every real source parsed once, validated, and turned into `Failure`s.

`parse_input` takes raw bytes or text (JSON of any supported shape, or plain failure
text) and `parse_payload` an already-decoded JSON value; both return one `Failure` per
signal (a batch of events gives several) or raise `PayloadError` naming the field.
"""

from __future__ import annotations

import json
import re
from typing import Any

from shared.core.domain import Failure, Family, SourceKind
from shared.core.errors import PayloadError, UnrecognisedPayload
from shared.diagnosis.envelopes._common import family_of
from shared.diagnosis.envelopes._reader import Reader, describe, join
from shared.diagnosis.envelopes.alerts import looks_like_alert, parse_alerts
from shared.diagnosis.envelopes.arm import (
    kind_of,
    parse_apply_update,
    parse_error_body,
    parse_image_template,
    parse_update_run,
)
from shared.diagnosis.envelopes.events import (
    VALIDATION_EVENT,
    looks_like_cloudevent,
    looks_like_eventgrid,
    parse_cloudevent,
    parse_eventgrid,
)

__all__ = ["VALIDATION_EVENT", "check_unicode", "is_batch", "parse_input", "parse_payload", "parse_text",
           "reports_failure", "validation_code"]

MAX_BATCH = 5000
ROOT = PayloadError("", "").path
# A JSON `\ud800`-style escape (or the decoded character itself): only then is a full check worth it.
_MAYBE_SURROGATE = re.compile(r"\\[uU][dD][89a-fA-F]|[\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_KNOWN = (
    "an Event Grid event, a CloudEvent, an Azure Monitor alert, an image template, a software update "
    "configuration run or machine run, an Update Manager applyUpdates, an ARM error body, or {\"text\": ...}"
)
# What makes JSON of no known shape worth reading as failure text: a key that carries an error, or a
# word that reports one. A configuration, a listing or a success has neither (the CLI answers `none`).
_FAILURE_KEYS = frozenset({"error", "errors", "exception", "message", "errormessage", "statusmessage",
                           "failure", "failures", "faultstring", "stderr", "innererror"})
_FAILURE_WORD = re.compile(
    r"\b(?:fail\w*|error\w*|exception|denied|unable|cannot|can't|could not|couldn't|timed? ?out|not found|"
    r"invalid|refused|forbidden|unauthori[sz]ed|conflict|aborted|crash\w*)\b", re.IGNORECASE)
_MAX_SCANNED = 5000


def parse_text(text: str, family: Family | None = None) -> Failure:
    """Plain failure text: a portal message, CLI output, a DevOps or Packer log."""
    return Failure(source=SourceKind.TEXT, failed=True, texts=(text,), family=family)


def is_batch(value: Any) -> bool:
    """A JSON array or an ARM list: callers answer with a list, whatever its length."""
    return isinstance(value, list) or (
        isinstance(value, dict) and isinstance(value.get("value"), list) and "id" not in value
    )


def parse_input(
    raw: str | bytes, family: Family | None = None, *, lenient: bool = False
) -> tuple[list[Failure], bool]:
    """Raw input: JSON when it parses as a JSON object or array, plain text otherwise.

    `lenient` (the CLI) reads JSON of no supported shape as failure text, since people
    paste error JSON from tools; the HTTP API stays strict and answers 4xx.
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadError("", f"not valid UTF-8 (byte {exc.start})") from None
    stripped = raw.lstrip("\ufeff \t\r\n")
    if stripped[:1] in ("{", "["):
        try:
            value = json.loads(stripped)
        except RecursionError:
            raise PayloadError("", "JSON nested too deeply") from None
        except ValueError as exc:
            if not lenient:
                raise PayloadError("", f"malformed JSON: {exc}") from None
            return [parse_text(raw, family)], False
        if _MAYBE_SURROGATE.search(stripped):
            check_unicode(value)
        try:
            return _parse(value, family), is_batch(value)
        except UnrecognisedPayload as exc:
            # The whole body, or an item of an ARM listing: a configuration, a listing. An unknown item
            # in a batch of events stays an error naming its index.
            if lenient and (exc.path == ROOT or exc.path.startswith("value[")):
                return [_unshaped(value, raw, family)], False
            raise
    if not stripped.strip():
        raise PayloadError("", "empty input: send a payload or failure text")
    if _SURROGATE.search(stripped):
        check_unicode(stripped)
    return [parse_text(raw, family)], False


def _unshaped(value: Any, raw: str, family: Family | None) -> Failure:
    """JSON of no supported shape, for the lenient CLI: failure text when it carries an error
    (people paste error JSON from tools), else no failure (a configuration, a listing, a success)."""
    if reports_failure(value):
        return parse_text(raw, family)
    return Failure(source=SourceKind.TEXT, failed=False, status="no failure signal", family=family,
                   facts=(("reason", "JSON of no failure shape: no error field and no failure word in it"),))


def reports_failure(value: Any) -> bool:
    """Whether JSON carries an error field or a failure word anywhere (bounded walk)."""
    stack: list[Any] = [value]
    seen = 0
    while stack and seen < _MAX_SCANNED:
        item = stack.pop()
        seen += 1
        if isinstance(item, str):
            if _FAILURE_WORD.search(item[:20_000]):
                return True
        elif isinstance(item, dict):
            for key, sub in item.items():
                if str(key).lower() in _FAILURE_KEYS and sub not in (None, "", [], {}):
                    return True
                stack.append(sub)
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_payload(value: Any, family: Family | None = None) -> list[Failure]:
    """Failures in a decoded JSON value; raises PayloadError (and nothing else) for a bad one."""
    check_unicode(value)
    return _parse(value, family)


def check_unicode(value: Any) -> None:
    """Refuses text no UTF-8 encoder will take: a lone surrogate, which a JSON `\\ud800`
    escape decodes to. Storage, queues and HTTP answers would all fail on it later."""
    try:
        json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError:
        raise PayloadError(_surrogate_at(value), "not valid Unicode: a lone surrogate (\\ud800-\\udfff) escape "
                                                 "without its pair") from None
    except RecursionError:
        raise PayloadError("", "JSON nested too deeply") from None
    except ValueError:
        return  # a circular value: not JSON, and nothing this check is about


def _surrogate_at(value: Any) -> str:
    """The path of the first string (or key) holding a lone surrogate."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return path
        elif isinstance(item, dict):
            for key, sub in item.items():
                if _SURROGATE.search(str(key)):
                    return join(path, "(key)") if path else "(key)"
                stack.append((join(path, str(key)), sub))
        elif isinstance(item, list):
            stack.extend((join(path, i), sub) for i, sub in enumerate(item))
    return ""


def _parse(value: Any, family: Family | None) -> list[Failure]:
    try:
        return _parse_value(value, family)
    except RecursionError:
        raise PayloadError("", "JSON nested too deeply") from None


def _parse_value(value: Any, family: Family | None) -> list[Failure]:
    if isinstance(value, str):
        if not value.strip():
            raise PayloadError("", "empty text")
        return [parse_text(value, family)]
    if isinstance(value, list):
        if not value:
            raise PayloadError("", "empty array: a batch needs at least one event")
        if len(value) > MAX_BATCH:
            raise PayloadError("", f"batch of {len(value)} items exceeds the limit of {MAX_BATCH}")
        out: list[Failure] = []
        for i, item in enumerate(value):
            out.extend(_one(item, join("", i), family))
        return out
    return _one(value, "", family)


def validation_code(value: Any) -> str | None:
    """The Event Grid subscription handshake code, if this payload is that event."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, dict) and item.get("eventType") == VALIDATION_EVENT:
            data = item.get("data")
            if isinstance(data, dict) and isinstance(data.get("validationCode"), str):
                code = str(data["validationCode"])
                if _SURROGATE.search(code):  # echoed back: it must be text an answer can carry
                    raise PayloadError("data.validationCode", "not valid Unicode: a lone surrogate escape")
                return code
            raise PayloadError("data.validationCode", "required for the subscription validation event")
    return None


def _one(item: Any, path: str, family: Family | None) -> list[Failure]:
    if not isinstance(item, dict):
        raise PayloadError(path, f"expected an object, got {describe(item)}")
    r = Reader(item, path)
    if looks_like_cloudevent(item):
        return [_hinted(parse_cloudevent(r), family)]
    if looks_like_eventgrid(item):
        return [_hinted(parse_eventgrid(r), family)]
    if looks_like_alert(item):
        return [_hinted(f, family) for f in parse_alerts(r)]
    if isinstance(item.get("value"), list) and "id" not in item:
        items = item["value"]
        if not items:
            return []
        out: list[Failure] = []
        for i, sub in enumerate(items):
            out.extend(_one(sub, join(r.at("value"), i), family))
        return out
    kind = kind_of(item)
    if kind is SourceKind.IMAGE_TEMPLATE:
        return [parse_image_template(r)]
    if kind in (SourceKind.AUTOMATION_RUN, SourceKind.AUTOMATION_MACHINE_RUN):
        assert kind is not None
        return [parse_update_run(r, kind)]
    if kind is SourceKind.MAINTENANCE:
        return [parse_apply_update(r)]
    if "error" in item and "id" not in item:
        return [parse_error_body(r, family)]
    text = item.get("text")
    if isinstance(text, str):
        hint = r.text("source")
        return [parse_text(text, _family(hint, r.at("source")) or family)] if text.strip() else _empty(r)
    keys = ", ".join(sorted(str(k) for k in item)[:8]) or "none"
    raise UnrecognisedPayload(path, f"unrecognised payload (top-level keys: {keys}); expected {_KNOWN}")


def _empty(r: Reader) -> list[Failure]:
    raise PayloadError(r.at("text"), "must not be empty")


def _family(hint: str | None, path: str) -> Family | None:
    if hint is None:
        return None
    try:
        return Family(hint.lower())
    except ValueError:
        raise PayloadError(path, f"expected 'aib' or 'update', got {hint!r}") from None


def _hinted(failure: Failure, family: Family | None) -> Failure:
    """Fill a missing family from the caller's hint; never override the payload's own."""
    if failure.family is not None or family is None:
        return failure
    from dataclasses import replace

    return replace(failure, family=family)


def family_hint(value: str | None) -> Family | None:
    """A `--source`/`source` hint as a Family; raises for anything but aib/update."""
    return _family(value, "source")


__all__ += ["family_hint", "family_of"]
