"""Enrichment reads what the payload lacks, and the diagnosis uses it: the live template and
its customization.log, the guide's Log Analytics queries where a workspace is known."""

from __future__ import annotations

from remediations.context import Context
from sandbox import AzureDouble
from shared.core.domain import Failure, Family, SourceKind
from shared.diagnosis.enrichment import diagnose, enrich
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


def test_a_failure_the_text_cannot_place_is_looked_for_in_the_workspace(double: AzureDouble, ctx: Context) -> None:
    failure = Failure(SourceKind.TEXT, True, ("Since Friday our servers report nothing anymore",), Family.UPDATE)
    d = diagnose(failure, ctx)
    assert d.scenario == "um.not_showing"
    assert any("OverQuota" in e for e in d.evidence)


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
