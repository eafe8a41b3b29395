"""What the Event Grid trigger does with one event, outside the Functions runtime.

Today: parse, diagnose, log a structured record. Remediation hand-off (queue) plugs in
here, so the binding in `function_app.py` stays one line.
"""

from __future__ import annotations

import logging
from typing import Any

from shared.domain import Diagnosis

log = logging.getLogger("remediator.events")


def handle_event(event: dict[str, Any]) -> list[Diagnosis]:
    """Diagnose one delivered event. A malformed event raises PayloadError: Event Grid
    then retries and finally dead-letters it, so nothing is silently dropped."""
    from shared.diagnose import diagnose_payload

    diagnoses, _ = diagnose_payload(event)
    for d in diagnoses:
        failure = d.failure
        log.info(
            "event diagnosed: %s (%.2f) %s",
            d.scenario,
            d.confidence,
            failure.resource_id if failure else "-",
            extra={
                "scenario": d.scenario,
                "event_id": failure.event_id if failure else None,
                "target": failure.resource_id if failure else None,
            },
        )
    return diagnoses


def eventgrid_dict(
    *, event_id: str, topic: str | None, subject: str, event_type: str, event_time: str | None,
    data: Any, data_version: str | None,
) -> dict[str, Any]:
    """An Event Grid schema event rebuilt from the trigger's fields, for the envelope."""
    return {
        "id": event_id,
        "topic": topic,
        "subject": subject,
        "eventType": event_type,
        "eventTime": event_time,
        "data": data,
        "dataVersion": data_version or "",
        "metadataVersion": "1",
    }
