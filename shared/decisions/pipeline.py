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
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from remediations.base import Plan, Result, params_from, registry
from remediations.runner import describe_error, execute, is_operational
from shared.azure.ids import canonical
from shared.core import telemetry
from shared.core.domain import Diagnosis, Failure, Mode
from shared.decisions.policy import Action
from shared.decisions.policy import Decision as PolicyDecision
from shared.state.audit import AuditRecord, Change
from shared.state.jobs import Job
from shared.state.locks import JobStart
from shared.wiring import App

log = logging.getLogger("remediator.pipeline")
LOCK_TTL = timedelta(minutes=10)  # a killed worker frees its target after this; a redelivery then takes over
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
    raw = f"{diagnosis.scenario}|{canonical(target)}|{when or corr}"
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


@dataclass(frozen=True, slots=True)
class Request:
    """A change asked for: a diagnosis's remediation (event, alert, sweep) or a manual run. Every
    request goes through the same decision: plan, scope of every change, policy, then queue,
    propose or only record."""

    remediation: str
    mode: Mode  # the catalog's mode for this scenario (a manual run: the remediation's own)
    target: str  # canonical
    params: Mapping[str, str] = field(default_factory=dict)
    scenario: str = "manual"
    title: str = ""
    evidence: tuple[str, ...] = ()
    key: str | None = None  # the failure's ledger key; None: a request of its own (manual run)
    event_id: str | None = None
    alert_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    requested_by: str = "policy"
    kind: str = "auto"  # the operation's kind: auto | manual


def dispatch(app: App, diagnosis: Diagnosis, *, tags: Mapping[str, str] | None = None,
             event_id: str | None = None, alert_id: str | None = None, target: str | None = None) -> list[Dispatched]:
    """Plans every remediation the diagnosis names and decides on each, once per failure."""
    failure = diagnosis.failure
    target = target or (target_of(failure) if failure else None)
    target = canonical(target) if target else None
    # The diagnosis and every decision on it are recorded together, in one transaction.
    audits = [AuditRecord(kind="diagnosis", event_id=event_id, target=target, scenario=diagnosis.scenario,
                          reason="; ".join(diagnosis.evidence[:3]) or diagnosis.title)]
    telemetry.diagnosed(diagnosis.scenario, failure.source.value if failure else "unknown")
    out: list[Dispatched] = []
    if diagnosis.scenario not in ("none", "unknown") and target is not None:
        known = registry().items
        for ref in diagnosis.remediations:
            if ref.mode is Mode.ADVICE or ref.name not in known:
                out.append(Dispatched(ref.name, target, "advice", diagnosis.advice[0] if diagnosis.advice else ""))
                continue
            key = f"fix:{ref.name}|{target}|{fingerprint(diagnosis, target)}"
            out.append(decide(app, Request(ref.name, ref.mode, target, params=params_from(ref.name, diagnosis),
                                           scenario=diagnosis.scenario,
                                           title=diagnosis.title, evidence=tuple(diagnosis.evidence), key=key,
                                           event_id=event_id, alert_id=alert_id, tags=dict(tags or {})),
                              audits=audits))
    app.audit.record_many(audits)
    return out


def _audit(app: App, req: Request, decision: str, reason: str, audits: list[AuditRecord] | None = None,
           **extra: Any) -> None:
    """Records a decision: into `audits` (written with the step's other records), else at once."""
    record = AuditRecord(kind="decision", event_id=req.event_id, target=req.target, scenario=req.scenario,
                         remediation=req.remediation, decision=decision, reason=reason,
                         actor=req.requested_by if req.kind == "manual" else None, **extra)
    if audits is None:
        app.audit.record(record)
    else:
        audits.append(record)
    log.info("%s: %s on %s (%s)", decision, req.remediation, req.target, reason,
             extra={"event_id": req.event_id, "operation_id": extra.get("operation_id"),
                    "scenario": req.scenario, "remediation": req.remediation, "target": req.target})
    telemetry.remediation(req.remediation, {"apply": "queued", "propose": "proposed", "observe": "observed",
                                            "deny": "denied"}.get(decision, decision), req.scenario)


