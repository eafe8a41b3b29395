"""The timer trigger: the sweep as a safety net beside events, through the same decisions
and ledger keys, and the housekeeping that expires stale approvals."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

from sandbox import AzureDouble
from shared.decisions.pipeline import handle_event, subscriptions_of, sweep_tick
from shared.decisions.policy import Policy, PolicyMode
from shared.wiring import App
from tests.pipeline_helpers import arm_failure_event, drain


def test_timer_sweep_queues_auto_fixes_and_asks_approval_for_the_rest_once(app: App, double: AzureDouble) -> None:
    sub = double.refs["subscription"]
    first = sweep_tick(app, [sub])
    assert first["queued"] >= 1 and first["proposed"] >= 1
    proposed = {a.remediation for a in app.approvals.pending()}
    assert {"recreate-image-template", "remove-missing-machines"} <= proposed
    second = sweep_tick(app, [sub])
    assert second.get("queued", 0) == 0 and second.get("proposed", 0) == 0, second
    assert len(app.approvals.pending()) == len(proposed)
    done = Counter(d["result"] for d in drain(app))
    assert done["applied"] == first["queued"]


def test_timer_sweep_and_an_event_for_the_same_failure_make_one_change(app: App, double: AzureDouble) -> None:
    tpl = double.refs["template:tpl-rhel-noartifacts"]
    handle_event(arm_failure_event(tpl), app)
    sweep_tick(app, [double.refs["subscription"]])
    drain(app)
    runs = [r for r in double.requests_for("imageTemplates.run", "POST") if tpl.endswith(r.path.split("/")[-2])]
    assert len(runs) == 1


def test_timer_expires_stale_approvals_and_releases_their_failure(app: App, double: AzureDouble) -> None:
    app.policy = Policy(PolicyMode.SUGGEST)
    app.approval_ttl = timedelta(seconds=1)
    handle_event(arm_failure_event(double.refs["template:tpl-rhel-noartifacts"]), app)
    [approval] = app.approvals.pending()
    time.sleep(1.2)  # past the approval's expiry
    actions = sweep_tick(app, [])
    assert actions.get("expired") == 1
    expired = app.approvals.get(approval.id)
    assert expired is not None and expired.state == "expired"
    assert any(r.decision == "expired" for r in app.audit.query(kind="approval"))


def test_the_timer_sweeps_the_subscriptions_of_the_allowed_scopes() -> None:
    scopes = ("/subscriptions/aaa/resourcegroups/rg-images", "/subscriptions/aaa/resourcegroups/rg-patching",
              "/subscriptions/bbb")
    assert subscriptions_of(scopes) == ["aaa", "bbb"]
