"""Security properties, end to end.

- Approval links: a token from a retired key, for a withdrawn or expired approval, replayed
  for either decision, raced by 16 threads, or presented by someone who is not a listed
  approver (or by nobody signed in) is refused, recorded in the audit trail, and changes
  nothing; exactly one decision and one queued job come out of a race. (Forged, tampered,
  expired-token, other-decision and other-approval links are in test_approvals_api.py.)
- Outbound fetches (SSRF): build-log URLs that point anywhere but Azure blob storage,
  redirects, Teams webhooks off the allow-list and plain-http endpoints off loopback are
  refused before any connection is attempted: a guard on the socket layer records every
  attempt and refuses anything that is not loopback.
- Secrets (signing key, card link tokens, function key, storage account key) never reach
  the logs, the audit trail or stderr, and the dev server logs no query strings.
"""

from __future__ import annotations

import base64
import html
import ipaddress
import json
import logging
import re
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.error import HTTPError
from urllib.parse import quote, urlencode

import pytest

from sandbox import AzureDouble
from sandbox.devserver import DevServer
from shared.approvals.cards import Notifier, WebhookRefused, check_webhook
from shared.approvals.links import new_key
from shared.azure.clients import Clients
from shared.azure.endpoints import EndpointError, Endpoints, RedirectRefused
from shared.azure.insights import FetchRefused, Insights
from shared.decisions.pipeline import handle_event
from shared.decisions.policy import Policy, PolicyMode
from shared.entry import operations_api as api
from shared.state.tables import DEV_KEY
from shared.wiring import App
from tests.azurite import FakeClock, race
from tests.pipeline_helpers import (
    Links,
    activity_alert,
    arm_failure_event,
    card_links,
    drain,
    post_decision,
    principal_header,
)

# --- the outbound guard -------------------------------------------------------------------------


def _loopback(host: Any) -> bool:
    name = str(host).strip("[]").lower()
    if name in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class OutboundGuard:
    """Refuses, and records, every connection and name lookup that is not on loopback.

    Installed for a test, it shows that nothing was even attempted: a refused URL never
    reaches a socket, and anything that did try fails here instead of on the network.
    """

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        real_getaddrinfo = socket.getaddrinfo
        guard = self

        def refuse(what: str) -> OSError:
            guard.attempts.append(what)
            return ConnectionRefusedError(f"test guard: no outbound connection to {what}")

        def connect(sock: socket.socket, address: Any) -> None:
            if isinstance(address, tuple) and not _loopback(address[0]):
                raise refuse(f"{address[0]}:{address[1]}")
            real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            if isinstance(address, tuple) and not _loopback(address[0]):
                raise refuse(f"{address[0]}:{address[1]}")
            return real_connect_ex(sock, address)

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if host is not None and not _loopback(host.decode() if isinstance(host, bytes) else host):
                raise refuse(f"name lookup {host!r}")
            return real_getaddrinfo(host, *args, **kwargs)

        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def guard(monkeypatch: pytest.MonkeyPatch) -> OutboundGuard:
    installed = OutboundGuard()
    installed.install(monkeypatch)
    return installed


def test_security_the_guard_refuses_and_records_what_is_not_loopback(guard: OutboundGuard) -> None:
    with pytest.raises(OSError):
        socket.create_connection(("192.0.2.1", 443), timeout=1)  # TEST-NET-1: never routed anyway
    with pytest.raises(OSError):
        socket.getaddrinfo("evil.example", 443)
    assert guard.attempts == ["name lookup '192.0.2.1'", "name lookup 'evil.example'"]


# --- approval links -----------------------------------------------------------------------------









def _refusals(app: App) -> list[str]:
    return [r.reason or "" for r in app.audit.query(kind="approval") if r.decision == "refused"]


def _queued(app: App) -> int:
    return int(app.queue.client.get_queue_properties().approximate_message_count)


