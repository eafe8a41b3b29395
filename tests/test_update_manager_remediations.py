"""The Azure Update Manager remediations against the local Azure double, through the real SDK clients
(azure-mgmt-compute, azure-mgmt-hybridcompute, azure-mgmt-maintenance, azure-mgmt-resourcegraph): what the
service refuses is refused before it is sent, with the reason; the schedule rules; the fleet limits; and the
PreMaintenanceEvent gate that fixes or proposes before the window. Each test names the rule it stands for.
(Apply-then-no-op, dry run and faults for every remediation: tests/test_remediations.py's CASES.)
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from remediations.base import Result, check_request, registry
from remediations.context import Context
from remediations.limits import Limits
from remediations.runner import execute
from remediations.update_manager import timing
from sandbox import AzureDouble, Column, LogTable
from shared.approvals.flow import confirmation, links
from shared.core.errors import PayloadError
from shared.decisions.pipeline import handle_event
from shared.state.approvals import Approvals
from shared.wiring import App
from tests.sandbox import Sleeps, make_context

WRITES = ("PUT", "PATCH", "POST", "DELETE")
PREREQ = "https://learn.microsoft.com/azure/update-manager/prerequsite-for-schedule-patching"
TROUBLESHOOT = "https://learn.microsoft.com/azure/update-manager/troubleshoot"
PRE_POST = "https://learn.microsoft.com/azure/update-manager/pre-post-scripts-overview"
MANAGE_PRE_POST = "https://learn.microsoft.com/azure/update-manager/manage-pre-post-events"


def writes(double: AzureDouble) -> list[str]:
    return [f"{r.method} {r.operation}" for r in double.requests
            if r.method in WRITES and r.operation not in ("resourceGraph.resources", "logs.query", "logs.batch")]


def bodies(double: AzureDouble, operation: str) -> list[dict[str, Any]]:
    return [json.loads(r.body or "{}") for r in double.requests if r.operation == operation]


def edit(double: AzureDouble, resource_id: str, change: Any) -> None:
    body = copy.deepcopy(double.state.get(resource_id))
    assert body is not None
    change(body)
    double.state.put(resource_id, body)


# ---------------------------------------------------------------- set-customer-managed-schedules


def test_the_prerequisite_patch_sends_only_patch_settings(double: AzureDouble, ctx: Context) -> None:
    """PREREQ ("Enable schedule patching on Azure VMs"): patchMode AutomaticByPlatform and the bypass flag; the
    page's own JSON also sends enableAutomaticUpdates, which fails with PropertyChangeNotAllowed where the VM has
    another value (MicrosoftDocs/azure-docs#112633): never sent."""
    vm = double.refs["aum.schedule_prereq_not_set:vm"]
    outcome = execute("set-customer-managed-schedules", vm, {}, ctx)
    assert outcome.result is Result.APPLIED, outcome.error
    [body] = bodies(double, "virtualMachines.patch")
    assert body == {"properties": {"osProfile": {"windowsConfiguration": {"patchSettings": {
        "patchMode": "AutomaticByPlatform",
        "automaticByPlatformSettings": {"bypassPlatformSafetyChecksOnUserSchedule": True}}}}}}
    assert "enableAutomaticUpdates" not in json.dumps(body)


def test_automatic_by_platform_settings_always_travel_with_the_patch_mode(double: AzureDouble, ctx: Context) -> None:
    """'AutomaticByPlatformSettings cannot be set if the PatchMode is not AutomaticByPlatform.'
    (Azure/bicep-registry-modules#2081): the flag-only flip still names the patch mode in the same body."""
    vm = double.refs["aum.schedule_prereq_not_set:vm-no-bypass"]
    outcome = execute("set-customer-managed-schedules", vm, {"only": "bypass"}, ctx)
    assert outcome.result is Result.APPLIED, outcome.error
    assert [c.field.rsplit(".", 1)[-1] for c in outcome.changes] == ["bypassPlatformSafetyChecksOnUserSchedule"]
    [body] = bodies(double, "virtualMachines.patch")
    settings = body["properties"]["osProfile"]["linuxConfiguration"]["patchSettings"]
    assert settings["patchMode"] == "AutomaticByPlatform" and settings["automaticByPlatformSettings"]


def test_only_bypass_refuses_a_patch_mode_change(double: AzureDouble, ctx: Context) -> None:
    """scenarios.md aum.schedule_prereq_not_set: auto for the bypass flag only, approval for a patchMode change."""
    outcome = execute("set-customer-managed-schedules", double.refs["aum.schedule_prereq_not_set:vm"],
                      {"only": "bypass"}, ctx)
    assert outcome.result is Result.FAILED and "patchMode must change too" in (outcome.error or "")
    assert writes(double) == []


def test_a_vm_without_os_profile_is_refused_with_the_reason(double: AzureDouble, ctx: Context) -> None:
    """A VM created from a specialised or attached disk has no osProfile, and Compute refuses adding one
    (409 PropertyChangeNotAllowed "Changing property 'osProfile' is not allowed."): refused, nothing sent."""
    outcome = execute("set-customer-managed-schedules", double.refs["aum.schedule_prereq_not_set:vm-no-os-profile"],
                      {}, ctx)
    assert outcome.result is Result.FAILED and not outcome.transient
    assert "no osProfile" in (outcome.error or "") and "PropertyChangeNotAllowed" in (outcome.error or "")
    assert writes(double) == []


def test_enable_automatic_updates_false_is_refused_not_sent(double: AzureDouble, ctx: Context) -> None:
    """Compute PatchSettings.patchMode: "AutomaticByPlatform - The properties provisionVMAgent and
    WindowsConfiguration.enableAutomaticUpdates must be true"; changing enableAutomaticUpdates after creation is
    refused (PropertyChangeNotAllowed, MicrosoftDocs/azure-docs#112633): the plan refuses with that reason."""
    vm = double.refs["aum.schedule_prereq_not_set:vm"]

    def manual(body: dict[str, Any]) -> None:
        config = body["properties"]["osProfile"]["windowsConfiguration"]
        config["enableAutomaticUpdates"] = False
        config["patchSettings"]["patchMode"] = "Manual"

    edit(double, vm, manual)
    outcome = execute("set-customer-managed-schedules", vm, {}, ctx)
    assert outcome.result is Result.FAILED and "enableAutomaticUpdates false" in (outcome.error or "")
    assert writes(double) == []


# ---------------------------------------------------------------- enable-periodic-assessment


def test_periodic_assessment_is_enabled_on_an_arc_machine_by_machine_patch(double: AzureDouble, ctx: Context) -> None:
    """HybridCompute Machines_Update example: properties.osProfile.<os>Configuration.patchSettings.assessmentMode."""
    arc = double.refs["um:arc-connected"]
    edit(double, arc, lambda b: b["properties"]["osProfile"]["windowsConfiguration"]["patchSettings"].update(
        assessmentMode="ImageDefault"))
    outcome = execute("enable-periodic-assessment", arc, {}, ctx)
    assert outcome.result is Result.APPLIED, outcome.error
    assert writes(double) == ["PATCH machines.patch"]
    [body] = bodies(double, "machines.patch")
    assert body == {"properties": {"osProfile": {"windowsConfiguration": {"patchSettings": {
        "assessmentMode": "AutomaticByPlatform"}}}}}
    double.clear_requests()
    assert execute("enable-periodic-assessment", arc, {}, ctx).result is Result.NOOP
    assert writes(double) == []


# ---------------------------------------------------------------- reinstall-patch-extension


def test_the_extension_is_removed_then_reinstalled_by_an_assessment(double: AzureDouble, ctx: Context) -> None:
    """TROUBLESHOOT "Windows/Linux patch update extension isn't installed": remove the extension that is not
    Succeeded and trigger an on-demand operation, which installs it again."""
    vm = double.refs["aum.extension_failed:vm"]
    outcome = execute("reinstall-patch-extension", vm, {}, ctx)
    assert outcome.result is Result.APPLIED, outcome.error
    assert writes(double) == ["DELETE virtualMachineExtensions.delete", "POST virtualMachines.assessPatches"]
    assert ctx.vault.get(vm) is None


def test_a_reinstall_interrupted_after_the_removal_is_finished(double: AzureDouble, ctx: Context) -> None:
    """The intent is kept before the first step: the machine never stays without its patch extension."""
    vm = double.refs["aum.extension_failed:vm"]
    planned = execute("reinstall-patch-extension", vm, {}, ctx, dry_run=True)
    assert planned.plan is not None
    ctx.vault.keep(vm, {"extension": "LinuxPatchExtension"}, dict(planned.plan.request),
                   remediation="reinstall-patch-extension")
    ctx.patching.delete_vm_extension(vm, "LinuxPatchExtension")  # the process died right after this
    resumed = execute("reinstall-patch-extension", vm, {}, ctx)
    assert resumed.result is Result.APPLIED and resumed.plan is not None and resumed.plan.resume
    assert ctx.vault.get(vm) is None
    assert execute("reinstall-patch-extension", vm, {}, ctx).result is Result.NOOP


def test_extensions_are_not_touched_on_a_vm_that_is_not_running(double: AzureDouble, ctx: Context) -> None:
    """Compute: "Cannot modify extensions in the VM when the VM is not running." -> refused before the DELETE."""
    vm = double.refs["aum.extension_failed:vm"]
    r = vm.split("/")
    ctx.clients.compute(r[2]).virtual_machines.begin_deallocate(r[4], r[-1], polling_interval=0).result()
    double.clear_requests()
    outcome = execute("reinstall-patch-extension", vm, {}, ctx)
    assert outcome.result is Result.FAILED and "deallocated" in (outcome.error or "")
    assert writes(double) == []


def test_a_reinstall_that_did_not_help_is_not_repeated_the_same_day(double: AzureDouble, ctx: Context) -> None:
    """scenarios.md reinstall-patch-extension: at most once per machine per day."""
    vm = double.refs["aum.extension_failed:vm"]
    assert execute("reinstall-patch-extension", vm, {}, ctx).result is Result.APPLIED
    ext = f"{vm}/extensions/LinuxPatchExtension"
    edit(double, ext, lambda b: b["properties"].update(provisioningState="Failed"))
    view = double.state.instance_view(vm)
    assert view is not None
    for item in view["extensions"]:
        item["statuses"][0]["code"] = "ProvisioningState/failed"
    double.state.set_instance_view(vm, view)
    double.clear_requests()
    again = execute("reinstall-patch-extension", vm, {}, ctx)
    assert again.result is Result.FAILED and "at most once per machine per day" in (again.error or "")
    assert writes(double) == []


# ---------------------------------------------------------------- assess-patches-now


def test_an_internal_execution_error_is_retried_once(double: AzureDouble, ctx: Context, sleeps: Sleeps) -> None:
    """'An internal execution error occurred. Please retry later.' (VMGuestPatchInternalError,
    Azure/azure-rest-api-specs#31144): started once more after a pause, then the plan is empty."""
    vm = double.refs["aum.internal_execution_error:vm"]
    outcome = execute("assess-patches-now", vm, {}, ctx)
    assert outcome.result is Result.APPLIED, outcome.error
    assert writes(double) == ["POST virtualMachines.assessPatches"] * 2
    assert sleeps.calls.count(30.0) == 1
    assert execute("assess-patches-now", vm, {}, ctx).result is Result.NOOP


# ---------------------------------------------------------------- install-patches-now


def test_the_one_time_install_uses_the_schedules_own_settings(double: AzureDouble, ctx: Context) -> None:
    """scenarios.md install-patches-now: the schedule's classifications, exclusions, reboot setting and a duration
    within its window (VirtualMachineInstallPatchesParameters, spec example VirtualMachine_InstallPatches)."""
    vm = double.refs["aum.reboot_not_completed:vm"]
    config = double.refs["um:schedule:linux"]
    edit(double, config, lambda b: b["properties"]["installPatches"]["linuxParameters"].update(
        packageNameMasksToExclude=["kernel*"]))
    outcome = execute("install-patches-now", vm, {}, ctx)
    assert outcome.result is Result.APPLIED, outcome.error
    [body] = bodies(double, "virtualMachines.installPatches")
    assert body == {"maximumDuration": "PT2H", "rebootSetting": "IfRequired",
                    "linuxParameters": {"classificationsToInclude": ["Critical", "Security"],
                                        "packageNameMasksToExclude": ["kernel*"]}}


def test_a_run_cancelled_through_the_cancellation_api_was_not_missed(double: AzureDouble, ctx: Context) -> None:
    """MANAGE_PRE_POST "View the status of a canceled schedule run": a cancellation by the user is no failure."""
    vm = double.refs["aum.run_cancelled_by_platform:vm"]
    outcome = execute("install-patches-now", vm, {"configuration": double.refs["none:user-cancelled-schedule"]}, ctx)
    assert outcome.result is Result.NOOP


def test_no_install_is_sent_to_a_deallocated_vm(double: AzureDouble, ctx: Context) -> None:
    """Compute refuses installPatches on a VM that is not running (OperationNotAllowed): refused first."""
    outcome = execute("install-patches-now", double.refs["aum.machine_unavailable:vm"], {}, ctx)
    assert outcome.result is Result.FAILED and "deallocated" in (outcome.error or "")
    assert writes(double) == []


# ---------------------------------------------------------------- start / restart


def test_a_start_asked_for_after_its_deadline_is_refused(double: AzureDouble, ctx: Context) -> None:
    """TROUBLESHOOT "Unable to apply patches for the shutdown machines": on at least 15 minutes before the run;
    a start the gate asked for by then and carried out later is refused with the reason."""
    late = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    outcome = execute("start-machines-before-window", double.refs["aum.machine_unavailable:vm"], {"before": late}, ctx)
    assert outcome.result is Result.FAILED and "too late" in (outcome.error or "")
    assert writes(double) == []


def test_arc_machines_cannot_be_started_or_restarted_by_arm() -> None:
    """HybridCompute has no start or restart operation: an Arc machine is refused as a target, naming the field."""
    arc = "/subscriptions/s/resourceGroups/g/providers/Microsoft.HybridCompute/machines/m"
    for name in ("start-machines-before-window", "restart-machine", "set-customer-managed-schedules"):
        with pytest.raises(PayloadError):
            check_request(registry().items[name], arc, {})


def test_a_deallocated_vm_is_not_restarted(double: AzureDouble, ctx: Context) -> None:
    """Compute refuses restarting a deallocated VM (OperationNotAllowed): refused, naming start instead."""
    vm = double.refs["aum.reboot_required:vm"]
    r = vm.split("/")
    ctx.clients.compute(r[2]).virtual_machines.begin_deallocate(r[4], r[-1], polling_interval=0).result()
    double.clear_requests()
    outcome = execute("restart-machine", vm, {}, ctx)
    assert outcome.result is Result.FAILED and "start it instead" in (outcome.error or "")
    assert writes(double) == []


# ---------------------------------------------------------------- reassign-maintenance-configuration


def test_a_deleted_assignment_is_put_back(double: AzureDouble, ctx: Context) -> None:
    """TROUBLESHOOT "Maintenance configuration isn't applied when VM is moved ...": re-create the assignment."""
    vm = double.refs["aum.schedule_not_triggered:vm"]
    config = double.refs["aum.schedule_not_triggered:schedule"]
    ctx.patching.delete_assignment(vm, f"{config.rsplit('/', 1)[-1]}-{vm.rsplit('/', 1)[-1]}")
    double.clear_requests()
    outcome = execute("reassign-maintenance-configuration", vm, {"configuration": config}, ctx)
    assert outcome.result is Result.APPLIED, outcome.error
    assert writes(double) == ["PUT configurationAssignments.put"]
    assert outcome.changes[0].before is None


# ---------------------------------------------------------------- exclude-failed-packages


def test_failed_packages_are_excluded_from_the_automation_deployment(double: AzureDouble, ctx: Context) -> None:
    """Automation softwareUpdateConfigurations: updateConfiguration.linux.excludedPackageNameMasks; the failed
    updates of the run from Log Analytics UpdateRunProgress (learn.microsoft.com/azure/azure-monitor/reference/
    tables/updaterunprogress: CorrelationId, InstallationStatus, Product, KBID)."""
    from sandbox.state import _load_table

    suc = double.refs["suc:monthly-linux-security"]
    run = double.refs["run:monthly-linux-security"]
    columns = tuple(Column(n, "datetime" if n == "TimeGenerated" else "string") for n in (
        "TimeGenerated", "Computer", "OSType", "KBID", "Product", "Title", "InstallationStatus", "CorrelationId",
        "UpdateRunName"))
    when = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = [{"TimeGenerated": when, "Computer": "vm-web-01", "OSType": "Linux", "KBID": "", "Product": product,
             "Title": f"{product} 1.0", "InstallationStatus": status, "CorrelationId": run,
             "UpdateRunName": "monthly-linux-security"} for product, status in (("openssl", "Failed"),
                                                                                ("tzdata", "Succeeded"))]
    workspace = double.state.workspace(double.refs["workspace_id"])
    assert workspace is not None
    workspace.tables["UpdateRunProgress"] = _load_table(LogTable("UpdateRunProgress", columns, tuple(rows)))
    outcome = execute("exclude-failed-packages", suc, {}, ctx)
    assert outcome.result is Result.APPLIED, outcome.error
    assert [(c.before, c.after) for c in outcome.changes] == [(["kernel*"], ["kernel*", "openssl"])]
    double.clear_requests()
    assert execute("exclude-failed-packages", suc, {}, ctx).result is Result.NOOP
    assert writes(double) == []


def test_exclusions_keep_the_rest_of_the_schedule(double: AzureDouble, ctx: Context) -> None:
    """Maintenance REST spec 2023-04-01: installPatches.linuxParameters.packageNameMasksToExclude, set by a PUT of
    the whole configuration (extensionProperties.InGuestPatchMode is required: "Extension properties must
    contain Patch mode")."""
    config = double.refs["um:schedule:linux"]
    before = copy.deepcopy(double.state.get(config))
    outcome = execute("exclude-failed-packages", config, {}, ctx)
    assert outcome.result is Result.APPLIED, outcome.error
    assert writes(double) == ["PUT maintenanceConfigurations.put"]
    after = double.state.get(config)
    assert before is not None and after is not None
    assert after["properties"]["extensionProperties"] == before["properties"]["extensionProperties"]
    assert after["properties"]["maintenanceWindow"]["recurEvery"] == before["properties"]["maintenanceWindow"][
        "recurEvery"]
    assert set(after["properties"]["installPatches"]["linuxParameters"]["packageNameMasksToExclude"]) == {
        "openssl", "libssl3", "linux-azure"}


def test_exclusions_are_bounded(double: AzureDouble) -> None:
    ctx = make_context(double, limits=Limits(max_exclusions_per_change=2))
    outcome = execute("exclude-failed-packages", double.refs["um:schedule:linux"], {}, ctx)
    assert outcome.result is Result.FAILED and "max_exclusions_per_change (2)" in (outcome.error or "")
    assert writes(double) == []


# ---------------------------------------------------------------- extend-maintenance-window, Update Manager


def _next_run_in(double: AzureDouble, config: str, minutes: int) -> None:
    start = datetime.now(UTC) + timedelta(minutes=minutes)

    def daily(body: dict[str, Any]) -> None:
        window = body["properties"]["maintenanceWindow"]
        window.update(startDateTime=(start - timedelta(days=30)).strftime("%Y-%m-%d %H:%M"), recurEvery="Day",
                      timeZone="UTC")

    edit(double, config, daily)


def test_the_window_is_put_whole_keeping_patch_mode_and_install_settings(double: AzureDouble, ctx: Context) -> None:
    """DESIGN.md Update Manager facts: GET then PUT the whole body, keeping extensionProperties
    (InGuestPatchMode) and installPatches."""
    config = double.refs["um.maintenance_window_exceeded:schedule"]
    before = copy.deepcopy(double.state.get(config))
    assert execute("extend-maintenance-window", config, {}, ctx).result is Result.APPLIED
    [body] = bodies(double, "maintenanceConfigurations.put")
    assert before is not None
    assert body["properties"]["extensionProperties"] == before["properties"]["extensionProperties"]
    assert body["properties"]["installPatches"] == before["properties"]["installPatches"]
    assert body["properties"]["maintenanceWindow"]["duration"] == "03:55"


def test_an_edit_within_15_minutes_of_the_next_run_is_refused(double: AzureDouble, ctx: Context) -> None:
    """DESIGN.md: edits land at least 15 minutes before a run, else they do not take effect for it."""
    config = double.refs["um.maintenance_window_exceeded:schedule"]
    _next_run_in(double, config, 10)
    outcome = execute("extend-maintenance-window", config, {}, ctx)
    assert outcome.result is Result.FAILED and "within 15 minutes" in (outcome.error or "")
    assert writes(double) == []


def test_with_pre_events_an_edit_needs_40_minutes(double: AzureDouble, ctx: Context) -> None:
    """PRE_POST "Timeline of schedules for pre and post events": with a pre-event an edit needs at least 40
    minutes before the start, "otherwise it will lead to auto-cancellation of the current scheduled run"."""
    config = double.refs["um.maintenance_window_exceeded:schedule"]
    _next_run_in(double, config, 30)
    assert execute("extend-maintenance-window", config, {}, ctx, dry_run=True).result is Result.DRY_RUN
    sub, group = config.split("/")[2], config.split("/")[4]
    topic = f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.EventGrid/systemTopics/mc-events"
    double.state.put(topic, {"id": topic, "name": "mc-events", "type": "Microsoft.EventGrid/systemTopics",
                             "location": "westeurope", "properties": {
                                 "source": config, "topicType": "Microsoft.Maintenance.MaintenanceConfigurations"}})
    outcome = execute("extend-maintenance-window", config, {}, ctx)
    assert outcome.result is Result.FAILED and "cancelled" in (outcome.error or "")
    assert writes(double) == []


@pytest.mark.parametrize(("recur", "start", "now", "expected"), [
    ("Day", "2026-01-01 03:00", "2026-03-10 04:00", "2026-03-11T03:00"),
    ("Week Saturday,Sunday", "2026-01-01 03:00", "2026-03-10 04:00", "2026-03-14T03:00"),
    ("2Weeks Monday", "2026-01-05 03:00", "2026-01-06 00:00", "2026-01-19T03:00"),
    ("Month day23", "2026-01-01 22:00", "2026-03-24 00:00", "2026-04-23T22:00"),
    ("Month Second Tuesday Offset2", "2026-01-01 03:00", "2026-03-01 00:00", "2026-03-12T03:00"),
    ("Month Last Sunday", "2026-01-01 03:00", "2026-03-01 00:00", "2026-03-29T03:00"),
    ("6Hours", "2026-01-01 00:30", "2026-03-01 07:00", "2026-03-01T12:30"),
])
def test_next_occurrence_follows_the_recurrence_grammar(recur: str, start: str, now: str, expected: str) -> None:
    """Maintenance REST spec 2023-04-01 MaintenanceWindow.recurEvery ("Month Second Tuesday Offset2", ...)."""
    config = {"properties": {"maintenanceWindow": {"startDateTime": start, "timeZone": "UTC", "recurEvery": recur,
                                                   "duration": "02:00"}}}
    when = timing.next_occurrence(config, datetime.fromisoformat(now).replace(tzinfo=UTC))
    assert when is not None and when.strftime("%Y-%m-%dT%H:%M") == expected


def test_next_occurrence_reads_windows_time_zones() -> None:
    """timeZone is a Windows time zone id (what the portal writes): W. Europe Standard Time is UTC+1 in winter."""
    config = {"properties": {"maintenanceWindow": {"startDateTime": "2026-01-01 03:00", "recurEvery": "Day",
                                                   "timeZone": "W. Europe Standard Time", "duration": "02:00"}}}
    when = timing.next_occurrence(config, datetime(2026, 1, 10, 3, 0, tzinfo=UTC))
    assert when == datetime(2026, 1, 11, 2, 0, tzinfo=UTC)


# ---------------------------------------------------------------- fleet limits


def test_a_fan_out_over_the_fleet_limits_is_refused_naming_the_limit() -> None:
    """Cloud Custodian max-resources-percent style: checked before acting, the refusal names the limit."""
    assert "max_machines_per_change (2)" in (Limits(max_machines_per_change=2).fan_out_refusal(3, 100) or "")
    assert "max_fleet_share_per_hour (10% = 2" in (Limits().fan_out_refusal(3, 20) or "")
    assert Limits().fan_out_refusal(2, 20) is None
    assert Limits().fleet_allowance(5) == 1


# ---------------------------------------------------------------- the PreMaintenanceEvent gate


def _stamp(when: datetime) -> str:
    return when.strftime("%Y%m%d%H%M%S")


def pre_event(double: AzureDouble, config: str, start: datetime, event_id: str) -> dict[str, Any]:
    """learn.microsoft.com/azure/event-grid/event-schema-maintenance-configuration: a PreMaintenanceEvent."""
    run = f"{config}/providers/microsoft.maintenance/applyupdates/{_stamp(start)}".lower()
    iso = "%Y-%m-%dT%H:%M:%SZ"
    data = {"correlationId": run, "maintenanceConfigurationId": config, "startDateTime": start.strftime(iso),
            "endDateTime": (start + timedelta(hours=3)).strftime(iso),
            "cancellationCutOffDateTime": (start - timedelta(minutes=10)).strftime(iso),
            "resourceSubscriptionIds": [double.refs["um:subscription"]]}
    return {"id": event_id, "topic": config, "subject": config.rsplit("/", 1)[-1], "data": data,
            "eventType": "Microsoft.Maintenance.PreMaintenanceEvent",
            "eventTime": (start - timedelta(minutes=35)).strftime(iso), "dataVersion": "1.0", "metadataVersion": "1"}


def _tag_for_start(double: AzureDouble, vm: str) -> None:
    edit(double, vm, lambda b: b.setdefault("tags", {}).update({"remediator-start-before-window": "true"}))


def _cards(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cards").glob("*.json"))


def test_the_gate_fixes_what_policy_allows_and_proposes_the_rest_on_one_card(app: App, double: AzureDouble,
                                                                             tmp_path: Path) -> None:
    """scenarios.md start-machines-before-window: automatic for machines tagged for it, approval otherwise; one
    card per run listing every machine at risk; approvals that expire at the cancellation cut-off (MANAGE_PRE_POST:
    a run can be cancelled until 10 minutes before its start)."""
    config = double.refs["um:schedule:win"]
    _tag_for_start(double, double.refs["aum.machine_unavailable:vm"])
    start = (datetime.now(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
    handle_event(pre_event(double, config, start, "pre-act"), app)
    decided = {(r.remediation, str(r.target).rsplit("/", 1)[-1]): r.decision
               for r in app.audit.query(kind="decision", event_id="pre-act")}
    assert decided[("start-machines-before-window", "vm-um-off-01")] == "apply"
    assert decided[("set-customer-managed-schedules", "vm-um-byos-01")] == "propose"
    # No osProfile: diagnosed as advice (nothing the API can set), so nothing is sent; it stays on the card.
    assert ("set-customer-managed-schedules", "vm-um-specialized-01") not in decided
    cards = _cards(tmp_path)
    assert [c.name.split("-", 1)[1] for c in cards] == [f"gate-{_stamp(start)}.json"], "one card per run, no other"
    text = json.dumps(json.loads(cards[0].read_text()))
    assert "vm-um-off-01" in text and "vm-um-byos-01" in text and "vm-um-specialized-01" in text
    assert "Decide by" in text and text.count('"title": "Approve"') == 1
    [approval] = app.approvals.pending()
    assert abs((approval.expires_at - (start - timedelta(minutes=10))).total_seconds()) < 5
    assert not [r for r in double.requests if r.method in WRITES and "resourcegraph" not in r.path.lower()], \
        "the gate queues and proposes; nothing changes before the job runs"


def test_a_decision_after_the_cut_off_is_refused_with_the_reason(app: App, double: AzureDouble) -> None:
    """MANAGE_PRE_POST: after the cancellation cut-off the run can no longer be stopped; the proposal's link has
    expired with it, and the remediation's own deadline refuses a job that would still run."""
    config = double.refs["um:schedule:win"]
    start = (datetime.now(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
    handle_event(pre_event(double, config, start, "pre-late"), app)
    [approval] = [a for a in app.approvals.pending() if a.remediation == "set-customer-managed-schedules"]
    token = parse_qs(urlsplit(links(app, approval).approve).query)["token"][0]
    later = start - timedelta(minutes=5)
    app.__dict__["approvals"] = Approvals(app.store, ttl=app.approval_ttl, now=lambda: later)
    page = confirmation(app, approval.id, "approve", token, {})
    assert page.status == 403 and "expired" in page.html
    assert approval.params["before"] == (start - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ctx = make_context(double)
    ctx.now = lambda: later
    job = execute(approval.remediation, approval.target, dict(approval.params), ctx)
    assert job.result is Result.FAILED and "cut-off" in (job.error or "")
    assert writes(double) == []


def test_an_event_after_the_cut_off_changes_and_proposes_nothing(app: App, double: AzureDouble,
                                                                 tmp_path: Path) -> None:
    """MANAGE_PRE_POST: the cancellation API must be called at least 10 minutes before the start."""
    config = double.refs["um:schedule:win"]
    _tag_for_start(double, double.refs["aum.machine_unavailable:vm"])
    start = (datetime.now(UTC) + timedelta(minutes=5)).replace(microsecond=0)
    handle_event(pre_event(double, config, start, "pre-after"), app)
    refused = list(app.audit.query(kind="decision", event_id="pre-after"))
    assert [r.decision for r in refused] == ["refused"] and "cut-off" in (refused[0].reason or "")
    assert app.approvals.pending() == []
    assert len(_cards(tmp_path)) == 1


@pytest.mark.parametrize(("limits", "named"), [(Limits(max_machines_per_change=1), "max_machines_per_change (1)"),
                                               (Limits(max_fleet_share_per_hour=1), "max_fleet_share_per_hour (1%")])
def test_fleet_limits_stop_the_gates_fan_out(app: App, double: AzureDouble, limits: Limits, named: str) -> None:
    """Fleet limits beside the per-target ones, checked before acting: over either, nothing is changed
    automatically; every fix is proposed instead and the refusal names the limit."""
    app.ctx.limits = limits
    config = double.refs["um:schedule:win"]
    for vm in (double.refs["aum.machine_unavailable:vm"], double.refs["um:vm-succeeded"]):
        r = vm.split("/")
        app.ctx.clients.compute(r[2]).virtual_machines.begin_deallocate(r[4], r[-1], polling_interval=0).result()
        _tag_for_start(double, vm)
    start = (datetime.now(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
    handle_event(pre_event(double, config, start, "pre-fleet"), app)
    records = app.audit.query(kind="decision", event_id="pre-fleet")
    assert any(r.decision == "denied" and named in (r.reason or "") for r in records)
    starts = [r for r in records if r.remediation == "start-machines-before-window"]
    assert len(starts) == 2 and {r.decision for r in starts} == {"propose"}
