"""The pipeline behind every trigger: decide on a failure, then (from the queue) act on it.

    event / alert / sweep ──► diagnose ──► plan ──► policy ──► apply: enqueue a Job
                                                       │      propose: approval + card
                                                       └────► observe / deny: audit only
    queue ──► Job ──► lock target ──► apply ──► verify ──► audit, ledger, outcome card

Delivery is at least once (Event Grid, alerts and queues all redeliver), so every step
is keyed in the ledger: an event id is handled once; a failure (remediation, target,
failure fingerprint) is proposed or queued once; a job is carried out once; and the
per-target lock keeps two jobs from changing one resource at the same time. Every
decision, change and refusal lands in the audit trail with its reason.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from remediations.base import Result, registry
from remediations.runner import describe_error, execute, is_operational
from shared.core import telemetry
from shared.core.domain import Diagnosis, Failure, Mode
from shared.decisions.policy import Action
from shared.state.audit import AuditRecord, Change
from shared.state.jobs import Job
from shared.wiring import App

log = logging.getLogger("remediator.pipeline")
LOCK_TTL = timedelta(minutes=30)
_RUN_PATH = "/softwareupdateconfigurationruns/"
_MACHINE_RUN_PATH = "/softwareupdateconfigurationmachineruns/"


class Retry(RuntimeError):
    """Raised to the trigger so the message or event is delivered again later."""


def target_of(failure: Failure) -> str | None:
    """The resource a remediation acts on: the deployment, not the run that failed."""
    rid = failure.resource_id
    if not rid:
        return None
    low = rid.lower()
    for marker in (_RUN_PATH, _MACHINE_RUN_PATH):
        if marker in low:
            name = failure.fact("software_update_configuration")
            account = rid[: low.index(marker)]
            return f"{account}/softwareUpdateConfigurations/{name}" if name else None
    return rid


def fingerprint(diagnosis: Diagnosis, target: str) -> str:
    """Identifies one failure occurrence, whoever reports it (event, alert or sweep)."""
    failure = diagnosis.failure
    when = failure.started_at.isoformat() if failure and failure.started_at else ""
    corr = ",".join(sorted(failure.correlation_ids)) if failure else ""
    raw = f"{diagnosis.scenario}|{target.lower()}|{when or corr}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def _changes(items: Any) -> tuple[Change, ...]:
    return tuple(Change(str(c["resource_id"]), str(c["field"]), c.get("before"), c.get("after")) for c in items)


@dataclass(frozen=True, slots=True)
class Dispatched:
    remediation: str
    target: str
    action: str  # queued | proposed | observed | denied | noop | failed | duplicate | advice
    reason: str
    operation_id: str | None = None
    approval_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"remediation": self.remediation, "target": self.target, "action": self.action,
                "reason": self.reason, "operation_id": self.operation_id, "approval_id": self.approval_id}


def diagnose_live(app: App, failure: Failure) -> Diagnosis:
    from shared.diagnosis.enrichment import diagnose

    return diagnose(failure, app.ctx)


def dispatch(app: App, diagnosis: Diagnosis, *, tags: Mapping[str, str] | None = None,
             event_id: str | None = None, alert_id: str | None = None, target: str | None = None) -> list[Dispatched]:
    """Plans every remediation the diagnosis names and decides on each, once per failure."""
    failure = diagnosis.failure
    target = target or (target_of(failure) if failure else None)
    app.audit.record(AuditRecord(kind="diagnosis", event_id=event_id, target=target, scenario=diagnosis.scenario,
                                 reason="; ".join(diagnosis.evidence[:3]) or diagnosis.title))
    telemetry.diagnosed(diagnosis.scenario, failure.source.value if failure else "unknown")
    if diagnosis.scenario in ("none", "unknown") or target is None:
        return []
    known = registry().items
    out: list[Dispatched] = []
    for ref in diagnosis.remediations:
        if ref.mode is Mode.ADVICE or ref.name not in known:
            out.append(Dispatched(ref.name, target, "advice", diagnosis.advice[0] if diagnosis.advice else ""))
            continue
        out.append(_decide(app, diagnosis, ref.name, ref.mode, target, tags=tags or {}, event_id=event_id,
                           alert_id=alert_id))
    return out


def _decide(app: App, diagnosis: Diagnosis, name: str, mode: Mode, target: str, *, tags: Mapping[str, str],
            event_id: str | None, alert_id: str | None) -> Dispatched:
    fix_key = f"fix:{name}|{target.lower()}|{fingerprint(diagnosis, target)}"

    def audit(decision: str, reason: str, **extra: Any) -> None:
        app.audit.record(AuditRecord(kind="decision", event_id=event_id, target=target, scenario=diagnosis.scenario,
                                     remediation=name, decision=decision, reason=reason, **extra))
        log.info("%s: %s on %s (%s)", decision, name, target, reason,
                 extra={"event_id": event_id, "operation_id": extra.get("operation_id"),
                        "scenario": diagnosis.scenario, "remediation": name, "target": target})
        telemetry.remediation(name, {"apply": "queued", "propose": "proposed", "observe": "observed",
                                     "deny": "denied"}.get(decision, decision), diagnosis.scenario)

    planned = execute(name, target, {}, app.ctx, dry_run=True)
    if planned.result is Result.FAILED:
        if planned.transient:
            raise Retry(f"planning {name} on {target}: {planned.error}")
        audit("failed", planned.error or "planning failed", error=planned.error)
        return Dispatched(name, target, "failed", planned.error or "")
    if planned.result is Result.NOOP:
        reason = planned.plan.reason if planned.plan else "nothing to do"
        audit("noop", reason)
        return Dispatched(name, target, "noop", reason)
    assert planned.plan is not None
    plan = planned.plan
    decision = app.policy.decide(name, mode, target, tags)
    if decision.action in (Action.OBSERVE, Action.DENY):
        audit(decision.action.value, decision.reason, changes=_changes(c.to_dict() for c in plan.changes))
        return Dispatched(name, target, "observed" if decision.action is Action.OBSERVE else "denied",
                          decision.reason)
    ledger = app.ledger if decision.action is Action.APPLY else app.proposals
    begun = ledger.begin(fix_key, retry_failed=True)
    if not begun.owned:
        why = f"this failure was already handled ({begun.state})"
        audit("duplicate", why)
        return Dispatched(name, target, "duplicate", why)
    if decision.action is Action.APPLY:
        try:
            op = app.operations.create(kind="auto", remediation=name, target=target)
            app.queue.send(Job(op.id, name, target, fix_key=fix_key, scenario=diagnosis.scenario,
                               event_id=event_id, reason=decision.reason))
        except Exception as exc:  # not queued: release the failure, so the redelivery can queue it
            ledger.fail(fix_key, describe_error(exc))
            raise
        audit("apply", decision.reason, operation_id=op.id, changes=_changes(c.to_dict() for c in plan.changes))
        return Dispatched(name, target, "queued", decision.reason, operation_id=op.id)
    approval = app.approvals.create(remediation=name, target=target, scenario=diagnosis.scenario,
                                    plan=plan.to_dict() | {"fix_key": fix_key}, evidence=diagnosis.evidence,
                                    alert_id=alert_id,
                                    event_id=event_id)
    from shared.approvals.flow import send_card

    send_card(app, approval, diagnosis.title)
    audit("propose", decision.reason, changes=_changes(c.to_dict() for c in plan.changes))
    return Dispatched(name, target, "proposed", decision.reason, approval_id=approval.id)


def handle_event(event: dict[str, Any], app: App | None = None) -> list[Diagnosis]:
    """One delivered event (Event Grid or CloudEvent). Handled once per event id; a
    malformed event raises PayloadError, so Event Grid retries and finally dead-letters it."""
    from shared.diagnosis.envelopes import parse_payload
    from shared.wiring import app as default_app

    app = app or default_app()
    failures = parse_payload(event)
    event_id = str(event.get("id") or "") or None
    key = f"event:{event_id}" if event_id else None
    if key is not None:
        begun = app.ledger.begin(key, retry_failed=True)
        if not begun.owned:
            log.info("event %s already %s: skipped", event_id, begun.state, extra={"event_id": event_id})
            return []
    diagnoses: list[Diagnosis] = []
    try:
        for failure in failures:
            diagnosis = diagnose_live(app, failure)
            diagnoses.append(diagnosis)
            results = dispatch(app, diagnosis, event_id=event_id)
            log.info("event diagnosed: %s %s", diagnosis.scenario, failure.resource_id or "-",
                     extra={"event_id": event_id, "scenario": diagnosis.scenario, "target": failure.resource_id,
                            "actions": [r.action for r in results]})
    except Exception as exc:
        if key is not None:
            app.ledger.fail(key, describe_error(exc))
        raise
    if key is not None:
        app.ledger.complete(key, {"scenarios": [d.scenario for d in diagnoses]})
    return diagnoses


def handle_job(text: str | bytes, app: App | None = None, *, dequeue_count: int = 1) -> dict[str, Any]:
    """Carries out one queued job, once. Raises Retry (the queue redelivers it later) when
    the target is locked by another job or Azure failed transiently; after the queue's
    maxDequeueCount the message goes to the poison queue and `handle_poison` records it."""
    from shared.wiring import app as default_app

    app = app or default_app()
    job = Job.from_json(text)
    key = f"job:{job.operation_id}"
    begun = app.ledger.begin(key, retry_failed=True)
    if begun.state == "completed":
        return {"operation_id": job.operation_id, "result": "duplicate delivery", **(begun.record.result or {})}
    if not begun.owned:
        raise Retry(f"job {job.operation_id} is being carried out by another worker")
    owner = uuid.uuid4().hex
    lease = app.locks.acquire(job.target, owner, LOCK_TTL)
    if lease is None:
        app.ledger.fail(key, "target locked by another job")
        raise Retry(f"{job.target} is locked by another job")
    try:
        return _run_job(app, job, key, dequeue_count)
    except Retry:
        raise  # the key is already marked failed, with the reason
    except Exception as exc:
        # Anything else (storage reset mid-job, ...) frees the key for the queue's next delivery;
        # left in progress it would turn every redelivery away until the job is poisoned.
        app.ledger.fail(key, describe_error(exc))
        raise
    finally:
        app.locks.release(lease)


def _run_job(app: App, job: Job, key: str, dequeue_count: int) -> dict[str, Any]:
    app.operations.update(job.operation_id, status="running")
    if not job.dry_run:
        planned = execute(job.remediation, job.target, job.params, app.ctx, dry_run=True)
        # A job spends its change budget once, however often it is delivered again.
        if planned.result is Result.DRY_RUN and app.ledger.begin(f"budget:{job.operation_id}").owned:
            denied = app.policy.spend(app.counters, job.target)
            app.ledger.complete(f"budget:{job.operation_id}", {"denied": denied.reason if denied else None})
            if denied is not None:
                return _finish(app, job, key, "failed", denied.reason, changes=(), duration_ms=0)
    outcome = execute(job.remediation, job.target, job.params, app.ctx, dry_run=job.dry_run)
    if outcome.result is Result.FAILED and outcome.transient:
        app.ledger.fail(key, outcome.error or "transient failure")
        app.audit.record(AuditRecord(kind="error", operation_id=job.operation_id, target=job.target,
                                     remediation=job.remediation, reason=f"attempt {dequeue_count} failed, will retry",
                                     error=outcome.error))
        raise Retry(f"{job.remediation} on {job.target}: {outcome.error}")
    changes = tuple(c.to_dict() for c in outcome.changes)
    detail = outcome.error or (outcome.plan.reason if outcome.plan else "")
    return _finish(app, job, key, outcome.result.value, detail, changes=changes, duration_ms=outcome.duration_ms)


def _finish(app: App, job: Job, key: str, result: str, detail: str, *, changes: tuple[Mapping[str, Any], ...],
            duration_ms: int) -> dict[str, Any]:
    status = {"applied": "succeeded", "noop": "noop", "dry-run": "dry-run"}.get(result, "failed")
    summary = {"operation_id": job.operation_id, "result": result, "detail": detail, "changes": list(changes)}
    app.audit.record(AuditRecord(kind="apply", operation_id=job.operation_id, event_id=job.event_id,
                                 target=job.target, scenario=job.scenario, remediation=job.remediation,
                                 decision=result, reason=detail, actor=job.requested_by, changes=_changes(changes),
                                 result=summary, duration_ms=duration_ms,
                                 error=detail if status == "failed" else None))
    app.operations.update(job.operation_id, status=status, result=summary,  # type: ignore[arg-type]
                          error=detail if status == "failed" else None)
    app.ledger.complete(key, summary)
    log.info("%s %s on %s: %s", job.remediation, result, job.target, detail,
             extra={"event_id": job.event_id, "operation_id": job.operation_id, "scenario": job.scenario,
                    "remediation": job.remediation, "target": job.target})
    telemetry.remediation(job.remediation, result, job.scenario)
    if job.fix_key:
        ledger = app.ledger if job.approval_id is None else app.proposals
        if status == "failed":
            ledger.fail(job.fix_key, detail)
        else:
            ledger.complete(job.fix_key, summary)
    if job.approval_id is not None or status == "failed":
        from shared.approvals.flow import send_outcome

        send_outcome(app, job, result, detail, changes)
    return summary


def handle_poison(text: str | bytes, app: App | None = None) -> None:
    """A job the queue gave up on: a failed record with the reason, and a notification."""
    from shared.wiring import app as default_app

    app = app or default_app()
    try:
        job = Job.from_json(text)
    except Exception as exc:
        if not is_operational(exc):
            raise
        app.audit.record(AuditRecord(kind="poison", reason="unreadable poison message", error=describe_error(exc),
                                     result={"message": (text if isinstance(text, str) else text.decode(
                                         "utf-8", "replace"))[:2000]}))
        return
    reason = "gave up after the queue's maximum delivery attempts"
    last = app.ledger.get(f"job:{job.operation_id}")
    if last is not None and last.reason:
        reason += f"; last error: {last.reason}"
    app.audit.record(AuditRecord(kind="poison", operation_id=job.operation_id, target=job.target,
                                 remediation=job.remediation, scenario=job.scenario, reason=reason, error=reason))
    current = app.operations.get(job.operation_id)
    if current is not None and not current.finished:
        app.operations.update(job.operation_id, status="failed", error=reason)
    app.ledger.fail(f"job:{job.operation_id}", reason)
    if job.fix_key:
        (app.ledger if job.approval_id is None else app.proposals).fail(job.fix_key, reason)
    from shared.approvals.flow import send_outcome

    send_outcome(app, job, "failed", reason, ())


def sweep_tick(app: App, subscriptions: list[str]) -> dict[str, Any]:
    """The timer's job: the sweep as a safety net beside events and alerts, then housekeeping.
    Everything it finds goes through the same decisions (and ledger keys) as an event would."""
    from shared.decisions.sweep import Unreadable, discover

    actions: dict[str, int] = {}
    for suspect in discover(app.ctx, subscriptions):
        if isinstance(suspect, Unreadable):
            app.audit.record(AuditRecord(kind="error", target=suspect.source, reason="sweep could not read",
                                         error=suspect.reason))
            actions["unreadable"] = actions.get("unreadable", 0) + 1
            continue
        try:
            diagnosis = suspect.diagnosis or diagnose_live(app, suspect.failure)
            results = dispatch(app, diagnosis, tags=suspect.tags, target=suspect.target)
        except Retry as exc:  # one resource Azure could not answer for now: the next tick sees it again
            app.audit.record(AuditRecord(kind="error", target=suspect.target, reason="sweep: retry later",
                                         error=str(exc)))
            actions["retry-later"] = actions.get("retry-later", 0) + 1
            continue
        for result in results:
            actions[result.action] = actions.get(result.action, 0) + 1
    for approval in app.approvals.expire_stale():
        fix_key = approval.plan.get("fix_key")
        if fix_key:
            app.proposals.fail(str(fix_key), "approval expired before a decision")
        app.audit.record(AuditRecord(kind="approval", target=approval.target, remediation=approval.remediation,
                                     scenario=approval.scenario, decision="expired",
                                     result={"approval_id": approval.id}))
        actions["expired"] = actions.get("expired", 0) + 1
    app.ledger.purge_expired()
    app.counters.purge_expired()
    return actions


def subscriptions_of(scopes: tuple[str, ...]) -> list[str]:
    """The subscriptions the allowed scopes fall in (what the timer sweeps)."""
    found: list[str] = []
    for scope in scopes:
        parts = [p for p in scope.split("/") if p]
        if len(parts) >= 2 and parts[0].lower() == "subscriptions" and parts[1] not in found:
            found.append(parts[1])
    return found


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


__all__ = ["Dispatched", "Retry", "diagnose_live", "dispatch", "eventgrid_dict", "fingerprint", "handle_event",
           "handle_job", "handle_poison", "subscriptions_of", "sweep_tick", "target_of"]