def test_security_a_token_signed_with_a_rotated_out_key_is_refused_and_recorded(app: App, proposed: Links) -> None:
    approval_id, token = proposed["approve"]
    old = app.signing_keys[0]
    app.signing_keys = (new_key(), old)  # rotation: the new key signs, the old one still verifies
    status, page = api.approval_page(app, approval_id, {"decision": "approve", "token": token}, {})[:2]
    assert status == 200, "during the rotation an old link still opens"
    app.signing_keys = (app.signing_keys[0],)  # the old key retired
    status, page = post_decision(app, approval_id, "approve", token)
    assert status == 403 and "bad_signature" in page
    assert _refusals(app) == ["the link is not valid: bad_signature"]
    approval = app.approvals.get(approval_id)
    assert approval is not None and approval.state == "pending" and _queued(app) == 0


def test_security_a_token_for_a_withdrawn_approval_is_refused_and_recorded(app: App, double: AzureDouble,
                                                                           tmp_path: Path) -> None:
    app.policy = Policy(PolicyMode.SUGGEST)
    tpl = double.refs["template:tpl-rhel-noartifacts"]
    assert api.alerts(app, json.dumps(activity_alert(tpl)).encode())[0] == 202
    links = card_links(tmp_path)
    assert api.alerts(app, json.dumps(activity_alert(tpl, condition="Resolved")).encode())[0] == 200
    for decision in ("approve", "reject"):
        approval_id, token = links[decision]
        status, page = post_decision(app, approval_id, decision, token)
        assert status == 409 and "withdrawn" in page and "nothing was changed" in page
        status, page = api.approval_page(app, approval_id, {"decision": decision, "token": token}, {})[:2]
        assert status == 409 and "withdrawn" in page
    assert _refusals(app) == ["this approval is withdrawn: nothing was changed"] * 2
    assert _queued(app) == 0


def test_security_a_link_past_the_approvals_expiry_is_refused_and_recorded(app: App, proposed: Links,
                                                                           clock: FakeClock) -> None:
    approval_id, token = proposed["approve"]
    approval = app.approvals.get(approval_id)
    assert approval is not None
    clock.set(approval.expires_at + timedelta(seconds=1))
    app.approvals._now = clock  # the approvals' clock, which the link check uses too
    status, page = post_decision(app, approval_id, "approve", token)
    assert status == 403 and "expired" in page
    assert _refusals(app) == ["the link is not valid: expired"]
    assert _queued(app) == 0


def test_security_a_used_link_replayed_for_either_decision_is_refused_and_recorded(app: App, proposed: Links) -> None:
    approval_id, approve = proposed["approve"]
    _, reject = proposed["reject"]
    assert post_decision(app, approval_id, "approve", approve)[0] == 202
    for decision, token in (("approve", approve), ("reject", reject), ("approve", approve)):
        status, page = post_decision(app, approval_id, decision, token)
        assert status == 409 and "approved" in page
    assert _refusals(app) == ["this approval is approved: nothing was changed"] * 3
    assert _queued(app) == 1
    decided = app.approvals.get(approval_id)
    assert decided is not None and decided.state == "approved"


def test_security_16_concurrent_posts_of_one_approval_make_one_decision_and_one_job(
        app: App, double: AzureDouble, proposed: Links) -> None:
    approval_id, token = proposed["approve"]
    results = race(16, lambda _: post_decision(app, approval_id, "approve", token))
    statuses = sorted(status for status, _ in results)
    assert statuses == [202] + [409] * 15
    assert _queued(app) == 1
    decisions = [r for r in app.audit.query(kind="approval") if r.decision == "approved"]
    assert len(decisions) == 1 and len(_refusals(app)) == 15
    [summary] = drain(app)
    assert summary["result"] == "applied"
    assert len(double.requests_for("imageTemplates.run", "POST")) == 1


