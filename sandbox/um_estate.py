"""The Azure Update Manager part of the sandbox, and the large fleet for benchmarks.

`update_manager(now)` seeds a second subscription (`um:subscription`) with one failing machine or
schedule per Update Manager scenario of scenarios.md, each with the evidence the service shows (VM /
Arc resources with their patch settings, instance views, patch extensions, configuration assignments,
Resource Graph rows with the service's error texts), plus a third subscription whose Microsoft.Maintenance
and Microsoft.Compute providers are not registered. The refs are named `<scenario>:<role>` (see
`sandbox/estate.py`). It lives apart from the first subscription so the sweeps and counts built on that
one are unchanged.

`fleet(vm_count, seed, now)` builds a large estate (4 subscriptions x 5 resource groups) where a share
of the VMs failed their last scheduled run, for Resource Graph paging benchmarks.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox import patching
from sandbox.patching import PatchOutcome
from sandbox.util import iso, stable_guid

SUB_UM = "7c1d4e2a-5b3f-4a6e-9d8c-1f2e3a4b5c6d"
SUB_NOREG = "a4e8c2d6-1b3f-4c5a-8e7d-9f0a1b2c3d4e"
LOC = "westeurope"

WINDOWS_IMAGE = {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer",
                 "sku": "2022-datacenter-azure-edition", "version": "latest"}
UBUNTU_IMAGE = {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2",
                "version": "latest"}
XENIAL_IMAGE = {"publisher": "Canonical", "offer": "UbuntuServer", "sku": "16.04-LTS", "version": "latest"}

INTERNAL_ERROR = {"code": "VMGuestPatchInternalError", "message": "An internal execution error occurred. Please "
                                                                  "retry later.", "details": []}
SUDO_ERROR = {"code": "1", "message": "Unable to invoke sudo successfully. The patch extension could not run sudo "
                                      "non-interactively: root is not in the sudoers file.", "details": []}
AUTO_ASSESS_ERROR = {"code": "1", "message": "MsftLinuxPatchAutoAssess service is not running, or Timer is not "
                                             "active: the service points at a removed extension version "
                                             "(/var/lib/waagent/Microsoft.CPlat.Core.LinuxPatchExtension-1.6.48/"
                                             "MsftLinuxPatchAutoAssess.sh: No such file or directory).", "details": []}
HRESULT_ERROR = {"code": "1", "message": "Windows Update failed to search for updates. Exception from HRESULT: "
                                         "0x8024402C. Check the network connectivity, proxy and WSUS settings.",
                 "details": [{"code": "0x8024402C", "message": "WU_E_PT_WINHTTP_NAME_NOT_RESOLVED"}]}
PACKAGE_MANAGER_ERROR = {"code": "1", "message": "Customer environment error: the package manager on the machine "
                                                 "is not healthy (E: dpkg was interrupted, you must manually run "
                                                 "'sudo dpkg --configure -a' to correct the problem.)",
                         "details": [{"code": "PACKAGE_MANAGER_FAILURE", "message": "apt-get exited with code 100 "
                                                                                    "installing openssl, libssl3"}]}
SHUTDOWN_ERROR = {"code": "ShutdownOrUnresponsive", "message": "The machine was shut down or unresponsive when "
                                                               "the maintenance window started: no updates were "
                                                               "installed.", "details": []}
REBOOT_FAILED_ERROR = {"code": "RebootFailed", "message": "The machine did not come back within the time allowed "
                                                          "after the reboot that the installation started; the "
                                                          "installation is reported failed.", "details": []}
ESM_ERROR = {"code": "UA_ESM_REQUIRED", "message": "Ubuntu 16.04 LTS is out of standard support: updates need an "
                                                   "Ubuntu Pro (ESM) subscription, which this machine doesn't have.",
             "details": []}
EXTENSION_FAILED_MESSAGE = ("Enable failed with exit code 52: the patch extension handler could not start "
                            "(python3 not found).")
PLATFORM_CANCEL = "Maintenance cancelled due to internal platform failure"
USER_CANCEL = "Maintenance cancelled using cancellation API"
PRE_EVENT_MESSAGE = ("Pre-maintenance event could not be delivered to its subscriber (Event Grid delivery "
                     "failed after retries); the maintenance went ahead.")


@dataclass
class Seeds:
    resources: list[dict[str, Any]] = field(default_factory=list)
    graph: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {
        "patchinstallationresources": [], "patchassessmentresources": [], "maintenanceresources": []})
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcomes: dict[str, tuple[PatchOutcome, ...]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    subscriptions: list[str] = field(default_factory=list)
    subscription_providers: dict[str, dict[str, str]] = field(default_factory=dict)


def _rid(sub: str, rg: str, provider: str, *types_names: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{provider}/" + "/".join(types_names)


class _UM:
    def __init__(self, now: datetime, tenant: str, seeds: Seeds | None = None) -> None:
        self.now = now.replace(microsecond=0)
        self.tenant = tenant
        self.s = seeds or Seeds()

    # resource groups, machines -------------------------------------------------------------------
    def group(self, sub: str, name: str, tags: dict[str, str] | None = None) -> None:
        self.s.resources.append({"id": f"/subscriptions/{sub}/resourceGroups/{name}", "name": name,
                                 "type": "Microsoft.Resources/resourceGroups", "location": LOC, "tags": tags or {},
                                 "properties": {"provisioningState": "Succeeded"}})

    def vm(self, sub: str, rg: str, name: str, os_type: str, *, patch_mode: str,
           assessment: str = "AutomaticByPlatform", bypass: bool | None = None,
           tags: dict[str, str] | None = None, power: str = "running",
           image: dict[str, str] | None = None, extension: str | None = "Succeeded", os_profile: bool = True,
           agent_ready: bool = True, os_name: str | None = None, patch_status: dict[str, Any] | None = None,
           with_view: bool = True) -> str:
        vm_id = _rid(sub, rg, "Microsoft.Compute", "virtualMachines", name)
        windows = os_type == "Windows"
        settings: dict[str, Any] = {"patchMode": patch_mode, "assessmentMode": assessment}
        if bypass is not None:
            settings["automaticByPlatformSettings"] = {"rebootSetting": "IfRequired",
                                                       "bypassPlatformSafetyChecksOnUserSchedule": bypass}
        config_key = "windowsConfiguration" if windows else "linuxConfiguration"
        config: dict[str, Any] = {"provisionVMAgent": True, "patchSettings": settings}
        if windows:
            config["enableAutomaticUpdates"] = patch_mode == "AutomaticByOS"
        else:
            config["disablePasswordAuthentication"] = True
        props: dict[str, Any] = {
            "vmId": stable_guid(vm_id, "vmId"), "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
            "storageProfile": {
                "imageReference": {**(image or (WINDOWS_IMAGE if windows else UBUNTU_IMAGE)),
                                   "exactVersion": "latest"} if os_profile else None,
                "osDisk": {"osType": os_type, "name": f"{name}_OsDisk_1", "caching": "ReadWrite",
                           "createOption": "FromImage" if os_profile else "Attach",
                           "managedDisk": {"storageAccountType": "Premium_LRS",
                                           "id": _rid(sub, rg, "Microsoft.Compute", "disks", f"{name}_OsDisk_1")},
                           "diskSizeGB": 127 if windows else 30}},
            "networkProfile": {"networkInterfaces": [{"id": _rid(sub, rg, "Microsoft.Network", "networkInterfaces",
                                                                  f"{name}-nic")}]},
            "provisioningState": "Succeeded", "timeCreated": iso(self.now - timedelta(days=200))}
        if os_profile:
            props["osProfile"] = {"computerName": name, "adminUsername": "azureadmin", config_key: config,
                                  "secrets": [], "allowExtensionOperations": True}
        else:
            del props["storageProfile"]["imageReference"]
        vm = {"id": vm_id, "name": name, "type": "Microsoft.Compute/virtualMachines", "location": LOC,
              "tags": dict(tags or {}), "properties": props}
        self.s.resources.append(vm)
        views = []
        if extension is not None:
            ext_name, version, full = patching.PATCH_EXTENSIONS[os_type.lower()]
            ext_id = f"{vm_id}/extensions/{ext_name}"
            self.s.resources.append({"id": ext_id, "name": ext_name, "type": "Microsoft.Compute/virtualMachines/"
                                     "extensions", "location": LOC, "properties": {
                                         "publisher": patching.PATCH_PUBLISHER, "type": ext_name,
                                         "typeHandlerVersion": version, "autoUpgradeMinorVersion": True,
                                         "enableAutomaticUpgrade": True, "settings": {},
                                         "provisioningState": extension}})
            views.append(patching.extension_view(
                ext_name, f"{patching.PATCH_PUBLISHER}.{ext_name}", full, extension, when=self.now - timedelta(hours=6),
                message=EXTENSION_FAILED_MESSAGE if extension == "Failed" else None))
        if with_view:
            self.s.views[vm_id] = patching.instance_view(vm, power=power, agent_ready=agent_ready, extensions=views,
                                                         when=self.now - timedelta(hours=6), os_name=os_name,
                                                         patch_status=patch_status)
        self.s.refs[name] = vm_id
        return vm_id

    def arc(self, sub: str, rg: str, name: str, os_type: str, *, status: str = "Connected",
            assessment: str = "AutomaticByPlatform", changed: timedelta = timedelta(minutes=4)) -> str:
        machine_id = _rid(sub, rg, "Microsoft.HybridCompute", "machines", name)
        key = "windowsConfiguration" if os_type == "Windows" else "linuxConfiguration"
        self.s.resources.append({
            "id": machine_id, "name": name, "type": "Microsoft.HybridCompute/machines", "location": LOC,
            "tags": {"site": "dc-rotterdam"}, "kind": None,
            "identity": {"type": "SystemAssigned", "principalId": stable_guid(machine_id, "principal"),
                         "tenantId": self.tenant},
            "properties": {
                "provisioningState": "Succeeded", "status": status, "lastStatusChange": iso(self.now - changed),
                "agentVersion": "1.46.02904.1847", "machineFqdn": f"{name}.contoso.local", "displayName": name,
                "osName": os_type.lower(), "osType": os_type.lower(),
                "osVersion": "10.0.20348.2849" if os_type == "Windows" else "5.15.0-125-generic",
                "osSku": "Windows Server 2022 Datacenter" if os_type == "Windows" else "Ubuntu 22.04.5 LTS",
                "vmId": stable_guid(machine_id, "vmId"),
                "osProfile": {"computerName": name, key: {"patchSettings": {"assessmentMode": assessment,
                                                                            "patchMode": "AutomaticByPlatform"}}}}})
        self.s.refs[name] = machine_id
        return machine_id

    def arc_extension(self, machine_id: str, os_type: str, state: str) -> str:
        from sandbox.hybrid import EXTENSIONS, extension_body

        name, version = EXTENSIONS[os_type.lower()]
        ext_id = f"{machine_id}/extensions/{name}"
        self.s.resources.append(extension_body(ext_id, LOC, name, version, state))
        return ext_id

    # schedules --------------------------------------------------------------------------------------
    def config(self, sub: str, rg: str, name: str, *, recur: str, duration: str, reboot: str,
               linux: bool, extension_properties: bool = True) -> str:
        config_id = _rid(sub, rg, "Microsoft.Maintenance", "maintenanceConfigurations", name).replace(
            "/resourceGroups/", "/resourcegroups/")
        created = self.now - timedelta(days=90)
        props: dict[str, Any] = {
            "namespace": "Microsoft.Maintenance", "maintenanceScope": "InGuestPatch", "visibility": "Custom",
            "maintenanceWindow": {"startDateTime": created.strftime("%Y-%m-%d 03:00"),
                                  "expirationDateTime": "9999-12-31 23:59:59", "duration": duration,
                                  "timeZone": "UTC", "recurEvery": recur},
            "installPatches": {"rebootSetting": reboot,
                               "windowsParameters": {"classificationsToInclude": ["Critical", "Security"],
                                                     "kbNumbersToExclude": [], "kbNumbersToInclude": [],
                                                     "excludeKbsRequiringReboot": False},
                               "linuxParameters": {"classificationsToInclude": ["Critical", "Security"] if linux
                                                   else ["Critical", "Security", "Other"],
                                                   "packageNameMasksToExclude": [], "packageNameMasksToInclude": []}}}
        if extension_properties:
            props["extensionProperties"] = {"InGuestPatchMode": "User"}
        self.s.resources.append({
            "id": config_id, "name": name, "type": "Microsoft.Maintenance/maintenanceConfigurations",
            "location": LOC, "tags": {"owner": "platform-ops"},
            "systemData": {"createdBy": "ops-automation@contoso.com", "createdByType": "User",
                           "createdAt": iso(created), "lastModifiedBy": "ops-automation@contoso.com",
                           "lastModifiedByType": "User", "lastModifiedAt": iso(created)},
            "properties": props})
        return config_id

    def assign(self, machine_id: str, config_id: str) -> str:
        from sandbox.maintenance import assignment_row

        name = f"{config_id.rsplit('/', 1)[-1]}-{machine_id.rsplit('/', 1)[-1]}"
        assignment_id = f"{machine_id}/providers/Microsoft.Maintenance/configurationAssignments/{name}"
        body = {"id": assignment_id, "name": name, "type": "Microsoft.Maintenance/configurationAssignments",
                "location": LOC, "properties": {"maintenanceConfigurationId": config_id, "resourceId": machine_id}}
        self.s.resources.append(body)
        self.s.graph["maintenanceresources"].append(assignment_row(self.tenant, body))
        return assignment_id

    def dynamic_assignment(self, sub: str, name: str, config_id: str, tags: dict[str, list[str]]) -> str:
        from sandbox.maintenance import assignment_row

        assignment_id = f"/subscriptions/{sub}/providers/Microsoft.Maintenance/configurationAssignments/{name}"
        body = {"id": assignment_id, "name": name, "type": "Microsoft.Maintenance/configurationAssignments",
                "properties": {"maintenanceConfigurationId": config_id, "resourceId": f"/subscriptions/{sub}",
                               "filter": {"resourceTypes": ["Microsoft.Compute/virtualMachines"],
                                          "locations": [LOC], "osTypes": ["Linux"],
                                          "tagSettings": {"tags": tags, "filterOperator": "Any"}}}}
        self.s.resources.append(body)
        self.s.graph["maintenanceresources"].append(assignment_row(self.tenant, body))
        return assignment_id

    def run(self, config_id: str, start: datetime, *, duration: timedelta, status: str = "Completed",
            error: dict[str, Any] | None = None) -> str:
        """The run-level `maintenanceconfigurations/applyupdates` row; returns the run (correlation) id, which
        begins with the configuration's id."""
        stamp = start.strftime("%Y%m%d%H%M%S")
        run_id = f"{config_id}/providers/microsoft.maintenance/applyupdates/{stamp}".lower()
        row = patching.graph_base(config_id, run_id, stamp, "microsoft.maintenance/maintenanceconfigurations/"
                                  "applyupdates", tenant=self.tenant, location=LOC)
        row["properties"] = {"maintenanceConfigurationId": config_id, "correlationId": run_id, "status": status,
                             "resourceId": config_id, "maintenanceScope": "InGuestPatch",
                             "startDateTime": iso(start), "endDateTime": iso(start + duration),
                             "lastUpdateTime": iso(start + duration)}
        if error is not None:
            row["properties"]["errorDetails"] = patching.error_details(error)
        self.s.graph["maintenanceresources"].append(row)
        return run_id

    def machine_run(self, machine_id: str, config_id: str, run_id: str, start: datetime, duration: timedelta) -> None:
        """The per-machine `applyupdates` row of a run."""
        stamp = run_id.rsplit("/", 1)[-1]
        row = patching.graph_base(machine_id, f"{machine_id}/providers/microsoft.maintenance/applyupdates/{stamp}"
                                  .lower(), stamp, "microsoft.maintenance/applyupdates", tenant=self.tenant,
                                  location=LOC)
        row["properties"] = {"maintenanceConfigurationId": config_id, "maintenanceScope": "InGuestPatch",
                             "resourceId": machine_id, "correlationId": run_id, "startDateTime": iso(start),
                             "endDateTime": iso(start + duration), "status": "Completed",
                             "lastUpdateTime": iso(start + duration)}
        self.s.graph["maintenanceresources"].append(row)

    # results --------------------------------------------------------------------------------------------
    def assessment(self, machine_id: str, os_type: str, *, age: timedelta = timedelta(hours=5),
                   status: str = "Succeeded", error: dict[str, Any] | None = None, started_by: str = "Platform",
                   reboot_pending: bool = False) -> None:
        end = self.now - age
        patches = patching.default_patches(machine_id, os_type, self.now) if status != "Failed" else []
        self.s.graph["patchassessmentresources"].extend(patching.assessment_rows(
            machine_id, tenant=self.tenant, location=LOC, os_type=os_type,
            activity=stable_guid("assessment", machine_id, iso(end)), patches=patches, status=status, error=error,
            started_by=started_by, start=end - timedelta(minutes=2), end=end, reboot_pending=reboot_pending))

    def installation(self, machine_id: str, os_type: str, run_id: str | None, start: datetime, *,
                     reboot: str = "IfRequired", status: str | None = None, error: dict[str, Any] | None = None,
                     reboot_status: str | None = None, exceeded: bool = False, minutes: int = 38,
                     patches: bool = True, per_update: bool = True) -> str:
        activity = stable_guid("installation", machine_id, iso(start))
        details = patching.select(patching.default_patches(machine_id, os_type, self.now) if patches else [],
                                  os_type, {"classificationsToInclude": ["Critical", "Security"]})
        details = patching.apply_outcome(details, status, exceeded)
        summary = patching.install_summary(details, reboot, status=status, reboot_status=reboot_status,
                                           window_exceeded=exceeded, error=error)
        rows = patching.installation_rows(
            machine_id, tenant=self.tenant, location=LOC, os_type=os_type, activity=activity, details=details,
            summary=summary, started_by="Platform" if run_id else "User", start=start,
            end=start + timedelta(minutes=minutes), maintenance_run_id=run_id, per_update=per_update)
        self.s.graph["patchinstallationresources"].extend(rows)
        return activity


