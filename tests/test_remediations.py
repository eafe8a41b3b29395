"""Every remediation against the local Azure double, through the real SDK clients:
apply, then nothing left to do; dry run changes nothing; limits hold; throttling and 5xx
are retried; permanent errors are reported; a template is never lost."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from remediations.base import Result, registry
from remediations.context import Context
from remediations.limits import Limits
from remediations.runner import execute
from sandbox import AzureDouble
from tests.sandbox import Sleeps, make_context

WRITES = ("PUT", "PATCH", "POST", "DELETE")
# (remediation, sandbox ref of its target) covering every remediation of scenarios.md.
CASES = [
    ("register-resource-provider", "subscription"),
    ("extend-maintenance-window", "suc:weekly-windows-critical"),
    ("extend-maintenance-window", "maintenance:mc-prod-weekly"),
    ("increase-image-build-timeout", "template:tpl-win2022-timeout"),
    ("increase-image-build-timeout", "template:tpl-ubuntu-sig"),
    ("increase-image-build-vm-size", "template:tpl-win2019-lowres"),
    ("rerun-image-build", "template:tpl-rhel-noartifacts"),
    ("recreate-image-template", "template:tpl-win11-conflict"),
    ("readd-changed-machines", "suc:monthly-linux-security"),
    ("remove-missing-machines", "suc:monthly-linux-security"),
    # Azure Update Manager (the sandbox's `<scenario>:<role>` refs; rules in tests/test_update_manager_remediations.py)
    ("extend-maintenance-window", "um.maintenance_window_exceeded:schedule"),
    ("set-customer-managed-schedules", "aum.schedule_prereq_not_set:vm"),
    ("set-customer-managed-schedules", "aum.schedule_prereq_not_set:vm-no-bypass"),
    ("enable-periodic-assessment", "aum.periodic_assessment_not_enabled:vm"),
    ("reinstall-patch-extension", "aum.extension_failed:vm"),
    ("reinstall-patch-extension", "aum.auto_assessment_not_running:vm"),
    ("assess-patches-now", "aum.internal_execution_error:vm"),
    ("install-patches-now", "aum.reboot_not_completed:vm"),
    ("install-patches-now", "aum.run_cancelled_by_platform:vm"),
    ("start-machines-before-window", "aum.machine_unavailable:vm"),
    ("restart-machine", "aum.reboot_required:vm"),
    ("reassign-maintenance-configuration", "aum.schedule_not_triggered:vm"),
    ("exclude-failed-packages", "um.run_failed_linux:vm"),
    ("exclude-failed-packages", "um:schedule:linux"),
]


def target(double: AzureDouble, ref: str) -> str:
    value = double.refs[ref]
    return f"/subscriptions/{value}" if ref == "subscription" else value


def writes(double: AzureDouble) -> list[str]:
    """Changing requests (LRO polls and reads excluded), as 'METHOD operation'."""
    return [f"{r.method} {r.operation}" for r in double.requests
            if r.method in WRITES and r.operation not in ("resourceGraph.resources", "logs.query", "logs.batch")]


def test_the_registry_holds_every_required_remediation() -> None:
    assert {name for name, _ in CASES} == set(registry().items)


@pytest.mark.parametrize(("name", "ref"), CASES, ids=[f"{n}:{r.split(':')[-1]}" for n, r in CASES])
def test_apply_then_apply_again_is_a_noop(double: AzureDouble, ctx: Context, name: str, ref: str) -> None:
    """Registry-wide idempotency: the second run plans nothing and changes nothing."""
    first = execute(name, target(double, ref), {}, ctx)
    assert first.result is Result.APPLIED, first.error
    assert first.verified and first.changes
    changed = writes(double)
    assert changed, "applying changed nothing on the double"
    double.clear_requests()
    second = execute(name, target(double, ref), {}, ctx)
    assert second.result is Result.NOOP, (second.error, second.changes)
    assert writes(double) == [], "a no-op must not write"


@pytest.mark.parametrize(("name", "ref"), CASES, ids=[f"{n}:{r.split(':')[-1]}" for n, r in CASES])
def test_dry_run_shows_the_change_and_changes_nothing(double: AzureDouble, ctx: Context, name: str,
                                                       ref: str) -> None:
    outcome = execute(name, target(double, ref), {}, ctx, dry_run=True)
    assert outcome.result is Result.DRY_RUN, outcome.error
    assert all(c.before != c.after for c in outcome.changes)
    assert writes(double) == []


def test_extend_window_adds_one_step_to_the_window_the_run_had(double: AzureDouble, ctx: Context) -> None:
    suc = double.refs["suc:weekly-windows-critical"]
    outcome = execute("extend-maintenance-window", suc, {}, ctx)
    assert [(c.before, c.after) for c in outcome.changes] == [("PT2H", "PT3H")]
    body = double.state.get(suc)
    assert body is not None and body["properties"]["updateConfiguration"]["duration"] == "PT3H"
    # everything else of the deployment is kept as it was
    assert body["properties"]["scheduleInfo"]["frequency"] and body["properties"]["updateConfiguration"]["windows"]


def test_extend_window_never_goes_past_six_hours(double: AzureDouble, ctx: Context) -> None:
    suc = double.refs["suc:weekly-windows-critical"]
    refused = execute("extend-maintenance-window", suc, {"duration": "PT7H"}, ctx)
    assert refused.result is Result.FAILED and "maximum" in (refused.error or "")
    tight = make_context(double, limits=Limits(automation_max_window=Limits().window_step * 2))
    capped = execute("extend-maintenance-window", suc, {}, tight)
    assert capped.result is Result.FAILED and "already at the maximum" in (capped.error or "")
    assert writes(double) == []


def test_update_manager_window_is_patched_within_its_limit(double: AzureDouble, ctx: Context) -> None:
    mc = double.refs["maintenance:mc-prod-weekly"]
    outcome = execute("extend-maintenance-window", mc, {"duration": "03:55"}, ctx)
    assert outcome.result is Result.APPLIED
    # GET then PUT the whole configuration: PATCH's partial-body behaviour is not specified (DESIGN.md,
    # "Azure Update Manager facts"; Maintenance REST spec 2023-04-01 documents no merge semantics for Update)
    assert writes(double) == ["PUT maintenanceConfigurations.put"]
    over = execute("extend-maintenance-window", double.refs["maintenance:mc-dev-daily"], {"duration": "04:30"}, ctx)
    assert over.result in (Result.FAILED, Result.NOOP)
    if over.result is Result.FAILED:
        assert "maximum" in (over.error or "")


def test_build_timeout_doubles_and_never_passes_the_limit(double: AzureDouble, ctx: Context) -> None:
    tpl = double.refs["template:tpl-win2022-timeout"]
    refused = execute("increase-image-build-timeout", tpl, {"minutes": "1200"}, ctx)
    assert refused.result is Result.FAILED and "960" in (refused.error or "")
    outcome = execute("increase-image-build-timeout", tpl, {}, ctx)
    first = outcome.changes[0]
    assert (first.field, first.before, first.after) == ("properties.buildTimeoutInMinutes", 60, 120)
    body = double.state.get(tpl)
    assert body is not None and body["properties"]["buildTimeoutInMinutes"] == 120
    assert body["properties"]["lastRunStatus"]["runState"] in ("Running", "Succeeded")
    # the service refuses updates in place: the template was deleted, then created, then run
    assert writes(double) == ["DELETE imageTemplates.delete", "PUT imageTemplates.put", "POST imageTemplates.run"]


def test_a_template_at_the_timeout_limit_is_refused_not_changed(double: AzureDouble, ctx: Context) -> None:
    tpl = double.refs["template:tpl-win2022-timeout"]
    body = copy.deepcopy(double.state.get(tpl))
    assert body is not None
    body["properties"]["buildTimeoutInMinutes"] = 960
    double.state.put(tpl, body)
    outcome = execute("increase-image-build-timeout", tpl, {}, ctx)
    assert outcome.result is Result.FAILED and "limit of 960" in (outcome.error or "")
    assert writes(double) == []


def test_vm_size_moves_one_step_up_the_ladder_and_stops_at_the_top(double: AzureDouble, ctx: Context) -> None:
    tpl = double.refs["template:tpl-win2019-lowres"]
    outcome = execute("increase-image-build-vm-size", tpl, {}, ctx)
    assert outcome.changes[0].after == "Standard_D2ds_v4"
    assert writes(double) == ["PATCH imageTemplates.patch", "POST imageTemplates.run"]
    double.state.finish_operations()  # that build ends; say the next one failed too, on the top size
    top = copy.deepcopy(double.state.get(tpl))
    assert top is not None
    top["properties"]["vmProfile"]["vmSize"] = "Standard_D8ds_v4"
    top["properties"]["lastRunStatus"]["runState"] = "Failed"
    double.state.put(tpl, top)
    refused = execute("increase-image-build-vm-size", tpl, {}, ctx)
    assert refused.result is Result.FAILED and "top of the ladder" in (refused.error or "")


def test_readd_removes_and_readds_only_the_machine_whose_id_changed(double: AzureDouble, ctx: Context) -> None:
    suc = double.refs["suc:monthly-linux-security"]
    before = copy.deepcopy(double.state.get(suc))
    outcome = execute("readd-changed-machines", suc, {}, ctx)
    assert outcome.result is Result.APPLIED
    assert [c.before for c in outcome.changes] == [
        f"{double.refs['vm-web-02']} (SourceComputerId {double.refs['scid:vm-web-02:old']})"]
    assert writes(double) == ["PUT softwareUpdateConfigurations.put"] * 2
    after = double.state.get(suc)
    assert before is not None and after is not None
    assert sorted(after["properties"]["updateConfiguration"]["azureVirtualMachines"]) == sorted(
        before["properties"]["updateConfiguration"]["azureVirtualMachines"])


def test_only_machines_verified_gone_are_removed(double: AzureDouble, ctx: Context) -> None:
    suc = double.refs["suc:monthly-linux-security"]
    outcome = execute("remove-missing-machines", suc, {}, ctx)
    assert outcome.result is Result.APPLIED
    after = double.state.get(suc)
    assert after is not None
    vms = after["properties"]["updateConfiguration"]["azureVirtualMachines"]
    assert double.refs["vm-web-03"] not in vms  # ARM answers 404 for it
    assert double.refs["vm-web-02"] in vms  # failed to start, but exists: it stays


def test_provider_registration_waits_for_registered(double: AzureDouble, ctx: Context, sleeps: Sleeps) -> None:
    sub = f"/subscriptions/{double.refs['subscription']}"
    outcome = execute("register-resource-provider", sub, {}, ctx)
    assert outcome.result is Result.APPLIED and outcome.verified
    assert sleeps.calls, "registration is asynchronous: it was polled"
    refused = execute("register-resource-provider", sub, {"namespace": "Microsoft.Storage"}, ctx)
    assert refused.result is Result.FAILED and "register_namespaces" in (refused.error or "")


def test_throttling_is_retried_honouring_retry_after(double: AzureDouble, ctx: Context, sleeps: Sleeps) -> None:
    tpl = double.refs["template:tpl-rhel-noartifacts"]
    double.faults.fail_next("imageTemplates.run", 2, status=429, retry_after=7)
    outcome = execute("rerun-image-build", tpl, {}, ctx)
    assert outcome.result is Result.APPLIED, outcome.error
    assert sleeps.calls.count(7.0) == 2
    assert len(double.requests_for("imageTemplates.run", "POST")) == 3


def test_server_errors_are_retried_then_reported(double: AzureDouble, ctx: Context) -> None:
    suc = double.refs["suc:weekly-windows-critical"]
    double.faults.fail_next("softwareUpdateConfigurations.put", 2, status=503)
    assert execute("extend-maintenance-window", suc, {}, ctx).result is Result.APPLIED
    double.state.put(suc, _with_duration(double.state.get(suc), "PT2H"))
    double.faults.fail_next("softwareUpdateConfigurations.put", 50, status=500)
    outcome = execute("extend-maintenance-window", suc, {}, ctx)
    assert outcome.result is Result.FAILED and outcome.transient and "HTTP 500" in (outcome.error or "")


def test_a_permanent_error_is_reported_with_its_code_and_not_retried(double: AzureDouble, ctx: Context) -> None:
    tpl = double.refs["template:tpl-rhel-noartifacts"]
    double.faults.fail_next("imageTemplates.run", 1, status=403)
    outcome = execute("rerun-image-build", tpl, {}, ctx)
    assert outcome.result is Result.FAILED and not outcome.transient
    assert "HTTP 403" in (outcome.error or "")
    assert len(double.requests_for("imageTemplates.run", "POST")) == 1


def test_a_failed_recreate_restores_the_original_template(double: AzureDouble, ctx: Context) -> None:
    tpl = double.refs["template:tpl-win2022-timeout"]
    original = double.state.get(tpl)
    assert original is not None
    double.faults.fail_next("imageTemplates.put", 1, status=400)
    outcome = execute("increase-image-build-timeout", tpl, {}, ctx)
    assert outcome.result is Result.FAILED and "original definition restored" in (outcome.error or "")
    restored = double.state.get(tpl)
    assert restored is not None
    assert restored["properties"]["buildTimeoutInMinutes"] == original["properties"]["buildTimeoutInMinutes"]
    assert restored["properties"]["customize"] == original["properties"]["customize"]
    assert ctx.vault.get(tpl) is None


def test_a_recreate_interrupted_after_the_delete_is_finished_by_the_next_attempt(double: AzureDouble,
                                                                                  ctx: Context) -> None:
    tpl = double.refs["template:tpl-win2022-timeout"]
    planned = execute("increase-image-build-timeout", tpl, {}, ctx, dry_run=True)
    assert planned.plan is not None
    # the process died right after the delete: the vault holds the definition, the template is gone
    ctx.vault.keep(tpl, dict(planned.plan.request["original"]), dict(planned.plan.request["intended"]))
    double.state.delete(tpl)
    resumed = execute("increase-image-build-timeout", tpl, {}, ctx)
    assert resumed.result is Result.APPLIED, resumed.error
    assert resumed.changes[0].action == "restore"
    body = double.state.get(tpl)
    assert body is not None and body["properties"]["buildTimeoutInMinutes"] == 120
    assert ctx.vault.get(tpl) is None


def test_a_missing_template_with_nothing_kept_is_an_error(double: AzureDouble, ctx: Context) -> None:
    tpl = double.refs["template:tpl-win2022-timeout"]
    double.state.delete(tpl)
    outcome = execute("rerun-image-build", tpl, {}, ctx)
    assert outcome.result is Result.FAILED and "does not exist" in (outcome.error or "")


def _with_duration(body: Any, duration: str) -> Any:
    body = copy.deepcopy(body)
    body["properties"]["updateConfiguration"]["duration"] = duration
    return body


def test_sleeps_fixture_is_the_retry_sleep(sleeps: Sleeps, ctx: Context) -> None:
    assert ctx.sleep is sleeps
