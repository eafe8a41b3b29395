"""Event Grid schema and CloudEvents 1.0 envelopes, and the event data they carry.

The outer envelope is validated first; the data is interpreted by event type. An
event type we do not act on is parsed, not rejected: it yields no failure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.core.domain import Failure, SourceKind
from shared.core.errors import PayloadError
from shared.diagnosis.envelopes._common import family_of, is_failure_status, resource_id, subscription_of
from shared.diagnosis.envelopes._reader import Reader

VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
_RESOURCE_PREFIX = "microsoft.resources.resource"
_MAINTENANCE_PREFIX = "microsoft.maintenance."


@dataclass(frozen=True, slots=True)
class Envelope:
    """The outer fields common to both schemas, already validated."""

    source: SourceKind
    event_id: str
    event_type: str
    subject: str | None
    time: datetime | None
    data: Reader | None


def parse_eventgrid(r: Reader) -> Failure:
    data = r.get("data")
    env = Envelope(
        SourceKind.EVENTGRID,
        _req_ident(r, "id"),
        r.req("eventType"),
        r.present("subject"),
        r.time("eventTime", required=True),
        None if data is None else Reader(data, r.at("data")),
    )
    r.text("dataVersion")
    r.text("topic")
    return _interpret(env, r)


def parse_cloudevent(r: Reader) -> Failure:
    version = r.req("specversion")
    if version != "1.0":
        raise PayloadError(r.at("specversion"), f"unsupported CloudEvents version {version!r}; use '1.0'")
    r.req("source")
    data = r.get("data")
    if data is None and r.has("data_base64"):
        raise PayloadError(r.at("data_base64"), "binary CloudEvent data is not supported; send JSON data")
    env = Envelope(
        SourceKind.CLOUDEVENT,
        _req_ident(r, "id"),
        r.req("type"),
        r.text("subject"),
        r.time("time"),
        None if data is None else Reader(data, r.at("data")),
    )
    return _interpret(env, r)


def _interpret(env: Envelope, r: Reader) -> Failure:
    low = env.event_type.lower()
    if env.event_type == VALIDATION_EVENT:
        data = _need_data(env, r)
        code = data.req("validationCode")
        return Failure(
            source=env.source, failed=False, status="validation", event_id=env.event_id,
            event_type=env.event_type, started_at=env.time, facts=(("validation_code", code),),
        )
    handler = _HANDLERS.get(low)
    if handler is None and low.startswith(_RESOURCE_PREFIX):
        handler = _resource_event
    if handler is None:
        return Failure(
            source=env.source, failed=False, status="ignored", event_id=env.event_id,
            event_type=env.event_type, resource_id=env.subject, started_at=env.time,
            facts=(("reason", f"event type {env.event_type} is not a failure signal this app handles"),),
        )
    return handler(env, _need_data(env, r))


def _req_ident(r: Reader, key: str) -> str:
    value = r.ident(key, required=True)
    assert value is not None
    return value


def _need_data(env: Envelope, r: Reader) -> Reader:
    if env.data is None:
        raise PayloadError(r.at("data"), f"required for {env.event_type} events")
    return env.data


def _resource_event(env: Envelope, data: Reader) -> Failure:
    """ARM events (ResourceActionFailure, ResourceWriteFailure, ...): who did what, and the outcome.

    They carry no error text: the classifier will say `unknown` until enrichment reads
    the resource (e.g. an image template's lastRunStatus).
    """
    resource_uri = resource_id(data.ident("resourceUri"), data.at("resourceUri")) or resource_id(
        env.subject or None, _subject_path(env, data))
    operation = data.text("operationName")
    status = data.text("status")
    outcome = env.event_type.rsplit(".", 1)[-1]
    failed = outcome.lower().endswith(("failure", "cancel")) or (
        not outcome.lower().endswith("success") and is_failure_status(status)
    )
    texts = [f"{operation or 'operation'} {status or outcome} ({env.event_type})"]
    texts.extend(_error_texts(data))
    correlation = data.text("correlationId")
    return Failure(
        source=env.source,
        failed=failed,
        texts=tuple(texts),
        family=family_of(resource_uri, operation, data.text("resourceProvider")),
        resource_id=resource_uri,
        subscription_id=data.text("subscriptionId") or subscription_of(resource_uri),
        operation=operation,
        status=status or outcome,
        event_id=env.event_id,
        event_type=env.event_type,
        correlation_ids=(correlation,) if correlation else (),
        started_at=env.time,
    )


def _subject_path(env: Envelope, data: Reader) -> str:
    """Where the envelope's subject is, beside its data (`data` -> `subject`, `[3].data` -> `[3].subject`)."""
    return data.path[: -len("data")] + "subject" if data.path.endswith("data") else "subject"


def _error_texts(data: Reader) -> list[str]:
    """Any error text an ARM event or activity record happens to carry."""
    texts: list[str] = []
    for key in ("statusMessage", "message", "error"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            texts.append(value)
        elif isinstance(value, dict):
            texts.extend(str(v) for v in value.values() if isinstance(v, (str, int)))
    props = data.get("properties")
    if isinstance(props, dict):
        texts.extend(_error_texts(Reader(props, data.at("properties"))))
    return texts


def _maintenance_event(env: Envelope, data: Reader) -> Failure:
    """Azure Update Manager events: Pre is a heads-up, Post carries the run's status."""
    config_id = resource_id(data.ident("maintenanceConfigurationId"), data.at("maintenanceConfigurationId")) or \
        resource_id(env.subject or None, _subject_path(env, data))
    correlation = data.text("correlationId")
    status = data.text("status")
    subs = [s for s in data.items("resourceSubscriptionIds") if isinstance(s, str)]
    is_post = env.event_type.lower().endswith("postmaintenanceevent")
    failed = is_post and is_failure_status(status)
    # Pre events say until when the run can still be cancelled (its decisions must come before that).
    cut = data.time("cancellationCutOffDateTime")
    cutoff = (("cancellation_cutoff", cut.isoformat()),) if cut is not None else ()
    texts: tuple[str, ...] = ()
    if is_post:
        texts = (f"Update Manager maintenance run status: {status or 'unknown'}",)
    return Failure(
        source=SourceKind.MAINTENANCE,
        failed=failed,
        texts=texts,
        family=family_of("microsoft.maintenance"),
        resource_id=config_id,
        subscription_id=subscription_of(config_id) or (subs[0] if subs else None),
        operation=env.event_type.rsplit(".", 1)[-1],
        status=status or ("scheduled" if not is_post else None),
        event_id=env.event_id,
        event_type=env.event_type,
        correlation_ids=(correlation,) if correlation else (),
        started_at=data.time("startDateTime") or env.time,
        ended_at=data.time("endDateTime"),
        facts=(*(("resource_subscription_id", s) for s in subs), *cutoff),
    )


_HANDLERS: dict[str, Callable[[Envelope, Reader], Failure]] = {
    _MAINTENANCE_PREFIX + "premaintenanceevent": _maintenance_event,
    _MAINTENANCE_PREFIX + "postmaintenanceevent": _maintenance_event,
}


_EVENTGRID_KEYS = ("eventType", "eventtype", "eventTime", "dataVersion", "metadataVersion")


def looks_like_eventgrid(obj: dict[str, Any]) -> bool:
    return any(key in obj for key in _EVENTGRID_KEYS)


def looks_like_cloudevent(obj: dict[str, Any]) -> bool:
    return "specversion" in obj


_CLOUDEVENT_ATTRIBUTES = frozenset({"specversion", "id", "source", "type", "time", "subject", "datacontenttype",
                                    "dataschema", "data"})


def cloudevent_dict(
    *, event_id: str | None, source: str | None, event_type: str | None, specversion: str | None,
    subject: str | None, time: str | None, data: Any, datacontenttype: str | None = None,
    dataschema: str | None = None, extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A CloudEvents 1.0 event rebuilt from the Functions trigger's `func.CloudEvent` (its attributes
    and extension attributes, `data_base64` among them), for the envelope to validate as delivered."""
    out: dict[str, Any] = {str(k): v for k, v in (extensions or {}).items() if str(k) not in _CLOUDEVENT_ATTRIBUTES}
    out |= {"specversion": specversion, "id": event_id, "source": source, "type": event_type}
    optional = {"subject": subject, "time": time, "datacontenttype": datacontenttype, "dataschema": dataschema,
                "data": data}
    out |= {k: v for k, v in optional.items() if v is not None}
    return out
