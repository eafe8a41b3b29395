"""The `remediator` command: the contract other tools rely on, run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

TIMEOUT = """Deployment failed. Correlation ID: 1f2e. Failed in building/customizing image: Failed while waiting \
for packerizer: Timeout waiting for microservice to complete: 'context deadline exceeded'"""
CONTRACT_KEYS = {"scenario", "confidence", "title", "evidence", "remediations", "doc"}


def remediator(*args: str, stdin: str | bytes = b"") -> subprocess.CompletedProcess[bytes]:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    return subprocess.run(
        [sys.executable, "-m", "shared.entry.cli", *args], input=data, capture_output=True, cwd=ROOT, timeout=60,
        check=False,
    )


def test_diagnose_text_from_stdin_as_json() -> None:
    result = remediator("diagnose", "--json", "-", stdin=TIMEOUT)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert set(body) >= CONTRACT_KEYS
    assert body["scenario"] == "aib.build_timeout"
    assert {"name": "increase-image-build-timeout", "mode": "auto"} in body["remediations"]
    assert body["doc"].endswith("#timeout-exceeded")
    assert any("Timeout waiting for microservice" in e for e in body["evidence"])


def test_diagnose_file_readable_summary(tmp_path: Path) -> None:
    path = tmp_path / "failure.log"
    path.write_text("Error details: Unable to register Automation Resource Provider for subscriptions:")
    result = remediator("diagnose", str(path))
    assert result.returncode == 0
    out = result.stdout.decode()
    assert out.startswith("um.rp_not_registered")
    assert "register-resource-provider (auto)" in out and "doc: https://" in out


def test_batch_of_events_gives_a_json_list(tmp_path: Path) -> None:
    sample = ROOT / "shared" / "diagnosis" / "samples" / "update-manager-post-maintenance.json"
    result = remediator("diagnose", "--json", str(sample))
    body = json.loads(result.stdout)
    assert isinstance(body, list) and len(body) == 2
    assert [b["scenario"] for b in body] == ["none", "unknown"]
    assert body[1]["failure"]["resource_id"].endswith("/imageTemplates/ubuntu2204-base")


def test_source_hint_restricts_the_guide() -> None:
    text = "context deadline exceeded"
    aib = json.loads(remediator("diagnose", "--json", "--source", "aib", "-", stdin=text).stdout)
    upd = json.loads(remediator("diagnose", "--json", "--source", "update", "-", stdin=text).stdout)
    assert aib["scenario"] == "aib.build_timeout" and upd["scenario"] == "unknown"


def test_invalid_payload_exits_2_and_names_the_field() -> None:
    bad = json.dumps({"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {
        "alertRule": "r", "monitorCondition": "Maybe"}}})
    result = remediator("diagnose", "--json", "-", stdin=bad)
    assert result.returncode == 2
    body = json.loads(result.stdout)
    assert body["field"] == "data.essentials.monitorCondition" and "Maybe" in body["problem"]
    plain = remediator("diagnose", "-", stdin=bad)
    assert plain.returncode == 2 and b"data.essentials.monitorCondition" in plain.stderr


def test_missing_file_is_a_clear_error() -> None:
    result = remediator("diagnose", "/nonexistent/failure.json")
    assert result.returncode == 2 and b"cannot read" in result.stderr


def test_jsonl_one_line_out_per_line_in_and_in_order() -> None:
    event = json.loads((ROOT / "shared" / "diagnosis" / "samples" / "update-manager-post-maintenance.json").read_text())
    lines = [
        json.dumps({"text": TIMEOUT, "source": "aib"}),
        json.dumps({"text": "MaintenanceWindowExceeded", "source": "update"}),
        "this is not json",
        json.dumps({"text": "nothing we know about"}),
        json.dumps(event),
        json.dumps({"text": "KB2267602 missing again", "source": "mars"}),
        "",
    ]
    result = remediator("diagnose", "--jsonl", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(out) == len(lines)
    assert [o["scenario"] for o in out] == [
        "aib.build_timeout", "um.maintenance_window_exceeded", None, "unknown", "unknown", None, None,
    ]
    assert "error" in out[2] and out[5]["field"] == "source"
    assert [b["scenario"] for b in out[4]["batch"]] == ["none", "unknown"]
    assert set(out[0]) >= CONTRACT_KEYS


def test_samples_run_the_embedded_default() -> None:
    result = remediator("diagnose", "--samples", "--json")
    assert result.returncode == 0
    body = json.loads(result.stdout)
    scenarios = {b["sample"]: b["scenario"] for b in body if b["scenario"] not in ("none", "unknown")}
    assert scenarios == {
        "activity-log-alert.json": "aib.template_update_not_supported",
        "automation-machine-run-failed-to-start.json": "um.failed_to_start",
        "customization-log-tail.txt": "aib.low_resources",
        "image-template-timeout.json": "aib.build_timeout",
    }


def test_jsonl_with_worker_processes_keeps_every_line_in_order() -> None:
    texts = [("MaintenanceWindowExceeded", "um.maintenance_window_exceeded"),
             ("Builds finished but no artifacts were created.", "aib.no_artifacts"),
             ("nothing we know", "unknown"),
             ("KB2267602 is missing again", "um.kb2267602_missing"),
             ("Timeout waiting for microservice to complete", "aib.build_timeout")]
    count = 5003  # more than two chunks, not a multiple of the chunk size
    stdin = "".join(json.dumps({"text": texts[i % 5][0] if i % 7 else texts[i % 5][0].upper()}) + "\n"
                    for i in range(count))
    result = remediator("diagnose", "--jsonl", "--workers", "2", stdin=stdin)
    assert result.returncode == 0, result.stderr
    got = [json.loads(line)["scenario"] for line in result.stdout.decode().splitlines()]
    assert got == [texts[i % 5][1] for i in range(count)]
