"""The main job without Functions: find what failed, diagnose it, fix what policy allows.

A sweep looks where failures are recorded (the safety net beside events and alerts):
provider registrations the product depends on, image templates whose last build or
submission failed, Automation deployments whose latest run failed, and Update Manager
runs that failed or ran out of their window. Each failure is enriched, classified, and
every remediation its diagnosis names is planned against live state; policy then
decides to apply, propose (approval) or only observe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from remediations.base import Result, params_from, registry
from remediations.context import Context
from remediations.runner import describe_error, execute, is_operational
from shared.core.domain import Diagnosis, Failure, Family, Mode, SourceKind
from shared.decisions.policy import Action, Budget, Decision, MemoryBudget, Policy
from shared.diagnosis.catalog import BY_ID
from shared.diagnosis.enrichment import diagnose

log = logging.getLogger("remediator.sweep")
AUTOMATION_FAILED = ("Failed", "MaintenanceWindowExceeded", "FailedToStart")


@dataclass(frozen=True, slots=True)
class Finding:
    resource: str
    scenario: str
    title: str
    remediation: str | None
    decision: str  # applied | proposed | observed | denied | advice | noop | dry-run | failed
    result: str | None
    reason: str
    changes: tuple[Mapping[str, Any], ...] = ()
    evidence: tuple[str, ...] = ()
    params: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"resource": self.resource, "scenario": self.scenario, "title": self.title,
                "remediation": self.remediation, "decision": self.decision, "result": self.result,
                "reason": self.reason, "changes": [dict(c) for c in self.changes],
                "evidence": list(self.evidence), "params": dict(self.params)}


@dataclass(frozen=True, slots=True)
class Suspect:
    """A failure found by a sweep, and the resource its remediations act on."""

    failure: Failure
    target: str
    tags: Mapping[str, str] = field(default_factory=dict)
    diagnosis: Diagnosis | None = None  # set when the failure is known without classifying


Progress = Callable[[str], None]


def _quiet(message: str) -> None:
    log.debug(message)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A place the sweep could not look (reported as a failed finding, never skipped quietly)."""

    source: str
    reason: str


def _guarded(source: str, items: Iterator[Suspect]) -> Iterator[Suspect | Unreadable]:
    try:
        yield from items
    except Exception as exc:
        if not is_operational(exc):
            raise
        yield Unreadable(source, describe_error(exc))


def discover(ctx: Context, subscriptions: list[str], progress: Progress = _quiet) -> Iterator[Suspect | Unreadable]:
    for subscription in subscriptions:
        sub = f"/subscriptions/{subscription}"
        progress(f"providers in {subscription}")
        yield from _guarded(f"{sub} (resource providers)", _providers(ctx, subscription))
        progress(f"image templates in {subscription}")
        yield from _guarded(f"{sub} (image templates)", _templates(ctx, subscription))
        progress(f"Automation deployments in {subscription}")
        yield from _guarded(f"{sub} (Automation deployments)", _automation(ctx, subscription))
    progress("Update Manager machines and runs (Resource Graph)")
    yield from _guarded("Update Manager (Resource Graph)", _update_manager(ctx, subscriptions))


def _providers(ctx: Context, subscription: str) -> Iterator[Suspect]:
    for namespace in ctx.limits.check_namespaces:
        state = ctx.providers.state(subscription, namespace)
        if state == "Registered":
            continue
        row = BY_ID["um.rp_not_registered"]
        evidence = f"resource provider {namespace} is {state} on subscription {subscription}"
        target = f"/subscriptions/{subscription}"
        failure = Failure(SourceKind.TEXT, True, (evidence,), Family.UPDATE, target, subscription, status=state)
        diagnosis = Diagnosis(row.id, 1.0, row.title, (evidence,), row.remediations, row.doc, row.anchor,
                              row.advice, row.queries, row.family, (("namespace", namespace),), failure)
        yield Suspect(failure, target, {}, diagnosis)


def _templates(ctx: Context, subscription: str) -> Iterator[Suspect]:
    from shared.diagnosis.envelopes._reader import Reader
    from shared.diagnosis.envelopes.arm import parse_image_template

    for template in ctx.images.list_all(subscription):
        failure = parse_image_template(Reader(template, "template"))
        if failure.failed:
            yield Suspect(failure, str(template["id"]), template.get("tags") or {})