def update_manager(now: datetime, tenant: str) -> Seeds:  # noqa: PLR0915 (the scenarios read top to bottom)
    """The Update Manager scenarios (module docstring); refs `<scenario>:<role>`."""
    b = _UM(now, tenant)
    s, refs, sub = b.s, b.s.refs, SUB_UM
    s.subscriptions.extend([SUB_UM, SUB_NOREG])
    refs["um:subscription"] = SUB_UM
    for rg in ("rg-um-schedules", "rg-um-win", "rg-um-lnx", "rg-um-arc"):
        b.group(sub, rg, {"workload": "update-manager"})
    win = b.config(sub, "rg-um-schedules", "mc-um-win-weekly", recur="Week Saturday", duration="03:00",
                   reboot="IfRequired", linux=False)
    lnx = b.config(sub, "rg-um-schedules", "mc-um-linux-weekly", recur="Week Sunday", duration="02:00",
                   reboot="IfRequired", linux=True)
    noreboot = b.config(sub, "rg-um-schedules", "mc-um-noreboot", recur="Week Saturday", duration="02:00",
                        reboot="Never", linux=False)
    cancelled = b.config(sub, "rg-um-schedules", "mc-um-cancelled", recur="Day", duration="02:00",
                         reboot="IfRequired", linux=True)
    usercancel = b.config(sub, "rg-um-schedules", "mc-um-usercancel", recur="Day", duration="02:00",
                          reboot="IfRequired", linux=True)
    preevent = b.config(sub, "rg-um-schedules", "mc-um-preevent", recur="Week Friday", duration="02:00",
                        reboot="IfRequired", linux=False)
    invalid = b.config(sub, "rg-um-schedules", "mc-um-invalid", recur="Week Monday", duration="02:00",
                       reboot="IfRequired", linux=False, extension_properties=False)
    for name, config_id in (("win", win), ("linux", lnx), ("noreboot", noreboot), ("cancelled", cancelled),
                            ("usercancel", usercancel), ("preevent", preevent), ("invalid", invalid)):
        refs[f"um:schedule:{name}"] = config_id
    win_start = (now - timedelta(days=2)).replace(hour=3, minute=0, second=0, microsecond=0)
    lnx_start = (now - timedelta(days=1)).replace(hour=2, minute=0, second=0, microsecond=0)
    win_run = b.run(win, win_start, duration=timedelta(hours=3))
    lnx_run = b.run(lnx, lnx_start, duration=timedelta(hours=2))
    refs["um:run:win"], refs["um:run:linux"] = win_run, lnx_run

    # aum.schedule_prereq_not_set: assigned, but not on Customer Managed Schedules
    byos = b.vm(sub, "rg-um-win", "vm-um-byos-01", "Windows", patch_mode="AutomaticByOS")
    nobypass = b.vm(sub, "rg-um-lnx", "vm-um-nobypass-01", "Linux", patch_mode="AutomaticByPlatform", bypass=False)
    specialized = b.vm(sub, "rg-um-win", "vm-um-specialized-01", "Windows", patch_mode="AutomaticByPlatform",
                       os_profile=False)
    b.assign(byos, win)
    b.assign(nobypass, lnx)
    b.assign(specialized, win)
    for machine, os_type in ((byos, "Windows"), (nobypass, "Linux")):
        b.assessment(machine, os_type)
    refs["aum.schedule_prereq_not_set:vm"] = byos
    refs["aum.schedule_prereq_not_set:vm-no-bypass"] = nobypass
    refs["aum.schedule_prereq_not_set:vm-no-os-profile"] = specialized
    refs["aum.schedule_prereq_not_set:schedule"] = win

    # aum.periodic_assessment_not_enabled: ImageDefault, though assessment is expected (tag)
    noassess = b.vm(sub, "rg-um-win", "vm-um-noassess-01", "Windows", patch_mode="AutomaticByPlatform",
                    assessment="ImageDefault", bypass=True, tags={"remediator-expect-assessment": "true"})
    refs["aum.periodic_assessment_not_enabled:vm"] = noassess

    # aum.provider_not_registered: a subscription where Microsoft.Maintenance and Microsoft.Compute aren't registered
    s.subscription_providers[SUB_NOREG] = {"Microsoft.Maintenance": "NotRegistered",
                                           "Microsoft.Compute": "NotRegistered"}
    b.group(SUB_NOREG, "rg-noreg-arc", {"workload": "update-manager"})
    noreg = b.arc(SUB_NOREG, "rg-noreg-arc", "arc-noreg-01", "Linux")
    refs["aum.provider_not_registered:subscription"] = SUB_NOREG
    refs["aum.provider_not_registered:namespace"] = "Microsoft.Maintenance"
    refs["aum.provider_not_registered:arc-namespace"] = "Microsoft.Compute"
    refs["aum.provider_not_registered:machine"] = noreg

    # Windows schedule's run: one deallocated machine, one that ran out of window, one missing
    off = b.vm(sub, "rg-um-win", "vm-um-off-01", "Windows", patch_mode="AutomaticByPlatform", bypass=True,
               power="deallocated")
    mwe = b.vm(sub, "rg-um-win", "vm-um-mwe-01", "Windows", patch_mode="AutomaticByPlatform", bypass=True)
    missed = b.vm(sub, "rg-um-win", "vm-um-missed-01", "Windows", patch_mode="AutomaticByPlatform", bypass=True)
    ok_win = b.vm(sub, "rg-um-win", "vm-um-ok-01", "Windows", patch_mode="AutomaticByPlatform", bypass=True)
    for machine in (off, mwe, missed, ok_win):
        b.assign(machine, win)
    for machine in (off, mwe, ok_win):
        b.machine_run(machine, win, win_run, win_start, timedelta(hours=3))
    b.installation(off, "Windows", win_run, win_start + timedelta(minutes=1), status="Failed", error=SHUTDOWN_ERROR,
                   reboot_status="NotNeeded", minutes=1, patches=False)
    b.installation(mwe, "Windows", win_run, win_start + timedelta(minutes=1), exceeded=True, minutes=178,
                   error={"code": "MaintenanceWindowExceeded", "message": "Maintenance window exceeded: the selected "
                          "updates were not all installed before the window ended.", "details": []})
    b.installation(ok_win, "Windows", win_run, win_start + timedelta(minutes=1))
    for machine in (mwe, missed, ok_win):
        b.assessment(machine, "Windows")
    b.assessment(off, "Windows", age=timedelta(days=4))
    refs["aum.machine_unavailable:vm"], refs["aum.machine_unavailable:run"] = off, win_run
    refs["aum.machine_unavailable:schedule"] = win
    refs["um.maintenance_window_exceeded:vm"], refs["um.maintenance_window_exceeded:run"] = mwe, win_run
    refs["um.maintenance_window_exceeded:schedule"] = win
    refs["aum.schedule_not_triggered:vm"], refs["aum.schedule_not_triggered:run"] = missed, win_run
    refs["aum.schedule_not_triggered:schedule"] = win
    refs["um:vm-succeeded"] = ok_win

    # aum.extension_failed / aum.auto_assessment_not_running / aum.linux_sudo_check_failed (Linux)
    extfail = b.vm(sub, "rg-um-lnx", "vm-um-extfail-01", "Linux", patch_mode="AutomaticByPlatform", bypass=True,
                   extension="Failed")
    b.assessment(extfail, "Linux", age=timedelta(days=2), status="Failed", error={
        "code": "VMExtensionProvisioningError", "message": "VM has reported a failure when processing extension "
        f"'LinuxPatchExtension'. Error message: \"{EXTENSION_FAILED_MESSAGE}\".", "details": []})
    refs["aum.extension_failed:vm"] = extfail
    refs["aum.extension_failed:extension"] = f"{extfail}/extensions/LinuxPatchExtension"
    agent = b.vm(sub, "rg-um-lnx", "vm-um-agent-01", "Linux", patch_mode="AutomaticByPlatform", bypass=True,
                 agent_ready=False)
    b.assessment(agent, "Linux", age=timedelta(days=5))
    refs["aum.extension_failed:vm-agent-not-ready"] = agent
    autoassess = b.vm(sub, "rg-um-lnx", "vm-um-autoassess-01", "Linux", patch_mode="AutomaticByPlatform", bypass=True)
    b.assessment(autoassess, "Linux", age=timedelta(days=3), status="Failed", error=AUTO_ASSESS_ERROR)
    refs["aum.auto_assessment_not_running:vm"] = autoassess
    sudo = b.vm(sub, "rg-um-lnx", "vm-um-sudo-01", "Linux", patch_mode="AutomaticByPlatform", bypass=True)
    b.assign(sudo, lnx)
    b.machine_run(sudo, lnx, lnx_run, lnx_start, timedelta(hours=2))
    b.assessment(sudo, "Linux", status="Failed", error=SUDO_ERROR)
    b.installation(sudo, "Linux", lnx_run, lnx_start + timedelta(minutes=1), status="Failed", error=SUDO_ERROR,
                   reboot_status="NotNeeded", minutes=2)
    s.outcomes[sudo] = (PatchOutcome("assess", status="Failed", error=SUDO_ERROR, persistent=True),
                        PatchOutcome("install", status="Failed", error=SUDO_ERROR, reboot_status="NotNeeded",
                                     persistent=True))
    refs["aum.linux_sudo_check_failed:vm"] = sudo

    # aum.internal_execution_error: the last on-demand assessment failed; the next one works
    internal = b.vm(sub, "rg-um-win", "vm-um-internal-01", "Windows", patch_mode="AutomaticByPlatform", bypass=True)
    b.assessment(internal, "Windows", age=timedelta(hours=2), status="Failed", error=INTERNAL_ERROR,
                 started_by="User")
    s.outcomes[internal] = (PatchOutcome("assess", lro_error={"code": INTERNAL_ERROR["code"],
                                                              "message": INTERNAL_ERROR["message"]}),)
    refs["aum.internal_execution_error:vm"] = internal

    # aum.reboot_required: installed with rebootSetting Never, a reboot is pending
    reboot_vm = b.vm(sub, "rg-um-win", "vm-um-reboot-01", "Windows", patch_mode="AutomaticByPlatform", bypass=True,
                     patch_status={"availablePatchSummary": {
                         "status": "Succeeded", "assessmentActivityId": stable_guid("reboot", "assessment"),
                         "rebootPending": True, "criticalAndSecurityPatchCount": 0, "otherPatchCount": 1,
                         "startTime": iso(now - timedelta(hours=20)),
                         "lastModifiedTime": iso(now - timedelta(hours=20)),
                         "error": None}, "configurationStatuses": patching.patch_configuration_statuses(True, now)})
    b.assign(reboot_vm, noreboot)
    reboot_start = (now - timedelta(days=1)).replace(hour=3, minute=0, second=0, microsecond=0)
    reboot_run = b.run(noreboot, reboot_start, duration=timedelta(hours=2))
    b.machine_run(reboot_vm, noreboot, reboot_run, reboot_start, timedelta(hours=2))
    b.installation(reboot_vm, "Windows", reboot_run, reboot_start + timedelta(minutes=1), reboot="Never")
    b.assessment(reboot_vm, "Windows", age=timedelta(hours=20), reboot_pending=True)
    refs["aum.reboot_required:vm"], refs["aum.reboot_required:run"] = reboot_vm, reboot_run
    refs["aum.reboot_required:schedule"] = noreboot

    # Linux schedule's run: reboot not completed, package manager broken, an unsupported OS, a dynamic scope
    rebootfail = b.vm(sub, "rg-um-lnx", "vm-um-rebootfail-01", "Linux", patch_mode="AutomaticByPlatform", bypass=True)
    pkgmgr = b.vm(sub, "rg-um-lnx", "vm-um-pkgmgr-01", "Linux", patch_mode="AutomaticByPlatform", bypass=True)
    unsupported = b.vm(sub, "rg-um-lnx", "vm-um-xenial-01", "Linux", patch_mode="AutomaticByPlatform", bypass=True,
                       image=XENIAL_IMAGE, os_name="ubuntu 16.04")
    dyn = b.vm(sub, "rg-um-lnx", "vm-um-dyn-01", "Linux", patch_mode="AutomaticByPlatform", bypass=True,
               tags={"patch-group": "linux-weekly"})
    dynmiss = b.vm(sub, "rg-um-lnx", "vm-um-dynmiss-01", "Linux", patch_mode="AutomaticByPlatform", bypass=True,
                   tags={"patch_group": "linux-weekly"})
    for machine in (rebootfail, pkgmgr, unsupported):
        b.assign(machine, lnx)
    dynamic = b.dynamic_assignment(sub, "dyn-linux-weekly", lnx, {"patch-group": ["linux-weekly"]})
    for machine in (rebootfail, pkgmgr, unsupported, dyn):
        b.machine_run(machine, lnx, lnx_run, lnx_start, timedelta(hours=2))
        b.assessment(machine, "Linux")
    b.assessment(dynmiss, "Linux")
    b.installation(rebootfail, "Linux", lnx_run, lnx_start + timedelta(minutes=1), status="Failed",
                   error=REBOOT_FAILED_ERROR, reboot_status="Failed", minutes=95)
    b.installation(pkgmgr, "Linux", lnx_run, lnx_start + timedelta(minutes=1), status="Failed",
                   error=PACKAGE_MANAGER_ERROR, reboot_status="NotNeeded", minutes=6)
    s.outcomes[pkgmgr] = (PatchOutcome("install", status="Failed", error=PACKAGE_MANAGER_ERROR,
                                       reboot_status="NotNeeded", persistent=True),)
    b.installation(unsupported, "Linux", lnx_run, lnx_start + timedelta(minutes=1), status="Failed", error=ESM_ERROR,
                   reboot_status="NotNeeded", minutes=3, patches=False)
    b.installation(dyn, "Linux", lnx_run, lnx_start + timedelta(minutes=1))
    refs["aum.reboot_not_completed:vm"], refs["aum.reboot_not_completed:run"] = rebootfail, lnx_run
    refs["um.run_failed_linux:vm"], refs["um.run_failed_linux:run"] = pkgmgr, lnx_run
    refs["aum.os_not_supported:vm"] = unsupported
    refs["aum.dynamic_scope_miss:vm"], refs["aum.dynamic_scope_miss:assignment"] = dynmiss, dynamic
    refs["aum.dynamic_scope_miss:included-vm"], refs["aum.dynamic_scope_miss:run"] = dyn, lnx_run

    # um.hresult: Windows Update can't reach its service
    hresult = b.vm(sub, "rg-um-win", "vm-um-hresult-01", "Windows", patch_mode="AutomaticByPlatform", bypass=True)
    b.assessment(hresult, "Windows", status="Failed", error=HRESULT_ERROR)
    s.outcomes[hresult] = (PatchOutcome("assess", status="Failed", error=HRESULT_ERROR, persistent=True),)
    refs["um.hresult:vm"] = hresult

    # aum.arc_disconnected (and an Expired one); a healthy Arc machine
    disconnected = b.arc(sub, "rg-um-arc", "arc-um-disconnected-01", "Linux", status="Disconnected",
                         changed=timedelta(days=3))
    b.arc_extension(disconnected, "Linux", "Succeeded")
    b.assessment(disconnected, "Linux", age=timedelta(days=3))
    expired = b.arc(sub, "rg-um-arc", "arc-um-expired-01", "Windows", status="Expired", changed=timedelta(days=60))
    healthy = b.arc(sub, "rg-um-arc", "arc-um-ok-01", "Windows")
    b.arc_extension(healthy, "Windows", "Succeeded")
    b.assessment(healthy, "Windows")
    refs["aum.arc_disconnected:machine"], refs["aum.arc_disconnected:expired-machine"] = disconnected, expired
    refs["um:arc-connected"] = healthy

    # runs cancelled by the platform (a failure) and by a user (not a failure); a pre-event that failed
    cancel_vm = b.vm(sub, "rg-um-lnx", "vm-um-cancel-01", "Linux", patch_mode="AutomaticByPlatform", bypass=True)
    b.assign(cancel_vm, cancelled)
    b.assign(cancel_vm, usercancel)
    day = (now - timedelta(hours=10)).replace(minute=0, second=0, microsecond=0)
    refs["aum.run_cancelled_by_platform:run"] = b.run(
        cancelled, day, duration=timedelta(hours=2), status="Cancelled",
        error={"code": "MaintenanceCancelled", "message": PLATFORM_CANCEL, "details": []})
    refs["aum.run_cancelled_by_platform:schedule"] = cancelled
    refs["aum.run_cancelled_by_platform:vm"] = cancel_vm
    refs["none:user-cancelled-run"] = b.run(
        usercancel, day - timedelta(hours=1), duration=timedelta(hours=2), status="Cancelled",
        error={"code": "MaintenanceCancelled", "message": USER_CANCEL, "details": []})
    refs["none:user-cancelled-schedule"] = usercancel
    pre_vm = b.vm(sub, "rg-um-win", "vm-um-preevent-01", "Windows", patch_mode="AutomaticByPlatform", bypass=True)
    b.assign(pre_vm, preevent)
    pre_start = (now - timedelta(days=3)).replace(hour=3, minute=0, second=0, microsecond=0)
    pre_run = b.run(preevent, pre_start, duration=timedelta(hours=2), error={
        "code": "PreMaintenanceEventFailed", "message": PRE_EVENT_MESSAGE, "details": []})
    b.machine_run(pre_vm, preevent, pre_run, pre_start, timedelta(hours=2))
    b.installation(pre_vm, "Windows", pre_run, pre_start + timedelta(minutes=1))
    refs["aum.pre_event_failed:schedule"], refs["aum.pre_event_failed:run"] = preevent, pre_run

    # aum.configuration_invalid: an InGuestPatch schedule without extensionProperties.InGuestPatchMode
    invalid_vm = b.vm(sub, "rg-um-win", "vm-um-invalidcfg-01", "Windows", patch_mode="AutomaticByPlatform",
                      bypass=True)
    b.assign(invalid_vm, invalid)
    refs["aum.configuration_invalid:schedule"], refs["aum.configuration_invalid:vm"] = invalid, invalid_vm
    return s