def test_security_16_concurrent_posts_of_both_decisions_make_one_decision(app: App, double: AzureDouble,
                                                                        proposed: Links) -> None:
    approval_id, approve = proposed["approve"]
    _, reject = proposed["reject"]
    choices = (("reject", reject), ("approve", approve))
    results = race(16, lambda i: post_decision(app, approval_id, *choices[i % 2]))
    winners = [status for status, _ in results if status in (200, 202)]
    assert len(winners) == 1 and sorted(s for s, _ in results).count(409) == 15
    decided = app.approvals.get(approval_id)
    assert decided is not None and decided.state == ("approved" if winners == [202] else "rejected")
    if winners == [202]:
        assert _queued(app) == 1
    else:  # an approve that lost may have queued its job first (queue, then decide): it changes nothing
        assert _queued(app) <= 1
        assert all(s["result"] == "refused" for s in drain(app))
        assert double.requests_for("imageTemplates.run", "POST") == []


@pytest.mark.parametrize(("headers", "why"), [
    ({}, "sign in: only the listed approvers may decide"),
    (principal_header(), "sign in: only the listed approvers may decide"),  # signed in, but no name claim
    ({"X-MS-CLIENT-PRINCIPAL": "not base64 json"}, "sign in: only the listed approvers may decide"),
    ({"X-MS-CLIENT-PRINCIPAL": base64.b64encode(b'{"claims": 5}').decode()},
     "sign in: only the listed approvers may decide"),
    (principal_header("mallory@contoso.com"), "mallory@contoso.com is not on the approvers list"),
    (principal_header("alice@contoso.com.evil.com"), "alice@contoso.com.evil.com is not on the approvers list"),
])
def test_security_with_an_approver_list_anyone_not_on_it_is_refused_and_recorded(
        app: App, proposed: Links, headers: dict[str, str], why: str) -> None:
    """Before, a request with no X-MS-CLIENT-PRINCIPAL skipped the allow-list altogether. (The header
    counts only where App Service authentication is on: `identity_verified`.)"""
    app.approvers, app.identity_verified = frozenset({"alice@contoso.com"}), True
    approval_id, token = proposed["approve"]
    status, page = post_decision(app, approval_id, "approve", token, headers)
    assert status == 403 and why in page
    status, _, _ = api.approval_page(app, approval_id, {"decision": "approve", "token": token}, headers)
    assert status == 403
    assert _refusals(app) == [why], "the refused POST is recorded; a GET records nothing"
    assert _queued(app) == 0
    assert post_decision(app, approval_id, "approve", token, principal_header("alice@contoso.com"))[0] == 202


def test_security_a_malformed_approval_id_is_not_found_and_records_nothing(app: App, proposed: Links) -> None:
    _, token = proposed["approve"]
    for approval_id in ("x" * 5000, "../../etc/passwd", "A" * 32, "0" * 31, "\ud800"):
        status, page = post_decision(app, approval_id, "approve", token)
        assert status == 404 and "No such approval" in page
    assert _refusals(app) == []


# --- outbound fetches (SSRF) --------------------------------------------------------------------

CRAFTED_LOG_URLS = [
    "http://169.254.169.254/metadata/identity/oauth2/token?resource=https://storage.azure.com/",
    "http://169.254.169.254/packerlogs/x/customization.log",
    "https://evil.example/packerlogs/x/customization.log",
    "https://acct.blob.core.windows.net.evil.com/packerlogs/x/customization.log",
    "https://acct.blob.core.windows.net@evil.com/packerlogs/x/customization.log",
    "https://acct.blob.core.windows.net:443@evil.com/packerlogs/x/customization.log",
    "https://evil.com@acct.blob.core.windows.net/packerlogs/x/customization.log",
    "https://evil.com\\@acct.blob.core.windows.net/packerlogs/x/customization.log",
    "https://acct.blob.core.windows.net%2eevil.com/packerlogs/x/customization.log",
    "https://a.b.blob.core.windows.net/packerlogs/x/customization.log",
    "https://blob.core.windows.net/packerlogs/x/customization.log",
    "http://acct.blob.core.windows.net/packerlogs/x/customization.log",
    "ftp://acct.blob.core.windows.net/packerlogs/x/customization.log",
    "file:///etc/passwd",
    "https://[::1]/packerlogs/x/customization.log",
    "http://127.0.0.1:10000/devstoreaccount1/packerlogs/x/customization.log",
    "http://localhost/packerlogs/x/customization.log",
    "https://api.loganalytics.io/v1/workspaces/x/query",
    "https://acct.blob.core.windows.net./packerlogs/x/customization.log",
]