def outside_scope(app: App, plan: Plan) -> str | None:
    """A change's scope is the scope of what it changes (a provider registration is the
    subscription's, whatever resource asked for it): every change must be in scope."""
    outside = sorted({c.resource_id for c in plan.changes if not app.policy.in_scope(c.resource_id)})
    return f"{', '.join(outside[:3])} is outside the allowed scopes" if outside else None


def decide(app: App, req: Request, *, audits: list[AuditRecord] | None = None) -> Dispatched:
    """Plans `req` against live state and decides: queue (apply), propose (approval card), or record.
    With `audits`, the decision's audit record joins that list (the caller writes them together)."""
    name, target = req.remediation, req.target
    planned = execute(name, target, req.params, app.ctx, dry_run=True)
    if planned.result is Result.FAILED:
        if planned.transient:
            raise Retry(f"planning {name} on {target}: {planned.error}")
        _audit(app, req, "failed", planned.error or "planning failed", audits, error=planned.error)
        return Dispatched(name, target, "failed", planned.error or "")
    if planned.result is Result.NOOP:
        reason = planned.plan.reason if planned.plan else "nothing to do"
        _audit(app, req, "noop", reason, audits)
        return Dispatched(name, target, "noop", reason)
    assert planned.plan is not None
    plan = planned.plan
    changes = _changes(c.to_dict() for c in plan.changes)
    outside = outside_scope(app, plan)
    decision = PolicyDecision(Action.DENY, outside) if outside else app.policy.decide(name, req.mode, target, req.tags)
    if plan.resume and decision.action is Action.PROPOSE:
        decision = PolicyDecision(Action.APPLY, "finishes an interrupted change (no new change)")
    if decision.action in (Action.OBSERVE, Action.DENY):
        _audit(app, req, decision.action.value, decision.reason, audits, changes=changes)
        return Dispatched(name, target, "observed" if decision.action is Action.OBSERVE else "denied",
                          decision.reason)
    ledger = app.ledger if decision.action is Action.APPLY else app.proposals
    if req.key is not None:
        # A fix to queue is claimed as done at once (one write; released if the job fails for good);
        # a proposal stays in progress until its approval is decided.
        begun = ledger.claim(req.key, {"decision": "queued"}) if decision.action is Action.APPLY \
            else ledger.begin(req.key, retry_failed=True)
        if not begun.owned:
            why = f"this failure was already handled ({begun.state})"
            _audit(app, req, "duplicate", why, audits)
            return Dispatched(name, target, "duplicate", why)
    if decision.action is Action.APPLY:
        try:
            op = app.operations.create(kind=req.kind, remediation=name, target=target, params=req.params)
            app.queue.send(Job(op.id, name, target, params=dict(req.params), fix_key=req.key, scenario=req.scenario,
                               event_id=req.event_id, reason=decision.reason, requested_by=req.requested_by,
                               mode=req.mode.value, tags=dict(req.tags)))
        except Exception as exc:  # not queued: release the failure, so the redelivery can queue it
            if req.key is not None:
                ledger.release(req.key, describe_error(exc))
            raise
        _audit(app, req, "apply", decision.reason, audits, operation_id=op.id, changes=changes)
        return Dispatched(name, target, "queued", decision.reason, operation_id=op.id)
    approval = propose(app, req, plan)
    _audit(app, req, "propose", decision.reason, audits, changes=changes)
    return Dispatched(name, target, "proposed", decision.reason, approval_id=approval.id)


