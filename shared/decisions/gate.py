"""The PreMaintenanceEvent gate acts: what policy allows is fixed before the window, the rest is proposed on one
card per run listing every machine at risk.

`act_on_gate(app, report, event_id)` takes the gate's report (`shared.diagnosis.update_manager.gate`: the
machines of the coming run that will fail, each diagnosed) and sends every remediation the diagnoses name
through the pipeline's one decision (`shared.decisions.pipeline.decide`: plan against live state, scope,
policy, ledger, budget, approval, audit), each with the run's deadline as its `before`:

- automatic where scenarios.md allows it and policy agrees: `start-machines-before-window` for VMs tagged
  `remediator-start-before-window=true` (it must leave the 15 minutes the troubleshoot guide asks machines to be
  on before the run), `set-customer-managed-schedules` when only the bypass flag is missing (`only=bypass`);
- proposed otherwise. The proposals' approvals expire at the run's cancellation cut-off (a run can be cancelled
  until 10 minutes before it: learn.microsoft.com/azure/update-manager/manage-pre-post-events), so a decision
  after it is refused by the approval loop ("the link is not valid: expired"), and a job that would still run
  after it is refused by the remediation's own `before` check, both with the reason. Their cards are not sent
  one by one: one card per run lists every machine at risk, each with its own Approve / Reject links.

Fleet limits stop a fan-out before anything is decided (`remediations.limits.Limits.fan_out_refusal`, Cloud
Custodian's max-resources-percent style): more machines to change automatically than `max_machines_per_change`,
or than `max_fleet_share_per_hour` percent of the fleet (the VMs and Arc-enabled servers of the run's
subscriptions, counted in Resource Graph), and none is changed automatically: every fix is proposed instead,
the refusal naming the limit. Each automatic change also takes one from the hour's fleet budget (counters).
An event that arrives after the cut-off changes and proposes nothing: every machine is recorded as refused.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from remediations.base import registry
from remediations.limits import Limits
from shared.approvals.cards import MAX_CARD_BYTES, CardLinks, MachineRow, machine_rows, message
from shared.azure.ids import canonical
from shared.core.domain import Mode
from shared.decisions.pipeline import Dispatched, Request, Retry, decide
from shared.diagnosis.update_manager import GateReport, MachineDiagnosis
from shared.state.audit import AuditRecord
from shared.wiring import App

log = logging.getLogger("remediator.gate")
START = "start-machines-before-window"
PREREQUISITE = "set-customer-managed-schedules"
START_TAG = "remediator-start-before-window"
CANCEL_BEFORE = timedelta(minutes=10)  # manage-pre-post-events: cancel at least 10 minutes before the start
START_LEAD = timedelta(minutes=15)  # troubleshoot: keep machines on at least 15 minutes before the update
FLEET_SCOPE = "fleet-changes"
CARD_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class GateAction:
    machine: str
    remediation: str
    action: str  # queued | proposed | failed | noop | observed | denied | duplicate | refused | advice
    reason: str
    approval_id: str | None = None
    operation_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class GateActions:
    correlation_id: str | None
    actions: tuple[GateAction, ...]
    fan_out_refused: str | None = None
    card: str | None = None  # where the run's card went

    @property
    def queued(self) -> tuple[GateAction, ...]:
        return tuple(a for a in self.actions if a.action == "queued")

    @property
    def proposed(self) -> tuple[GateAction, ...]:
        return tuple(a for a in self.actions if a.action == "proposed")


@dataclass(frozen=True, slots=True)
class _Wanted:
    found: MachineDiagnosis
    remediation: str
    mode: Mode
    params: Mapping[str, str]


class _Collector:
    """Stands in for the notifier while the run's proposals are made: their cards become rows of the run's card."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cards: list[str] = []

    def send(self, card: Mapping[str, Any], name: str) -> str:
        self.cards.append(name)
        return f"the run's card ({self.name})"


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _wanted(report: GateReport, now: datetime, cutoff: datetime, start: datetime | None) -> list[_Wanted | GateAction]:
    known = registry().items
    out: list[_Wanted | GateAction] = []
    start_by = min(cutoff, start - START_LEAD) if start else cutoff
    for found in report.diagnoses:
        for ref in found.diagnosis.remediations:
            remediation = known.get(ref.name)
            if ref.mode is Mode.ADVICE or remediation is None:
                advice = found.diagnosis.advice[0] if found.diagnosis.advice else "see the guide"
                out.append(GateAction(found.machine, ref.name, "advice", advice))
                continue
            takes = {name for name, _ in remediation.params}
            params: dict[str, str] = {}
            mode = ref.mode
            if ref.name == START:
                tagged = {k.lower(): v for k, v in found.tags.items()}.get(START_TAG, "").strip().lower() == "true"
                mode = Mode.AUTO if tagged else Mode.APPROVAL
                params["before"] = _iso(start_by)
            elif ref.name == PREREQUISITE and ref.mode is Mode.AUTO:
                params["only"] = "bypass"  # only the flag is safe without a person; a patchMode change is refused
            if "before" in takes and "before" not in params:
                params["before"] = _iso(cutoff)
            namespace = dict(found.diagnosis.details).get("namespace")
            if namespace and "namespace" in takes:
                params["namespace"] = namespace
            out.append(_Wanted(found, ref.name, mode, params))
    return out