def fleet(vm_count: int, seed: int, now: datetime, tenant: str) -> Seeds:
    with paused_gc():
        return _fleet(vm_count, seed, now, tenant)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Bulk construction of many small objects: the cyclic collector would rescan them all again and
    again (none of them is a cycle), tripling the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _fleet(vm_count: int, seed: int, now: datetime, tenant: str) -> Seeds:
    """`vm_count` VMs over 4 subscriptions x 5 resource groups, all assigned to their subscription's weekly
    schedule; about 10% failed the last run (Failed, window exceeded or reboot pending) and 2% are
    deallocated. Resources, instance views, assignments, and the run's Resource Graph rows (no per-update
    rows, to stay light)."""
    rng = random.Random(seed)
    b = _UM(now, tenant)
    subs = [stable_guid("fleet", str(seed), str(i)) for i in range(4)]
    b.s.subscriptions.extend(subs)
    start = (now - timedelta(days=1)).replace(hour=2, minute=0, second=0, microsecond=0)
    runs: dict[str, tuple[str, str]] = {}
    for index, sub in enumerate(subs):
        b.s.refs[f"fleet:subscription:{index}"] = sub
        for g in range(5):
            b.group(sub, f"rg-fleet-{g:02d}")
        config_id = b.config(sub, "rg-fleet-00", "mc-fleet-weekly", recur="Week Sunday", duration="03:55",
                             reboot="IfRequired", linux=False)
        runs[sub] = (config_id, b.run(config_id, start, duration=timedelta(hours=3, minutes=55)))
        b.s.refs[f"fleet:schedule:{index}"] = config_id
    failing = 0
    for n in range(vm_count):
        sub = subs[n % len(subs)]
        os_type = "Windows" if n % 3 == 0 else "Linux"
        roll = rng.random()
        power = "deallocated" if roll < 0.02 else "running"
        machine = b.vm(sub, f"rg-fleet-{(n // len(subs)) % 5:02d}", f"vm-fleet-{n:05d}", os_type,
                       patch_mode="AutomaticByPlatform", bypass=True, tags={"env": "fleet"}, power=power)
        del b.s.refs[f"vm-fleet-{n:05d}"]
        config_id, run_id = runs[sub]
        b.assign(machine, config_id)
        b.machine_run(machine, config_id, run_id, start, timedelta(hours=3, minutes=55))
        if power == "deallocated":
            b.installation(machine, os_type, run_id, start, status="Failed", error=SHUTDOWN_ERROR, minutes=1,
                           reboot_status="NotNeeded", patches=False, per_update=False)
            failing += 1
        elif roll < 0.06:
            b.installation(machine, os_type, run_id, start, exceeded=True, minutes=230, per_update=False, error={
                "code": "MaintenanceWindowExceeded", "message": "Maintenance window exceeded.", "details": []})
            failing += 1
        elif roll < 0.10:
            b.installation(machine, os_type, run_id, start, status="Failed", error=PACKAGE_MANAGER_ERROR
                           if os_type == "Linux" else HRESULT_ERROR, reboot_status="NotNeeded", per_update=False)
            failing += 1
        else:
            b.installation(machine, os_type, run_id, start, per_update=False)
    b.s.refs["fleet:vm_count"] = str(vm_count)
    b.s.refs["fleet:failing"] = str(failing)
    return b.s
