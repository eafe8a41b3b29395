"""Guest OS patching shared by Azure VMs (Compute) and Arc machines (HybridCompute): a machine's OS
updates, which of them an install selects, and the Resource Graph rows Update Manager writes.

Pure functions over JSON values (no state, no SDK), so the estate builder and the routes use the same
shapes. Row shapes follow learn.microsoft.com/azure/update-manager/query-logs (tables
`patchassessmentresources`, `patchinstallationresources`, `maintenanceresources`: columns id, name, type,
tenantId, kind, location, resourceGroup, subscriptionId, managedBy, sku, plan, properties, tags,
identity, zones, extendedLocation) and its property lists.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sandbox.util import iso, stable_guid

# installPatches classification names -> the classification a Windows update reports
WINDOWS_CLASSES = {"Critical": "Critical Updates", "Security": "Security Updates", "UpdateRollUp": "Update Rollups",
                   "FeaturePack": "Feature Packs", "ServicePack": "Service Packs", "Definition": "Definition Updates",
                   "Tools": "Tools", "Updates": "Updates"}
LINUX_CLASSES = ("Critical", "Security", "Other")
REBOOT_SETTINGS = ("IfRequired", "Never", "Always")
_COUNT_KEY = {"Critical Updates": "critical", "Security Updates": "security", "Update Rollups": "updateRollup",
              "Feature Packs": "featurePack", "Service Packs": "servicePack", "Definition Updates": "definition",
              "Tools": "tools", "Updates": "updates", "Critical": "critical", "Security": "security",
              "Other": "other"}
COUNT_KEYS = ("security", "critical", "definition", "updateRollup", "featurePack", "servicePack", "tools", "updates",
              "other")
REBOOT_MESSAGE = ("Machine is Required to reboot. However, the customer-specified reboot setting doesn't allow "
                  "reboots.")
NO_ERROR: dict[str, Any] = {"code": "0", "message": "", "details": []}


@dataclass(frozen=True, slots=True)
class PatchOutcome:
    """How a machine's next `assessPatches` or `installPatches` ends (`operation`: "assess" | "install").

    `lro_error` fails the long-running operation itself (`{"code", "message"}`, e.g. Compute's
    `VMGuestPatchInternalError`); otherwise the operation succeeds and its result carries `status`
    ("Failed", "CompletedWithWarnings", ...), `error` (ApiError / errorDetails) and, for installs,
    `reboot_status` and `maintenance_window_exceeded`. A `persistent` outcome stays until replaced
    (a broken sudo configuration fails every run); the others are used once.
    """

    operation: str
    status: str = "Succeeded"
    error: Mapping[str, Any] | None = None
    lro_error: Mapping[str, Any] | None = None
    reboot_status: str | None = None
    maintenance_window_exceeded: bool = False
    persistent: bool = False

_WINDOWS_UPDATES = (
    ("5046616", "2024-11 Cumulative Update for Microsoft server operating system version 21H2 for x64-based Systems "
                "(KB5046616)", "Security Updates", "CanRequestReboot"),
    ("890830", "Windows Malicious Software Removal Tool x64 - v5.129 (KB890830)", "Update Rollups",
     "CanRequestReboot"),
    ("2267602", "Security Intelligence Update for Microsoft Defender Antivirus - KB2267602 (Version 1.421.1590.0)",
     "Definition Updates", "NeverReboots"),
    ("5044033", "2024-10 Cumulative Update for .NET Framework 3.5, 4.8 and 4.8.1 for Microsoft server operating "
                "system version 21H2 for x64 (KB5044033)", "Updates", "CanRequestReboot"),
)
_LINUX_UPDATES = (
    ("openssl", "3.0.2-0ubuntu1.18", "Security", "NeverReboots"),
    ("libssl3", "3.0.2-0ubuntu1.18", "Security", "NeverReboots"),
    ("linux-azure", "6.8.0-1017.20~22.04.1", "Security", "CanRequestReboot"),
    ("curl", "7.81.0-1ubuntu1.19", "Other", "NeverReboots"),
    ("tzdata", "2024a-0ubuntu0.22.04.1", "Other", "NeverReboots"),
)


def default_patches(machine_id: str, os_type: str, now: datetime) -> list[dict[str, Any]]:
    """The OS updates a machine has available (the same for the same machine): patchId, name, version,
    kbId, classifications, rebootBehavior, publishedDate."""
    published = iso((now - timedelta(days=20)).replace(hour=0, minute=0, second=0, microsecond=0))
    return [{**p, "classifications": list(p["classifications"])} for p in _updates(os_type.lower(), published)]


@functools.lru_cache(maxsize=16)
def _updates(os_type: str, published: str) -> tuple[dict[str, Any], ...]:
    if os_type == "windows":
        return tuple({"patchId": stable_guid("patch", kb), "name": name, "version": "", "kbId": kb,
                      "classifications": [classification], "rebootBehavior": reboot, "publishedDate": published}
                     for kb, name, classification, reboot in _WINDOWS_UPDATES)
    return tuple({"patchId": f"{name}_{version}_Ubuntu_22.04", "name": name, "version": version, "kbId": "",
                  "classifications": [classification], "rebootBehavior": reboot, "publishedDate": published}
                 for name, version, classification, reboot in _LINUX_UPDATES)


def counts(patches: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """availablePatchCountByClassification."""
    out = dict.fromkeys(COUNT_KEYS, 0)
    for patch in patches:
        for name in patch.get("classifications") or []:
            key = _COUNT_KEY.get(str(name))
            if key:
                out[key] += 1
                break
    return out


def critical_and_security(patches: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
    """(criticalAndSecurityPatchCount, otherPatchCount) as Compute's assessment reports them."""
    by_class = counts(patches)
    important = by_class["critical"] + by_class["security"]
    return important, sum(by_class.values()) - important