def propose(app: App, req: Request, plan: Plan) -> Any:
    """An approval bound to exactly `plan` (its changes and their digest), and its card. A card
    that cannot be posted never undoes the proposal: it is recorded, and the sweep sends it again."""
    from shared.approvals.flow import send_card

    approval = app.approvals.create(
        remediation=req.remediation, target=req.target, scenario=req.scenario,
        plan=plan.to_dict() | {"fix_key": req.key, "title": req.title or f"{req.remediation} requested",
                               "requested_by": req.requested_by, "mode": req.mode.value, "tags": dict(req.tags),
                               "kind": req.kind},
        evidence=req.evidence, params=req.params, alert_id=req.alert_id, event_id=req.event_id)
    send_card(app, approval, req.title or f"{req.remediation} requested by {req.requested_by}")
    return approval


def approval_still_allowed(app: App, approval: Any) -> str | None:
    """Policy checked again at decision: a pause since the proposal (observe, a tag, a scope
    withdrawn) refuses the decision, as it would refuse the job."""
    plan = approval.plan
    remediation = registry().items.get(approval.remediation)
    if remediation is None:
        return f"{approval.remediation} is no longer a remediation of this app"
    mode = Mode(str(plan.get("mode"))) if plan.get("mode") in ("auto", "approval") else remediation.mode
    tags = plan.get("tags") if isinstance(plan.get("tags"), dict) else {}
    decision = app.policy.decide(approval.remediation, mode, approval.target, tags, approved=True)
    outside = [str(c.get("resource_id")) for c in plan.get("changes", [])
               if not app.policy.in_scope(str(c.get("resource_id", "")))]
    if outside:
        return f"{outside[0]} is no longer in the allowed scopes"
    return None if decision.action is Action.APPLY else f"policy now says: {decision.reason}"


def handle_event(event: dict[str, Any], app: App | None = None) -> list[Diagnosis]:
    """One delivered event (Event Grid or CloudEvent). Handled once per event id; a
    malformed event raises PayloadError, so Event Grid retries and finally dead-letters it."""
    from shared.azure.snapshot import one_reading
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
        with one_reading():  # enrichment and planning see the resource as it was read once
            for failure in failures:
                from shared.decisions.update_manager import handle_maintenance_event

                fanned = handle_maintenance_event(app, failure, event_id)  # per machine / the pre-run gate
                if fanned is not None:
                    diagnoses.extend(fanned)
                    continue
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
        app.ledger.complete(key, {"scenarios": [d.scenario for d in diagnoses]}, begun=begun)
    return diagnoses


def handle_job(text: str | bytes, app: App | None = None, *, dequeue_count: int = 1) -> dict[str, Any]:
    """Carries out one queued job, once. Raises Retry (the queue redelivers it later) when
    the target is leased by another job or Azure failed transiently; after the queue's
    maxDequeueCount the message goes to the poison queue and `handle_poison` records it.
    The job's record and its target's lease are claimed together, and a job whose worker died
    (record in progress, lease expired) is taken over."""
    from shared.wiring import app as default_app

    app = app or default_app()
    job = Job.from_json(text)
    start = app.locks.start_job(job.target, job.operation_id, uuid.uuid4().hex, LOCK_TTL)
    if start.state == "completed":
        return {"operation_id": job.operation_id, "result": "duplicate delivery", **(start.result or {})}
    if start.state == "busy":
        raise Retry(start.reason or f"{job.target} is leased by another job")
    try:
        return _run_job(app, job, start, dequeue_count)
    except Exception as exc:
        # A transient outcome (Retry) or anything else (storage reset mid-job, ...) frees the job and
        # its target for the queue's next delivery; left in progress it would be turned away until poisoned.
        app.locks.finish_job(start, job.operation_id, reason=describe_error(exc) if not isinstance(exc, Retry)
                             else str(exc))
        raise


def _mode_of(job: Job) -> Mode:
    """The catalog mode the job was decided under, else its remediation's own."""
    if job.mode in (Mode.AUTO.value, Mode.APPROVAL.value):
        return Mode(job.mode)
    return registry().items[job.remediation].mode