def _fleet(app: App, report: GateReport) -> int:
    subscriptions = sorted({line.machine.split("/")[2] for line in report.lines if line.machine.count("/") > 2})
    try:
        return max(len(report.lines), app.ctx.patching.fleet_size(subscriptions)) if subscriptions else \
            len(report.lines)
    except Exception as exc:
        from remediations.runner import describe_error, is_operational

        if not is_operational(exc):
            raise
        log.warning("gate: the fleet could not be counted (%s): the run's machines are the fleet", describe_error(exc))
        return len(report.lines)


def act_on_gate(app: App, report: GateReport, event_id: str | None) -> GateActions:
    """Fixes before the window what policy allows, proposes the rest on one card for the run (see the module)."""
    now = app.ctx.now()
    start = report.start
    cutoff = report.cancellation_cutoff or (start - CANCEL_BEFORE if start else None)
    if not report.at_risk:
        return GateActions(report.correlation_id, ())
    if cutoff is None or now >= cutoff:
        why = (f"the run's cancellation cut-off ({cutoff:%Y-%m-%d %H:%M} UTC) has passed: a change now would not be in "
               "place for the run, and it can no longer be cancelled" if cutoff else
               "the event names no start time: no deadline to act before")
        late = tuple(GateAction(line.machine, line.scenario or "", "refused", why) for line in report.at_risk)
        app.audit.record(AuditRecord(kind="decision", event_id=event_id, target=report.configuration_id,
                                     decision="refused", reason=why, result={"correlation_id": report.correlation_id}))
        card = _send(app, report, late, event_id, cutoff=cutoff, note=why)
        return GateActions(report.correlation_id, late, None, card)
    wanted = _wanted(report, now, cutoff, start)
    automatic = sorted({w.found.target.lower() for w in wanted if isinstance(w, _Wanted) and w.mode is Mode.AUTO
                        and w.found.target.count("/") > 2})
    limits: Limits = app.ctx.limits
    fleet = _fleet(app, report) if automatic else len(report.lines)
    refused = limits.fan_out_refusal(len(automatic), fleet) if automatic else None
    if refused:
        app.audit.record(AuditRecord(kind="decision", event_id=event_id, target=report.configuration_id,
                                     decision="denied", reason=f"fan-out stopped: {refused}",
                                     result={"correlation_id": report.correlation_id, "machines": automatic}))
    name = (report.correlation_id or report.configuration_id or "run").rstrip("/").rsplit("/", 1)[-1]
    quiet = dataclasses.replace(app, notifier=_Collector(f"gate-{name}"),  # type: ignore[arg-type]
                                approval_ttl=max(cutoff - now, timedelta(seconds=1)))
    actions: list[GateAction] = []
    allowance = limits.fleet_allowance(fleet)
    for item in wanted:
        if isinstance(item, GateAction):
            actions.append(item)
            continue
        mode, note = item.mode, ""
        if mode is Mode.AUTO and item.found.target.count("/") > 2:
            if refused:
                mode, note = Mode.APPROVAL, f" (proposed: {refused})"
            elif not app.counters.take(FLEET_SCOPE, "hour", allowance):
                mode = Mode.APPROVAL
                note = (f" (proposed: the hour's automatic changes reached max_fleet_share_per_hour "
                        f"({limits.max_fleet_share_per_hour}% of {fleet} = {allowance}))")
        diagnosis = item.found.diagnosis
        request = Request(item.remediation, mode, canonical(item.found.target), params=dict(item.params),
                          scenario=diagnosis.scenario, title=f"Before the run {name}: {diagnosis.title}",
                          evidence=tuple(diagnosis.evidence), event_id=event_id, tags=dict(item.found.tags),
                          key=f"gate:{item.remediation}|{canonical(item.found.target)}|{report.correlation_id or ''}",
                          requested_by="pre-maintenance gate")
        try:
            done: Dispatched = decide(quiet, request)
        except Retry as exc:
            actions.append(GateAction(item.found.machine, item.remediation, "failed", f"could not plan now: {exc}"))
            continue
        actions.append(GateAction(item.found.machine, item.remediation, done.action, done.reason + note,
                                  done.approval_id, done.operation_id))
    card = _send(app, report, tuple(actions), event_id, cutoff=cutoff, note=refused)
    log.info("pre-maintenance gate acted: %d queued, %d proposed", sum(a.action == "queued" for a in actions),
             sum(a.action == "proposed" for a in actions),
             extra={"event_id": event_id, "target": report.configuration_id})
    return GateActions(report.correlation_id, tuple(actions), refused, card)


