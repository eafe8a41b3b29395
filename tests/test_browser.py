"""The approval loop in a real browser: the card rendered (and validated) by the official
Adaptive Cards JavaScript SDK in headless Chromium, the link opened, the plan shown, the
decision posted, the remediation run against the local double, the outcome shown.

Screenshots are kept in tests/artifacts/browser/ (a test artifact, not committed)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sandbox import AzureDouble
from sandbox.devserver import DevServer
from shared.decisions.pipeline import handle_event
from shared.decisions.policy import Policy, PolicyMode
from shared.wiring import App
from tests.conftest import ROOT
from tests.pipeline_helpers import arm_failure_event, drain

ARTIFACTS = ROOT / "tests" / "artifacts" / "browser"
DRIVER = ROOT / "tests" / "browser" / "drive.mjs"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
KEY = "local-function-key"


def drive(tmp_path: Path, **config: Any) -> dict[str, Any]:
    if not Path(CHROMIUM).exists() or not (ROOT / "node_modules" / "playwright-core").exists():
        pytest.fail("the browser tests need Debian's chromium and node_modules: run ./scripts/test.sh")
    path = tmp_path / f"{config['phase']}.json"
    path.write_text(json.dumps({"screenshots": str(ARTIFACTS), **config}))
    done = subprocess.run(["node", str(DRIVER), str(path)], capture_output=True, text=True, timeout=180,
                          cwd=ROOT, env={"PATH": "/usr/bin:/bin", "CHROMIUM": CHROMIUM, "HOME": str(tmp_path)},
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_browser_approval_flow_end_to_end(wired: App, double: AzureDouble, tmp_path: Path) -> None:
    wired.policy = Policy(PolicyMode.SUGGEST)
    tpl = double.refs["template:tpl-win2022-timeout"]
    with DevServer(function_key=KEY) as server:
        wired.public_url = server.url
        handle_event(arm_failure_event(tpl), wired)
        [card] = sorted((tmp_path / "cards").glob("approval-*.json")) or sorted(
            (tmp_path / "cards").glob("*approval*.json"))
        seen = drive(tmp_path, phase="approve", card=str(card))

        rendered = seen["card"]
        assert rendered["events"] == [], "the SDK's parser accepted every element and property"
        assert rendered["failures"] == [], "the card breaks no rule of the schema"
        assert {"Approve", "Reject", "Open in portal"} <= set(rendered["buttons"])
        assert "increase-image-build-timeout" in rendered["text"] and "60 → 120" in rendered["text"]
        assert "max_build_timeout" in rendered["text"], "the limits that apply are on the card"

        assert seen["opened"][0]["title"] == "Approve"
        confirmation = seen["confirmation"]["text"]
        assert "properties.buildTimeoutInMinutes" in confirmation and "120" in confirmation
        assert "Approved" not in seen["confirmation"]["title"]
        assert double.requests_for("imageTemplates.delete") == [], "opening the link changed nothing"

        operation = seen["decided"]["operation"]
        assert operation and "Approved by" in seen["decided"]["text"]
        assert "approved" in seen["replay"]["text"], "a used link is refused"

        drain(wired)  # the queue trigger's work
        assert len(double.requests_for("imageTemplates.run", "POST")) == 1
        outcome = sorted((tmp_path / "cards").glob("*outcome*.json"))[-1]
        shown = drive(tmp_path, phase="outcome", card=str(outcome),
                      status_url=f"{server.url}/api/operations/{operation}?code={KEY}")
    assert shown["status"]["http"] == 200 and shown["status"]["body"]["status"] == "succeeded"
    assert shown["card"]["events"] == [] and shown["card"]["failures"] == []
    assert "applied" in shown["card"]["text"]
    for name in ("1-approval-card.png", "2-confirmation-page.png", "3-decision-recorded.png",
                 "4-link-used-again.png", "5-operation-status.png", "6-outcome-card.png"):
        assert (ARTIFACTS / name).stat().st_size > 2000, name


def test_browser_function_routes_need_the_key_and_approval_links_do_not(wired: App) -> None:
    import urllib.error
    import urllib.request

    with DevServer(function_key=KEY) as server:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{server.url}/api/remediations", timeout=10)
        assert refused.value.code == 401
        with urllib.request.urlopen(f"{server.url}/api/remediations?code={KEY}", timeout=10) as ok:
            assert ok.status == 200
        with pytest.raises(urllib.error.HTTPError) as bad_link:
            urllib.request.urlopen(f"{server.url}/api/approvals/{'0' * 32}?decision=approve&token=x", timeout=10)
        assert bad_link.value.code == 404  # reached the handler without a key: no such approval


def test_browser_failure_text_shows_as_text_never_as_a_link_on_the_card(tmp_path: Path) -> None:
    """Issue 11 item 16: a failure message holding Markdown must not put a live link above the buttons.
    Rendered with Markdown on, as Teams renders TextBlocks and FactSets."""
    from shared.approvals.cards import CardLinks, approval_card, message

    hostile = "Build failed: [Approve now](https://evil.example/steal) **urgent** <b>bold</b>"
    card = approval_card(title=hostile, scenario="aib.no_artifacts", remediation="rerun-image-build",
                         target="/subscriptions/s/resourceGroups/g/providers/Microsoft.VirtualMachineImages/"
                                "imageTemplates/tpl_a_b", reason=hostile, evidence=[hostile],
                         changes=[{"field": "properties.lastRunStatus.runState", "before": hostile,
                                   "after": "Running"}], limits={"max_build_timeout": "960"}, expires_at="soon",
                         links=CardLinks(approve="https://x.test/approve", reject="https://x.test/reject"))
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(message(card)))
    rendered = drive(tmp_path, phase="render", card=str(path))["card"]
    assert rendered["events"] == [] and rendered["failures"] == []
    assert rendered["links"] == [], "no link came from the failure text"
    assert "[Approve now](https://evil.example/steal)" in rendered["text"], "the text is shown as it is"
    assert "max_build_timeout" in rendered["text"] and "tpl_a_b" in rendered["text"]

