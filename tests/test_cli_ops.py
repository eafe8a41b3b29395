"""The `remediator` commands that act: remediations, run, sweep and sandbox, as real
processes, against the local Azure double."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from remediations.base import registry
from sandbox import AzureDouble
from tests.conftest import ROOT

REMEDIATIONS = set(registry().items)  # every registered remediation (scenarios.md's required names)
# The sandbox seeds one failure per remediable scenario: more changes than the default hourly budget (20).
SANDBOX_BUDGET = {"REMEDIATOR_MAX_CHANGES_PER_HOUR": "60"}


def remediator(*args: str, env: dict[str, str] | None = None, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shared.entry.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, check=False, env={**os.environ, **(env or {})})


def test_remediations_lists_the_catalog_with_limits() -> None:
    result = remediator("remediations", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(rows) == REMEDIATIONS
    assert rows["extend-maintenance-window"]["limits"]["automation_max_window"] == "6:00:00"
    assert rows["remove-missing-machines"]["mode"] == "approval"
    readable = remediator("remediations")
    assert "limit max_build_timeout: 960" in readable.stdout


def test_a_limit_setting_past_the_service_limit_is_refused() -> None:
    result = remediator("remediations", env={"REMEDIATOR_MAX_BUILD_TIMEOUT": "5000"})
    assert result.returncode == 2 and "max_build_timeout" in result.stderr


@pytest.fixture
def endpoints(double: AzureDouble, tmp_path: object) -> dict[str, str]:
    return {"REMEDIATOR_ARM_ENDPOINT": double.arm_url, "REMEDIATOR_LOGS_ENDPOINT": double.logs_url,
            "REMEDIATOR_VAULT_DIR": str(tmp_path), "REMEDIATOR_WORKSPACE_ID": double.refs["workspace_id"]}


def test_run_dry_run_then_apply_then_noop(double: AzureDouble, endpoints: dict[str, str]) -> None:
    suc = double.refs["suc:weekly-windows-critical"]
    dry = remediator("run", "extend-maintenance-window", "--target", suc, "--dry-run", "--json", env=endpoints)
    assert dry.returncode == 0, dry.stderr
    body = json.loads(dry.stdout)
    assert body["result"] == "dry-run" and body["changes"][0]["after"] == "PT3H"
    assert double.requests_for("softwareUpdateConfigurations.put") == []
    applied = json.loads(remediator("run", "extend-maintenance-window", "--target", suc, "--json",
                                    env=endpoints).stdout)
    assert applied["result"] == "applied" and applied["verified"] is True
    again = remediator("run", "extend-maintenance-window", "--target", suc, env=endpoints)
    assert again.returncode == 0 and ": noop" in again.stdout


def test_run_reports_a_permanent_failure_with_exit_code_1(double: AzureDouble, endpoints: dict[str, str]) -> None:
    tpl = double.refs["template:tpl-rhel-noartifacts"]
    double.faults.fail_next("imageTemplates.run", 1, status=403)
    result = remediator("run", "rerun-image-build", "--target", tpl, "--json", env=endpoints)
    assert result.returncode == 1
    body = json.loads(result.stdout)
    assert body["result"] == "failed" and "HTTP 403" in body["error"]


@pytest.mark.parametrize(("args", "problem"), [
    (("run", "no-such-fix", "--target", "/subscriptions/s"), "no remediation"),
    (("run", "rerun-image-build", "--target", "/subscriptions/s", "--param", "oops"), "expected K=V"),
])
def test_run_refuses_bad_input_with_exit_code_2(args: tuple[str, ...], problem: str) -> None:
    result = remediator(*args)
    assert result.returncode == 2 and problem in result.stderr


def test_plain_http_endpoints_are_refused_off_loopback() -> None:
    result = remediator("run", "rerun-image-build", "--target", "/subscriptions/s",
                        env={"REMEDIATOR_ARM_ENDPOINT": "http://10.1.2.3"})
    assert result.returncode == 2 and "loopback" in result.stderr


def test_sweep_on_the_sandbox_uses_every_remediation() -> None:
    result = remediator("sweep", "--sandbox", "--mode", "auto", "--approve-all", "--json", timeout=300,
                        env=SANDBOX_BUDGET)
    assert result.returncode == 0, result.stderr[-2000:]
    findings = json.loads(result.stdout)["findings"]
    applied = {f["remediation"] for f in findings if f["decision"] == "applied" and f["result"] == "applied"}
    assert applied == REMEDIATIONS
    assert all(set(f) >= {"resource", "scenario", "remediation", "decision", "result", "changes"} for f in findings)


def test_sweep_dry_run_in_suggest_mode_proposes_and_changes_nothing() -> None:
    result = remediator("sweep", "--sandbox", "--dry-run", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "proposed" in result.stdout and "applied" not in result.stdout
    assert "... image templates in" in result.stderr, "a long sweep shows progress"


@pytest.fixture
def sandbox() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "shared.entry.cli", "sandbox"], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    yield proc
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)


def test_sandbox_prints_its_url_and_resources_first_and_serves_them(sandbox: subprocess.Popen[str]) -> None:
    assert sandbox.stdout is not None
    first = json.loads(sandbox.stdout.readline())
    assert first["url"].startswith("http://127.0.0.1:")
    assert "template:tpl-win2022-timeout" in first["resources"]
    env = {"REMEDIATOR_ARM_ENDPOINT": first["url"]}
    result = remediator("run", "rerun-image-build", "--target", first["resources"]["template:tpl-rhel-noartifacts"],
                        "--dry-run", "--json", env=env)
    assert json.loads(result.stdout)["result"] == "dry-run"