def _production_insights() -> Insights:
    """Insights configured as in Azure (public endpoints), so loopback is no exception either."""
    return Insights(Clients(Endpoints()))


@pytest.mark.parametrize("url", CRAFTED_LOG_URLS)
def test_security_build_log_urls_off_azure_blob_storage_are_refused_before_any_connection(
        guard: OutboundGuard, url: str) -> None:
    with pytest.raises(FetchRefused):
        _production_insights().build_log_tail(url)
    assert guard.attempts == []


def test_security_only_an_https_blob_url_passes_the_check(guard: OutboundGuard) -> None:
    url = "https://stbuildlogs01.blob.core.windows.net/packerlogs/7556f37e/customization.log"
    assert _production_insights().check_log_url(url) == url
    assert guard.attempts == []


def test_security_a_crafted_log_url_in_a_live_template_is_refused_end_to_end(
        app: App, double: AzureDouble, guard: OutboundGuard) -> None:
    """A failure event -> the template read live -> its run message names a log URL elsewhere."""
    tpl = double.refs["template:tpl-customizer-fails"]
    body = double.state.get(tpl)
    assert body is not None
    for url in ("http://169.254.169.254/packerlogs/x/customization.log",
                "https://acct.blob.core.windows.net.evil.com/packerlogs/x/customization.log"):
        body["properties"]["lastRunStatus"]["message"] = f"Build failed. See the logs at {url} for details."
        double.state.put(tpl, body)
        double.clear_requests()
        [diagnosis] = handle_event(arm_failure_event(tpl), app)
        assert diagnosis.failure is not None
        facts = dict(diagnosis.failure.facts)
        assert facts["build_log_url"] == url and "build logs are fetched only from" in facts["enrichment_error"]
        assert [r for r in double.requests if "packerlogs" in r.path] == []
    assert guard.attempts == []


