"""Read-only enrichment: facts the payload does not carry, read from Azure before classifying.

An ARM event says only that a template's run failed; the template's `lastRunStatus` and
the tail of its customization.log say why. A failed Automation run says "Failed"; its
machine runs say which machines and with what error. Enrichment is bounded (size,
retries) and never fatal: what it could not read is recorded as a fact, visible in the
diagnosis, and classification goes on with what there is.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from typing import Any

from remediations.context import Context
from shared.core.domain import Diagnosis, Failure, Family, QueryResult, SourceKind

log = logging.getLogger("remediator.enrich")
MAX_MACHINE_ERRORS = 20
MAX_QUERY_ROWS = 20
_TEMPLATE_TYPE = "/providers/microsoft.virtualmachineimages/imagetemplates/"
_RUN_TYPE = "/softwareupdateconfigurationruns/"


def enrich(failure: Failure, ctx: Context) -> Failure:
    if not failure.failed:
        return failure
    texts = list(failure.texts)
    facts = list(failure.facts)
    started = failure.started_at
    rid = (failure.resource_id or "").lower()
    try:
        if _TEMPLATE_TYPE in rid and failure.source is not SourceKind.IMAGE_TEMPLATE:
            from shared.diagnosis.envelopes._reader import Reader
            from shared.diagnosis.envelopes.arm import parse_image_template

            live = parse_image_template(Reader(ctx.images.get(failure.resource_id or ""), "template"))
            texts.extend(t for t in live.texts if t not in texts)
            facts.extend(f for f in live.facts if f not in facts)
            started = live.started_at or started  # the run's start: one failure, whoever reports it
        log_url = next((v for k, v in facts if k == "build_log_url"), None)
        if log_url:
            tail = ctx.insights.build_log_tail(log_url)
            texts.append(tail)
            facts.append(("build_log_bytes", str(len(tail))))
        if _RUN_TYPE in rid and failure.source is SourceKind.AUTOMATION_RUN:
            account = failure.resource_id.split("/softwareUpdateConfigurationRuns/")[0] if failure.resource_id else ""
            run_id = rid.rsplit("/", 1)[-1]
            machines = ctx.automation.machine_runs_of(account, run_id)
            for m in machines[:MAX_MACHINE_ERRORS]:
                props = m.get("properties") or {}
                if props.get("status") not in (None, "Succeeded"):
                    message = (props.get("error") or {}).get("message") or ""
                    texts.append(f"machine {props.get('targetComputer')}: {props.get('status')} {message}".strip())
    except Exception as exc:
        from remediations.runner import describe_error, is_operational

        if not is_operational(exc):
            raise
        reason = describe_error(exc)
        log.warning("enrichment of %s incomplete: %s", failure.resource_id, reason)
        facts.append(("enrichment_error", reason))
    return dataclasses.replace(failure, texts=tuple(texts), facts=tuple(facts), started_at=started)


def diagnose(failure: Failure, ctx: Context) -> Diagnosis:
    """Enrich, classify, and run the diagnosis's queries from the guide where a workspace is
    known. A failure the texts cannot place is looked for in the workspace too (an OverQuota
    stop explains machines that stopped reporting), and classified again with what it shows."""
    from shared.diagnosis.catalog import Q_OPERATION
    from shared.diagnosis.classifier import classify

    failure = enrich(failure, ctx)
    diagnosis = classify(failure)
    if not failure.failed or ctx.workspace_id is None:
        return diagnosis
    if diagnosis.scenario == "unknown" and failure.family in (Family.UPDATE, None):
        probe = _run(ctx, Q_OPERATION)
        found = [str(r.get("Detail") or "") for r in probe.rows if "overquota" in str(r.get("Detail", "")).lower()]
        if found:
            failure = dataclasses.replace(failure, texts=(*failure.texts, *(f"Operation: {d}" for d in found)))
            diagnosis = classify(failure)
    computer = failure.fact("target_computer")
    queries = [q.format(computer=computer.rsplit("/", 1)[-1]) if "{computer}" in q and computer else q
               for q in diagnosis.queries]
    results = tuple(_run(ctx, q) for q in queries if "{computer}" not in q)
    return dataclasses.replace(diagnosis, query_results=results)


def _run(ctx: Context, query: str) -> QueryResult:
    from remediations.runner import describe_error, is_operational

    try:
        rows = ctx.insights.query(str(ctx.workspace_id), query)
    except Exception as exc:
        if not is_operational(exc):
            raise
        return QueryResult(query, error=describe_error(exc))
    return QueryResult(query, tuple({k: _plain(v) for k, v in row.items()} for row in rows[:MAX_QUERY_ROWS]))


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