def _automation(ctx: Context, subscription: str) -> Iterator[Suspect]:
    from shared.diagnosis.envelopes._reader import Reader
    from shared.diagnosis.envelopes.arm import parse_update_run

    for account in ctx.automation.list_accounts(subscription):
        for configuration in ctx.automation.list_configurations(account):
            run = ctx.automation.latest_run(str(configuration["id"]))
            status = ((run or {}).get("properties") or {}).get("status")
            if run is None or status not in AUTOMATION_FAILED:
                continue
            failure = parse_update_run(Reader(run, "run"), SourceKind.AUTOMATION_RUN)
            yield Suspect(failure, str(configuration["id"]))


def _update_manager(ctx: Context, subscriptions: list[str]) -> Iterator[Suspect]:
    """Update Manager's estate, per machine, from Resource Graph alone (one query per table and batch of
    subscriptions, never a GET per machine): failed installations, pending reboots, assigned VMs not on
    Customer Managed Schedules, periodic assessment off where the machine is scheduled, patch extensions
    not Succeeded, Arc machines disconnected, assigned machines with no result for a run that happened.
    Each comes diagnosed, with the resource its remediations act on (a window that ran out: the
    configuration, once however many of its machines ran out)."""
    from shared.diagnosis.update_manager import scan

    for found in scan(ctx, subscriptions):
        failure = found.diagnosis.failure
        assert failure is not None
        yield Suspect(failure, found.target, found.tags, found.diagnosis)


def sweep(ctx: Context, subscriptions: list[str], *, policy: Policy, budget: Budget | None = None,
          dry_run: bool = False, approve_all: bool = False, progress: Progress = _quiet) -> list[Finding]:
    budget = budget or MemoryBudget()
    findings: list[Finding] = []
    for suspect in discover(ctx, subscriptions, progress):
        if isinstance(suspect, Unreadable):
            findings.append(Finding(suspect.source, "unknown", "could not be read", None, "failed", "failed",
                                    suspect.reason))
            continue
        diagnosis = suspect.diagnosis or diagnose(suspect.failure, ctx)
        progress(f"{diagnosis.scenario}: {suspect.target}")
        findings.extend(act(ctx, suspect, diagnosis, policy=policy, budget=budget, dry_run=dry_run,
                            approve_all=approve_all))
    return findings


def act(ctx: Context, suspect: Suspect, diagnosis: Diagnosis, *, policy: Policy, budget: Budget,
        dry_run: bool = False, approve_all: bool = False) -> list[Finding]:
    """Plans every remediation the diagnosis names; applies or proposes per policy."""
    known = registry().items
    params = dict(_params(ctx, diagnosis))

    def finding(remediation: str, decision: str, result: str | None, reason: str,
                changes: tuple[Mapping[str, Any], ...] = ()) -> Finding:
        return Finding(suspect.target, diagnosis.scenario, diagnosis.title, remediation, decision, result, reason,
                       changes, diagnosis.evidence[:5], params)

    out: list[Finding] = []
    for ref in diagnosis.remediations:
        if ref.name not in known or ref.mode is Mode.ADVICE:
            advice = "; ".join(diagnosis.advice[:2]) or "see the guide"
            out.append(finding(ref.name, "advice", None, advice))
            continue
        planned = execute(ref.name, suspect.target, params, ctx, dry_run=True)
        changes = tuple(c.to_dict() for c in planned.changes)
        if planned.result is not Result.DRY_RUN:  # noop or failed: nothing to decide
            reason = planned.error or (planned.plan.reason if planned.plan else "")
            out.append(finding(ref.name, planned.result.value, planned.result.value, reason, changes))
            continue
        decision = policy.decide(ref.name, ref.mode, suspect.target, suspect.tags, approved=approve_all)
        if approve_all and decision.action is Action.APPLY:
            decision = Decision(Action.APPLY, "approved for this sweep (--approve-all)")
        if decision.action is Action.APPLY and not dry_run:
            denied = policy.spend(budget, suspect.target)
            if denied is not None:
                decision = denied
        if decision.action is not Action.APPLY or dry_run:
            label = {Action.APPLY: "dry-run", Action.PROPOSE: "proposed", Action.OBSERVE: "observed",
                     Action.DENY: "denied"}[decision.action]
            out.append(finding(ref.name, label, None, decision.reason, changes))
            continue
        outcome = execute(ref.name, suspect.target, params, ctx)
        out.append(finding(ref.name, "applied", outcome.result.value, outcome.error or decision.reason,
                           tuple(c.to_dict() for c in outcome.changes)))
    return out


def _params(ctx: Context, diagnosis: Diagnosis) -> Mapping[str, str]:
    """Parameters the diagnosis's remediations take from it (e.g. the provider namespace)."""
    out: dict[str, str] = {}
    for ref in diagnosis.remediations:
        out.update(params_from(ref.name, diagnosis))
    return out

