"""The hardening pass: each attack or fault the adversarial review found, run through the public
surfaces (the HTTP handlers as the Functions host calls them, the queue trigger with redelivery,
the CLI as a user types it) against Azurite and the local Azure double. Each test failed before
its fix."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sandbox import AzureDouble
from shared.approvals.cards import Notifier, approval_card, plain
from shared.approvals.links import sign
from shared.decisions.pipeline import handle_event, handle_job, sweep_tick
from shared.decisions.policy import Policy, PolicyMode
from shared.entry import operations_api as api
from shared.state.jobs import Job
from shared.state.tables import StateStore
from shared.wiring import App, ConfigError
from tests.pipeline_helpers import (
    Links,
    activity_alert,
    arm_failure_event,
    card_links,
    cards,
    drain,
    page_form,
    post_decision,
    principal_header,
)

ROOT = Path(__file__).resolve().parent.parent
NOARTIFACTS = "template:tpl-rhel-noartifacts"


def run_request(app: App, name: str, target: str, params: dict[str, str] | None = None,
                caller: str | None = None) -> tuple[int, dict[str, Any]]:
    body = json.dumps({"target": target, "params": params or {}}).encode()
    status, answer, _ = api.run_remediation(app, name, body, caller)
    return status, answer


def writes(double: AzureDouble) -> list[str]:
    return [f"{r.method} {r.operation}" for r in double.requests if r.method in ("PUT", "PATCH", "POST", "DELETE")
            and r.status and r.status < 400 and not r.operation.endswith(("query", "list"))]


# --- 1. approver identity ----------------------------------------------------------------------

def test_an_allow_list_without_app_service_authentication_refuses_to_start(azurite: Any) -> None:
    env = {"REMEDIATOR_STORAGE": azurite.connection_string, "REMEDIATOR_SIGNING_KEY": base64.b64encode(
        os.urandom(32)).decode(), "REMEDIATOR_APPROVERS": "ops@contoso.com"}
    with pytest.raises(ConfigError, match=r"REMEDIATOR_APPROVERS.*WEBSITE_AUTH_ENABLED"):
        App.from_env(env)
    App.from_env(env | {"WEBSITE_AUTH_ENABLED": "True"})  # with the platform's check on, it starts


def test_a_forged_principal_header_names_nobody_when_authentication_is_off(app: App, proposed: Links) -> None:
    approval_id, token = proposed["approve"]
    status, _ = post_decision(app, approval_id, "approve", token, principal_header("ceo@contoso.com"))
    approval = app.approvals.get(approval_id)
    assert status == 202 and approval is not None
    assert approval.decided_by == "link holder", "an unverified header is no identity"


def test_with_authentication_on_only_a_listed_signed_in_user_decides(app: App, proposed: Links) -> None:
    app.identity_verified, app.approvers = True, frozenset({"ops@contoso.com"})
    approval_id, token = proposed["approve"]
    status, page = post_decision(app, approval_id, "approve", token, principal_header("intruder@contoso.com"))
    assert status == 403 and "not on the approvers list" in page
    status, _ = post_decision(app, approval_id, "approve", token, principal_header("ops@contoso.com"))
    approval = app.approvals.get(approval_id)
    assert status == 202 and approval is not None and approval.decided_by == "ops@contoso.com"


# --- 2. manual runs obey policy -------------------------------------------------------------------

def test_a_manual_run_of_an_approval_mode_fix_becomes_a_proposal(app: App, double: AzureDouble,
                                                                tmp_path: Path) -> None:
    app.policy = Policy(PolicyMode.AUTO)
    double.clear_requests()
    status, answer = run_request(app, "recreate-image-template", double.refs["template:tpl-win11-conflict"],
                                 caller="alice@contoso.com")
    assert status == 202 and answer["status"] == "proposed" and answer["approval_id"]
    assert drain(app) == [] and writes(double) == [], "nothing changes before a person approves"
    assert card_links(tmp_path), "the proposal has its card"
    records = app.audit.query(limit=20)
    assert any(r.kind == "decision" and r.actor == "alice@contoso.com" for r in records), "the caller is recorded"


def test_a_manual_run_in_observe_mode_records_and_changes_nothing(app: App, double: AzureDouble) -> None:
    app.policy = Policy(PolicyMode.OBSERVE)
    double.clear_requests()
    status, answer = run_request(app, "rerun-image-build", double.refs[NOARTIFACTS])
    assert status == 200 and answer["status"] == "observed"
    assert drain(app) == [] and writes(double) == []


def test_a_per_remediation_observe_mode_holds_a_manual_run(app: App, double: AzureDouble) -> None:
    app.policy = Policy(PolicyMode.AUTO, {"rerun-image-build": PolicyMode.OBSERVE})
    status, answer = run_request(app, "rerun-image-build", double.refs[NOARTIFACTS])
    assert status == 200 and answer["status"] == "observed" and drain(app) == []


# --- 3. an approval approves an exact plan --------------------------------------------------------

def test_an_approved_job_whose_live_plan_grew_stops_and_is_proposed_again(app: App, double: AzureDouble,
                                                                          proposed: Links) -> None:
    approval_id, token = proposed["approve"]
    before = app.approvals.get(approval_id)
    assert before is not None and before.plan["digest"]
    tpl = double.refs[NOARTIFACTS]
    body = double.state.get(tpl)
    assert body is not None
    body["properties"]["lastRunStatus"]["runState"] = "Canceled"  # the live state moved since the card
    double.state.put(tpl, body)
    assert post_decision(app, approval_id, "approve", token)[0] == 202
    double.clear_requests()
    [summary] = drain(app)
    assert summary["result"] == "refused" and "no longer the approved one" in summary["detail"]
    assert writes(double) == [], "nothing that was not approved ran"
    again = [a for a in app.approvals.pending() if a.id != approval_id]
    assert len(again) == 1 and again[0].plan["digest"] != before.plan["digest"], "the new plan is proposed"


# --- 4 and 14. multi-step changes are never left half done ----------------------------------------

def test_an_interrupted_readd_is_finished_by_the_next_delivery(app: App, double: AzureDouble) -> None:
    """A worker that died between the two PUTs left the machine out of the deployment and its
    intent in the vault; the retry plans from the vault, not from the (now quiet) live state."""
    suc = double.refs["suc:monthly-linux-security"]
    before = app.ctx.automation.get_configuration(suc)
    from shared.azure.automation import submittable

    restored = submittable(before)
    removed = json.loads(json.dumps(restored))
    removed["properties"]["updateConfiguration"]["azureVirtualMachines"] = [
        vm for vm in removed["properties"]["updateConfiguration"]["azureVirtualMachines"] if "vm-web-02" not in vm]
    app.ctx.vault.keep(suc, restored, removed, remediation="readd-changed-machines")
    app.ctx.automation.put_configuration(suc, removed)  # the first step landed, then the worker died
    app.policy = Policy(PolicyMode.AUTO)
    op = app.operations.create(kind="auto", remediation="readd-changed-machines", target=suc)
    app.queue.send(Job(op.id, "readd-changed-machines", suc))
    [summary] = drain(app)
    assert summary["result"] == "applied" and summary["changes"][0]["action"] == "restore"
    vms = app.ctx.automation.get_configuration(suc)["properties"]["updateConfiguration"]["azureVirtualMachines"]
    assert any("vm-web-02" in vm for vm in vms), "the machine is back in patching"
    assert app.ctx.vault.get(suc) is None
    assert app.counters.count(f"target:{suc.lower()}", "day") == 0, "finishing spends no budget"


def test_a_recreate_whose_create_meets_an_outage_is_transient_and_finished_later(app: App,
                                                                                 double: AzureDouble) -> None:
    tpl = double.refs["template:tpl-win2022-timeout"]
    app.policy = Policy(PolicyMode.AUTO)
    double.faults.fail_next("imageTemplates.put", 40, status=503)
    op = app.operations.create(kind="auto", remediation="increase-image-build-timeout", target=tpl)
    app.queue.send(Job(op.id, "increase-image-build-timeout", tpl))
    client = app.queue.client
    [message] = list(client.receive_messages(max_messages=1, visibility_timeout=1))
    from shared.decisions.pipeline import Retry

    with pytest.raises(Retry):
        handle_job(bytes(message.content), app, dequeue_count=1)
    assert double.state.get(tpl) is None and app.ctx.vault.get(tpl) is not None, "deleted, and kept"
    assert app.operations.get(op.id).status != "failed", "a 503 is no permanent failure"  # type: ignore[union-attr]
    double.faults.clear()
    client.update_message(message, visibility_timeout=0)
    [summary] = drain(app)
    assert summary["result"] == "applied"
    assert double.state.get(tpl) is not None and app.ctx.vault.get(tpl) is None


def test_a_worker_killed_mid_recreate_is_taken_over_once_its_lock_expires(app: App, double: AzureDouble) -> None:
    from datetime import timedelta

    tpl = double.refs["template:tpl-win11-conflict"]
    template = app.ctx.images.get(tpl)
    from shared.azure.imagebuilder import definition

    op = app.operations.create(kind="auto", remediation="recreate-image-template", target=tpl.lower())
    # What the dead worker left: its job record in progress with its lease, the vault, the template deleted.
    assert app.locks.start_job(tpl.lower(), op.id, "dead-worker", timedelta(seconds=1)).state == "new"
    app.ctx.vault.keep(tpl, definition(template), definition(template))
    app.ctx.images.delete(tpl)
    import time

    time.sleep(1.2)
    app.queue.send(Job(op.id, "recreate-image-template", tpl.lower()))
    [summary] = drain(app)
    assert summary["result"] == "applied" and double.state.get(tpl) is not None


def test_the_poison_path_restores_from_the_vault_and_says_so(app: App, double: AzureDouble,
                                                             tmp_path: Path) -> None:
    tpl = double.refs["template:tpl-win11-conflict"]
    from shared.azure.imagebuilder import definition

    app.ctx.vault.keep(tpl, definition(app.ctx.images.get(tpl)), definition(app.ctx.images.get(tpl)))
    app.ctx.images.delete(tpl)
    from shared.decisions.pipeline import handle_poison

    handle_poison(Job(uuid.uuid4().hex, "recreate-image-template", tpl.lower()).to_json(), app)
    assert double.state.get(tpl) is not None, "the template is back"
    assert any("finished from the vault" in json.dumps(c) for c in cards(tmp_path)), "the card says so"


def test_a_restore_whose_intended_definition_is_refused_brings_the_original_back(app: App,
                                                                                 double: AzureDouble) -> None:
    tpl = double.refs["template:tpl-win2022-timeout"]
    from shared.azure.imagebuilder import definition

    original = definition(app.ctx.images.get(tpl))
    broken = json.loads(json.dumps(original))
    broken["properties"]["buildTimeoutInMinutes"] = 5000  # the service refuses this for good
    app.ctx.vault.keep(tpl, original, broken)
    app.ctx.images.delete(tpl)
    from remediations.runner import execute

    outcome = execute("increase-image-build-timeout", tpl, {}, app.ctx)
    assert outcome.result.value == "failed" and "original definition restored" in (outcome.error or "")
    body = double.state.get(tpl)
    assert body is not None and body["properties"].get("buildTimeoutInMinutes") == \
        original["properties"].get("buildTimeoutInMinutes")


# --- 5. a Teams error never strands an approval ---------------------------------------------------

class Webhook:
    """A Workflows webhook on loopback that fails while `failing` is set."""

    def __init__(self) -> None:
        self.failing = True
        self.posts: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if outer.failing:
                    self.send_response(500)
                else:
                    outer.posts.append(json.loads(body))
                    self.send_response(202)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/workflows/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.server.shutdown()


def test_a_teams_outage_leaves_the_proposal_and_the_sweep_sends_its_card(app: App, double: AzureDouble,
                                                                         webhook: Webhook) -> None:
    app.notifier = Notifier(webhook.url)
    app.policy = Policy(PolicyMode.SUGGEST)
    status, answer, _ = api.alerts(app, json.dumps(activity_alert(double.refs[NOARTIFACTS])).encode())
    assert status == 202 and answer["dispatched"][0]["action"] == "proposed"
    [approval] = app.approvals.pending()
    assert approval.card_sent_at is None
    resent, _, _ = api.alerts(app, json.dumps(activity_alert(double.refs[NOARTIFACTS])).encode())
    assert resent == 200, "the resend is the same firing, not a new proposal"
    webhook.failing = False
    actions = sweep_tick(app, [])
    approval_cards = [p for p in webhook.posts if approval.id in json.dumps(p)]
    assert actions.get("card-resent") == 1 and len(approval_cards) == 1, actions
    assert app.approvals.get(approval.id).card_sent_at is not None  # type: ignore[union-attr]


# --- 6. approved is queued ------------------------------------------------------------------------

def test_a_queue_outage_at_approve_decides_nothing_and_the_next_click_works(app: App, double: AzureDouble,
                                                                            proposed: Links) -> None:
    approval_id, token = proposed["approve"]
    form = page_form(app, approval_id, "approve", token)
    app.queue.client.delete_queue()
    from urllib.parse import urlencode

    status, _, _ = api.approval_decision(app, approval_id, {}, {}, urlencode(form).encode())
    assert status == 503
    assert app.approvals.get(approval_id).state == "pending"  # type: ignore[union-attr]
    app.queue.client.create_queue()
    assert post_decision(app, approval_id, "approve", token)[0] == 202
    [summary] = drain(app)
    assert summary["result"] == "applied"


# --- 7. one spelling of an id ---------------------------------------------------------------------

def test_ids_that_differ_in_case_are_one_target(app: App, double: AzureDouble) -> None:
    tpl = double.refs[NOARTIFACTS]
    for spelling in (tpl, tpl.lower(), tpl.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/")):
        handle_event(arm_failure_event(spelling, correlation="same-run"), app)
    summaries = drain(app)
    assert [s["result"] for s in summaries] == ["applied"], "one change for one failure, however it is spelt"
    _, body, _ = api.history(app, {"target": tpl.upper()})
    assert any(r["kind"] == "apply" for r in body["records"]), "history finds it under any spelling"


# --- 8 and 17. targets and parameters checked when the request is accepted ------------------------

@pytest.mark.parametrize("suffix, field", [("", "target"), ("/runOutputs/x", "target")])
def test_a_target_of_another_type_or_with_extra_segments_is_refused(app: App, double: AzureDouble,
                                                                     suffix: str, field: str) -> None:
    vm = double.refs["vm-web-01"] if not suffix else double.refs[NOARTIFACTS] + suffix
    status, answer = run_request(app, "rerun-image-build", vm)
    assert status == 400 and answer["field"] == field


def test_a_misspelt_or_unusable_parameter_is_refused_naming_it(app: App, double: AzureDouble) -> None:
    tpl = double.refs["template:tpl-win2022-timeout"]
    status, answer = run_request(app, "increase-image-build-timeout", tpl, {"minuts": "120"})
    assert status == 400 and answer["field"] == "params.minuts" and "takes: minutes" in answer["problem"]
    status, answer = run_request(app, "increase-image-build-timeout", tpl, {"minutes": "9" * 900})
    assert status == 400 and answer["field"] == "params.minutes"
    assert drain(app) == []


# --- 9. a pause stops what is in flight -----------------------------------------------------------

def test_observe_set_after_a_proposal_refuses_its_approval(app: App, proposed: Links) -> None:
    app.policy = Policy(PolicyMode.OBSERVE)
    approval_id, token = proposed["approve"]
    status, page = post_decision(app, approval_id, "approve", token)
    assert status == 409 and "policy now says" in page
    assert drain(app) == []


def test_observe_set_after_a_job_was_queued_stops_the_job(app: App, double: AzureDouble) -> None:
    handle_event(arm_failure_event(double.refs[NOARTIFACTS]), app)  # auto mode: queued
    app.policy = Policy(PolicyMode.OBSERVE)
    double.clear_requests()
    [summary] = drain(app)
    assert summary["result"] == "refused" and writes(double) == []


# --- 10. a withdrawn proposal releases its failure ------------------------------------------------

def test_an_alert_that_resolves_and_fires_again_is_proposed_again(app: App, double: AzureDouble) -> None:
    app.policy = Policy(PolicyMode.SUGGEST)
    tpl = double.refs[NOARTIFACTS]
    api.alerts(app, json.dumps(activity_alert(tpl)).encode())
    api.alerts(app, json.dumps(activity_alert(tpl, condition="Resolved")).encode())
    assert app.approvals.pending() == []
    status, answer, _ = api.alerts(app, json.dumps(activity_alert(
        tpl, alert_guid="0e1f2a3b-4c5d-4e6f-9a0b-1c2d3e4f5a6c")).encode())
    assert status == 202 and answer["dispatched"][0]["action"] == "proposed"


# --- 11. a storage outage is a 503 the action group resends ---------------------------------------

def test_a_storage_outage_answers_alerts_503_with_retry_after(app: App, double: AzureDouble) -> None:
    dead = StateStore("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
                      "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
                      "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;")
    down = App(store=dead, queue=app.queue, ctx=app.ctx, policy=app.policy, notifier=app.notifier,
               signing_keys=app.signing_keys, public_url=app.public_url)
    status, body, headers = api.alerts(down, json.dumps(activity_alert(double.refs[NOARTIFACTS])).encode())
    assert status == 503 and headers["Retry-After"] and body["error"] == "try again"


# --- 12. bad links cannot flush the audit trail ---------------------------------------------------

def test_bad_links_record_nothing_for_unknown_approvals_and_a_bounded_amount_for_real_ones(
        app: App, proposed: Links) -> None:
    from datetime import UTC, datetime, timedelta

    before = len(app.audit.query(limit=500))
    ghost = uuid.uuid4().hex
    forged = sign(ghost, "approve", datetime.now(UTC) + timedelta(hours=1), os.urandom(32))
    for _ in range(5):
        assert post_decision(app, ghost, "approve", forged)[0] == 404
    approval_id, _ = proposed["approve"]
    for _ in range(30):
        api.approval_page(app, approval_id, {"decision": "approve", "token": forged}, {})
    assert len(app.audit.query(limit=500)) == before, "GETs and unknown approvals record nothing"
    for _ in range(30):
        assert post_decision(app, approval_id, "approve", forged)[0] == 403
    assert len(app.audit.query(limit=500)) - before <= 20


# --- 13. the confirmation page cannot be framed or posted from elsewhere --------------------------

def test_the_confirmation_page_refuses_framing_and_cross_site_posts(app: App, proposed: Links) -> None:
    approval_id, token = proposed["approve"]
    status, _, headers = api.approval_page(app, approval_id, {"decision": "approve", "token": token}, {})
    assert status == 200 and headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    from urllib.parse import urlencode

    bare = urlencode({"decision": "approve", "token": token}).encode()
    assert api.approval_decision(app, approval_id, {}, {}, bare)[0] == 403, "no page token: not from the page"
    form = urlencode(page_form(app, approval_id, "approve", token)).encode()
    assert api.approval_decision(app, approval_id, {}, {"Sec-Fetch-Site": "cross-site"}, form)[0] == 403
    assert app.approvals.get(approval_id).state == "pending"  # type: ignore[union-attr]
    assert api.approval_decision(app, approval_id, {}, {"Sec-Fetch-Site": "same-origin"}, form)[0] == 202


# --- 15. alerts without an id never share a key ---------------------------------------------------

def test_alerts_without_an_id_or_firing_time_are_each_handled(app: App, double: AzureDouble) -> None:
    app.policy = Policy(PolicyMode.SUGGEST)
    answers = []
    for ref in (NOARTIFACTS, "template:tpl-win11-conflict"):
        alert = activity_alert(double.refs[ref])
        del alert["data"]["essentials"]["alertId"], alert["data"]["essentials"]["firedDateTime"]
        status, body, _ = api.alerts(app, json.dumps(alert).encode())
        answers.append((status, body.get("duplicate")))
    assert [a for a in answers if a[1]] == [], answers


# --- 16. outside text is shown as text on cards ---------------------------------------------------

def test_failure_text_cannot_put_a_link_or_emphasis_on_a_card() -> None:
    from markdown_it import MarkdownIt

    evil = "Build failed [Approve now](https://evil.example/x) **urgent**\n- list <b>x</b>"
    card = approval_card(title=evil, scenario="aib.no_artifacts", remediation="rerun-image-build", target="/t",
                         reason=evil, evidence=[evil], changes=[{"field": evil, "before": evil, "after": 1}],
                         limits={}, expires_at="soon", links=_links())
    texts = [b.get("text") for b in card["body"] if b["type"] == "TextBlock"]
    texts += [f[k] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"] for k in ("title", "value")]
    rendered = [MarkdownIt("commonmark").render(t) for t in texts if t]
    assert not any("<a " in r or "<strong>" in r or "<li>" in r or "<b>" in r for r in rendered), rendered
    assert plain("a_b") == "a\\_b"


def _links() -> Any:
    from shared.approvals.cards import CardLinks

    return CardLinks(approve="https://x/approve", reject="https://x/reject")


# --- 18. a change's scope is the scope of what it changes -----------------------------------------

def test_a_resource_group_scope_cannot_register_a_provider_on_the_subscription(app: App,
                                                                               double: AzureDouble) -> None:
    sub = f"/subscriptions/{double.refs['subscription']}"
    account = double.refs["automation_account"]
    group = account.split("/providers/")[0]
    double.state.set_provider_state("Microsoft.Automation", "NotRegistered")
    app.policy = Policy(PolicyMode.AUTO, allowed_scopes=(group.lower(),))
    status, answer = run_request(app, "register-resource-provider", sub)
    assert status == 403
    from shared.core.domain import Mode
    from shared.decisions.pipeline import Request, decide

    done = decide(app, Request("register-resource-provider", Mode.AUTO, account.lower()))
    assert done.action in ("denied", "failed") and drain(app) == []
    assert answer["field"] == "target"


# --- 19. the CLI honours scopes, modes and budgets, with an audited override ----------------------

def _cli(double: AzureDouble, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {**os.environ, "REMEDIATOR_ARM_ENDPOINT": double.arm_url, "REMEDIATOR_LOGS_ENDPOINT": double.logs_url,
            "REMEDIATOR_VAULT_DIR": str(tmp_path / "cli" / "vault"), "AZURE_CLIENT_ID": "", **env}
    return subprocess.run([sys.executable, "-m", "shared.entry.cli", "run", *args], cwd=ROOT, env=base,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_cli_run_honours_scopes_and_observe_and_records_an_override(double: AzureDouble,
                                                                        tmp_path: Path) -> None:
    tpl = double.refs[NOARTIFACTS]
    other = "/subscriptions/00000000-0000-0000-0000-000000000000"
    refused = _cli(double, tmp_path, "rerun-image-build", "--target", tpl, REMEDIATOR_ALLOWED_SCOPES=other)
    assert refused.returncode == 1 and "outside REMEDIATOR_ALLOWED_SCOPES" in refused.stderr
    observed = _cli(double, tmp_path, "rerun-image-build", "--target", tpl, REMEDIATOR_MODE="observe")
    assert observed.returncode == 1 and "observe" in observed.stderr
    assert not double.requests_for("imageTemplates.run", "POST")
    forced = _cli(double, tmp_path, "rerun-image-build", "--target", tpl, "--override", "incident 4711",
                  REMEDIATOR_ALLOWED_SCOPES=other)
    assert forced.returncode == 0, forced.stderr
    audit = (tmp_path / "cli" / "audit.jsonl").read_text()
    assert "incident 4711" in audit and "outside REMEDIATOR_ALLOWED_SCOPES" in audit


# --- 20. KQL gets names as string literals --------------------------------------------------------

def test_a_computer_name_reaches_log_analytics_as_an_escaped_literal() -> None:
    from shared.azure.insights import kql_string
    from shared.diagnosis.catalog.update_management import Q_UPDATE_MACHINE

    name = 'web01" or 1==1 | project secret | where "'
    query = Q_UPDATE_MACHINE.format(computer=kql_string(name))
    literal = query.split("contains ", 1)[1].split("\n", 1)[0]
    assert literal == kql_string(name) and literal.count('"') - literal.count('\\"') == 2
