"""Enrichment reads what the payload lacks, and the diagnosis uses it: the live template and
its customization.log, the guide's Log Analytics queries where a workspace is known."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from remediations.context import Context
from sandbox import AzureDouble
from shared.core.domain import Failure, Family, SourceKind
from shared.diagnosis.enrichment import PROBE_LOOKBACK, diagnose, enrich
from shared.diagnosis.envelopes import parse_payload
from tests.pipeline_helpers import arm_failure_event


def test_an_arm_event_is_diagnosed_from_the_live_template_and_its_build_log(double: AzureDouble,
                                                                            ctx: Context) -> None:
    [failure] = parse_payload(arm_failure_event(double.refs["template:tpl-win2019-lowres"]))
    assert failure.fact("build_log_url") is None, "the event itself says only that the run failed"
    d = diagnose(failure, ctx)
    assert d.scenario == "aib.low_resources"
    assert d.failure is not None and int(d.failure.fact("build_log_bytes") or 0) > 100_000
    assert any("1115" in e or "unexpected EOF" in e for e in d.evidence)


def test_machines_missing_from_update_management_come_with_the_guides_query_results(double: AzureDouble,
                                                                                   ctx: Context) -> None:
    failure = Failure(SourceKind.TEXT, True, ("Two servers show Not configured in Update Management although "
                                              "the heartbeat is there",), Family.UPDATE)
    d = diagnose(failure, ctx)
    assert d.scenario == "um.not_showing"
    by_query = {r.query.split()[0]: r for r in d.query_results}
    assert by_query["Heartbeat"].rows and by_query["Operation"].rows
    assert any("OverQuota" in str(row.get("Detail")) for row in by_query["Operation"].rows)
    assert "query_results" in d.to_dict()


def _overquota_at(double: AzureDouble) -> datetime:
    [row] = [r for r in double.state.log_rows("Operation") if "OverQuota" in str(r.get("Detail"))]
    when: datetime = row["TimeGenerated"]
    return when


def test_an_update_failure_the_text_cannot_place_is_shown_its_own_windows_overquota_record(
        double: AzureDouble, ctx: Context) -> None:
    """Defect: the OverQuota probe ran over the whole workspace for 30 days and its one row became
    the only evidence of `um.not_showing`. Now it reads the failure's own window (the day before it)
    and machines, and shows what it found beside the diagnosis, never as its only evidence."""
    quota = _overquota_at(double)
    failure = Failure(SourceKind.TEXT, True, ("Since Friday our servers report nothing anymore",), Family.UPDATE,
                      facts=(("target_computer", "vm-app-01"),), started_at=quota + timedelta(hours=3))
    d = diagnose(failure, ctx)
    assert d.scenario == "unknown" and not any("OverQuota" in e for e in d.evidence)
    [probe] = [r for r in d.query_results if "OverQuota" in r.query]
    assert [row["Detail"] for row in probe.rows] == [
        "Data collection stopped due to daily limit of free data reached. Ingestion status = OverQuota"]
    assert '"vm-app-01"' in probe.query  # the failure's own machine (and workspace-wide records)
    [request] = [r for r in double.requests_for("logs.query") if "OverQuota" in r.body]
    timespan = json.loads(request.body)["timespan"]
    assert timespan.startswith((quota + timedelta(hours=3) - PROBE_LOOKBACK).strftime("%Y-%m-%dT%H:%M"))


def test_an_overquota_record_outside_the_failures_window_is_not_read(double: AzureDouble, ctx: Context) -> None:
    failure = Failure(SourceKind.TEXT, True, ("Since Friday our servers report nothing anymore",), Family.UPDATE,
                      started_at=_overquota_at(double) + timedelta(days=2))
    [probe] = [r for r in diagnose(failure, ctx).query_results if "OverQuota" in r.query]
    assert probe.rows == () and probe.error is None


def test_only_lines_of_the_failures_own_text_count_as_its_own_evidence() -> None:
    """What decides whether a probed diagnosis stands: an evidence line from the failure itself."""
    from shared.diagnosis.enrichment import _own

    assert _own("The heartbeat is there but the machines are missing", ("Ticket: The heartbeat is there but "
                                                                         "the machines  are missing.",))
    assert not _own("Operation at 2026-11-20 (workspace): Ingestion status = OverQuota", ("servers are silent",))


def test_failures_of_no_update_family_never_query_the_workspace(double: AzureDouble, ctx: Context) -> None:
    """A CPU metric alert, an ARM write failure of a storage account: nothing in the workspace is about them."""
    for texts in (("alert rule: WCUS-R2-Gen2", "metricName: Percentage CPU"),
                  ("Microsoft.Storage/storageAccounts/write Failed (Microsoft.Resources.ResourceWriteFailure)",)):
        d = diagnose(Failure(SourceKind.ALERT, True, texts), ctx)
        assert d.scenario == "unknown" and d.query_results == ()
    assert double.requests_for("logs.query") == []


def test_without_a_workspace_no_query_runs(double: AzureDouble, ctx: Context) -> None:
    ctx.workspace_id = None
    failure = Failure(SourceKind.TEXT, True, ("servers show Not configured in Update Management",), Family.UPDATE)
    d = diagnose(failure, ctx)
    assert d.query_results == () and double.requests_for("logs.query") == []


def test_a_query_that_fails_is_reported_and_the_diagnosis_stands(double: AzureDouble, ctx: Context) -> None:
    double.faults.fail_next("logs.query", 10, status=403)
    failure = Failure(SourceKind.TEXT, True, ("servers show Not configured in Update Management",), Family.UPDATE)
    d = diagnose(failure, ctx)
    assert d.scenario == "um.not_showing"
    assert d.query_results and all(r.error and "HTTP 403" in r.error for r in d.query_results)


def test_a_build_log_that_cannot_be_read_is_recorded_not_fatal(double: AzureDouble, ctx: Context) -> None:
    double.faults.fail_next("blob.get", 10, status=404)
    [failure] = parse_payload(arm_failure_event(double.refs["template:tpl-rhel-noartifacts"]))
    enriched = enrich(failure, ctx)
    assert enriched.fact("enrichment_error")
    assert diagnose(failure, ctx).scenario == "aib.no_artifacts"


def test_a_build_log_url_off_the_allowed_hosts_is_refused(double: AzureDouble, ctx: Context) -> None:
    body = double.state.get(double.refs["template:tpl-rhel-noartifacts"])
    assert body is not None
    body["properties"]["lastRunStatus"]["message"] += " log: https://evil.example/packerlogs/x/customization.log"
    body["properties"]["lastRunStatus"]["message"] = body["properties"]["lastRunStatus"]["message"].replace(
        double.url, "https://attacker.example")
    double.state.put(body["id"], body)
    [failure] = parse_payload(arm_failure_event(body["id"]))
    enriched = enrich(failure, ctx)
    assert "build logs are fetched only from" in (enriched.fact("enrichment_error") or "")
    assert double.requests_for("blob.get") == []
