"""`remediator serve`: the whole app on this machine as the Functions host runs it.

End to end, as a user types it (`.venv/bin/remediator serve --sandbox --no-timer`): an Azure Monitor
alert in, an approval link followed in full, the queue trigger running the job, a clean stop with
Azurite gone. In process: the host's queue rules (dequeue count, redelivery after the visibility
timeout, the poison queue after maxDequeueCount) and the timer's NCRONTAB schedule.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

import function_app
from sandbox import AzureDouble
from sandbox.serve import Ncrontab, QueueSettings, QueueTrigger, TimerTrigger, answers, timespan
from shared.decisions.pipeline import handle_event
from shared.wiring import App
from tests.azurite import Azurite
from tests.conftest import ROOT
from tests.pipeline_helpers import arm_failure_event, cards

REMEDIATOR = ROOT / ".venv" / "bin" / "remediator"
# The Activity Log alert sample of Azure Monitor's "Common alert schema definitions for Test Action
# Group" (https://learn.microsoft.com/azure/azure-monitor/alerts/alerts-common-schema-test-action-definitions),
# as published.
PUBLISHED_ALERT = ROOT / "tests" / "fixtures" / "published" / "monitor_test_action_activity_log.json"


# --- end to end, as a user runs it -----------------------------------------------------------------


class Served:
    def __init__(self, proc: subprocess.Popen[str], first: dict[str, Any], stderr: Path) -> None:
        self.proc, self.first, self.stderr = proc, first, stderr

    @property
    def url(self) -> str:
        return str(self.first["url"])

    def call(self, method: str, path: str, body: bytes | None = None, *, key: bool = True,
             headers: dict[str, str] | None = None) -> tuple[int, str]:
        url = urljoin(self.url, path)
        if key:
            url += ("&" if "?" in url else "?") + urlencode({"code": self.first["function_key"]})
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")[-4000:]


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else ""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    if not REMEDIATOR.exists():
        pytest.fail(f"{REMEDIATOR.relative_to(ROOT)} is missing: run ./scripts/setup.sh")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REMEDIATOR_", "AzureWebJobs"))}
    env |= {"REMEDIATOR_CARD_SINK": str(tmp_path / "cards"), "REMEDIATOR_MODE": "suggest"}
    stderr = tmp_path / "serve.log"
    with stderr.open("w") as err:
        proc = subprocess.Popen([str(REMEDIATOR), "serve", "--sandbox", "--no-timer"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        line = _first_line(proc, 120)
        assert line, f"no first line; stderr:\n{stderr.read_text(errors='replace')[-4000:]}"
        yield Served(proc, json.loads(line), stderr)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def published_alert(resource_id: str, message: str) -> bytes:
    """The published sample, re-aimed at a sandbox image template whose run failed (fields as an
    Activity Log alert on `imageTemplates/run/action` carries them)."""
    alert = json.loads(PUBLISHED_ALERT.read_text(encoding="utf-8"))
    essentials, context = alert["data"]["essentials"], alert["data"]["alertContext"]
    action = "Microsoft.VirtualMachineImages/imageTemplates/run/action"
    essentials["alertTargetIDs"] = [resource_id.lower()]
    essentials["configurationItems"] = [resource_id.rsplit("/", 1)[-1]]
    context["authorization"] = {"action": action, "scope": resource_id}
    context["operationName"] = action
    context["level"], context["status"] = "Error", "Failed"
    context["properties"] |= {"entity": resource_id, "message": action, "statusCode": "Conflict",
                              "statusMessage": json.dumps({"status": "Failed",
                                                           "error": {"code": "Conflict", "message": message}})}
    return json.dumps(alert).encode()


class Form(HTMLParser):
    """The confirmation page's form: where it posts and the fields it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.method, self.action, self.operation = "", "", ""
        self.fields: dict[str, str] = {}
        self._in_operation = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.method, self.action = (a.get("method") or "get").upper(), a.get("action") or ""
        elif tag == "input" and a.get("name"):
            self.fields[str(a["name"])] = a.get("value") or ""
        self._in_operation = tag == "code" and a.get("id") == "operation"

    def handle_endtag(self, tag: str) -> None:
        self._in_operation = False

    def handle_data(self, data: str) -> None:
        if self._in_operation:
            self.operation += data


