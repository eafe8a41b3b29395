"""Per-machine Update Manager diagnosis from the structured results, without Azure: each `aum.*` id
from the Resource Graph fields Update Manager reports (as the queries of shared.azure.resourcegraph
project them), the OS of the machine deciding what a generic failure is, and the fields used as evidence.

Field names and values: learn.microsoft.com/azure/update-manager/query-logs (patchinstallationresources:
status NotStarted | InProgress | Failed | Succeeded | CompletedWithWarnings, rebootStatus NotNeeded |
Required | Started | Failed | Completed, maintenanceWindowExceeded, osType, errorDetails, maintenanceRunId;
maintenanceresources: applyupdates, configurationassignments); Azure/LinuxPatchExtension
(PatchOperationErrorCodes CL_SUDO_CHECK_FAILED, UA_ESM_REQUIRED, PACKAGE_MANAGER_FAILURE).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.core.domain import Mode
from shared.diagnosis.catalog import BY_ID
from shared.diagnosis.update_manager import (
    Estate,
    MachineCase,
    MachineDiagnosis,
    Run,
    diagnose_machine,
    installations_from_rows,
    machines_from_rows,
    maintenance_from_rows,
    scan_estate,
)

SUB = "5d1e9a2c-0b7f-4c3e-9a18-6f2d4b8c0e71"
CFG = f"/subscriptions/{SUB}/resourceGroups/rg-ops/providers/Microsoft.Maintenance/maintenanceConfigurations/mc-weekly"
RUN = f"{CFG}/providers/microsoft.maintenance/applyupdates/20261121020000"
START = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
NOW = START + timedelta(hours=8)


def vm_id(name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/{name}"


def arc_id(name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/rg-onprem/providers/Microsoft.HybridCompute/machines/{name}"


def vm(name: str, *, os: str = "Windows", patch: str = "AutomaticByPlatform", bypass: str = "true",
       assessment: str = "AutomaticByPlatform", power: str = "PowerState/running", allow: str = "true",
       tags: dict[str, str] | None = None) -> dict[str, Any]:
    return {"id": vm_id(name), "name": name, "type": "microsoft.compute/virtualmachines", "location": "westeurope",
            "resourceGroup": "rg-app", "subscriptionId": SUB, "tags": tags or {}, "osType": os, "patchMode": patch,
            "assessmentMode": assessment, "bypassPlatformSafetyChecksOnUserSchedule": bypass,
            "allowExtensionOperations": allow, "hasOsProfile": "true", "powerState": power, "arcStatus": "",
            "timeCreated": "2025-01-01T00:00:00Z", "extensionType": "", "provisioningState": "Succeeded",
            "extensionStatus": ""}


def arc(name: str, status: str = "Connected", os: str = "linux") -> dict[str, Any]:
    return {"id": arc_id(name), "name": name, "type": "microsoft.hybridcompute/machines", "location": "westeurope",
            "resourceGroup": "rg-onprem", "subscriptionId": SUB, "tags": {}, "osType": os, "patchMode": "",
            "assessmentMode": "AutomaticByPlatform", "bypassPlatformSafetyChecksOnUserSchedule": "",
            "allowExtensionOperations": "", "hasOsProfile": "true", "powerState": "", "arcStatus": status,
            "timeCreated": "", "extensionType": "", "provisioningState": "Succeeded", "extensionStatus": ""}


def extension(machine: str, kind: str, state: str) -> dict[str, Any]:
    typ = ("microsoft.compute/virtualmachines/extensions" if "virtualMachines" in machine
           else "microsoft.hybridcompute/machines/extensions")
    return {"id": f"{machine}/extensions/{kind}", "name": kind, "type": typ, "subscriptionId": SUB,
            "extensionType": kind, "provisioningState": state, "extensionStatus": ""}


def installation(machine: str, status: str, *, reboot: str = "NotNeeded", exceeded: str = "false",
                 os: str = "Windows", code: str = "0", message: str = "",
                 details: tuple[tuple[str, str], ...] = (), run: str = RUN) -> dict[str, Any]:
    return {"id": f"{machine}/patchInstallationResults/0f3c2a1b-{abs(hash((machine, run))) % 10**8:08d}",
            "type": "microsoft.compute/virtualmachines/patchinstallationresults", "subscriptionId": SUB,
            "status": status, "rebootStatus": reboot, "maintenanceWindowExceeded": exceeded, "osType": os,
            "startedBy": "Platform", "maintenanceRunId": run, "startDateTime": "2026-11-21T02:00:40Z",
            "lastModifiedDateTime": "2026-11-21T02:41:00Z",
            "errorDetails": {"code": code, "message": message,
                             "details": [{"code": c, "message": m} for c, m in details]}}


def assignment(machine: str, config: str = CFG) -> dict[str, Any]:
    return {"id": f"{machine}/providers/Microsoft.Maintenance/configurationAssignments/a-{machine.rsplit('/', 1)[-1]}",
            "type": "microsoft.maintenance/configurationassignments", "subscriptionId": SUB,
            "maintenanceConfigurationId": config, "resourceId": machine}


def dynamic(flt: dict[str, Any], config: str = CFG) -> dict[str, Any]:
    return {"id": f"/subscriptions/{SUB}/providers/Microsoft.Maintenance/configurationAssignments/dyn",
            "type": "microsoft.maintenance/configurationassignments", "subscriptionId": SUB,
            "maintenanceConfigurationId": config, "resourceId": f"/subscriptions/{SUB}", "filter": flt}


def applied(machine: str, run: str = RUN, status: str = "Completed") -> dict[str, Any]:
    return {"id": f"{machine}/providers/microsoft.maintenance/applyupdates/x-{machine.rsplit('/', 1)[-1]}",
            "type": "microsoft.maintenance/applyupdates", "subscriptionId": SUB, "maintenanceConfigurationId": CFG,
            "resourceId": machine, "correlationId": run, "status": status,
            "startDateTime": "2026-11-21T02:00:00Z", "endDateTime": "2026-11-21T04:00:00Z"}


def estate(resources: list[dict[str, Any]], maintenance: list[dict[str, Any]],
           installations: list[dict[str, Any]]) -> Estate:
    assignments, runs = maintenance_from_rows(maintenance)
    return Estate(machines_from_rows(resources), assignments, runs, installations_from_rows(installations))


def one(found: list[MachineDiagnosis], scenario: str) -> MachineDiagnosis:
    matching = [f for f in found if f.diagnosis.scenario == scenario]
    assert len(matching) == 1, [(f.diagnosis.scenario, f.machine) for f in found]
    return matching[0]


def failed_run_case(row: dict[str, Any], machine: dict[str, Any] | None) -> MachineDiagnosis | None:
    [install] = installations_from_rows([row])
    facts = machines_from_rows([machine]).get(install.machine.lower()) if machine else None
    return diagnose_machine(MachineCase(install.machine, facts, install, Run(RUN, CFG, START), "static", in_run=True))


# --- each aum.* id from a structured row -----------------------------------------------------------

ERROR_ROWS: dict[str, dict[str, Any]] = {
    "aum.machine_unavailable": {"code": "ShutdownOrUnresponsive"},
    "aum.internal_execution_error": {"code": "VMGuestPatchInternalError",
                                     "message": "An internal execution error occurred. Please retry later."},
    "aum.linux_sudo_check_failed": {"os": "Linux", "code": "1", "details": (
        ("CL_SUDO_CHECK_FAILED", "Sudo status check failed. Please ensure the computer is configured correctly for "
                                 "sudo invocation."),)},
    "aum.os_not_supported": {"os": "Linux", "code": "1", "details": (
        ("UA_ESM_REQUIRED", "Ubuntu Pro ESM packages are available but the machine is not attached"),)},
    "aum.auto_assessment_not_running": {"os": "Linux", "message": "MsftLinuxPatchAutoAssess service is not running"},
}


@pytest.mark.parametrize(("scenario", "error"), sorted(ERROR_ROWS.items()))
def test_a_failed_installation_is_diagnosed_from_its_error_details(scenario: str, error: dict[str, Any]) -> None:
    error = dict(error)
    os = error.pop("os", "Windows")
    row = installation(vm_id("vm-1"), "Failed", os=os, **error)
    found = failed_run_case(row, vm("vm-1", os=os))
    assert found is not None and found.diagnosis.scenario == scenario, found
    assert "patchinstallationresources.status: Failed" in found.diagnosis.evidence
    assert found.target == vm_id("vm-1")
    assert found.diagnosis.doc and found.diagnosis.doc.startswith("https://learn.microsoft.com/azure/update-manager/"
                                                                   "troubleshoot#")


def test_a_window_that_ran_out_targets_the_configuration_once_for_all_its_machines() -> None:
    rows = [installation(vm_id(n), "CompletedWithWarnings", reboot="Required", exceeded="true") for n in ("a", "b")]
    found = scan_estate(estate([vm("a"), vm("b")], [assignment(vm_id("a")), assignment(vm_id("b")),
                                                    applied(vm_id("a")), applied(vm_id("b"))], rows), NOW)
    window = one(found, "um.maintenance_window_exceeded")
    assert window.target == CFG
    assert "patchinstallationresources.maintenanceWindowExceeded: true" in window.diagnosis.evidence
    assert any("also on b" in line for line in window.diagnosis.evidence)
    assert [r.name for r in window.diagnosis.remediations] == ["extend-maintenance-window"]


def test_completed_with_warnings_and_a_pending_reboot_is_reboot_required() -> None:
    row = installation(vm_id("vm-1"), "CompletedWithWarnings", reboot="Required",
                       message="Machine is Required to reboot. However, the customer-specified reboot setting "
                               "doesn't allow reboots.")
    found = failed_run_case(row, vm("vm-1"))
    assert found is not None and found.diagnosis.scenario == "aum.reboot_required"
    assert [(r.name, r.mode) for r in found.diagnosis.remediations] == [("restart-machine", Mode.APPROVAL)]
    bare = failed_run_case(installation(vm_id("vm-2"), "CompletedWithWarnings", reboot="Required"), vm("vm-2"))
    assert bare is not None and bare.diagnosis.scenario == "aum.reboot_required"
    assert "patchinstallationresources.rebootStatus: Required" in bare.diagnosis.evidence


def test_a_reboot_that_failed_is_reboot_not_completed() -> None:
    found = failed_run_case(installation(vm_id("vm-1"), "Failed", reboot="Failed"), vm("vm-1"))
    assert found is not None and found.diagnosis.scenario == "aum.reboot_not_completed"


def test_a_failed_installation_on_a_machine_with_a_failed_patch_extension() -> None:
    resources = [vm("vm-1"), extension(vm_id("vm-1"), "WindowsPatchExtension", "Failed")]
    [facts] = machines_from_rows(resources).values()
    [install] = installations_from_rows([installation(vm_id("vm-1"), "Failed")])
    found = diagnose_machine(MachineCase(install.machine, facts, install, Run(RUN, CFG, START), "static"))
    assert found is not None and found.diagnosis.scenario == "aum.extension_failed"
    assert "resources.extension WindowsPatchExtension: Failed" in found.diagnosis.evidence


def test_a_succeeded_installation_is_no_failure() -> None:
    assert failed_run_case(installation(vm_id("vm-1"), "Succeeded"), vm("vm-1")) is None


# --- the OS of the machine decides what a generic failure is -----------------------------------------


def test_a_failed_windows_run_never_gets_the_linux_package_manager_scenario() -> None:
    generic = failed_run_case(installation(vm_id("win-1"), "Failed", os="Windows", code="1",
                                           message="1 error/s reported."), vm("win-1"))
    assert generic is not None and generic.diagnosis.scenario == "unknown"
    assert not any("package" in a.lower() for a in generic.diagnosis.advice)
    assert any("WindowsUpdateExtension.log" in a for a in generic.diagnosis.advice)
    # even when the message speaks of a package manager, a Windows machine gets no Linux scenario
    worded = failed_run_case(installation(vm_id("win-2"), "Failed", os="Windows",
                                          message="Package manager on machine is not healthy."), vm("win-2"))
    assert worded is not None and worded.diagnosis.scenario != "um.run_failed_linux"


def test_a_failed_linux_run_with_no_other_cause_is_the_package_manager_scenario() -> None:
    found = failed_run_case(installation(vm_id("lnx-1"), "Failed", os="Linux", code="1", details=(
        ("PACKAGE_MANAGER_FAILURE", "Customer environment error: Investigate and resolve unexpected return code (100) "
                                    "from package manager on command: sudo apt-get -y upgrade"),)),
        vm("lnx-1", os="Linux"))
    assert found is not None and found.diagnosis.scenario == "um.run_failed_linux"
    assert "patchinstallationresources.osType: Linux" in found.diagnosis.evidence


def test_the_linux_only_sudo_scenario_is_not_given_to_a_windows_machine() -> None:
    found = failed_run_case(installation(vm_id("win-1"), "Failed", os="Windows", code="1", details=(
        ("CL_SUDO_CHECK_FAILED", "Unable to invoke sudo successfully."),)), vm("win-1"))
    assert found is None or found.diagnosis.scenario != "aum.linux_sudo_check_failed"


# --- the estate: standing problems and machines a run missed ------------------------------------------


def test_an_assigned_vm_not_on_customer_managed_schedules_needs_approval_for_a_patch_mode_change() -> None:
    found = scan_estate(estate([vm("vm-os", patch="AutomaticByOS", bypass="")], [assignment(vm_id("vm-os"))], []), NOW)
    prereq = one(found, "aum.schedule_prereq_not_set")
    assert prereq.target == vm_id("vm-os")
    assert [(r.name, r.mode) for r in prereq.diagnosis.remediations] == [("set-customer-managed-schedules",
                                                                         Mode.APPROVAL)]
    assert "resources.patchMode: AutomaticByOS" in prereq.diagnosis.evidence


def test_only_the_bypass_flag_missing_may_be_set_automatically() -> None:
    found = scan_estate(estate([vm("vm-abp", bypass="false")], [assignment(vm_id("vm-abp"))], []), NOW)
    prereq = one(found, "aum.schedule_prereq_not_set")
    assert [r.mode for r in prereq.diagnosis.remediations] == [Mode.AUTO]
    assert "resources.bypassPlatformSafetyChecksOnUserSchedule: false" in prereq.diagnosis.evidence


def test_a_vm_that_is_not_assigned_is_not_asked_to_be_on_schedules() -> None:
    found = scan_estate(estate([vm("vm-free", patch="AutomaticByOS", bypass="")], [], []), NOW)
    assert found == []


def test_periodic_assessment_off_on_a_scheduled_machine() -> None:
    found = scan_estate(estate([vm("vm-1", assessment="ImageDefault")], [assignment(vm_id("vm-1"))], []), NOW)
    periodic = one(found, "aum.periodic_assessment_not_enabled")
    assert "resources.assessmentMode: ImageDefault" in periodic.diagnosis.evidence


def test_a_patch_extension_not_succeeded_and_a_disconnected_arc_machine() -> None:
    resources = [vm("vm-1"), extension(vm_id("vm-1"), "LinuxPatchExtension", "Failed"), arc("srv-9", "Disconnected")]
    found = scan_estate(estate(resources, [assignment(arc_id("srv-9"))], []), NOW)
    assert one(found, "aum.extension_failed").machine == vm_id("vm-1")
    arc_finding = one(found, "aum.arc_disconnected")
    assert arc_finding.machine == arc_id("srv-9")
    assert "resources.arcStatus: Disconnected" in arc_finding.diagnosis.evidence


def test_an_assigned_machine_with_no_result_for_a_run_that_happened() -> None:
    maintenance = [assignment(vm_id("vm-ok")), assignment(vm_id("vm-missed")), applied(vm_id("vm-ok"))]
    found = scan_estate(estate([vm("vm-ok"), vm("vm-missed")], maintenance,
                               [installation(vm_id("vm-ok"), "Succeeded")]), NOW)
    missed = one(found, "aum.schedule_not_triggered")
    assert missed.machine == vm_id("vm-missed")
    assert "patchinstallationresources: no patch installation result for this run" in missed.diagnosis.evidence


def test_a_stopped_machine_with_no_result_is_unavailable_not_untriggered() -> None:
    maintenance = [assignment(vm_id("vm-ok")), assignment(vm_id("vm-off")), applied(vm_id("vm-ok"))]
    found = scan_estate(estate([vm("vm-ok"), vm("vm-off", power="PowerState/deallocated")], maintenance,
                               [installation(vm_id("vm-ok"), "Succeeded")]), NOW)
    off = one(found, "aum.machine_unavailable")
    assert "resources.powerState: PowerState/deallocated" in off.diagnosis.evidence


def test_a_machine_of_a_dynamic_scope_left_out_of_the_run() -> None:
    flt = {"resourceTypes": ["Microsoft.Compute/virtualMachines"], "locations": ["westeurope"],
           "tagSettings": {"tags": {"PatchGroup": ["weekly"]}, "filterOperator": "All"}}
    resources = [vm("vm-in", tags={"PatchGroup": "weekly"}), vm("vm-left", tags={"PatchGroup": "weekly"}),
                 vm("vm-other", tags={"PatchGroup": "monthly"})]
    found = scan_estate(estate(resources, [dynamic(flt), applied(vm_id("vm-in"))],
                               [installation(vm_id("vm-in"), "Succeeded")]), NOW)
    left = one(found, "aum.dynamic_scope_miss")
    assert left.machine == vm_id("vm-left")
    assert all(f.machine != vm_id("vm-other") for f in found)


def test_a_run_still_settling_is_not_reported_as_missed() -> None:
    maintenance = [assignment(vm_id("vm-ok")), assignment(vm_id("vm-missed")), applied(vm_id("vm-ok"))]
    found = scan_estate(estate([vm("vm-ok"), vm("vm-missed")], maintenance, []), START + timedelta(hours=2))
    assert all(f.diagnosis.scenario != "aum.schedule_not_triggered" for f in found)


def test_every_structured_diagnosis_carries_the_fields_it_used() -> None:
    resources = [vm("vm-os", patch="AutomaticByOS", bypass="", assessment="ImageDefault"), arc("srv", "Expired"),
                 vm("vm-2"), extension(vm_id("vm-2"), "WindowsPatchExtension", "Transitioning")]
    maintenance = [assignment(vm_id("vm-os")), assignment(arc_id("srv")), assignment(vm_id("vm-2"))]
    found = scan_estate(estate(resources, maintenance, [installation(vm_id("vm-2"), "Failed", reboot="Failed")]), NOW)
    assert {f.diagnosis.scenario for f in found} >= {
        "aum.schedule_prereq_not_set", "aum.periodic_assessment_not_enabled", "aum.arc_disconnected",
        "aum.extension_failed", "aum.reboot_not_completed"}
    for f in found:
        assert f.diagnosis.evidence, f.diagnosis.scenario
        assert all(line.startswith(("resources.", "patchinstallationresources", "maintenanceresources", "also on"))
                   for line in f.diagnosis.evidence), f.diagnosis.evidence
        assert f.diagnosis.scenario in BY_ID and f.diagnosis.failure is not None
