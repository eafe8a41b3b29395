"""The approval loop: a card with signed links, a confirmation page, a decision on POST.

Links carry an HMAC token bound to the approval id and the decision, expiring with the
approval. GET only shows the plan (Teams and mail clients fetch links to preview them);
the decision is a POST from that page, carrying a value only the page has (bound to the
link), never from another site. Single use: the approval leaves `pending` on the first
decision, so a replayed link finds it decided. The approval approves its plan's exact
changes (digest); the job applies those or fewer. With an approver allow-list, the request
must come from a signed-in user on it (`X-MS-CLIENT-PRINCIPAL`), trusted only where App
Service authentication is on (the platform sets it and strips it from requests); the app
refuses to start with an allow-list and no such check.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from shared.approvals.cards import CardLinks, approval_card, outcome_card, portal_link
from shared.approvals.links import TokenError, check_page_token, page_token, sign, verify
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


CARD_ATTEMPTS = 3


def send_card(app: App, approval: Approval, title: str) -> bool:
    """Posts the approval's card, retried apart from the decision: a Teams outage never undoes or
    blocks the proposal (nor the rest of a sweep). Unsent, it is recorded; the sweep sends it again."""
    import time

    plan = approval.plan
    card = approval_card(title=title, scenario=approval.scenario, remediation=approval.remediation,
                         target=approval.target, reason=str(plan.get("reason", "")), evidence=approval.evidence,
                         changes=plan.get("changes", []), limits=plan.get("limits", {}),
                         expires_at=approval.expires_at.strftime("%Y-%m-%d %H:%M UTC"), links=links(app, approval))
    error: Exception | None = None
    for attempt in range(CARD_ATTEMPTS):
        try:
            where = app.notifier.send(card, f"approval-{approval.id}")
            break
        except Exception as exc:  # a webhook or sink failure of any kind: the proposal stands
            error = exc
            if attempt + 1 < CARD_ATTEMPTS:
                time.sleep(app.card_retry_seconds * (attempt + 1))
    else:
        log.error("approval %s: the card could not be sent (%s); the sweep sends it again", approval.id, error)
        app.audit.record(AuditRecord(kind="error", target=approval.target, scenario=approval.scenario,
                                     remediation=approval.remediation, reason="approval card not sent: retried by "
                                     "the sweep", error=str(error)[:2000], result={"approval_id": approval.id}))
        return False
    app.approvals.card_sent(approval.id)
    app.audit.record(AuditRecord(kind="approval", target=approval.target, scenario=approval.scenario,
                                 remediation=approval.remediation, decision="requested",
                                 reason=f"card sent to {where}", result={"approval_id": approval.id}))
    return True


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


def caller(app: App, headers: Mapping[str, str]) -> str | None:
    """Who a request comes from, where the platform vouches for it; None (a key holder) elsewhere."""
    return principal(headers)[0] if app.identity_verified else None


def _page(title: str, body: str, status: int = 200) -> Page:
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           "<meta name='robots' content='noindex'><style>body{font-family:system-ui,sans-serif;max-width:46em;"
           "margin:2em auto;padding:0 1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
           "padding:.3em .6em;text-align:left;vertical-align:top}code{white-space:pre-wrap}"
           "button{font-size:1.1em;padding:.4em 1.2em}</style></head>"
           f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return Page(status, doc)


REFUSALS_PER_HOUR = 20  # refusals recorded per approval and hour: bad links cannot flush the audit trail


def operation_id_of(approval_id: str) -> str:
    """The one operation an approval can queue: a retried or concurrent approve queues it once."""
    return hashlib.sha256(f"approval-operation|{approval_id}".encode()).hexdigest()[:32]


def _refusal(app: App, approval_id: str, why: str, status: int, actor: str | None = None, *,
             record: bool = True) -> Page:
    if record and app.counters.take(f"refusals:{approval_id}", "hour", REFUSALS_PER_HOUR):
        app.audit.record(AuditRecord(kind="approval", decision="refused", reason=why, actor=actor,
                                     result={"approval_id": approval_id}))
    return _page("Not allowed", f"<p id='refused'>{html.escape(why)}</p>", status)


def _check(app: App, approval_id: str, decision: str | None, token: str | None,
           headers: Mapping[str, str], *, record: bool) -> tuple[Approval | None, str | None, Page | None]:
    """The link, the approval and the approver. Nothing is recorded for an approval that does not
    exist, nor on GET (`record=False`): only refused decisions on real approvals, rate-limited."""
    if decision not in DECISIONS:
        return None, None, _page("Bad link", "<p>The link names no decision (approve or reject).</p>", 400)
    if not token:
        return None, None, _page("Bad link", "<p>The link carries no token.</p>", 400)
    if not _APPROVAL_ID.fullmatch(approval_id):
        return None, None, _page("Not found", "<p>No such approval.</p>", 404)
    approval = app.approvals.get(approval_id)
    if approval is None:
        return None, None, _page("Not found", "<p>No such approval.</p>", 404)
    now = app.approvals._now()  # the same clock that expires approvals
    try:
        verify(token, approval_id=approval_id, decision=decision, now=now, keys=app.signing_keys)
    except TokenError as exc:
        return None, None, _refusal(app, approval_id, f"the link is not valid: {exc.code}", 403, record=record)
    who, ids = principal(headers) if app.identity_verified else (None, set())
    if app.approvers and not (ids & app.approvers):
        # No signed-in user is no approver: an allow-list that a missing header skipped would allow anyone.
        why = f"{who} is not on the approvers list" if who else "sign in: only the listed approvers may decide"
        return None, None, _refusal(app, approval_id, why, 403, who, record=record)
    return approval, who, None


def _cross_site(headers: Mapping[str, str]) -> bool:
    """A browser says where a form came from; a POST from another site never decides."""
    low = {k.lower(): v for k, v in headers.items()}
    return low.get("sec-fetch-site", "same-origin").lower() not in ("same-origin", "none")


def confirmation(app: App, approval_id: str, decision: str | None, token: str | None,
                 headers: Mapping[str, str]) -> Page:
    """GET: shows the plan and a button that POSTs the decision. Changes nothing, records nothing."""
    approval, _, refused = _check(app, approval_id, decision, token, headers, record=False)
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
            + f"<p>Plan <code id='digest'>{html.escape(str(plan.get('digest', ''))[:16])}</code>: exactly these "
            "changes (or fewer, if some are done by then) are applied.</p>"
            f"<p>Expires {approval.expires_at.strftime('%Y-%m-%d %H:%M UTC')}.</p>"
            f"<form method='post'><input type='hidden' name='decision' value='{html.escape(decision)}'>"
            f"<input type='hidden' name='token' value='{html.escape(token)}'>"
            f"<input type='hidden' name='page' value='{page_token(token, app.signing_keys[0])}'>"
            f"<button id='decide' type='submit'>{verb}</button></form>")
    return _page(f"{verb} {approval.remediation}?", body)


def decide(app: App, approval_id: str, decision: str | None, token: str | None,
           headers: Mapping[str, str], *, page: str | None = None,
           still_allowed: Callable[[App, Approval], str | None] | None = None) -> Page:
    """POST from the confirmation page: queues the approved job first (keyed on the approval, so a
    retry queues it once), then records the decision; the job runs only once it is recorded."""
    approval, who, refused = _check(app, approval_id, decision, token, headers, record=True)
    if refused is not None or approval is None or decision is None or token is None:
        return refused or _page("Not found", "", 404)
    actor = who or "link holder"
    if approval.state != "pending":
        return _refusal(app, approval_id, f"this approval is {approval.state}: nothing was changed", 409, actor)
    if _cross_site(headers) or not check_page_token(page, token, app.signing_keys):
        return _refusal(app, approval_id, "decide from the confirmation page: this form did not come from it",
                        403, actor)
    if decision == "approve" and still_allowed is not None:
        paused = still_allowed(app, approval)  # policy checked again: a pause since the proposal refuses
        if paused is not None:
            return _refusal(app, approval_id, f"not approved: {paused}", 409, actor)
    fix_key = approval.plan.get("fix_key")
    op_id = operation_id_of(approval_id)
    if decision == "approve":
        raw_tags = approval.plan.get("tags")
        tags = {str(k): str(v) for k, v in raw_tags.items()} if isinstance(raw_tags, dict) else {}
        enqueue = f"enqueue:{op_id}"
        try:
            if app.ledger.begin(enqueue, retry_failed=True).owned:  # one message, however many clicks
                op = app.operations.create(kind="approval", remediation=approval.remediation,
                                           target=approval.target, params=dict(approval.params), operation_id=op_id)
                try:
                    app.queue.send(Job(op.id, approval.remediation, approval.target, params=dict(approval.params),
                                       fix_key=fix_key, scenario=approval.scenario, event_id=approval.event_id,
                                       approval_id=approval_id, requested_by=actor, reason=f"approved by {actor}",
                                       mode=str(approval.plan.get("mode") or ""), tags=tags))
                except Exception as exc:
                    app.ledger.fail(enqueue, str(exc)[:500])
                    raise
                app.ledger.complete(enqueue, {"operation_id": op.id})
        except Exception as exc:  # not queued: nothing is decided, so the next click queues it
            from remediations.runner import describe_error, is_operational

            if not is_operational(exc):
                raise
            log.error("approval %s: the job could not be queued (%s); nothing was decided", approval_id,
                      describe_error(exc))
            return _page("Try again", "<p id='retry'>The change could not be queued, so nothing was decided. "
                         "Try again in a minute.</p>", 503)
    try:
        decided = app.approvals.decide(approval_id, decision, actor)  # type: ignore[arg-type]
    except ApprovalError as exc:  # the queued job finds the approval not approved and changes nothing
        return _refusal(app, approval_id, f"this approval is {exc.state or exc.code}: nothing was changed", 409,
                        actor)
    app.audit.record(AuditRecord(kind="approval", target=decided.target, scenario=decided.scenario,
                                 remediation=decided.remediation, decision=decided.state, actor=actor,
                                 result={"approval_id": approval_id, "digest": approval.plan.get("digest")}))
    if decided.state == "rejected":
        if fix_key:
            app.proposals.complete(fix_key, {"rejected_by": actor})
        return _page("Rejected", f"<p id='outcome'>Rejected by {html.escape(actor)}. Nothing will change.</p>")
    return _page("Approved", f"<p id='outcome'>Approved by {html.escape(actor)}. The change is queued as "
                 f"operation <code id='operation'>{op_id}</code>; a follow-up card reports the outcome.</p>"
                 f"<p><a id='status' href='{app.public_url}/api/operations/{op_id}'>operation status</a></p>", 202)