def _parse(page: str) -> Form:
    form = Form()
    form.feed(page)
    return form


def _wait(what: str, check: Callable[[], Any], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_serve_runs_the_app_alert_to_approved_fix_and_stops_cleanly(served: Served, tmp_path: Path) -> None:
    first = served.first
    assert set(first) >= {"url", "function_key", "storage", "arm_url", "logs_url", "queues", "azurite", "sandbox"}
    assert first["url"].startswith("http://127.0.0.1:") and first["function_key"]
    assert first["queues"] == ["remediations", "remediations-poison"] and first["timer"] is None
    assert first["arm_url"].startswith("http://127.0.0.1:")
    assert f"TableEndpoint=http://127.0.0.1:{first['azurite']['table_port']}/" in first["storage"]
    assert first["cards"] == str(tmp_path / "cards")
    template = first["sandbox"]["resources"]["template:tpl-rhel-noartifacts"]

    assert served.call("GET", "/api/remediations", key=False)[0] == 401, "function routes need the key"

    status, body = served.call("POST", "/api/diagnose?source=aib", b"Builds finished but no artifacts were created.")
    assert status == 200 and json.loads(body)["scenario"] == "aib.no_artifacts"

    status, body = served.call("POST", "/api/alerts", published_alert(
        template, "Builds finished but no artifacts were created."), headers={"Content-Type": "application/json"})
    assert status == 202, body

    # The approval card (suggest mode), its Approve link followed as a browser does: no key, the page, the form.
    card = _wait("the approval card", lambda: [c for c in cards(tmp_path) if "Approval needed" in json.dumps(c)])[0]
    [link] = [a["url"] for a in card["attachments"][0]["content"]["actions"] if "decision=approve" in a.get("url", "")]
    assert link.startswith(served.url + "/api/approvals/")
    status, page = served.call("GET", link, key=False)
    assert status == 200 and "rerun-image-build" in page, page[:500]
    form = _parse(page)
    assert form.method == "POST" and {"decision", "token", "page"} <= set(form.fields)
    status, decided = served.call("POST", urljoin(link, form.action) if form.action else link,
                                  urlencode(form.fields).encode(), key=False,
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 202 and "Approved" in decided, decided[:500]
    operation = _parse(decided).operation
    assert operation

    # The queue trigger picks the job up and runs it against the double.
    def finished() -> dict[str, Any] | None:
        code, text = served.call("GET", f"/api/operations/{operation}")
        op: dict[str, Any] = json.loads(text) if code == 200 else {}
        return op if op.get("status") in ("succeeded", "failed", "noop") else None

    op = _wait("the queued job", finished)
    assert op["status"] == "succeeded", (op, served.log())
    assert "Executing 'Functions.on_remediation'" in served.log()
    status, text = served.call("GET", "/api/history?" + urlencode({"target": template}))
    assert status == 200 and any(r.get("kind") == "apply" and r.get("decision") == "applied"
                                 for r in json.loads(text)["records"]), text[:1000]

    # Ctrl-C stops everything: the HTTP server, the double and Azurite.
    served.proc.send_signal(signal.SIGINT)
    assert served.proc.wait(timeout=60) == 0, served.log()
    azurite = first["azurite"]
    assert not Path(f"/proc/{azurite['pid']}").exists(), "Azurite stopped with it"
    ports = [azurite["blob_port"], azurite["queue_port"], azurite["table_port"],
             urlsplit(first["url"]).port, urlsplit(first["arm_url"]).port]
    assert not [p for p in ports if p and answers(p)], "nothing listens any more"
    assert not Path(azurite["data"]).exists(), "its temporary data is removed"


def test_serve_against_azure_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REMEDIATOR_", "AzureWebJobs"))}
    env["REMEDIATOR_CARD_SINK"] = str(tmp_path / "cards")
    proc = subprocess.Popen([str(REMEDIATOR), "serve", "--no-timer", "--function-key", "k3y"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        first = json.loads(_first_line(proc, 120) or "{}")
        assert first["arm_url"] == "https://management.azure.com" and first["sandbox"] is None
        assert first["function_key"] == "k3y"
        with urllib.request.urlopen(f"{first['url']}/api/scenarios?code=k3y", timeout=30) as response:
            assert response.status == 200 and json.loads(response.read())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert not Path(f"/proc/{first['azurite']['pid']}").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


# --- the host's queue rules, in process ------------------------------------------------------------


def test_host_json_settings_are_read() -> None:
    settings = QueueSettings.from_host_json()
    host = json.loads((ROOT / "host.json").read_text())
    assert settings.max_dequeue_count == host["extensions"]["queues"]["maxDequeueCount"] == 5
    assert settings.visibility_timeout == 30 and settings.batch_size == 8 and settings.function_timeout == 1800
    assert timespan("1.02:03:04.5") == 93784.5
    with pytest.raises(ValueError, match="TimeSpan"):
        timespan("30s")


class Recorder:
    """Wraps a function: every message it got, as the function got it."""

    def __init__(self, function: Callable[[func.QueueMessage], None] | None = None) -> None:
        self.function = function
        self.seen: list[func.QueueMessage] = []

    def __call__(self, message: func.QueueMessage) -> None:
        self.seen.append(message)
        if self.function is not None:
            self.function(message)


def _pump(*triggers: QueueTrigger, rounds: int = 20) -> None:
    """Polls each trigger until a round finds every queue empty."""
    for _ in range(rounds):
        if not sum(t.poll_once() for t in triggers):
            return
    raise AssertionError("the queues did not drain")


def test_a_job_that_keeps_failing_is_redelivered_then_poisoned_as_the_host_does(
        wired: App, azurite: Azurite, double: AzureDouble) -> None:
    settings = QueueSettings(max_dequeue_count=3, visibility_timeout=0, batch_size=4)
    jobs = Recorder(function_app.on_remediation)
    poison = Recorder(function_app.on_poison)
    main = QueueTrigger("on_remediation", wired.queue.name, jobs, azurite.connection_string, settings)
    dead = QueueTrigger("on_poison", main.poison_queue, poison, azurite.connection_string, settings)
    try:
        tpl = double.refs["template:tpl-rhel-noartifacts"]
        double.faults.fail_next("imageTemplates.run", 10_000, status=500)
        handle_event(arm_failure_event(tpl), wired)  # auto mode: the fix is queued
        _pump(main, dead)
        assert [m.dequeue_count for m in jobs.seen] == [1, 2, 3], "delivered again until maxDequeueCount"
        assert all(isinstance(m, func.QueueMessage) and json.loads(m.get_body())["target"].lower() == tpl.lower()
                   for m in jobs.seen)
        assert [m.get_body() for m in poison.seen] == [jobs.seen[0].get_body()], "moved, body unchanged"
        [record] = wired.audit.query(kind="poison")
        assert (record.target or "").lower() == tpl.lower() and "maximum delivery attempts" in (record.reason or "")
        assert not list(main.client.peek_messages()) and not list(dead.client.peek_messages())
    finally:
        dead.client.delete_queue()


def test_a_message_delivered_past_max_dequeue_count_goes_to_poison_unrun(azurite: Azurite) -> None:
    import uuid

    settings = QueueSettings(max_dequeue_count=2, visibility_timeout=0, batch_size=4)
    ran = Recorder()
    trigger = QueueTrigger("fn", "q-" + uuid.uuid4().hex[:12], ran, azurite.connection_string, settings)
    try:
        trigger.client.send_message("aGVsbG8=")  # base64 "hello", as the app's queue writes its messages
        for _ in range(2):  # two deliveries that never finished (a worker that died)
            [message] = list(trigger.client.receive_messages(max_messages=1, visibility_timeout=1))
            trigger.client.update_message(message, visibility_timeout=0)
        assert trigger.poll_once() == 1
        assert ran.seen == [], "a message past maxDequeueCount is not run again"
        poison = QueueTrigger("fn-poison", trigger.poison_queue, ran, azurite.connection_string, settings)
        assert [m.content for m in poison.client.peek_messages()] == ["aGVsbG8="]
        assert poison.poll_once() == 1 and [m.get_body() for m in ran.seen] == [b"hello"]
        assert not list(trigger.client.peek_messages())
        poison.client.delete_queue()
    finally:
        trigger.client.delete_queue()


def test_a_failed_delivery_waits_out_the_visibility_timeout(azurite: Azurite) -> None:
    import uuid

    def fail(message: func.QueueMessage) -> None:
        raise RuntimeError("boom")

    calls = Recorder(fail)
    trigger = QueueTrigger("fn", "q-" + uuid.uuid4().hex[:12], calls,
                           azurite.connection_string, QueueSettings(max_dequeue_count=5, visibility_timeout=2))
    try:
        trigger.client.send_message("aGVsbG8=")
        assert trigger.poll_once() == 1
        assert trigger.poll_once() == 0, "invisible for visibilityTimeout after a failure"
        time.sleep(2.5)
        assert trigger.poll_once() == 1 and [m.dequeue_count for m in calls.seen] == [1, 2]
    finally:
        trigger.client.delete_queue()


# --- the timer -----------------------------------------------------------------------------------------

AT = datetime(2026, 11, 25, 10, 7, 30, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(("schedule", "after", "expected"), [
    ("0 */15 * * * *", AT, datetime(2026, 11, 25, 10, 15, tzinfo=UTC)),
    ("0 */15 * * * *", datetime(2026, 11, 25, 10, 15, tzinfo=UTC), datetime(2026, 11, 25, 10, 30, tzinfo=UTC)),
    ("*/10 * * * * *", AT, datetime(2026, 11, 25, 10, 7, 40, tzinfo=UTC)),
    ("0 30 9 * * 1-5", AT, datetime(2026, 11, 26, 9, 30, tzinfo=UTC)),
    ("0 30 9 * * Sat", AT, datetime(2026, 11, 28, 9, 30, tzinfo=UTC)),
    ("0 0 0 1 Jan *", AT, datetime(2027, 1, 1, tzinfo=UTC)),
    ("0 0 12 13 * 5", AT, datetime(2027, 8, 13, 12, tzinfo=UTC)),  # NCrontab: day AND day of week (a Friday 13th)
    ("5/20 0 0 * * *", AT, datetime(2026, 11, 26, 0, 0, 5, tzinfo=UTC)),
    ("0 0 0 29 2 *", AT, datetime(2028, 2, 29, tzinfo=UTC)),
])
def test_ncrontab_next_occurrence(schedule: str, after: datetime, expected: datetime) -> None:
    assert Ncrontab(schedule).next_after(after) == expected


@pytest.mark.parametrize("schedule", ["0 */15 * * *", "61 * * * * *", "0 0 0 * * Funday", "0 0 0 31 2 *",
                                      "0 */0 * * * *"])
def test_ncrontab_refuses_what_the_host_would_refuse(schedule: str) -> None:
    with pytest.raises(ValueError):
        Ncrontab(schedule).next_after(AT)


def test_the_timer_calls_its_function_with_a_timer_request_on_schedule() -> None:
    fired: list[TimerRequest] = []
    done = threading.Event()

    def on_timer(timer: TimerRequest) -> None:
        fired.append(timer)
        done.set()

    timer = TimerTrigger("on_sweep", Ncrontab("* * * * * *"), on_timer)
    timer.start()
    try:
        assert done.wait(5), "an every-second schedule fires within a few seconds"
    finally:
        timer.stop()
    request = fired[0]
    assert request.past_due is False and set(request.schedule_status) == {"Last", "Next", "LastUpdated"}
    assert datetime.fromisoformat(request.schedule_status["Next"]) - datetime.now(UTC) < timedelta(seconds=3)