def _rows(app: App, actions: tuple[GateAction, ...]) -> list[MachineRow]:
    from shared.approvals.flow import links

    rows: list[MachineRow] = []
    for action in actions:
        card_links: CardLinks | None = None
        if action.action == "proposed" and action.approval_id:
            approval = app.approvals.get(action.approval_id)
            if approval is not None:
                card_links = links(app, approval)
        label = {"queued": "fixing now", "proposed": "needs your decision", "failed": "cannot be fixed",
                 "refused": "refused", "advice": "advice", "noop": "nothing to do"}.get(action.action, action.action)
        rows.append(MachineRow(action.machine.rstrip("/").rsplit("/", 1)[-1], f"{action.remediation} ({label})",
                               action.reason, card_links))
    return rows


def run_card(app: App, report: GateReport, actions: tuple[GateAction, ...], cutoff: datetime | None,
             note: str | None) -> dict[str, Any]:
    """The run's one card: the gate's report (what will fail, why), then per machine what is done before the
    window and what awaits a decision (its own links), within Teams' size limit."""
    from shared.decisions.update_manager import gate_card

    base = gate_card(report)
    rows = _rows(app, actions)
    head: list[dict[str, Any]] = [{"type": "TextBlock", "weight": "Bolder", "spacing": "Medium", "wrap": True,
                                   "text": "Before the window"}]
    if cutoff is not None:
        head.append({"type": "TextBlock", "isSubtle": True, "wrap": True,
                     "text": f"Decide by {cutoff:%Y-%m-%d %H:%M} UTC (the cancellation cut-off): a decision after "
                             "it is refused."})
    if note:
        head.append({"type": "TextBlock", "color": "Attention", "wrap": True, "text": note[:400]})

    def build(shown: list[MachineRow]) -> dict[str, Any]:
        more = len(rows) - len(shown)
        tail = [{"type": "TextBlock", "isSubtle": True, "wrap": True,
                 "text": f"... and {more} more (the audit trail has every one)"}] if more else []
        return {**base, "body": [*base["body"], *head, *machine_rows(shown), *tail]}

    shown = list(rows)
    card = build(shown)
    while len(json.dumps(message(card)).encode()) > MAX_CARD_BYTES and shown:
        shown.pop()
        card = build(shown)
    return card


def _send(app: App, report: GateReport, actions: tuple[GateAction, ...], event_id: str | None, *,
          cutoff: datetime | None, note: str | None) -> str | None:
    """Posts the run's card, retried; a card that cannot be posted falls back to each proposal's own card."""
    import time

    name = (report.correlation_id or report.configuration_id or "run").rstrip("/").rsplit("/", 1)[-1]
    card = run_card(app, report, actions, cutoff, note)
    error: Exception | None = None
    for attempt in range(CARD_ATTEMPTS):
        try:
            where = app.notifier.send(card, f"gate-{name}")
        except Exception as exc:  # a webhook or sink failure: the decisions stand
            error = exc
            if attempt + 1 < CARD_ATTEMPTS:
                time.sleep(app.card_retry_seconds * (attempt + 1))
            continue
        app.audit.record(AuditRecord(kind="diagnosis", event_id=event_id, target=report.configuration_id,
                                     decision="gate-card", reason=f"card sent to {where}",
                                     result={"actions": [a.to_dict() for a in actions]}))
        return where
    app.audit.record(AuditRecord(kind="error", event_id=event_id, target=report.configuration_id,
                                 reason="the run's gate card could not be sent: each proposal's own card is sent",
                                 error=str(error)[:2000]))
    from shared.approvals.flow import send_card

    for action in actions:
        approval = app.approvals.get(action.approval_id) if action.approval_id else None
        if approval is not None:
            send_card(app, approval, str(approval.plan.get("title") or action.remediation))
    return None


__all__ = ["GateAction", "GateActions", "act_on_gate", "run_card"]