def select(patches: Iterable[Mapping[str, Any]], os_type: str,
           parameters: Mapping[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Each patch with its installationState for these windowsParameters / linuxParameters:
    Installed (selected), Excluded, or NotSelected."""
    out: list[tuple[dict[str, Any], str]] = []
    windows = os_type.lower() == "windows"
    included = list(parameters.get("classificationsToInclude") or [])
    wanted = {WINDOWS_CLASSES.get(c, c) for c in included} if windows else set(included)
    for patch in patches:
        item = dict(patch)
        classes = set(item.get("classifications") or [])
        if windows:
            kb = str(item.get("kbId") or "")
            excluded = kb in set(parameters.get("kbNumbersToExclude") or []) or _masked(
                item["name"], parameters.get("patchNameMasksToExclude"))
            chosen = bool(classes & wanted) or kb in set(parameters.get("kbNumbersToInclude") or []) or _masked(
                item["name"], parameters.get("patchNameMasksToInclude"))
            if parameters.get("excludeKbsRequiringReboot") and item.get("rebootBehavior") != "NeverReboots":
                excluded = True
        else:
            excluded = _masked(item["name"], parameters.get("packageNameMasksToExclude"))
            chosen = bool(classes & wanted) or _masked(item["name"], parameters.get("packageNameMasksToInclude"))
        out.append((item, "Excluded" if excluded else "Installed" if chosen else "NotSelected"))
    return out


def _masked(name: str, masks: Any) -> bool:
    if not masks:
        return False
    return any(fnmatch.fnmatch(name.lower(), str(m).lower()) for m in masks or [])


def error_details(error: Mapping[str, Any] | None) -> dict[str, Any]:
    """The errorDetails of a Resource Graph row: {code, message, details}; NO_ERROR for none."""
    if not error:
        return dict(NO_ERROR)
    return {"code": str(error.get("code", "")), "message": str(error.get("message", "")),
            "details": [dict(d) for d in error.get("details") or []]}


def graph_base(resource_id: str, row_id: str, name: str, type_: str, *, tenant: str,
               location: str) -> dict[str, Any]:
    """A Resource Graph row's columns for a machine's result (the "left blank for future use" ones null)."""
    parts = [p for p in resource_id.split("/") if p]
    return {"id": row_id, "name": name, "type": type_, "tenantId": tenant, "kind": "", "location": location,
            "resourceGroup": parts[3].lower() if len(parts) > 3 else "", "subscriptionId": parts[1], "managedBy": "",
            "sku": None, "plan": None, "tags": None, "identity": None, "zones": None, "extendedLocation": None}


def machine_type(machine_id: str) -> str:
    """'microsoft.compute/virtualmachines' or 'microsoft.hybridcompute/machines'."""
    return "microsoft.hybridcompute/machines" if "/microsoft.hybridcompute/" in machine_id.lower() else \
        "microsoft.compute/virtualmachines"


def patch_service(os_type: str) -> str:
    return "WU" if os_type.lower() == "windows" else "APT"


def assessment_rows(machine_id: str, *, tenant: str, location: str, os_type: str, activity: str,
                    patches: list[dict[str, Any]], status: str, error: Mapping[str, Any] | None, started_by: str,
                    start: datetime, end: datetime, reboot_pending: bool) -> list[dict[str, Any]]:
    """`patchassessmentresources`: the summary row (`<machine>/patchAssessmentResults/latest`) and a
    `softwarepatches` row per available update."""
    base_type = f"{machine_type(machine_id)}/patchassessmentresults"
    summary = graph_base(machine_id, f"{machine_id}/patchAssessmentResults/latest", activity, base_type,
                         tenant=tenant, location=location)
    summary["properties"] = {
        "rebootPending": reboot_pending, "patchServiceUsed": patch_service(os_type), "osType": os_type,
        "startDateTime": iso(start), "lastModifiedDateTime": iso(end), "startedBy": started_by, "status": status,
        "errorDetails": error_details(error), "availablePatchCountByClassification": counts(patches)}
    rows = [summary]
    for patch in patches:
        row = graph_base(machine_id, f"{machine_id}/patchAssessmentResults/latest/softwarePatches/{patch['patchId']}",
                         patch["patchId"], f"{base_type}/softwarepatches", tenant=tenant,
                         location=location)
        row["properties"] = _patch_properties(patch, os_type, end)
        rows.append(row)
    return rows


def installation_rows(machine_id: str, *, tenant: str, location: str, os_type: str, activity: str,
                      details: list[tuple[dict[str, Any], str]], summary: Mapping[str, Any], started_by: str,
                      start: datetime, end: datetime, maintenance_run_id: str | None,
                      per_update: bool = True) -> list[dict[str, Any]]:
    """`patchinstallationresources`: the run's row (`<machine>/patchInstallationResults/<activity>`) with
    the query-logs properties, and a `softwarepatches` row per update with its installationState."""
    base_type = f"{machine_type(machine_id)}/patchinstallationresults"
    run_id = f"{machine_id}/patchInstallationResults/{activity}"
    row = graph_base(machine_id, run_id, activity, base_type, tenant=tenant, location=location)
    props: dict[str, Any] = {
        "installationActivityId": activity, "maintenanceWindowExceeded": bool(summary["maintenanceWindowExceeded"]),
        "lastModifiedDateTime": iso(end), "notSelectedPatchCount": summary["notSelectedPatchCount"],
        "installedPatchCount": summary["installedPatchCount"], "excludedPatchCount": summary["excludedPatchCount"],
        "pendingPatchCount": summary["pendingPatchCount"], "patchServiceUsed": patch_service(os_type),
        "failedPatchCount": summary["failedPatchCount"], "startDateTime": iso(start),
        "rebootStatus": summary["rebootStatus"], "startedBy": started_by, "status": summary["status"],
        "osType": os_type, "errorDetails": error_details(summary.get("error"))}
    if maintenance_run_id:
        props["maintenanceRunId"] = maintenance_run_id
    row["properties"] = props
    rows = [row]
    for patch, state in details if per_update else ():
        item = graph_base(machine_id, f"{run_id}/softwarePatches/{patch['patchId']}", patch["patchId"],
                          f"{base_type}/softwarepatches", tenant=tenant,
                         location=location)
        item["properties"] = {"installationState": state, **_patch_properties(patch, os_type, end)}
        rows.append(item)
    return rows


def _patch_properties(patch: Mapping[str, Any], os_type: str, when: datetime) -> dict[str, Any]:
    props: dict[str, Any] = {
        "lastModifiedDateTime": iso(when), "publishedDateTime": patch.get("publishedDate"),
        "classifications": list(patch.get("classifications") or []),
        "rebootRequired": patch.get("rebootBehavior") not in ("NeverReboots", None),
        "rebootBehavior": patch.get("rebootBehavior"), "patchName": patch.get("name")}
    if os_type.lower() == "windows":
        props["kbId"] = patch.get("kbId")
    else:
        props["version"] = patch.get("version")
        props["publishedDateTime"] = None  # "not available in case of Linux updates" (query-logs)
    return props


def apply_outcome(details: list[tuple[dict[str, Any], str]], status: str | None,
                  window_exceeded: bool) -> list[tuple[dict[str, Any], str]]:
    """The selected updates' final states: Failed for a failed run, Pending when the window ran out."""
    if status == "Failed" and not window_exceeded:
        return [(p, "Failed" if s == "Installed" else s) for p, s in details]
    if window_exceeded:
        return [(p, "Pending" if s == "Installed" else s) for p, s in details]
    return details


def install_summary(details: list[tuple[dict[str, Any], str]], reboot_setting: str, *, status: str | None = None,
                    reboot_status: str | None = None, window_exceeded: bool = False,
                    error: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Counts, status and rebootStatus of an installation (details after `apply_outcome`): an installed
    update that may need a reboot, with rebootSetting Never, leaves the machine `Required` to reboot
    and the run CompletedWithWarnings."""
    installed = [p for p, s in details if s == "Installed"]
    needs_reboot = any(p.get("rebootBehavior") != "NeverReboots" for p in installed)
    if reboot_status is None:
        if not installed:
            reboot_status = "NotNeeded"
        elif reboot_setting == "Always" or (needs_reboot and reboot_setting == "IfRequired"):
            reboot_status = "Completed"
        elif needs_reboot:
            reboot_status = "Required"
        else:
            reboot_status = "NotNeeded"
    found_error = dict(error) if error else None
    if status is None:
        status = "CompletedWithWarnings" if reboot_status == "Required" else "Succeeded"
        if reboot_status == "Required" and found_error is None:
            found_error = {"code": "RebootRequired", "message": REBOOT_MESSAGE, "details": []}
    if window_exceeded and status == "Succeeded":
        status = "Failed"  # troubleshoot.md: "the status is updated to Failed, and ... exceeded ... true"

    def count(state: str) -> int:
        return sum(1 for _, s in details if s == state)

    return {"status": status, "rebootStatus": reboot_status, "maintenanceWindowExceeded": window_exceeded,
            "installedPatchCount": len(installed), "failedPatchCount": count("Failed"),
            "pendingPatchCount": count("Pending"), "excludedPatchCount": count("Excluded"),
            "notSelectedPatchCount": count("NotSelected"), "error": found_error}


# ---------------------------------------------------------------------------------------------
# Compute instance views (VirtualMachineInstanceView, 2026-04-01)

POWER_DISPLAY = {"running": "VM running", "deallocated": "VM deallocated", "stopped": "VM stopped",
                 "starting": "VM starting", "deallocating": "VM deallocating", "stopping": "VM stopping"}
PATCH_EXTENSIONS = {"windows": ("WindowsPatchExtension", "1.5", "1.5.75"),
                    "linux": ("LinuxPatchExtension", "1.6", "1.6.55")}
PATCH_PUBLISHER = "Microsoft.CPlat.Core"


def status(code: str, display: str, *, level: str = "Info", message: str | None = None,
           when: datetime | None = None) -> dict[str, Any]:
    """An InstanceViewStatus."""
    value: dict[str, Any] = {"code": code, "level": level, "displayStatus": display}
    if message is not None:
        value["message"] = message
    if when is not None:
        value["time"] = iso(when)
    return value


def agent_view(ready: bool, extension_types: Iterable[tuple[str, str]], when: datetime) -> dict[str, Any]:
    """vmAgent: Ready (GuestAgent running) or Not Ready (unresponsive)."""
    if ready:
        statuses = [status("ProvisioningState/succeeded", "Ready", message="GuestAgent is running and processing "
                           "the extensions.", when=when)]
    else:
        statuses = [status("ProvisioningState/Unavailable", "Not Ready", level="Warning",
                           message="VM Agent is unresponsive.", when=when)]
    return {"vmAgentVersion": "2.11.1.12", "statuses": statuses,
            "extensionHandlers": [{"type": handler, "typeHandlerVersion": version,
                                   "status": status("ProvisioningState/succeeded", "Ready")}
                                  for handler, version in extension_types]}


def extension_view(name: str, handler_type: str, version: str, state: str, *, when: datetime,
                   message: str | None = None) -> dict[str, Any]:
    """A VirtualMachineExtensionInstanceView for a provisioningState (Succeeded, Failed, ...)."""
    display = {"Succeeded": "Provisioning succeeded", "Failed": "Provisioning failed",
               "Deleting": "Deleting", "Creating": "Transitioning"}.get(state, state)
    level = "Error" if state == "Failed" else "Info"
    text = message if message is not None else (
        "Enable succeeded" if state == "Succeeded" else f"Extension {name} is {state.lower()}.")
    return {"name": name, "type": handler_type, "typeHandlerVersion": version,
            "statuses": [status(f"ProvisioningState/{state.lower()}", display, level=level, message=text, when=when)]}


def patch_configuration_statuses(ready: bool, when: datetime) -> list[dict[str, Any]]:
    state = "Ready" if ready else "Pending"
    return [status(f"PatchModeConfigurationState/{state}", f"Status_PatchModeConfigurationState_{state}", when=when),
            status(f"AssessmentModeConfigurationState/{state}", f"Status_AssessmentModeConfigurationState_{state}",
                   when=when)]


def instance_view(vm: Mapping[str, Any], *, power: str = "running", agent_ready: bool = True,
                  extensions: Iterable[Mapping[str, Any]] = (), when: datetime,
                  patch_status: Mapping[str, Any] | None = None, os_name: str | None = None) -> dict[str, Any]:
    """A VM's instance view: computer and OS names, vmAgent, disks, extensions, patchStatus and the
    ProvisioningState + PowerState statuses (a deallocated VM reports no agent)."""
    props = vm.get("properties") or {}
    os_disk = (props.get("storageProfile") or {}).get("osDisk") or {}
    windows = str(os_disk.get("osType", "")).lower() == "windows"
    computer = ((props.get("osProfile") or {}).get("computerName")) or vm.get("name")
    extension_list = [dict(e) for e in extensions]
    view: dict[str, Any] = {
        "computerName": computer,
        "osName": os_name or ("Windows Server 2022 Datacenter Azure Edition" if windows else "ubuntu"),
        "osVersion": "Microsoft Windows NT 10.0.20348.0" if windows else "22.04",
        "hyperVGeneration": "V2",
        "disks": [{"name": os_disk.get("name") or f"{vm.get('name')}_OsDisk",
                   "statuses": [status("ProvisioningState/succeeded", "Provisioning succeeded", when=when)]}],
        "extensions": extension_list,
        "patchStatus": dict(patch_status) if patch_status else {
            "configurationStatuses": patch_configuration_statuses(True, when)},
        "statuses": [status("ProvisioningState/succeeded", "Provisioning succeeded", when=when),
                     status(f"PowerState/{power}", POWER_DISPLAY.get(power, f"VM {power}"))],
    }
    if power not in ("deallocated", "deallocating"):
        view["vmAgent"] = agent_view(agent_ready, [(str(e.get("type")), str(e.get("typeHandlerVersion")))
                                                   for e in extension_list], when)
    return view


def power_of(view: Mapping[str, Any]) -> str:
    for item in view.get("statuses") or []:
        code = str(item.get("code", ""))
        if code.startswith("PowerState/"):
            return code.split("/", 1)[1]
    return "running"