def _still_allowed(app: App, job: Job) -> tuple[str | None, Any]:
    """Policy and approval, checked again at execution: a pause (observe, a tag, a withdrawn
    scope) or a decision taken since stops a job already queued; one that now needs approval
    is proposed again. (refusal, approval)."""
    approval = None
    if job.approval_id is not None:
        approval = app.approvals.get(job.approval_id)
        if approval is None or approval.state in ("rejected", "withdrawn", "expired"):
            return f"the approval is {approval.state if approval else 'gone'}: nothing was changed", approval
        if approval.state == "pending":
            raise Retry(f"approval {job.approval_id} is not recorded as approved yet")
    if job.dry_run:
        return None, approval
    decision = app.policy.decide(job.remediation, _mode_of(job), job.target, job.tags,
                                 approved=approval is not None)
    if decision.action is Action.PROPOSE and app.ctx.vault.get(job.target) is None:
        _propose_again(app, job)
        return f"policy now asks for approval ({decision.reason}): proposed again, nothing was changed", approval
    if decision.action not in (Action.APPLY, Action.PROPOSE):  # PROPOSE here: an interrupted change to finish
        return f"policy changed since the decision: {decision.reason}; nothing was changed", approval
    return None, approval


def _run_job(app: App, job: Job, start: JobStart, dequeue_count: int) -> dict[str, Any]:
    refused, approval = _still_allowed(app, job)
    if refused is not None:
        return _finish(app, job, start, "refused", refused, changes=(), duration_ms=0)
    approved = list(approval.plan.get("changes", [])) if approval is not None else None
    over_budget: list[str] = []

    def accept(plan: Plan) -> str | None:
        outside = outside_scope(app, plan)
        if outside:
            return f"not applied: {outside}"
        if approved is not None and not plan.resume and not plan.within(approved):
            return "not applied: the live plan is no longer the approved one (or a part of it)"
        # A job spends its change budget once, right before its first apply (a redelivery is the same
        # change); finishing an interrupted change spends none (it makes no new change).
        if not plan.resume and start.attempts == 1:
            denied = app.policy.spend(app.counters, job.target)
            if denied is not None:
                over_budget.append(denied.reason)
                return f"not applied: {denied.reason}"
        return None

    outcome = execute(job.remediation, job.target, job.params, app.ctx, dry_run=job.dry_run, accept=accept)
    if over_budget:
        return _finish(app, job, start, "failed", over_budget[0], changes=(), duration_ms=outcome.duration_ms)
    if outcome.result is Result.FAILED and outcome.transient:
        app.audit.record(AuditRecord(kind="error", operation_id=job.operation_id, target=job.target,
                                     remediation=job.remediation, reason=f"attempt {dequeue_count} failed, will retry",
                                     error=outcome.error))
        raise Retry(f"{job.remediation} on {job.target}: {outcome.error}")
    if outcome.drifted:
        detail = outcome.error or "the plan changed"
        if approved is not None and outcome.plan is not None and "scope" not in detail:
            _propose_again(app, job, outcome.plan)
            detail += "; the new plan is proposed again"
        return _finish(app, job, start, "refused", detail, changes=(), duration_ms=outcome.duration_ms)
    changes = tuple(c.to_dict() for c in outcome.changes)
    detail = outcome.error or (outcome.plan.reason if outcome.plan else "")
    return _finish(app, job, start, outcome.result.value, detail, changes=changes, duration_ms=outcome.duration_ms)


def _propose_again(app: App, job: Job, plan: Plan | None = None) -> None:
    """A job that may not run as it was decided becomes a new proposal of what is live now."""
    req = Request(job.remediation, _mode_of(job), job.target, params=dict(job.params),
                  scenario=job.scenario or "manual", title=f"{job.remediation}: the plan changed since it was decided",
                  key=job.fix_key, event_id=job.event_id, tags=dict(job.tags), requested_by=job.requested_by)
    if plan is None:
        planned = execute(job.remediation, job.target, job.params, app.ctx, dry_run=True)
        if planned.result is not Result.DRY_RUN or planned.plan is None:
            return
        plan = planned.plan
    propose(app, req, plan)


