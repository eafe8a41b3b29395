"""The pipeline under real delivery semantics: Event Grid events and alerts arrive at least
once, in bursts; jobs run from a Storage queue (Azurite) against the Azure double.

Names matter: `-k "approval or ledger or idempot or queue or poison"` selects these."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sandbox import AzureDouble
from shared.decisions.pipeline import handle_event
from shared.decisions.policy import Policy, PolicyMode
from shared.wiring import App
from tests.pipeline_helpers import arm_failure_event, cards, drain


def runs(double: AzureDouble) -> int:
    return len(double.requests_for("imageTemplates.run", "POST"))


def test_idempotency_the_same_event_delivered_100_times_makes_one_change(app: App, double: AzureDouble) -> None:
    tpl = double.refs["template:tpl-rhel-noartifacts"]
    event = arm_failure_event(tpl, event_id="5f2d8c1e-0000-4000-8000-000000000100")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: handle_event(event, app), range(100)))
    done = drain(app)
    assert runs(double) == 1
    assert [d["result"] for d in done] == ["applied"]
    record = app.ledger.get("event:5f2d8c1e-0000-4000-8000-000000000100")
    assert record is not None and record.state == "completed"


def test_idempotency_32_concurrent_deliveries_for_one_target_make_one_change(app: App, double: AzureDouble) -> None:
    """32 distinct events (retries of the trigger, a second subscription...) for one failure."""
    tpl = double.refs["template:tpl-rhel-noartifacts"]
    events = [arm_failure_event(tpl) for _ in range(32)]
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda e: handle_event(e, app), events))
    drain(app)
    assert runs(double) == 1
    applied = [r for r in app.audit.query(kind="apply", target=tpl) if r.decision == "applied"]
    assert len(applied) == 1


def test_queue_job_applies_the_fix_and_records_before_and_after(app: App, double: AzureDouble) -> None:
    tpl = double.refs["template:tpl-win2022-timeout"]
    diagnoses = handle_event(arm_failure_event(tpl), app)
    assert [d.scenario for d in diagnoses] == ["aib.build_timeout"]
    assert runs(double) == 0, "the event handler only decides; the queue acts"
    [summary] = drain(app)
    assert summary["result"] == "applied"
    op = app.operations.get(summary["operation_id"])
    assert op is not None and op.status == "succeeded"
    [record] = app.audit.query(kind="apply", target=tpl)
    first = record.changes[0]
    assert (first.field, first.before, first.after) == ("properties.buildTimeoutInMinutes", 60, 120)
    assert record.duration_ms is not None and record.reason


def test_queue_job_for_a_fixed_failure_is_a_noop_not_a_second_change(app: App, double: AzureDouble) -> None:
    tpl = double.refs["template:tpl-rhel-noartifacts"]
    handle_event(arm_failure_event(tpl), app)
    drain(app)
    handle_event(arm_failure_event(tpl, correlation="0ther000-1b2c-4d3e-8f4a-5b6c7d8e9f00"), app)
    drain(app)
    assert runs(double) == 1


def test_poison_a_job_that_keeps_failing_becomes_a_failed_record_and_a_notice(app: App, double: AzureDouble,
                                                                            tmp_path: Path) -> None:
    tpl = double.refs["template:tpl-rhel-noartifacts"]
    double.faults.fail_next("imageTemplates.run", 10_000, status=500)
    handle_event(arm_failure_event(tpl), app)
    assert drain(app) == []
    [poison] = app.audit.query(kind="poison")
    assert poison.target == tpl.lower() and "maximum delivery attempts" in (poison.reason or "")
    assert "HTTP 500" in (poison.reason or ""), "the last error is kept with the record"
    op = app.operations.get(poison.operation_id or "")
    assert op is not None and op.status == "failed"
    notices = [c for c in cards(tmp_path) if "failed" in json.dumps(c)]
    assert notices, "a poison message is announced, never dropped silently"


def test_poison_an_unreadable_message_is_recorded_not_lost(app: App) -> None:
    from shared.decisions.pipeline import handle_poison

    handle_poison(b"\xff{not json", app)
    [poison] = app.audit.query(kind="poison")
    assert poison.reason == "unreadable poison message" and poison.result


def test_suggest_mode_proposes_an_approval_card_and_changes_nothing(app: App, double: AzureDouble,
                                                                    tmp_path: Path) -> None:
    app.policy = Policy(PolicyMode.SUGGEST)
    tpl = double.refs["template:tpl-rhel-noartifacts"]
    handle_event(arm_failure_event(tpl), app)
    handle_event(arm_failure_event(tpl), app)  # the same failure again: one approval, one card
    assert drain(app) == [] and runs(double) == 0
    [approval] = app.approvals.pending()
    assert approval.remediation == "rerun-image-build" and approval.target == tpl.lower()  # canonical
    [card] = cards(tmp_path)
    content = card["attachments"][0]["content"]
    assert content["type"] == "AdaptiveCard"
    urls = [a["url"] for a in content["actions"]]
    assert any(f"/api/approvals/{approval.id}?decision=approve&token=" in u for u in urls)
    assert len(json.dumps(card).encode()) <= 28 * 1024


def test_observe_mode_records_the_decision_only(app: App, double: AzureDouble) -> None:
    app.policy = Policy(PolicyMode.OBSERVE)
    tpl = double.refs["template:tpl-rhel-noartifacts"]
    handle_event(arm_failure_event(tpl), app)
    assert drain(app) == [] and app.approvals.pending() == []
    decisions = app.audit.query(kind="decision", target=tpl)
    assert [d.decision for d in decisions] == ["observe"]
    assert decisions[0].changes, "what would have changed is recorded"


def test_ledger_a_malformed_event_raises_so_event_grid_retries(app: App) -> None:
    import pytest

    from shared.core.errors import PayloadError

    with pytest.raises(PayloadError, match="eventType"):
        handle_event({"id": "x1", "subject": "/s", "eventTime": "2026-11-21T02:14:09Z", "data": {}}, app)


def test_round_trips_one_failed_build_costs_three_template_reads_and_one_run(app: App, double: AzureDouble) -> None:
    """Fewer round trips (issue: one event decided and carried out): deciding reads the template
    once (enrichment and the plan share that reading), the job plans against a fresh read and
    verifies with another. ARM counts reads per subscription and throttles them (HTTP 429)."""
    tpl = double.refs["template:tpl-rhel-noartifacts"]
    double.clear_requests()
    handle_event(arm_failure_event(tpl), app)

    def reads() -> int:
        return sum(tpl.lower() in r.path.lower() for r in double.requests_for("imageTemplates.get", "GET"))

    assert reads() == 1, "the event's enrichment and its plan read the template once"
    [summary] = drain(app)
    assert summary["result"] == "applied"
    assert reads() == 3, "the job reads it live to plan (budget spent right before apply), then to verify"
    assert runs(double) == 1


def test_a_provider_error_registers_the_namespace_it_names(app: App, double: AzureDouble) -> None:
    """aum.provider_not_registered from an error text: the remediation registers the namespace the
    error names (ARM's MissingSubscriptionRegistration wording, learn.microsoft.com/azure/
    azure-resource-manager/troubleshooting/error-register-resource-provider), not its default."""
    from shared.decisions.pipeline import dispatch
    from shared.diagnosis.classifier import classify_text

    sub = double.refs["aum.provider_not_registered:subscription"]
    diagnosis = classify_text("Code: MissingSubscriptionRegistration\nMessage: The subscription is not registered to "
                              "use namespace 'Microsoft.Maintenance'. See https://aka.ms/rps-not-found for how to "
                              "register subscriptions.")
    assert diagnosis.scenario == "aum.provider_not_registered"
    [queued] = dispatch(app, diagnosis, target=f"/subscriptions/{sub}")
    assert queued.action == "queued", queued
    [summary] = drain(app)
    assert summary["result"] == "applied"
    assert [c["resource_id"].rsplit("/", 1)[-1] for c in summary["changes"]] == ["Microsoft.Maintenance"]
    record = double.state.provider("Microsoft.Maintenance", sub)
    assert record is not None and record.state == "Registered"
