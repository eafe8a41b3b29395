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
import re
from datetime import datetime, timedelta
from typing import Any

from remediations.context import Context
from shared.core.domain import Diagnosis, Failure, Family, QueryResult, SourceKind

log = logging.getLogger("remediator.enrich")
MAX_MACHINE_ERRORS = 20
MAX_QUERY_ROWS = 20
# The OverQuota probe: a daily cap stops ingestion until its next reset, so a record older than a
# day before the failure cannot explain it; machines and rows are bounded.
PROBE_LOOKBACK = timedelta(days=1)
MAX_PROBE_MACHINES = 20
MAX_PROBE_ROWS = 5
_MACHINE_TYPES = re.compile(r"/providers/microsoft\.(?:compute/virtualmachines|hybridcompute/machines)/[^/]+/?$",
                            re.IGNORECASE)
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
    probe: tuple[QueryResult, ...] = ()
    if diagnosis.scenario == "unknown" and failure.family is Family.UPDATE:
        result = _overquota(ctx, failure, Q_OPERATION)
        probe = (result,)
        found = [f"Operation at {r.get('TimeGenerated')} ({r.get('Computer') or 'workspace'}): {r.get('Detail')}"
                 for r in result.rows if "overquota" in str(r.get("Detail") or "").lower()]
        if found:
            probed = dataclasses.replace(failure, texts=(*failure.texts, *found))
            again = classify(probed)
            # The workspace's record may support what the failure's own text says, never stand alone:
            # without a line of its own among the evidence the failure stays unplaced (the record is
            # shown beside it, as a query result).
            if again.scenario != "unknown" and any(_own(e, failure.texts) for e in again.evidence):
                failure, diagnosis = probed, again
    computer = failure.fact("target_computer")
    from shared.azure.insights import kql_string

    # A machine name comes from outside: filled in as a KQL string literal, never as query text.
    queries = [q.format(computer=kql_string(computer.rsplit("/", 1)[-1])) if "{computer}" in q and computer else q
               for q in diagnosis.queries]
    results = tuple(_run(ctx, q) for q in queries if "{computer}" not in q)
    return dataclasses.replace(diagnosis, query_results=probe + results)


def _overquota(ctx: Context, failure: Failure, base: str) -> QueryResult:
    """The workspace's OverQuota records (the daily cap stopped ingestion) that can explain this
    failure: in its own time window (a daily cap stops ingestion until its next reset, so at most
    PROBE_LOOKBACK before the failure) and about its own machines, or about the whole workspace."""
    from remediations.runner import describe_error, is_operational
    from shared.azure.insights import kql_string

    end = failure.ended_at or failure.started_at or ctx.now()
    try:
        start = (failure.started_at or end) - PROBE_LOOKBACK
    except OverflowError:  # a failure dated at the start of time
        start = end
    machines = _machines(failure)
    scope = "isempty(Computer)" + (f" or Computer in~ ({', '.join(kql_string(m) for m in machines)})"
                                   if machines else "")
    query = f"{base}\n| where Detail has 'OverQuota'\n| where {scope}\n| take {MAX_PROBE_ROWS}"
    shown = f"{query}\n// timespan: {start.isoformat()}/{end.isoformat()}"
    try:
        rows = ctx.insights.query(str(ctx.workspace_id), query, (start, end))
    except Exception as exc:
        if not is_operational(exc):
            raise
        log.warning("OverQuota probe for %s not run: %s", failure.resource_id, describe_error(exc))
        return QueryResult(shown, error=describe_error(exc))
    return QueryResult(shown, tuple({k: _plain(v) for k, v in row.items()} for row in rows[:MAX_PROBE_ROWS]))


def _machines(failure: Failure) -> list[str]:
    """The machines a failure is about: its target computer, the dimension that fired, its resource."""
    names: list[str] = []
    values = [v for k, v in failure.facts if k in ("target_computer", "computer", "alert_target")]
    if failure.resource_id and _MACHINE_TYPES.search(failure.resource_id):
        values.append(failure.resource_id)
    for value in values:
        if value.startswith("/") and not _MACHINE_TYPES.search(value):
            continue
        name = value.rstrip("/").rsplit("/", 1)[-1]
        if name and name not in names:
            names.append(name)
    return names[:MAX_PROBE_MACHINES]


def _own(evidence: str, texts: tuple[str, ...]) -> bool:
    """Whether an evidence line comes from the failure's own texts (not from a workspace record)."""
    line = " ".join(evidence.split()).lower().rstrip(".…")
    return bool(line) and any(line in " ".join(t.split()).lower() for t in texts)


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