def _finish(app: App, job: Job, start: JobStart, result: str, detail: str, *,
            changes: tuple[Mapping[str, Any], ...], duration_ms: int) -> dict[str, Any]:
    """The job's end, written once: its audit record, its operation, its own record with the lease
    released (one transaction); the failure it fixed is released only if the fix did not happen."""
    status = {"applied": "succeeded", "noop": "noop", "dry-run": "dry-run"}.get(result, "failed")
    summary = {"operation_id": job.operation_id, "result": result, "detail": detail, "changes": list(changes)}
    app.audit.record(AuditRecord(kind="apply", operation_id=job.operation_id, event_id=job.event_id,
                                 target=job.target, scenario=job.scenario, remediation=job.remediation,
                                 decision=result, reason=detail, actor=job.requested_by, changes=_changes(changes),
                                 result=summary, duration_ms=duration_ms,
                                 error=detail if status == "failed" else None))
    app.operations.finish(job.operation_id, status=status, result=summary,  # type: ignore[arg-type]
                          error=detail if status == "failed" else None)
    app.locks.finish_job(start, job.operation_id, result=summary)
    log.info("%s %s on %s: %s", job.remediation, result, job.target, detail,
             extra={"event_id": job.event_id, "operation_id": job.operation_id, "scenario": job.scenario,
                    "remediation": job.remediation, "target": job.target})
    telemetry.remediation(job.remediation, result, job.scenario)
    if job.fix_key and result != "refused":
        if job.approval_id is not None:  # the proposal's key: done (or failed) now
            if status == "failed":
                app.proposals.fail(job.fix_key, detail)
            else:
                app.proposals.complete(job.fix_key, summary)
        elif status == "failed":  # claimed as queued at decision: the fix did not happen, act on it again
            app.ledger.release(job.fix_key, detail)
    if job.approval_id is not None or status == "failed":
        from shared.approvals.flow import send_outcome

        send_outcome(app, job, result, detail, changes)
    return summary


def handle_poison(text: str | bytes, app: App | None = None) -> None:
    """A job the queue gave up on: a failed record with the reason, and a notification. An
    interrupted multi-step change is finished (or rolled back) from the vault, and the card says so."""
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
    last = app.locks.job(job.target, job.operation_id)
    if last is not None and last.get("reason"):
        reason += f"; last error: {last.get('reason')}"
    reason += _restore(app, job.remediation, job.target)
    app.audit.record(AuditRecord(kind="poison", operation_id=job.operation_id, target=job.target,
                                 remediation=job.remediation, scenario=job.scenario, reason=reason, error=reason))
    current = app.operations.get(job.operation_id)
    if current is not None and not current.finished:
        app.operations.update(job.operation_id, status="failed", error=reason)
    app.locks.fail_job(job.target, job.operation_id, reason)
    if job.fix_key:
        if job.approval_id is None:
            app.ledger.release(job.fix_key, reason)
        else:
            app.proposals.fail(job.fix_key, reason)
    from shared.approvals.flow import send_outcome

    send_outcome(app, job, "failed", reason, ())