class _Redirector(BaseHTTPRequestHandler):
    """Answers everything with a redirect to elsewhere, and counts what it was asked."""

    seen: ClassVar[list[str]] = []
    location: ClassVar[str] = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"

    def _redirect(self) -> None:
        type(self).seen.append(f"{self.command} {self.path}")
        self.send_response(302)
        self.send_header("Location", type(self).location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = do_POST = _redirect

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def redirector() -> Iterator[tuple[str, type[_Redirector]]]:
    handler = type("Redirector", (_Redirector,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("elsewhere", ["http://169.254.169.254/latest/meta-data/",
                                       "https://evil.example/packerlogs/x/customization.log",
                                       "file:///etc/passwd"])
def test_security_a_redirect_from_the_allowed_log_host_is_not_followed(
        guard: OutboundGuard, redirector: tuple[str, type[_Redirector]], elsewhere: str) -> None:
    base, handler = redirector
    handler.location = elsewhere
    insights = Insights(Clients(Endpoints(arm=base, logs=base + "/v1")))  # the allowed (local) log host
    url = f"{base}/devstoreaccount1/x/packerlogs/y/customization.log"
    assert insights.check_log_url(url) == url
    with pytest.raises((RedirectRefused, HTTPError)) as refused:  # urllib itself stops a redirect to file:
        insights.build_log_tail(url)
    assert not isinstance(refused.value, HTTPError) or refused.value.code == 302
    assert handler.seen == ["HEAD /devstoreaccount1/x/packerlogs/y/customization.log"]
    assert guard.attempts == []


@pytest.mark.parametrize("url", [
    "https://evil.example/workflows/x/triggers/manual/paths/invoke",
    "http://prod-00.westeurope.logic.azure.com/workflows/x",
    "https://prod-00.westeurope.logic.azure.com.evil.com/workflows/x",
    "https://prod-00.westeurope.logic.azure.com@evil.com/workflows/x",
    "https://evil.com@prod-00.westeurope.logic.azure.com/workflows/x",
    "https://logic.azure.com/workflows/x",
    "https://evillogic.azure.com/workflows/x",
    "https://x.api.powerplatform.com.evil/workflows/x",
    "http://169.254.169.254/metadata/",
    "http://10.0.0.1/hook",
    "file:///etc/passwd",
    "https://outlook.office.com/webhook/x",  # a retired Office 365 connector
])
def test_security_teams_webhooks_off_the_allow_list_are_refused(guard: OutboundGuard, url: str) -> None:
    with pytest.raises(WebhookRefused):
        check_webhook(url)
    with pytest.raises(WebhookRefused):
        Notifier(url)
    assert guard.attempts == []


def test_security_teams_webhooks_on_the_allow_list_pass_and_a_redirect_is_not_followed(
        guard: OutboundGuard, redirector: tuple[str, type[_Redirector]], tmp_path: Path) -> None:
    for url in ("https://prod-00.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=x",
                "https://default0a1b.2c.environment.api.powerplatform.com/powerautomate/automations/direct/x"):
        assert check_webhook(url) == url
    base, handler = redirector
    with pytest.raises(RedirectRefused):
        Notifier(f"{base}/hook", sink=tmp_path).send({"type": "AdaptiveCard"}, "x")
    assert handler.seen == ["POST /hook"] and guard.attempts == []


@pytest.mark.parametrize(("name", "url"), [
    ("REMEDIATOR_ARM_ENDPOINT", "http://10.0.0.1"),
    ("REMEDIATOR_ARM_ENDPOINT", "http://169.254.169.254"),
    ("REMEDIATOR_ARM_ENDPOINT", "http://management.azure.com"),
    ("REMEDIATOR_ARM_ENDPOINT", "http://127.0.0.1.evil.com:8080"),
    ("REMEDIATOR_ARM_ENDPOINT", "http://localhost.evil.com"),
    ("REMEDIATOR_ARM_ENDPOINT", "http://0.0.0.0:8080"),
    ("REMEDIATOR_ARM_ENDPOINT", "http://[::ffff:10.0.0.1]"),
    ("REMEDIATOR_ARM_ENDPOINT", "file:///etc/passwd"),
    ("REMEDIATOR_LOGS_ENDPOINT", "http://10.0.0.1/v1"),
    ("REMEDIATOR_LOGS_ENDPOINT", "http://169.254.169.254/v1"),
])
def test_security_plain_http_endpoints_off_loopback_are_refused(guard: OutboundGuard, name: str, url: str) -> None:
    with pytest.raises(EndpointError, match=name):
        Endpoints.from_env({name: url})
    with pytest.raises(EndpointError):
        App.from_env({name: url, "REMEDIATOR_SIGNING_KEY": base64.b64encode(new_key()).decode(),
                      "AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert guard.attempts == []


def test_security_loopback_and_https_endpoints_are_accepted() -> None:
    for url in ("http://127.0.0.1:8080", "http://localhost:9000", "http://[::1]:8080", "https://management.azure.com",
                "https://management.usgovcloudapi.net"):
        assert Endpoints.from_env({"REMEDIATOR_ARM_ENDPOINT": url}).arm == url


# --- secrets stay out of logs ---------------------------------------------------------------------

FUNCTION_KEY = "fk-" + "s3cr3t" * 6


def _all_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every record as the handlers would write it, with its arguments, extras and traceback."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    out: list[str] = []
    for record in caplog.records:
        out.append(formatter.format(record))
        out.extend(repr(v) for v in record.__dict__.values())
    return "\n".join(out)


def _forms(secret: str | bytes) -> list[str]:
    """A secret as it could show up: as is, URL-quoted, base64 (both alphabets), hex."""
    raw = secret.encode() if isinstance(secret, str) else secret
    found = [base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("="), raw.hex()]
    if isinstance(secret, str):
        found += [secret, quote(secret, safe="")]
    return found


def test_security_no_secret_reaches_the_logs_the_audit_trail_or_stderr(
        wired: App, double: AzureDouble, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An approval flow end to end over HTTP, logging everything at DEBUG."""
    import urllib.request

    caplog.set_level(logging.DEBUG)
    wired.policy = Policy(PolicyMode.SUGGEST)
    tpl = double.refs["template:tpl-win2022-timeout"]

    def fetch(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(response.status), bytes(response.read())
        except HTTPError as error:
            return int(error.code), bytes(error.read())

    with DevServer(function_key=FUNCTION_KEY) as server:
        wired.public_url = server.url
        alert = json.dumps(activity_alert(tpl)).encode()
        status, body = fetch(f"{server.url}/api/alerts?code={FUNCTION_KEY}", alert,
                             {"Content-Type": "application/json"})
        assert status == 202, body
        links = card_links(wired.notifier.sink.parent)  # the card went to the sink, as it would to Teams
        approval_id, token = links["approve"]
        _, reject_token = links["reject"]
        query = urlencode({"decision": "approve", "token": token})
        status, page = fetch(f"{server.url}/api/approvals/{approval_id}?{query}")
        assert status == 200 and b"<form method='post'>" in page
        hidden = dict(re.findall(r"name='(\w+)' value='([^']*)'", page.decode()))
        form = urlencode({k: html.unescape(v) for k, v in hidden.items()}).encode()
        bad = urlencode({"decision": "approve", "token": token[:-2] + "AA"}).encode()
        assert fetch(f"{server.url}/api/approvals/{approval_id}", bad)[0] == 403
        assert fetch(f"{server.url}/api/approvals/{approval_id}", form)[0] == 202
        assert fetch(f"{server.url}/api/approvals/{approval_id}", form)[0] == 409
        [summary] = drain(wired)
        assert summary["result"] == "applied"
        status, _ = fetch(f"{server.url}/api/history?code={FUNCTION_KEY}&limit=50")
        assert status == 200
        status, _ = fetch(f"{server.url}/api/history", headers={"x-functions-key": FUNCTION_KEY})
        assert status == 200
        assert fetch(f"{server.url}/api/history?code=wrong-{FUNCTION_KEY}")[0] == 401

        def boom() -> Any:
            raise RuntimeError("a handler that fails")

        # the dev server answers 500, as the host does
        monkeypatch.setattr("shared.entry.diagnosis_api.scenarios", boom)
        assert fetch(f"{server.url}/api/scenarios?code={FUNCTION_KEY}&token={token}")[0] == 500

    secrets: list[str] = [FUNCTION_KEY, token, reject_token, DEV_KEY]
    secrets += _forms(wired.signing_keys[0]) + _forms(token) + _forms(FUNCTION_KEY)
    logged = _all_text(caplog)
    assert "remediator.devserver" in logged and "GET /api/scenarios raised" in logged, "the failure is logged"
    audit = json.dumps([r.__repr__() for r in wired.audit.query(limit=500)])
    streams = capfd.readouterr()
    for secret in secrets:
        assert secret not in logged, "a secret in the logs"
        assert secret not in audit, "a secret in the audit trail"
        assert secret not in streams.err and secret not in streams.out, "a secret on stderr/stdout"
    for query_part in ("code=", "token=", "decision=approve"):
        assert query_part not in logged and query_part not in streams.err, "the dev server logged a query string"
