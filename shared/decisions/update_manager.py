"""Update Manager's maintenance events through the pipeline.

- A failed `PostMaintenanceEvent` is fanned out: each machine of the run gets its own diagnosis
  (`shared.diagnosis.update_manager.diagnose_run`), recorded and decided on like any other failure
  (`pipeline.dispatch`, with the resource its remediations act on). A run cancelled through the
  cancellation API is recorded as no failure.
- A `PreMaintenanceEvent` is a health gate: what will fail in the coming run and why, per machine, in
  the audit trail (one record per machine at risk, one for the run) and on one Teams card per run when
  a machine is at risk. The gate never cancels a run; what it finds goes through the same decisions,
  so a remediation such as starting a stopped machine is proposed, never forced.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from shared.approvals.cards import CARD_SCHEMA, CARD_VERSION, MAX_CARD_BYTES, message, portal_link
from shared.core.domain import Diagnosis, Failure, Family
from shared.diagnosis.update_manager import (
    GateReport,
    MachineDiagnosis,
    diagnose_run,
    gate,
    is_update_manager_event,
    report_lines,
)
from shared.state.audit import AuditRecord
from shared.wiring import App

log = logging.getLogger("remediator.update_manager")
MAX_CARD_MACHINES = 40
NO_RESULTS = "Update Manager run failed; Resource Graph has no per-machine result for it yet"


def handle_maintenance_event(app: App, failure: Failure, event_id: str | None) -> list[Diagnosis] | None:
    """The diagnoses of an Update Manager event, decided on; None for any other failure."""
    if is_update_manager_event(failure, "PostMaintenanceEvent"):
        return post_maintenance(app, failure, event_id) if failure.failed else None
    if is_update_manager_event(failure, "PreMaintenanceEvent"):
        return pre_maintenance(app, failure, event_id)
    return None


def _run_diagnosis(failure: Failure, scenario: str, title: str, evidence: tuple[str, ...]) -> Diagnosis:
    return Diagnosis(scenario=scenario, confidence=1.0 if scenario == "none" else 0.0, title=title,
                     evidence=evidence, family=Family.UPDATE, failure=failure)


def post_maintenance(app: App, failure: Failure, event_id: str | None) -> list[Diagnosis]:
    from shared.decisions.pipeline import dispatch

    run = diagnose_run(app.ctx, failure)
    config = failure.resource_id
    if run.cancelled_by_user or not run.machines:
        diagnosis = (_run_diagnosis(failure, "none", "Maintenance run cancelled through the cancellation API "
                                    "(by a user or a pre-event): no failure", run.evidence)
                     if run.cancelled_by_user else _run_diagnosis(failure, "unknown", NO_RESULTS, run.evidence))
        app.audit.record(AuditRecord(kind="diagnosis", event_id=event_id, target=config, scenario=diagnosis.scenario,
                                     reason="; ".join(run.evidence[-3:])))
        log.info("event diagnosed: %s %s", diagnosis.scenario, config or "-",
                 extra={"event_id": event_id, "scenario": diagnosis.scenario, "target": config, "actions": []})
        return [diagnosis]
    scenarios = sorted({m.diagnosis.scenario for m in run.machines})
    log.info("event diagnosed: %s %s (%d machine diagnoses)", ",".join(scenarios), config or "-", len(run.machines),
             extra={"event_id": event_id, "scenario": ",".join(scenarios), "target": config,
                    "actions": ["fan-out"]})
    for found in run.machines:
        results = dispatch(app, found.diagnosis, event_id=event_id, target=found.target)
        log.info("machine diagnosed: %s %s", found.diagnosis.scenario, found.machine,
                 extra={"event_id": event_id, "scenario": found.diagnosis.scenario, "target": found.target,
                        "actions": [r.action for r in results]})
    return [m.diagnosis for m in run.machines]


def pre_maintenance(app: App, failure: Failure, event_id: str | None) -> list[Diagnosis]:
    from shared.decisions.gate import act_on_gate

    report = gate(app.ctx, failure)
    lines = report_lines(report)
    act_on_gate(app, report, event_id)  # fixes what policy allows, proposes the rest: one card for the run
    app.audit.record(AuditRecord(
        kind="diagnosis", event_id=event_id, target=report.configuration_id, decision="gate",
        scenario="none" if not report.at_risk else None, reason="; ".join(lines[:4]),
        result={"correlation_id": report.correlation_id, "start": report.start.isoformat() if report.start else None,
                "machines": [{"machine": line.machine, "verdict": line.verdict, "scenario": line.scenario,
                              "reasons": list(line.reasons[:5])} for line in report.lines],
                "evidence": list(report.evidence)}))
    log.info("pre-maintenance gate: %s", lines[0], extra={"event_id": event_id, "target": report.configuration_id,
                                                          "scenario": "none" if not report.at_risk else "gate"})
    if not report.diagnoses:
        return [_run_diagnosis(failure, "none", "Coming maintenance run: every machine is ready", tuple(lines))]
    return [d.diagnosis for d in report.diagnoses]


def _send_gate_card(app: App, report: GateReport, event_id: str | None) -> None:
    """One card per run; a card that cannot be posted is recorded, never fails the event."""
    name = (report.correlation_id or report.configuration_id or "run").rstrip("/").rsplit("/", 1)[-1]
    try:
        where = app.notifier.send(gate_card(report), f"gate-{name}")
    except (OSError, ValueError) as exc:
        app.audit.record(AuditRecord(kind="error", event_id=event_id, target=report.configuration_id,
                                     reason="the gate card could not be sent", error=str(exc)))
        return
    app.audit.record(AuditRecord(kind="diagnosis", event_id=event_id, target=report.configuration_id,
                                 decision="gate-card", reason=f"card sent to {where}"))


def gate_card(report: GateReport) -> dict[str, Any]:
    """The run's card: which machines will fail and why, the start and the cancellation cut-off."""
    config = report.configuration_id or ""

    def build(rows: list[tuple[str, str]], more: int) -> dict[str, Any]:
        body: list[dict[str, Any]] = [
            {"type": "TextBlock", "size": "Large", "weight": "Bolder", "wrap": True,
             "text": f"Coming patch run: {len(report.at_risk)} of {len(report.lines)} machine(s) will fail"},
            {"type": "FactSet", "facts": [
                {"title": "Schedule", "value": config.rsplit("/", 1)[-1] or "?"},
                {"title": "Starts", "value": report.start.strftime("%Y-%m-%d %H:%M UTC") if report.start else "?"},
                {"title": "Cancel until", "value": report.cancellation_cutoff.strftime("%Y-%m-%d %H:%M UTC")
                 if report.cancellation_cutoff else "?"},
                {"title": "Run", "value": report.correlation_id or "?"}]},
            {"type": "TextBlock", "weight": "Bolder", "spacing": "Medium", "text": "What will fail, and why",
             "wrap": True},
            {"type": "FactSet", "facts": [{"title": m, "value": why} for m, why in rows]},
        ]
        if more:
            body.append({"type": "TextBlock", "isSubtle": True, "wrap": True,
                         "text": f"... and {more} more (the audit trail has every machine)"})
        body.append({"type": "TextBlock", "isSubtle": True, "wrap": True,
                     "text": "Nothing is cancelled automatically: the run goes ahead unless someone cancels it."})
        actions = ([{"type": "Action.OpenUrl", "title": "Open the schedule", "url": portal_link(config)}]
                   if config else [])
        return {"type": "AdaptiveCard", "$schema": CARD_SCHEMA, "version": CARD_VERSION, "body": body,
                "actions": actions}

    rows = [(line.machine.rsplit("/", 1)[-1], f"{line.scenario}: {'; '.join(line.reasons[:2])}"[:300])
            for line in report.at_risk]
    shown = rows[:MAX_CARD_MACHINES]
    card = build(shown, len(rows) - len(shown))
    while len(json.dumps(message(card)).encode()) > MAX_CARD_BYTES and len(shown) > 1:
        shown = shown[:-1]
        card = build(shown, len(rows) - len(shown))
    return card


__all__ = ["MachineDiagnosis", "gate_card", "handle_maintenance_event", "post_maintenance", "pre_maintenance"]