def _restore(app: App, remediation: str, target: str) -> str:
    """Finishes an interrupted change kept in the vault, under the target's lock; what happened, to say."""
    kept = app.ctx.vault.get(target)
    if kept is None:
        return ""
    name = str(kept.get("remediation") or "recreate-image-template")
    lease = app.locks.acquire(target, uuid.uuid4().hex, LOCK_TTL)
    if lease is None:
        return "; an interrupted change is kept in the vault: the sweep finishes it once the target is free"
    try:
        outcome = execute(name, target, {}, app.ctx)
    finally:
        app.locks.release(lease)
    app.audit.record(AuditRecord(kind="apply", target=target, remediation=name, decision=outcome.result.value,
                                 reason="restored from the vault after an interrupted change", error=outcome.error,
                                 changes=_changes(c.to_dict() for c in outcome.changes)))
    if outcome.result is Result.APPLIED:
        return f"; the interrupted change was finished from the vault ({name})"
    return f"; restoring from the vault did not succeed ({outcome.error}): it stays kept for the sweep"


def resume_interrupted(app: App, older_than: timedelta = timedelta(minutes=15)) -> int:
    """The sweep's part: interrupted changes the vault still holds, whose worker is gone."""
    from datetime import UTC, datetime

    resumed = 0
    for kept in app.ctx.vault.pending():
        target = canonical(str(kept.get("template_id") or ""))
        when = datetime.fromisoformat(str(kept.get("kept_at") or "1970-01-01T00:00:00+00:00"))
        if target == "/" or datetime.now(UTC) - when < older_than:
            continue
        if kept.get("remediation") is None:  # an image template: done once the template exists again
            from remediations.image_builder.templates import get_or_none

            if get_or_none(app.ctx, target) is not None:
                app.ctx.vault.drop(target)
                continue
        if "finished" in _restore(app, "", target):
            resumed += 1
    return resumed


def sweep_tick(app: App, subscriptions: list[str]) -> dict[str, Any]:
    """The timer's job: the sweep as a safety net beside events and alerts, then housekeeping.
    Everything it finds goes through the same decisions (and ledger keys) as an event would;
    one resource that fails (Azure, Teams, storage) is recorded and the sweep goes on."""
    from shared.approvals.flow import send_card
    from shared.decisions.sweep import Unreadable, discover

    actions: dict[str, int] = {}

    def count(action: str) -> None:
        actions[action] = actions.get(action, 0) + 1

    for suspect in discover(app.ctx, subscriptions):
        if isinstance(suspect, Unreadable):
            app.audit.record(AuditRecord(kind="error", target=suspect.source, reason="sweep could not read",
                                         error=suspect.reason))
            count("unreadable")
            continue
        try:
            diagnosis = suspect.diagnosis or diagnose_live(app, suspect.failure)
            results = dispatch(app, diagnosis, tags=suspect.tags, target=suspect.target)
        except Exception as exc:  # one resource Azure could not answer for now: the next tick sees it again
            if not isinstance(exc, Retry) and not is_operational(exc):
                raise
            app.audit.record(AuditRecord(kind="error", target=suspect.target, reason="sweep: retry later",
                                         error=describe_error(exc)))
            count("retry-later")
            continue
        for result in results:
            count(result.action)
    for approval in app.approvals.expire_stale():
        fix_key = approval.plan.get("fix_key")
        if fix_key:
            app.proposals.fail(str(fix_key), "approval expired before a decision")
        app.audit.record(AuditRecord(kind="approval", target=approval.target, remediation=approval.remediation,
                                     scenario=approval.scenario, decision="expired",
                                     result={"approval_id": approval.id}))
        count("expired")
    for approval in app.approvals.pending():
        if approval.card_sent_at is None and send_card(app, approval, str(approval.plan.get("title") or "")):
            count("card-resent")
    for _ in range(resume_interrupted(app)):
        count("resumed")
    app.ledger.purge_expired()
    app.counters.purge_expired()
    app.locks.purge_expired()
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


__all__ = [
    "Dispatched",
    "Request",
    "Retry",
    "approval_still_allowed",
    "decide",
    "diagnose_live",
    "dispatch",
    "eventgrid_dict",
    "fingerprint",
    "handle_event",
    "handle_job",
    "handle_poison",
    "propose",
    "resume_interrupted",
    "subscriptions_of",
    "sweep_tick",
    "target_of",
]
