"""The approval loop over the HTTP API: signed, expiring, single-use links; GET shows and
changes nothing; POST decides; approver allow-list; alerts withdraw their approvals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sandbox import AzureDouble
from shared.approvals.links import sign
from shared.decisions.pipeline import handle_event
from shared.decisions.policy import Policy, PolicyMode
from shared.entry import operations_api as api
from shared.wiring import App
from tests.pipeline_helpers import (
    Links,
    activity_alert,
    arm_failure_event,
    cards,
    drain,
    post_decision,
    principal_header,
)


def test_approval_link_get_shows_the_plan_and_changes_nothing(app: App, double: AzureDouble,
                                                             proposed: Links) -> None:
    approval_id, token = proposed["approve"]
    double.clear_requests()
    status, page, headers = api.approval_page(app, approval_id, {"decision": "approve", "token": token}, {})
    assert status == 200 and "text/html" in headers["Content-Type"]
    assert "rerun-image-build" in page and "lastRunStatus.runState" in page and "<form method='post'>" in page
    approval = app.approvals.get(approval_id)
    assert approval is not None and approval.state == "pending"
    assert [r for r in double.requests if r.method != "GET"] == []


def test_approval_post_approves_once_and_the_queue_applies_it(app: App, double: AzureDouble, tmp_path: Path,
                                                             proposed: Links) -> None:
    approval_id, token = proposed["approve"]
    status, page = post_decision(app, approval_id, "approve", token)
    assert status == 202 and "queued as operation" in page
    [summary] = drain(app)
    assert summary["result"] == "applied"
    assert len(double.requests_for("imageTemplates.run", "POST")) == 1
    outcome = [c for c in cards(tmp_path) if "rerun-image-build: applied" in json.dumps(c)]
    assert outcome, "a follow-up card reports the outcome"
    replay, page = post_decision(app, approval_id, "approve", token)
    assert replay == 409 and "approved" in page
    assert drain(app) == [] and len(double.requests_for("imageTemplates.run", "POST")) == 1


def test_approval_reject_changes_nothing_and_the_failure_is_not_proposed_again(
        app: App, double: AzureDouble, tmp_path: Path, proposed: Links) -> None:
    approval_id, token = proposed["reject"]
    status, page = post_decision(app, approval_id, "reject", token)
    assert status == 200 and "Rejected" in page
    handle_event(arm_failure_event(double.refs["template:tpl-rhel-noartifacts"]), app)
    assert drain(app) == [] and app.approvals.pending() == []
    assert len(cards(tmp_path)) == 1


def test_approval_token_for_the_other_decision_is_refused(app: App, proposed: Links) -> None:
    approval_id, reject_token = proposed["reject"]
    status, page = post_decision(app, approval_id, "approve", reject_token)
    assert status == 403 and "wrong_decision" in page
    approval = app.approvals.get(approval_id)
    assert approval is not None and approval.state == "pending"


def test_approval_forged_and_tampered_tokens_are_refused_and_recorded(app: App,
                                                                     proposed: Links) -> None:
    approval_id, token = proposed["approve"]
    forged = sign(approval_id, "approve", datetime.now(UTC) + timedelta(hours=1), b"k" * 32)
    tampered = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad, code in ((forged, "bad_signature"), (tampered, "bad_signature"), ("garbage", "malformed")):
        status, page = post_decision(app, approval_id, "approve", bad)
        assert status == 403 and code in page, (bad, page)
    refusals = [r for r in app.audit.query(kind="approval") if r.decision == "refused"]
    assert len(refusals) == 3
    assert all(token not in json.dumps(r.result) for r in refusals), "tokens never land in the audit trail"


def test_approval_expired_token_is_refused(app: App, proposed: Links) -> None:
    approval_id, _ = proposed["approve"]
    expired = sign(approval_id, "approve", datetime.now(UTC) - timedelta(seconds=1), app.signing_keys[0])
    status, page = post_decision(app, approval_id, "approve", expired)
    assert status == 403 and "expired" in page


def test_approval_token_for_another_approval_is_refused(app: App, proposed: Links) -> None:
    approval_id, token = proposed["approve"]
    first = app.approvals.get(approval_id)
    assert first is not None
    other = app.approvals.create(remediation=first.remediation, target=first.target, scenario=first.scenario,
                                 plan=dict(first.plan))
    status, page = post_decision(app, other.id, "approve", token)
    assert status == 403 and "wrong_approval" in page
    status, page = post_decision(app, "0" * 32, "approve", token)
    assert status == 404, "no such approval: nothing to refuse, nothing recorded"


def test_approval_by_someone_off_the_allow_list_is_refused(app: App, double: AzureDouble,
                                                          proposed: Links) -> None:
    app.approvers, app.identity_verified = frozenset({"alice@contoso.com"}), True
    approval_id, token = proposed["approve"]
    status, page = post_decision(app, approval_id, "approve", token, principal_header("mallory@contoso.com"))
    assert status == 403 and "not on the approvers list" in page
    status, _ = post_decision(app, approval_id, "approve", token, principal_header("Alice@Contoso.com"))
    assert status == 202
    approval = app.approvals.get(approval_id)
    assert approval is not None and approval.decided_by == "Alice@Contoso.com"


def test_approval_withdrawn_when_its_alert_resolves(app: App, double: AzureDouble) -> None:
    app.policy = Policy(PolicyMode.SUGGEST)
    tpl = double.refs["template:tpl-rhel-noartifacts"]
    status, body, _ = api.alerts(app, json.dumps(activity_alert(tpl)).encode())
    assert status == 202 and body["scenario"] == "aib.no_artifacts"
    assert [d["action"] for d in body["dispatched"]] == ["proposed"]
    [pending] = app.approvals.pending()
    status, body, _ = api.alerts(app, json.dumps(activity_alert(tpl, condition="Resolved")).encode())
    assert status == 200 and body["withdrawn"] == [pending.id]
    withdrawn = app.approvals.get(pending.id)
    assert withdrawn is not None and withdrawn.state == "withdrawn"


def test_approval_alert_delivered_twice_is_handled_once(app: App, double: AzureDouble) -> None:
    tpl = double.refs["template:tpl-rhel-noartifacts"]
    payload = json.dumps(activity_alert(tpl)).encode()
    first = api.alerts(app, payload)
    second = api.alerts(app, payload)
    assert first[0] == 202 and second[0] == 200 and second[1]["duplicate"] is True
    drain(app)
    assert len(double.requests_for("imageTemplates.run", "POST")) == 1
