"""The approval loop: a card with signed links, a confirmation page, a decision on POST.

Links carry an HMAC token bound to the approval id and the decision, expiring with the
approval. GET only shows the plan (Teams and mail clients fetch links to preview them);
the decision is a POST from that page. Single use: the approval leaves `pending` on the
first decision, so a replayed link finds it decided. With an approver allow-list, the
request must come from a signed-in user on it (`X-MS-CLIENT-PRINCIPAL`, which App Service
authentication supplies); without a signed-in user it is refused.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from shared.approvals.cards import CardLinks, approval_card, outcome_card, portal_link
from shared.approvals.links import TokenError, sign, verify
from shared.state.approvals import Approval, ApprovalError
from shared.state.audit import AuditRecord
from shared.state.jobs import Job
from shared.wiring import App

log = logging.getLogger("remediator.approvals")
DECISIONS = ("approve", "reject")
_APPROVAL_ID = re.compile(r"[0-9a-f]{32}")
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Page:
    status: int
    html: str


def links(app: App, approval: Approval) -> CardLinks:
    def link(decision: str) -> str:
        token = sign(approval.id, decision, approval.expires_at, app.signing_keys[0])
        return f"{app.public_url}/api/approvals/{approval.id}?decision={decision}&token={quote(token)}"

    return CardLinks(approve=link("approve"), reject=link("reject"))


def send_card(app: App, approval: Approval, title: str) -> None:
    plan = approval.plan
    card = approval_card(title=title, scenario=approval.scenario, remediation=approval.remediation,
                         target=approval.target, reason=str(plan.get("reason", "")), evidence=approval.evidence,
                         changes=plan.get("changes", []), limits=plan.get("limits", {}),
                         expires_at=approval.expires_at.strftime("%Y-%m-%d %H:%M UTC"), links=links(app, approval))
    where = app.notifier.send(card, f"approval-{approval.id}")
    app.audit.record(AuditRecord(kind="approval", target=approval.target, scenario=approval.scenario,
                                 remediation=approval.remediation, decision="requested",
                                 reason=f"card sent to {where}", result={"approval_id": approval.id}))


def send_outcome(app: App, job: Job, result: str, detail: str, changes: Sequence[Mapping[str, Any]]) -> None:
    approval = app.approvals.get(job.approval_id) if job.approval_id else None
    card = outcome_card(remediation=job.remediation, target=job.target, result=result, detail=detail,
                        changes=changes, decided_by=approval.decided_by if approval else job.requested_by)
    app.notifier.send(card, f"outcome-{job.operation_id}")


def principal(headers: Mapping[str, str]) -> tuple[str | None, set[str]]:
    """The signed-in user App Service authentication vouches for: (display name, identifiers)."""
    raw = {k.lower(): v for k, v in headers.items()}.get("x-ms-client-principal")
    if not raw:
        return None, set()
    try:
        data = json.loads(base64.b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, RecursionError):
        return None, set()
    claims = data.get("claims") if isinstance(data, dict) else None
    ids: set[str] = set()
    name = None
    for claim in claims if isinstance(claims, list) else []:
        if not isinstance(claim, dict):
            continue
        typ, val = str(claim.get("typ", "")), str(claim.get("val", ""))
        if _SURROGATE.search(typ + val):
            continue  # not text (a lone \ud800 escape): no name, and nothing a page or the audit can hold
        if typ.endswith(("/upn", "/emailaddress", "preferred_username", "/objectidentifier", "oid", "/name")):
            ids.add(val.lower())
            if name is None and not typ.endswith(("objectidentifier", "oid")):
                name = val
    return name or next(iter(ids), None), ids


def _page(title: str, body: str, status: int = 200) -> Page:
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           "<meta name='robots' content='noindex'><style>body{font-family:system-ui,sans-serif;max-width:46em;"
           "margin:2em auto;padding:0 1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
           "padding:.3em .6em;text-align:left;vertical-align:top}code{white-space:pre-wrap}"
           "button{font-size:1.1em;padding:.4em 1.2em}</style></head>"
           f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return Page(status, doc)


def _refusal(app: App, approval_id: str, why: str, status: int, actor: str | None = None) -> Page:
    app.audit.record(AuditRecord(kind="approval", decision="refused", reason=why, actor=actor,
                                 result={"approval_id": approval_id}))
    return _page("Not allowed", f"<p id='refused'>{html.escape(why)}</p>", status)


def _check(app: App, approval_id: str, decision: str | None, token: str | None,
           headers: Mapping[str, str]) -> tuple[Approval | None, str | None, Page | None]:
    if decision not in DECISIONS:
        return None, None, _page("Bad link", "<p>The link names no decision (approve or reject).</p>", 400)
    if not token:
        return None, None, _page("Bad link", "<p>The link carries no token.</p>", 400)
    if not _APPROVAL_ID.fullmatch(approval_id):
        return None, None, _page("Not found", "<p>No such approval.</p>", 404)  # nothing to record: no approval
    now = app.approvals._now()  # the same clock that expires approvals
    try:
        verify(token, approval_id=approval_id, decision=decision, now=now, keys=app.signing_keys)
    except TokenError as exc:
        return None, None, _refusal(app, approval_id, f"the link is not valid: {exc.code}", 403)
    who, ids = principal(headers)
    if app.approvers and not (ids & app.approvers):
        # No signed-in user is no approver: an allow-list that a missing header skipped would allow anyone.
        why = f"{who} is not on the approvers list" if who else "sign in: only the listed approvers may decide"
        return None, None, _refusal(app, approval_id, why, 403, who)
    approval = app.approvals.get(approval_id)
    if approval is None:
        return None, None, _page("Not found", "<p>No such approval.</p>", 404)
    return approval, who, None


def confirmation(app: App, approval_id: str, decision: str | None, token: str | None,
                 headers: Mapping[str, str]) -> Page:
    """GET: shows the plan and a button that POSTs the decision. Changes nothing."""
    approval, _, refused = _check(app, approval_id, decision, token, headers)
    if refused is not None or approval is None or decision is None or token is None:
        return refused or _page("Not found", "", 404)
    plan = approval.plan
    if approval.state != "pending":
        return _page("Already decided", f"<p id='state'>This approval is {html.escape(approval.state)}"
                     f"{' by ' + html.escape(approval.decided_by) if approval.decided_by else ''}.</p>", 409)
    rows = "".join(f"<tr><td>{html.escape(str(c['field']))}</td><td><code>{html.escape(json.dumps(c['before']))}"
                   f"</code></td><td><code>{html.escape(json.dumps(c['after']))}</code></td></tr>"
                   for c in plan.get("changes", []))
    limits = "".join(f"<li>{html.escape(k)}: {html.escape(str(v))}</li>" for k, v in plan.get("limits", {}).items())
    evidence = "".join(f"<li><code>{html.escape(e)}</code></li>" for e in approval.evidence[:8])
    verb = "Approve" if decision == "approve" else "Reject"
    body = (f"<p><b>{html.escape(approval.remediation)}</b> on "
            f"<a href='{html.escape(portal_link(approval.target))}'>{html.escape(approval.target)}</a></p>"
            f"<p>Scenario <code>{html.escape(approval.scenario)}</code>: {html.escape(str(plan.get('reason', '')))}</p>"
            f"<h2>Evidence</h2><ul>{evidence}</ul>"
            f"<h2>Change</h2><table id='changes'><tr><th>field</th><th>before</th><th>after</th></tr>{rows}</table>"
            + (f"<h2>Limits</h2><ul>{limits}</ul>" if limits else "")
            + f"<p>Expires {approval.expires_at.strftime('%Y-%m-%d %H:%M UTC')}.</p>"
            f"<form method='post'><input type='hidden' name='decision' value='{html.escape(decision)}'>"
            f"<input type='hidden' name='token' value='{html.escape(token)}'>"
            f"<button id='decide' type='submit'>{verb}</button></form>")
    return _page(f"{verb} {approval.remediation}?", body)


def decide(app: App, approval_id: str, decision: str | None, token: str | None,
           headers: Mapping[str, str]) -> Page:
    """POST: records the decision (once) and, when approved, queues the remediation."""
    approval, who, refused = _check(app, approval_id, decision, token, headers)
    if refused is not None or approval is None or decision is None:
        return refused or _page("Not found", "", 404)
    actor = who or "link holder"
    try:
        decided = app.approvals.decide(approval_id, decision, actor)  # type: ignore[arg-type]
    except ApprovalError as exc:
        return _refusal(app, approval_id, f"this approval is {exc.state or exc.code}: nothing was changed", 409,
                        actor)
    fix_key = decided.plan.get("fix_key")
    app.audit.record(AuditRecord(kind="approval", target=decided.target, scenario=decided.scenario,
                                 remediation=decided.remediation, decision=decided.state, actor=actor,
                                 result={"approval_id": approval_id}))
    if decided.state == "rejected":
        if fix_key:
            app.proposals.complete(fix_key, {"rejected_by": actor})
        return _page("Rejected", f"<p id='outcome'>Rejected by {html.escape(actor)}. Nothing will change.</p>")
    op = app.operations.create(kind="approval", remediation=decided.remediation, target=decided.target,
                               params=dict(decided.params))
    app.queue.send(Job(op.id, decided.remediation, decided.target, params=dict(decided.params), fix_key=fix_key,
                       scenario=decided.scenario, event_id=decided.event_id, approval_id=approval_id,
                       requested_by=actor, reason=f"approved by {actor}"))
    return _page("Approved", f"<p id='outcome'>Approved by {html.escape(actor)}. The change is queued as "
                 f"operation <code id='operation'>{op.id}</code>; a follow-up card reports the outcome.</p>"
                 f"<p><a id='status' href='{app.public_url}/api/operations/{op.id}'>operation status</a></p>", 202)
