"""What the double holds at start: the `Estate`, and `sandbox_estate()`, a realistic one.

The sandbox is one subscription with a failure for every remediable scenario (scenarios.md):
the `Microsoft.Automation` provider not registered; Automation Update Management deployments
whose latest runs exceeded the maintenance window or failed to start on machines that changed
their SourceComputerId or no longer exist; an Update Manager schedule whose last run exceeded its
window on two machines; Image Builder templates that timed out, timed out replicating, ran out of
resources on the default build VM, produced no artifacts, failed provisioning with the
update/upgrade conflict, or failed in a customizer; the Log Analytics rows the guides' queries read.

Blob URLs: the estate writes the customization.log URLs of failed builds with the placeholder
`BLOB_ENDPOINT` (`https://blob.double.invalid`); `AzureDouble` replaces it with its own blob endpoint
(`{url}/blob`) when it loads the estate, so messages point at logs the double really serves.
Pass `blob_endpoint=` to `sandbox_estate` to bake in another endpoint instead.

`Estate.refs` names what tests need (ids unless said otherwise): subscription, tenant, location;
vm-app-01/02 (Windows, weekly-windows-critical), vm-web-01/02/03 (Linux, monthly-linux-security;
vm-web-03 is deleted: GET answers 404), vm-prod-01..04 (mc-prod-weekly), vm-dev-01/02, onprem-db01
(Arc machine, `onprem-db01.contoso.local` in nonAzureComputerNames); automation_account;
suc:<name> for weekly-windows-critical, monthly-linux-security, weekly-linux-dev; run:<suc name>
(latest run GUID); machine-run:<machine> (GUIDs of the latest runs' machine runs); scid:vm-web-02:old
/ :new (its SourceComputerId before and after the agent re-install); workspace, workspace_id (the
Log Analytics customer id); maintenance:<name> for mc-prod-weekly, mc-dev-daily;
maintenance-run:mc-prod-weekly (latest run's correlation id; :previous the week before),
maintenance-run:mc-dev-daily; gallery; template:<name> for the seven templates; log:<name>
("account/container/path" of a template's last customization.log); sig-version:tpl-ubuntu-sig.

Azure Update Manager (sandbox/um_estate.py) lives in a second subscription, `um:subscription`, with
refs `<scenario>:<role>`: aum.schedule_prereq_not_set:{vm,vm-no-bypass,vm-no-os-profile,schedule},
aum.periodic_assessment_not_enabled:vm, aum.provider_not_registered:{subscription,namespace,arc-namespace,
machine} (a third subscription), aum.machine_unavailable:{vm,run,schedule},
aum.extension_failed:{vm,extension,vm-agent-not-ready}, aum.auto_assessment_not_running:vm,
aum.internal_execution_error:vm, aum.reboot_required:{vm,run,schedule}, aum.reboot_not_completed:{vm,run},
aum.schedule_not_triggered:{vm,run,schedule}, aum.dynamic_scope_miss:{vm,assignment,included-vm,run},
aum.linux_sudo_check_failed:vm, aum.os_not_supported:vm, aum.arc_disconnected:{machine,expired-machine},
aum.run_cancelled_by_platform:{run,schedule,vm}, none:user-cancelled-{run,schedule},
aum.pre_event_failed:{schedule,run}, aum.configuration_invalid:{schedule,vm},
um.maintenance_window_exceeded:{vm,run,schedule}, um.hresult:vm, um.run_failed_linux:{vm,run}; and
um:schedule:<win|linux|noreboot|cancelled|usercancel|preevent|invalid>, um:run:<win|linux>,
um:vm-succeeded, um:arc-connected, plus each machine by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, NamedTuple

from sandbox import packerlog, patching
from sandbox.patching import PatchOutcome
from sandbox.um_estate import Seeds, fleet, update_manager
from sandbox.util import iso, iso_offset, stable_guid, utcnow

BLOB_ENDPOINT = "https://blob.double.invalid"

DEFAULT_PROVIDERS: Mapping[str, str] = MappingProxyType({
    "Microsoft.Automation": "Registered",
    "Microsoft.Maintenance": "Registered",
    "Microsoft.VirtualMachineImages": "Registered",
    "Microsoft.Compute": "Registered",
    "Microsoft.HybridCompute": "Registered",
    "Microsoft.OperationalInsights": "Registered",
    "Microsoft.ManagedIdentity": "Registered",
    "Microsoft.Storage": "Registered",
    "Microsoft.Network": "Registered",
    "Microsoft.ResourceGraph": "Registered",
    "Microsoft.Resources": "Registered",
})


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # Log Analytics types: string, datetime, bool, int, long, real, guid, timespan, dynamic


@dataclass(frozen=True, slots=True)
class LogTable:
    """One Log Analytics table: its schema and rows (dicts by column name; datetimes as ISO text)."""

    name: str
    columns: tuple[Column, ...]
    rows: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Workspace:
    """A Log Analytics workspace: `customer_id` is the "Workspace ID" the query API takes."""

    customer_id: str
    resource_id: str
    tables: tuple[LogTable, ...] = ()


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How the next `run` of an image template ends.

    `message` may contain `{log_url}` and `{operation_id}`; when `log` is given it is stored as that
    run's customization.log blob and `{log_url}` points at it.
    """

    run_state: str = "Succeeded"
    run_sub_state: str | None = None
    message: str = ""
    log: str | None = None
    error_code: str = "PackerBuildFailed"


@dataclass(frozen=True, slots=True)
class Estate:
    """The double's initial state. Resources are ARM JSON as GET returns them (each with `id`).

    `instance_views`: Compute VM instance views by VM id (a VM without one is running, agent Ready);
    `subscriptions`: further subscriptions of the tenant; `subscription_providers`: registration states
    of another subscription; `patch_outcomes`: the outcomes of machines' next patch operations.
    """

    subscription_id: str
    tenant_id: str
    location: str = "westeurope"
    resources: tuple[Mapping[str, Any], ...] = ()
    providers: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PROVIDERS))
    workspaces: tuple[Workspace, ...] = ()
    graph: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)
    blobs: Mapping[str, str] = field(default_factory=dict)  # "account/container/path" -> text
    next_runs: Mapping[str, tuple[RunOutcome, ...]] = field(default_factory=dict)  # template id -> outcomes
    refs: Mapping[str, str] = field(default_factory=dict)  # well-known names -> ids/values, for tests
    now: datetime = field(default_factory=utcnow)
    instance_views: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    subscriptions: tuple[str, ...] = ()
    subscription_providers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    patch_outcomes: Mapping[str, tuple[PatchOutcome, ...]] = field(default_factory=dict)

    @classmethod
    def empty(cls, subscription_id: str = "00000000-0000-0000-0000-000000000000",
              tenant_id: str = "00000000-0000-0000-0000-000000000001") -> Estate:
        return cls(subscription_id=subscription_id, tenant_id=tenant_id)


# ---------------------------------------------------------------------------------------------
# the sandbox

SUB = "3f2b6c1e-8d4a-4e3b-9c71-2a5d0e6f8b14"
TENANT = "b1d9a6c4-3e2f-4a7b-9c58-0e4d2f6a8b13"
LOC = "westeurope"

RP_FAILED_TO_START = ("Failed to start the runbook. Check the parameters passed. RunbookName "
                      "Patch-MicrosoftOMSComputer. Exception You have requested to create a runbook job on a "
                      "hybrid worker group that does not exist.")
AIB_TROUBLESHOOT = "For more troubleshooting steps go to https://aka.ms/azvmimagebuilderts."


def _rid(rg: str, provider: str, *types_names: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/{provider}/" + "/".join(types_names)


@dataclass(frozen=True, slots=True)
class _Template:
    name: str
    image: str
    source: Mapping[str, Any]
    vm_size: str
    disk: int
    timeout: int
    outcome: str  # timeout | sig | lowres | noartifacts | conflict | customizer | ok
    customize: tuple[Mapping[str, Any], ...]
    regions: tuple[str, ...] = ("westeurope",)


class _Machine(NamedTuple):
    computer: str
    os_type: str
    ip: str
    resource: str
    env: str


@dataclass(frozen=True, slots=True)
class _Run:
    guid: str
    config: str
    os_type: str
    duration: str
    start: datetime


class _Builder:
    """Collects the sandbox's pieces; methods read top to bottom like the scenario list."""

    def __init__(self, now: datetime, blob_endpoint: str) -> None:
        self.now = now.replace(microsecond=0)
        self.blob = blob_endpoint.rstrip("/")
        self.resources: list[dict[str, Any]] = []
        self.graph: dict[str, list[dict[str, Any]]] = {"patchinstallationresources": [],
                                                       "maintenanceresources": [],
                                                       "patchassessmentresources": []}
        self.blobs: dict[str, str] = {}
        self.next_runs: dict[str, tuple[RunOutcome, ...]] = {}
        self.refs: dict[str, str] = {"subscription": SUB, "tenant": TENANT, "location": LOC}
        self.heartbeat: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.summaries: list[dict[str, Any]] = []
        self.operations: list[dict[str, Any]] = []
        self.workspace_id = stable_guid("law-ops", "customerId")

    def g(self, *parts: str) -> str:
        return stable_guid(SUB, *parts)

    # resource groups -------------------------------------------------------------------------
    def resource_groups(self) -> None:
        for name, tags in (("rg-patching", {"workload": "patching"}), ("rg-images", {"workload": "images"}),
                           ("rg-app", {"workload": "web"}), ("rg-prod", {"env": "prod"}),
                           ("rg-dev", {"env": "dev"}), ("rg-ops", {"workload": "operations"})):
            self.resources.append({
                "id": f"/subscriptions/{SUB}/resourceGroups/{name}", "name": name,
                "type": "Microsoft.Resources/resourceGroups", "location": LOC, "tags": tags,
                "properties": {"provisioningState": "Succeeded"},
            })

    # machines --------------------------------------------------------------------------------
    def vm(self, rg: str, name: str, os_type: str, *, size: str, image: dict[str, str], patch_mode: str,
           tags: Mapping[str, str] | None = None) -> str:
        vm_id = _rid(rg, "Microsoft.Compute", "virtualMachines", name)
        if os_type == "Windows":
            os_profile: dict[str, Any] = {"computerName": name, "adminUsername": "azureadmin",
                                          "windowsConfiguration": {
                                              "provisionVMAgent": True,
                                              # AutomaticByOS needs it true (compute.py); the others false
                                              "enableAutomaticUpdates": patch_mode == "AutomaticByOS",
                                              "patchSettings": {"patchMode": patch_mode,
                                                                "assessmentMode": "AutomaticByPlatform"}}}
        else:
            os_profile = {"computerName": name, "adminUsername": "azureadmin",
                          "linuxConfiguration": {"disablePasswordAuthentication": True, "provisionVMAgent": True,
                                                 "patchSettings": {"patchMode": patch_mode,
                                                                   "assessmentMode": "AutomaticByPlatform"}}}
        if patch_mode == "AutomaticByPlatform":
            config = os_profile.get("windowsConfiguration") or os_profile["linuxConfiguration"]
            config["patchSettings"]["automaticByPlatformSettings"] = {
                "rebootSetting": "IfRequired", "bypassPlatformSafetyChecksOnUserSchedule": True}
        self.resources.append({
            "id": vm_id, "name": name, "type": "Microsoft.Compute/virtualMachines", "location": LOC,
            "tags": dict(tags or {}),
            "properties": {
                "vmId": self.g(name, "vmId"),
                "hardwareProfile": {"vmSize": size},
                "storageProfile": {
                    "imageReference": {**image, "exactVersion": "latest"},
                    "osDisk": {"osType": os_type, "name": f"{name}_OsDisk_1_{self.g(name, 'disk').replace('-', '')}",
                               "createOption": "FromImage", "caching": "ReadWrite",
                               "managedDisk": {"storageAccountType": "Premium_LRS"},
                               "diskSizeGB": 127 if os_type == "Windows" else 30},
                },
                "osProfile": os_profile,
                "networkProfile": {"networkInterfaces": [
                    {"id": _rid(rg, "Microsoft.Network", "networkInterfaces", f"{name}-nic")}]},
                "provisioningState": "Succeeded",
                "timeCreated": iso(self.now - timedelta(days=400)),
            },
        })
        self.refs[name] = vm_id
        if patch_mode == "AutomaticByPlatform":  # Update Manager's patch extension, as it installs it
            ext_name, version, _full = patching.PATCH_EXTENSIONS[os_type.lower()]
            self.resources.append({
                "id": f"{vm_id}/extensions/{ext_name}", "name": ext_name,
                "type": "Microsoft.Compute/virtualMachines/extensions", "location": LOC,
                "properties": {"publisher": patching.PATCH_PUBLISHER, "type": ext_name, "typeHandlerVersion": version,
                               "autoUpgradeMinorVersion": True, "enableAutomaticUpgrade": True, "settings": {},
                               "provisioningState": "Succeeded"}})
        return vm_id

    def arc_machine(self, rg: str, name: str, fqdn: str, os_type: str) -> str:
        machine_id = _rid(rg, "Microsoft.HybridCompute", "machines", name)
        self.resources.append({
            "id": machine_id, "name": name, "type": "Microsoft.HybridCompute/machines", "location": LOC,
            "tags": {"site": "dc-amsterdam"},
            "identity": {"type": "SystemAssigned", "principalId": self.g(name, "principal"), "tenantId": TENANT},
            "properties": {
                "provisioningState": "Succeeded", "status": "Connected",
                "lastStatusChange": iso(self.now - timedelta(minutes=4)),
                "agentVersion": "1.46.02904.1847", "machineFqdn": fqdn, "osName": os_type.lower(),
                "osType": os_type.lower(), "osVersion": "5.15.0-125-generic", "osSku": "Ubuntu 22.04.5 LTS",
                "vmId": self.g(name, "vmId"), "displayName": name,
            },
        })
        self.refs[name] = machine_id
        return machine_id

    def machines(self) -> None:
        windows = {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer",
                   "sku": "2022-datacenter-azure-edition", "version": "latest"}
        ubuntu = {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2",
                  "version": "latest"}
        for name in ("vm-app-01", "vm-app-02"):
            self.vm("rg-app", name, "Windows", size="Standard_D4s_v5", image=windows, patch_mode="AutomaticByOS",
                    tags={"patchGroup": "weekly"})
        for name in ("vm-web-01", "vm-web-02"):
            self.vm("rg-app", name, "Linux", size="Standard_D2s_v5", image=ubuntu, patch_mode="ImageDefault",
                    tags={"patchGroup": "monthly"})
        # vm-web-03 was deleted: targeted by a deployment, absent from ARM (GET answers 404)
        self.refs["vm-web-03"] = _rid("rg-app", "Microsoft.Compute", "virtualMachines", "vm-web-03")
        self.arc_machine("rg-ops", "onprem-db01", "onprem-db01.contoso.local", "Linux")
        for name in ("vm-prod-01", "vm-prod-02", "vm-prod-03", "vm-prod-04"):
            self.vm("rg-prod", name, "Windows", size="Standard_D8s_v5", image=windows,
                    patch_mode="AutomaticByPlatform", tags={"env": "prod"})
        for name in ("vm-dev-01", "vm-dev-02"):
            self.vm("rg-dev", name, "Linux", size="Standard_B2ms", image=ubuntu, patch_mode="AutomaticByPlatform",
                    tags={"env": "dev"})

    # automation --------------------------------------------------------------------------------
    @property
    def account_id(self) -> str:
        return _rid("rg-patching", "Microsoft.Automation", "automationAccounts", "aa-patching")

    def automation(self) -> None:
        account_guid = self.g("aa-patching")
        self.resources.append({
            "id": self.account_id, "name": "aa-patching", "type": "Microsoft.Automation/AutomationAccounts",
            "location": LOC, "tags": {"workload": "patching"},
            "properties": {
                "sku": {"name": "Basic"}, "state": "Ok", "publicNetworkAccess": True, "disableLocalAuth": False,
                "creationTime": iso_offset(self.now - timedelta(days=900)),
                "lastModifiedTime": iso_offset(self.now - timedelta(days=30)),
                "automationHybridServiceUrl": f"https://{account_guid}.jrds.we.azure-automation.net/"
                                              f"automationAccounts/{account_guid}",
            },
        })
        self.refs["automation_account"] = self.account_id
        self._weekly_windows()
        self._monthly_linux()
        self._weekly_linux_dev()

    def suc(self, name: str, os_type: str, duration: str, *, vms: list[str], non_azure: list[str], frequency: str,
            start: datetime, os_settings: dict[str, Any], advanced: dict[str, Any]) -> str:
        suc_id = f"{self.account_id}/softwareUpdateConfigurations/{name}"
        created = self.now - timedelta(days=200)
        update: dict[str, Any] = {"operatingSystem": os_type, "duration": duration,
                                  "azureVirtualMachines": vms, "nonAzureComputerNames": non_azure}
        update["windows" if os_type == "Windows" else "linux"] = os_settings
        self.resources.append({
            "id": suc_id, "name": name,
            "properties": {
                "updateConfiguration": update,
                "scheduleInfo": {
                    "description": "", "startTime": iso_offset(start), "startTimeOffsetMinutes": 0,
                    "expiryTime": "9999-12-31T23:59:59.9999999+00:00", "expiryTimeOffsetMinutes": 0,
                    "isEnabled": True, "nextRun": iso_offset(self._next(start, frequency)), "nextRunOffsetMinutes": 0,
                    "interval": 1, "frequency": frequency, "creationTime": iso_offset(created),
                    "lastModifiedTime": iso_offset(created), "timeZone": "UTC", "advancedSchedule": advanced,
                },
                "provisioningState": "Succeeded", "error": {},
                "creationTime": iso_offset(created), "createdBy": "ops-automation@contoso.com",
                "lastModifiedBy": "ops-automation@contoso.com", "lastModifiedTime": iso_offset(created),
            },
        })
        self.refs[f"suc:{name}"] = suc_id
        return suc_id

    def _next(self, start: datetime, frequency: str) -> datetime:
        step = {"Week": timedelta(days=7), "Month": timedelta(days=28), "Day": timedelta(days=1)}[frequency]
        value = start
        while value <= self.now:
            value += step
        return value

    def run(self, config: str, os_type: str, duration: str, start: datetime, *, status: str, computers: int,
            failed: int, minutes: int) -> _Run:
        run_guid = self.g("run", config, start.isoformat())
        run_id = f"{self.account_id}/softwareUpdateConfigurationRuns/{run_guid}"
        end = start + timedelta(minutes=minutes)
        self.resources.append({
            "id": run_id, "name": run_guid,
            "properties": {
                "softwareUpdateConfiguration": {"name": config}, "status": status,
                "configuredDuration": duration, "osType": os_type,
                "startTime": iso_offset(start), "endTime": iso_offset(end),
                "computerCount": computers, "failedCount": failed,
                "creationTime": iso_offset(start), "createdBy": "", "lastModifiedBy": "",
                "lastModifiedTime": iso_offset(end + timedelta(seconds=61)),
            },
        })
        return _Run(run_guid, config, os_type, duration, start)

    def machine_run(self, run: _Run, target: str, status: str, *, scid: str, minutes: int,
                    error: dict[str, str] | None = None) -> str:
        guid = self.g("machine-run", run.guid, target)
        end = run.start + timedelta(minutes=minutes)
        self.resources.append({
            "id": f"{self.account_id}/softwareUpdateConfigurationMachineRuns/{guid}", "name": guid,
            "properties": {
                "targetComputer": target,
                "targetComputerType": "AzureVirtualMachines" if target.startswith("/") else "NonAzureComputers",
                "softwareUpdateConfiguration": {"name": run.config}, "status": status, "osType": run.os_type,
                "correlationId": run.guid, "sourceComputerId": scid,
                "startTime": iso_offset(run.start), "endTime": iso_offset(end), "configuredDuration": run.duration,
                "job": {} if error else {"id": self.g("job", guid)},
                "error": error or {},
                "creationTime": iso_offset(run.start), "createdBy": "", "lastModifiedBy": "",
                "lastModifiedTime": iso_offset(end),
            },
        })
        return guid

    def _last_weekday(self, weekday: int, hour: int) -> datetime:
        base = (self.now - timedelta(days=1)).replace(hour=hour, minute=0, second=0)
        while base.weekday() != weekday or base > self.now - timedelta(hours=3):
            base -= timedelta(days=1)
        return base

    def _weekly_windows(self) -> None:
        name = "weekly-windows-critical"
        vms = [self.refs["vm-app-01"], self.refs["vm-app-02"]]
        last = self._last_weekday(5, 22)
        self.suc(name, "Windows", "PT2H", vms=vms, non_azure=[], frequency="Week", start=last - timedelta(weeks=30),
                 os_settings={"includedUpdateClassifications": "Critical, Security", "excludedKbNumbers": [],
                              "rebootSetting": "IfRequired"}, advanced={"weekDays": ["Saturday"]})
        for weeks in (3, 2, 1):
            run = self.run(name, "Windows", "PT2H", last - timedelta(weeks=weeks), status="Succeeded", computers=2,
                           failed=0, minutes=74)
            for vm in vms:
                self.machine_run(run, vm, "Succeeded", scid=self.scid(vm.rsplit("/", 1)[-1]), minutes=70)
        run = self.run(name, "Windows", "PT2H", last, status="MaintenanceWindowExceeded", computers=2, failed=1,
                       minutes=121)
        self.refs["run:weekly-windows-critical"] = run.guid
        self.refs["machine-run:vm-app-01"] = self.machine_run(run, vms[0], "MaintenanceWindowExceeded",
                                                              scid=self.scid("vm-app-01"), minutes=121)
        self.refs["machine-run:vm-app-02"] = self.machine_run(run, vms[1], "Succeeded", scid=self.scid("vm-app-02"),
                                                              minutes=96)

    def _monthly_linux(self) -> None:
        name = "monthly-linux-security"
        vms = [self.refs["vm-web-01"], self.refs["vm-web-02"], self.refs["vm-web-03"]]
        non_azure = ["onprem-db01.contoso.local"]
        last = self._last_weekday(6, 1)
        self.suc(name, "Linux", "PT3H", vms=vms, non_azure=non_azure, frequency="Month",
                 start=last - timedelta(days=180),
                 os_settings={"includedPackageClassifications": "Critical, Security",
                              "excludedPackageNameMasks": ["kernel*"], "includedPackageNameMasks": [],
                              "rebootSetting": "IfRequired"},
                 advanced={"monthlyOccurrences": [{"occurrence": 2, "day": "Sunday"}]})
        previous = self.run(name, "Linux", "PT3H", last - timedelta(days=28), status="Succeeded", computers=4,
                            failed=0, minutes=52)
        for vm in vms:
            short = vm.rsplit("/", 1)[-1]
            scid = self.scid(short, "old") if short == "vm-web-02" else self.scid(short)
            self.machine_run(previous, vm, "Succeeded", scid=scid, minutes=48)
        self.machine_run(previous, non_azure[0], "Succeeded", scid=self.scid("onprem-db01"), minutes=50)
        run = self.run(name, "Linux", "PT3H", last, status="Failed", computers=4, failed=2, minutes=47)
        self.refs["run:monthly-linux-security"] = run.guid
        failed = {"code": "FailedToStart", "message": RP_FAILED_TO_START}
        self.refs["machine-run:vm-web-01"] = self.machine_run(run, vms[0], "Succeeded", scid=self.scid("vm-web-01"),
                                                              minutes=44)
        self.refs["machine-run:vm-web-02"] = self.machine_run(run, vms[1], "FailedToStart", error=failed,
                                                              scid=self.scid("vm-web-02", "old"), minutes=0)
        self.refs["machine-run:vm-web-03"] = self.machine_run(run, vms[2], "FailedToStart", error=failed,
                                                              scid=self.scid("vm-web-03"), minutes=0)
        self.refs["machine-run:onprem-db01"] = self.machine_run(run, non_azure[0], "Succeeded",
                                                                scid=self.scid("onprem-db01"), minutes=47)

    def _weekly_linux_dev(self) -> None:
        name = "weekly-linux-dev"
        vms = [self.refs["vm-dev-01"], self.refs["vm-dev-02"]]
        last = self._last_weekday(2, 20)
        self.suc(name, "Linux", "PT2H", vms=vms, non_azure=[], frequency="Week", start=last - timedelta(weeks=20),
                 os_settings={"includedPackageClassifications": "Critical, Security, Other",
                              "excludedPackageNameMasks": [], "includedPackageNameMasks": [],
                              "rebootSetting": "IfRequired"}, advanced={"weekDays": ["Wednesday"]})
        for weeks in (1, 0):
            run = self.run(name, "Linux", "PT2H", last - timedelta(weeks=weeks), status="Succeeded", computers=2,
                           failed=0, minutes=23)
            for vm in vms:
                self.machine_run(run, vm, "Succeeded", scid=self.scid(vm.rsplit("/", 1)[-1]), minutes=20)

    def scid(self, computer: str, generation: str = "current") -> str:
        return self.g("SourceComputerId", computer, generation)

    # log analytics ------------------------------------------------------------------------------
    def log_analytics(self) -> None:
        ws_id = _rid("rg-ops", "Microsoft.OperationalInsights", "workspaces", "law-ops")
        self.resources.append({
            "id": ws_id, "name": "law-ops", "type": "Microsoft.OperationalInsights/workspaces", "location": LOC,
            "tags": {"workload": "operations"},
            "properties": {"customerId": self.workspace_id, "provisioningState": "Succeeded",
                           "sku": {"name": "PerGB2018", "lastSkuUpdate": iso(self.now - timedelta(days=700))},
                           "retentionInDays": 30,
                           "workspaceCapping": {"dailyQuotaGb": 1.0, "quotaNextResetTime": iso(
                               (self.now + timedelta(days=1)).replace(hour=7, minute=0, second=0)),
                               "dataIngestionStatus": "RespectQuota"},
                           "publicNetworkAccessForIngestion": "Enabled", "publicNetworkAccessForQuery": "Enabled",
                           "createdDate": iso(self.now - timedelta(days=700)),
                           "modifiedDate": iso(self.now - timedelta(days=3))},
        })
        self.refs["workspace"] = ws_id
        self.refs["workspace_id"] = self.workspace_id
        machines = [
            _Machine("vm-app-01", "Windows", "10.20.1.4", self.refs["vm-app-01"], "Azure"),
            _Machine("vm-app-02", "Windows", "10.20.1.5", self.refs["vm-app-02"], "Azure"),
            _Machine("vm-web-01", "Linux", "10.20.2.4", self.refs["vm-web-01"], "Azure"),
            _Machine("onprem-db01.contoso.local", "Linux", "172.16.8.21", self.refs["onprem-db01"], "Non-Azure"),
        ]
        six_hours, half_day = timedelta(hours=6), timedelta(hours=12)
        for machine in machines:
            self._heartbeats(machine, self.scid(machine.computer.split(".", 1)[0]),
                             start=self.now - timedelta(days=7), end=self.now, step=six_hours)
        # vm-web-02: the agent was re-installed 9 days ago and came back with a new SourceComputerId
        web02 = _Machine("vm-web-02", "Linux", "10.20.2.5", self.refs["vm-web-02"], "Azure")
        self._heartbeats(web02, self.scid("vm-web-02", "old"), start=self.now - timedelta(days=14),
                         end=self.now - timedelta(days=9, hours=2), step=half_day)
        self._heartbeats(web02, self.scid("vm-web-02"), start=self.now - timedelta(days=9), end=self.now,
                         step=six_hours)
        # vm-web-03: deleted 41 days ago, so its last heartbeat is older than the guide's 30-day query
        web03 = _Machine("vm-web-03", "Linux", "10.20.2.6", self.refs["vm-web-03"], "Azure")
        self._heartbeats(web03, self.scid("vm-web-03"), start=self.now - timedelta(days=45),
                         end=self.now - timedelta(days=41), step=half_day)
        self.refs["scid:vm-web-02:old"] = self.scid("vm-web-02", "old")
        self.refs["scid:vm-web-02:new"] = self.scid("vm-web-02")
        self._updates()
        self._summaries([*machines, web02])
        self.operations.append({
            "TenantId": self.workspace_id, "Computer": "", "OperationStatus": "Warning",
            "Detail": "Data collection stopped due to daily limit of free data reached. Ingestion status = OverQuota",
            "OperationCategory": "Data Collection Status", "Solution": "",
            "HelpLink": "https://go.microsoft.com/fwlink/?linkid=2004128", "SourceComputerId": "",
            "TimeGenerated": iso(self.now - timedelta(days=2, hours=5, minutes=12)), "Type": "Operation",
        })

    def _heartbeats(self, machine: _Machine, scid: str, *, start: datetime, end: datetime, step: timedelta) -> None:
        computer, os_type, ip, resource, env = machine
        t = start
        parts = resource.split("/")
        while t <= end:
            self.heartbeat.append({
                "TenantId": self.workspace_id, "SourceSystem": "OpsManager" if os_type == "Windows" else "Linux",
                "TimeGenerated": iso(t), "SourceComputerId": scid, "ComputerIP": ip, "Computer": computer,
                "Category": "Direct Agent", "OSType": os_type,
                "OSName": "Windows Server 2022 Datacenter: Azure Edition" if os_type == "Windows" else "Ubuntu",
                "OSMajorVersion": "10" if os_type == "Windows" else "22",
                "OSMinorVersion": "0" if os_type == "Windows" else "04",
                "Version": "10.20.18069.0" if os_type == "Windows" else "1.19.0-0",
                "ComputerEnvironment": env, "Solutions": "\"updates\", \"changeTracking\"",
                "VMUUID": stable_guid(computer, "vmuuid"), "SubscriptionId": SUB, "ResourceGroup": parts[4],
                "ResourceProvider": parts[6], "Resource": parts[-1], "ResourceId": resource,
                "ResourceType": parts[7], "Type": "Heartbeat", "_ResourceId": resource.lower(),
            })
            t += step

    def _updates(self) -> None:
        when = self.now - timedelta(hours=5)
        kbs = (("5046616", "2024-11 Cumulative Update for Microsoft server operating system version 21H2 for "
                "x64-based Systems (KB5046616)", "Security Updates", "Needed", True, "Microsoft Update"),
               ("5044033", "2024-10 Cumulative Update for .NET Framework 3.5, 4.8 and 4.8.1 for Microsoft server "
                "operating system version 21H2 for x64 (KB5044033)", "Updates", "Needed", False, "WSUS"),
               ("2267602", "Security Intelligence Update for Microsoft Defender Antivirus - KB2267602 "
                "(Version 1.421.1590.0)", "Definition Updates", "Needed", True, "Microsoft Update"),
               ("5043050", "2024-09 Cumulative Update for Microsoft server operating system version 21H2 for "
                "x64-based Systems (KB5043050)", "Security Updates", "Installed", True, "Microsoft Update"))
        for computer in ("vm-app-01", "vm-app-02"):
            for kb, title, classification, state, approved, source in kbs:
                self.updates.append(self._update_row(computer, "Windows", when, title, classification=classification,
                                                     state=state, approved=approved, source=source, kb=kb,
                                                     product="Windows Server 2022"))
        packages = (("openssl", "3.0.2-0ubuntu1.18", "Security Updates"),
                    ("libssl3", "3.0.2-0ubuntu1.18", "Security Updates"),
                    ("systemd", "249.11-0ubuntu3.12", "Critical Updates"),
                    ("tzdata", "2024a-0ubuntu0.22.04.1", "Other Updates"))
        linux = (("vm-web-01", self.scid("vm-web-01")), ("vm-web-02", self.scid("vm-web-02", "old")),
                 ("vm-web-02", self.scid("vm-web-02")), ("onprem-db01.contoso.local", self.scid("onprem-db01")))
        for computer, scid in linux:
            for package, version, classification in packages:
                row = self._update_row(computer, "Linux", when, f"{package} {version}", classification=classification,
                                       state="Needed", approved=True, source="Microsoft Update", product=package,
                                       version=version)
                row["SourceComputerId"] = scid
                self.updates.append(row)

    def _update_row(self, computer: str, os_type: str, when: datetime, title: str, *, classification: str,
                    state: str, approved: bool, source: str, kb: str = "", product: str = "",
                    version: str = "") -> dict[str, Any]:
        short = computer.split(".", 1)[0]
        resource = self.refs.get(short, "")
        return {
            "TenantId": self.workspace_id, "SourceSystem": "OpsManager" if os_type == "Windows" else "Linux",
            "TimeGenerated": iso(when), "SourceComputerId": self.scid(short), "Title": title,
            "Classification": classification, "KBID": kb, "Product": product, "ProductVersion": version,
            "UpdateState": state, "Approved": approved, "ApprovalSource": source, "Computer": computer,
            "ComputerEnvironment": "Non-Azure" if "." in computer else "Azure", "OSType": os_type,
            "Optional": False, "RebootBehavior": "CanRequestReboot" if os_type == "Windows" else "",
            "MSRCSeverity": "Critical" if classification.startswith(("Security", "Critical")) else "",
            "UpdateID": stable_guid(computer, title), "ResourceId": resource, "Type": "Update",
            "_ResourceId": resource.lower(),
        }

    def _summaries(self, machines: list[_Machine]) -> None:
        for computer, os_type, _ip, resource, env in machines:
            for hours in (26, 2):
                windows = os_type == "Windows"
                self.summaries.append({
                    "TenantId": self.workspace_id, "TimeGenerated": iso(self.now - timedelta(hours=hours)),
                    "SourceComputerId": self.scid(computer.split(".", 1)[0]), "Computer": computer,
                    "ComputerEnvironment": env, "OsVersion": "10.0.20348" if windows else "22.04",
                    "OSType": os_type, "CriticalUpdatesMissing": 0 if windows else 1,
                    "SecurityUpdatesMissing": 1 if windows else 2, "OtherUpdatesMissing": 2 if windows else 1,
                    "TotalUpdatesMissing": 3 if windows else 4, "RestartPending": False,
                    "WindowsUpdateSetting": "Manual" if windows else "",
                    "WindowsUpdateAgentVersion": "10.0.20348.2849" if windows else "",
                    "OldestMissingSecurityUpdateInDays": 12, "ResourceId": resource, "Type": "UpdateSummary",
                    "_ResourceId": resource.lower(),
                })

    def workspaces(self) -> tuple[Workspace, ...]:
        return (Workspace(self.workspace_id, self.refs["workspace"], (
            LogTable("Heartbeat", _cols(HEARTBEAT_COLUMNS), tuple(self.heartbeat)),
            LogTable("Update", _cols(UPDATE_COLUMNS), tuple(self.updates)),
            LogTable("UpdateSummary", _cols(UPDATE_SUMMARY_COLUMNS), tuple(self.summaries)),
            LogTable("Operation", _cols(OPERATION_COLUMNS), tuple(self.operations)),
        )),)

    # update manager ------------------------------------------------------------------------------
    def maintenance(self) -> None:
        prod = self._maintenance_config("mc-prod-weekly", "02:00", "Week Saturday", classes=["Critical", "Security"],
                                        reboot="IfRequired", created=self.now - timedelta(days=300))
        dev = self._maintenance_config("mc-dev-daily", "03:00", "Day", classes=["Critical", "Security", "Other"],
                                       reboot="Always", created=self.now - timedelta(days=120))
        prod_vms = [self.refs[f"vm-prod-0{i}"] for i in range(1, 5)]
        dev_vms = [self.refs["vm-dev-01"], self.refs["vm-dev-02"]]
        for vm in prod_vms:
            self._assignment(vm, prod, "mc-prod-weekly")
        for vm in dev_vms:
            self._assignment(vm, dev, "mc-dev-daily")
        last = self._last_weekday(5, 22)
        previous = self._maintenance_run(prod, prod_vms, last - timedelta(weeks=1), 120, exceeded=())
        latest = self._maintenance_run(prod, prod_vms, last, 120, exceeded=(prod_vms[1], prod_vms[3]))
        self.refs["maintenance-run:mc-prod-weekly"] = latest
        self.refs["maintenance-run:mc-prod-weekly:previous"] = previous
        day = (self.now - timedelta(hours=4)).replace(minute=0, second=0)
        self.refs["maintenance-run:mc-dev-daily"] = self._maintenance_run(dev, dev_vms, day - timedelta(hours=2),
                                                                          180, exceeded=())

    def _maintenance_config(self, name: str, duration: str, recur: str, *, classes: list[str], reboot: str,
                            created: datetime) -> str:
        config_id = (f"/subscriptions/{SUB}/resourcegroups/rg-patching/providers/Microsoft.Maintenance/"
                     f"maintenanceConfigurations/{name}")
        self.resources.append({
            "id": config_id, "name": name, "type": "Microsoft.Maintenance/maintenanceConfigurations",
            "location": LOC, "tags": {"owner": "platform-ops"},
            "systemData": {"createdBy": "ops-automation@contoso.com", "createdByType": "User",
                           "createdAt": iso(created), "lastModifiedBy": "ops-automation@contoso.com",
                           "lastModifiedByType": "User", "lastModifiedAt": iso(created)},
            "properties": {
                "namespace": "Microsoft.Maintenance", "extensionProperties": {"InGuestPatchMode": "User"},
                "maintenanceScope": "InGuestPatch", "visibility": "Custom",
                "maintenanceWindow": {"startDateTime": (created + timedelta(days=1)).strftime("%Y-%m-%d 22:00"),
                                      "expirationDateTime": "9999-12-31 23:59:59", "duration": duration,
                                      "timeZone": "UTC", "recurEvery": recur},
                "installPatches": {
                    "rebootSetting": reboot,
                    "windowsParameters": {"classificationsToInclude": [*classes[:2], "UpdateRollup"],
                                          "kbNumbersToExclude": ["5034439"], "kbNumbersToInclude": [],
                                          "excludeKbsRequiringReboot": False},
                    "linuxParameters": {"classificationsToInclude": classes, "packageNameMasksToExclude": [],
                                        "packageNameMasksToInclude": []},
                },
            },
        })
        self.refs[f"maintenance:{name}"] = config_id
        return config_id

    def _graph_base(self, resource_id: str, row_id: str, name: str, type_: str) -> dict[str, Any]:
        parts = resource_id.split("/")
        return {"id": row_id, "name": name, "type": type_, "tenantId": TENANT, "kind": "", "location": LOC,
                "resourceGroup": parts[4].lower(), "subscriptionId": SUB, "managedBy": "", "sku": None,
                "plan": None, "tags": None, "identity": None, "zones": None, "extendedLocation": None}

    def _assignment(self, vm: str, config_id: str, config_name: str) -> None:
        name = f"{config_name}-{vm.rsplit('/', 1)[-1]}"
        assignment_id = f"{vm}/providers/Microsoft.Maintenance/configurationAssignments/{name}"
        self.resources.append({
            "id": assignment_id, "name": name, "type": "Microsoft.Maintenance/configurationAssignments",
            "location": LOC, "properties": {"maintenanceConfigurationId": config_id, "resourceId": vm},
        })
        row = self._graph_base(vm, assignment_id.lower(), name, "microsoft.maintenance/configurationassignments")
        row["properties"] = {"resourceId": vm, "maintenanceConfigurationId": config_id}
        self.graph["maintenanceresources"].append(row)

    def _maintenance_run(self, config_id: str, vms: list[str], start: datetime, window_minutes: int,
                         exceeded: tuple[str, ...]) -> str:
        correlation = self.g("maintenance-run", config_id, start.isoformat())
        end = start + timedelta(minutes=window_minutes)
        for index, vm in enumerate(vms):
            over = vm in exceeded
            finished = end + timedelta(minutes=3) if over else start + timedelta(minutes=35 + 7 * index)
            apply_name = self.g("applyupdate", correlation, vm)
            row = self._graph_base(vm, f"{vm}/providers/microsoft.maintenance/applyupdates/{apply_name}".lower(),
                                   apply_name, "microsoft.maintenance/applyupdates")
            row["properties"] = {
                "maintenanceConfigurationId": config_id, "maintenanceScope": "InGuestPatch", "resourceId": vm,
                "correlationId": correlation, "startDateTime": iso(start), "endDateTime": iso(end),
                "status": "Completed", "lastUpdateTime": iso(finished),
            }
            self.graph["maintenanceresources"].append(row)
            activity = self.g("installation", correlation, vm)
            windows = "/vm-prod-" in vm
            props: dict[str, Any] = {
                "installationActivityId": activity, "maintenanceWindowExceeded": over,
                "lastModifiedDateTime": iso(finished), "notSelectedPatchCount": 2 if windows else 5,
                "installedPatchCount": 3 if over else 7, "excludedPatchCount": 1 if windows else 0,
                "pendingPatchCount": 4 if over else 0, "patchServiceUsed": "WU" if windows else "APT",
                "failedPatchCount": 0, "startDateTime": iso(start + timedelta(seconds=40)),
                "rebootStatus": "Required" if over else "Completed", "startedBy": "Platform",
                "status": "CompletedWithWarnings" if over else "Succeeded",
                "osType": "Windows" if windows else "Linux",
                "errorDetails": ({"code": "MaintenanceWindowExceeded",
                                  "message": "Maintenance window exceeded: 4 of the selected updates were not "
                                             "installed before the window ended.", "details": []}
                                 if over else {"code": "0", "message": "", "details": []}),
                "maintenanceRunId": correlation,
            }
            result_id = f"{vm}/patchInstallationResults/{activity}"
            result = self._graph_base(vm, result_id, activity,
                                      "microsoft.compute/virtualmachines/patchinstallationresults")
            result["properties"] = props
            self.graph["patchinstallationresources"].append(result)
        return correlation

    # image builder --------------------------------------------------------------------------------
    @property
    def identity_id(self) -> str:
        return _rid("rg-images", "Microsoft.ManagedIdentity", "userAssignedIdentities", "id-aib-builder")

    def image_builder(self) -> None:
        self.resources.append({
            "id": self.identity_id, "name": "id-aib-builder",
            "type": "Microsoft.ManagedIdentity/userAssignedIdentities", "location": LOC, "tags": {},
            "properties": {"tenantId": TENANT, "principalId": self.g("id-aib-builder", "principal"),
                           "clientId": self.g("id-aib-builder", "client")},
        })
        gallery = _rid("rg-images", "Microsoft.Compute", "galleries", "gal_images")
        self.resources.append({"id": gallery, "name": "gal_images", "type": "Microsoft.Compute/galleries",
                               "location": LOC, "tags": {},
                               "properties": {"identifier": {"uniqueName": f"{SUB}-GAL_IMAGES"},
                                              "provisioningState": "Succeeded"}})
        self.refs["gallery"] = gallery
        scripts = "https://stimgartifacts.blob.core.windows.net/scripts"
        win2022 = {"type": "PlatformImage", "publisher": "MicrosoftWindowsServer", "offer": "WindowsServer",
                   "sku": "2022-datacenter-azure-edition", "version": "latest", "exactVersion": "20348.2849.241106"}
        ubuntu = {"type": "PlatformImage", "publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
                  "sku": "22_04-lts-gen2", "version": "latest", "exactVersion": "22.04.202411190"}
        win2019 = {"type": "PlatformImage", "publisher": "MicrosoftWindowsServer", "offer": "WindowsServer",
                   "sku": "2019-Datacenter", "version": "latest", "exactVersion": "17763.6532.241101"}
        rhel = {"type": "PlatformImage", "publisher": "RedHat", "offer": "RHEL", "sku": "9-lvm-gen2",
                "version": "latest", "exactVersion": "9.4.2024101604"}
        win11 = {"type": "PlatformImage", "publisher": "MicrosoftWindowsDesktop", "offer": "windows-11",
                 "sku": "win11-23h2-avd", "version": "latest", "exactVersion": "22631.4460.241106"}
        specs = (
            _Template("tpl-win2022-timeout", "win2022-base", win2022, "Standard_D4s_v5", 127, 60, "timeout",
                      (_ps("Install line-of-business apps", f"{scripts}/install-apps.ps1"), _wu(), _restart())),
            _Template("tpl-ubuntu-sig", "ubuntu2204-base", ubuntu, "Standard_D2s_v5", 30, 120, "sig",
                      (_shell("Harden SSH", f"{scripts}/harden-ssh.sh"),
                       _shell_inline("Apply updates", ["sudo apt-get update", "sudo apt-get -y upgrade"])),
                      regions=("westeurope", "northeurope", "eastus2")),
            _Template("tpl-win2019-lowres", "win2019-base", win2019, "Standard_D1_v2", 127, 240, "lowres",
                      (_ps("Install monitoring agent", f"{scripts}/install-agent.ps1"), _wu(), _restart())),
            _Template("tpl-rhel-noartifacts", "rhel9-base", rhel, "Standard_D2s_v5", 64, 180, "noartifacts",
                      (_shell_inline("Register repositories", ["sudo dnf -y install epel-release"]),
                       _shell_inline("Apply updates", ["sudo dnf -y update"]))),
            _Template("tpl-win11-conflict", "win11-avd", win11, "Standard_D4s_v5", 127, 240, "conflict",
                      (_ps("Install AVD apps", f"{scripts}/avd-apps.ps1"), _wu())),
            _Template("tpl-customizer-fails", "win2022-apps", win2022, "Standard_D4s_v5", 127, 240, "customizer",
                      (_wu(), _restart(),
                       _ps_inline("Install baseline module",
                                  ["Install-Module -Name Contoso.Baseline -Repository ContosoFeed -Force",
                                   "Invoke-ContosoBaseline -Profile Server"]))),
            _Template("tpl-ok", "win2022-web", win2022, "Standard_D4s_v5", 127, 240, "ok",
                      (_ps("Install IIS", f"{scripts}/install-iis.ps1"), _wu(), _restart())),
        )
        for spec in specs:
            self._template(spec)

    def _template(self, spec: _Template) -> None:
        name, image, source = spec.name, spec.image, spec.source
        template_id = _rid("rg-images", "Microsoft.VirtualMachineImages", "imageTemplates", name)
        gallery_image = f"{self.refs['gallery']}/images/{image}"
        properties: dict[str, Any] = {
            "source": dict(source),
            "customize": [dict(step) for step in spec.customize],
            "distribute": [{
                "type": "SharedImage", "runOutputName": f"{image}-sig", "galleryImageId": gallery_image,
                "artifactTags": {"source": "azureVmImageBuilder", "baseosimg": source["sku"]},
                "targetRegions": [{"name": region, "replicaCount": 1, "storageAccountType": "Standard_LRS"}
                                  for region in spec.regions],
                "excludeFromLatest": False,
            }],
            "vmProfile": {"vmSize": spec.vm_size, "osDiskSizeGB": spec.disk, "userAssignedIdentities": []},
            "buildTimeoutInMinutes": spec.timeout,
            "errorHandling": {"onCustomizerError": "cleanup", "onValidationError": "cleanup"},
            "exactStagingResourceGroup": f"/subscriptions/{SUB}/resourceGroups/IT_rg-images_{name}_"
                                         f"{self.g('staging', name)}",
            "provisioningState": "Succeeded",
        }
        self.refs[f"template:{name}"] = template_id
        if spec.outcome == "conflict":  # the submission failed; the template never ran
            properties["provisioningState"] = "Failed"
            properties["provisioningError"] = {
                "provisioningErrorCode": "Conflict",
                "message": "Update/Upgrade of image templates is currently not supported"}
            properties.pop("exactStagingResourceGroup")
        else:
            properties["lastRunStatus"] = self._last_run(spec, template_id, gallery_image)
        self.resources.append({
            "id": template_id, "name": name, "type": "Microsoft.VirtualMachineImages/imageTemplates", "location": LOC,
            "tags": {"imagebuilderTemplate": image, "owner": "platform-images"},
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {self.identity_id: {
                "principalId": self.g("id-aib-builder", "principal"),
                "clientId": self.g("id-aib-builder", "client")}}},
            "properties": properties,
        })
        if spec.outcome in ("ok", "sig"):
            output_name = f"{image}-sig"
            version = self.refs.get(f"sig-version:{name}", "0.24310.1512")
            self.resources.append({
                "id": f"{template_id}/runOutputs/{output_name}", "name": output_name,
                "type": "Microsoft.VirtualMachineImages/imageTemplates/runOutputs",
                "properties": {"artifactId": f"{gallery_image}/versions/{version}",
                               "provisioningState": "Succeeded" if spec.outcome == "ok" else "Failed"},
            })

    def _last_run(self, spec: _Template, template_id: str, gallery_image: str) -> dict[str, Any]:
        """lastRunStatus in the service's words, and the run's customization.log blob."""
        name, image = spec.name, spec.image
        account = self.g("storage", name).replace("-", "")[:24]
        log_key = f"{account}/packerlogs/{self.g('packerlog', name)}/customization.log"
        log_url = f"{self.blob}/{log_key}"
        operation = self.g("operation", name)
        prefix = self.g("packer-prefix", name)
        start = (self.now - timedelta(days=1, hours=3)).replace(minute=12, second=7)
        self.refs[f"log:{name}"] = log_key
        located = f"Image Build log location: {log_url}. OperationId: {operation}."
        search = "Use this operationId to search packer logs."
        packer_failure = ("Failed while waiting for packerizer: Microservice has failed: Failed while processing "
                          "request: Error when executing packerizer: Packer build command has failed: exit status 1. "
                          "During the image build, a failure has occurred, please review the build log to identify "
                          f"which build/customization step failed. {AIB_TROUBLESHOOT} {located} {search}")
        correlation = f"Deployment failed. Correlation ID: {self.g('correlation', name)}."
        windows_steps = ["powershell", "windows-update", "windows-restart"]
        linux_steps = ["shell", "shell"]
        if spec.outcome == "timeout":
            minutes, sub_state = spec.timeout + 0.5, "Customizing"
            message = (f"{correlation} Failed in building/customizing image: Failed while waiting for packerizer: "
                       f"Timeout waiting for microservice to complete: 'context deadline exceeded'. {located} {search}")
            log = packerlog.customization_log(prefix=prefix, start=start, windows=True, provisioners=windows_steps[:2],
                                              tail=packerlog.TIMEOUT_TAIL, size=600_000, seed=11)
        elif spec.outcome == "sig":
            minutes, sub_state = spec.timeout + 0.2, "Distributing"
            region = spec.regions[0]
            self.refs[f"sig-version:{name}"] = f"0.{start.strftime('%y%j')}.{start.strftime('%H%M')}"
            message = (f"{correlation} Failed in distributing 1 images out of total 1: {{[Error 0] [Distribute 0] "
                       f"Error publishing MDI to shared image gallery:{gallery_image}, Location:{region}. Error: Error "
                       "returned from SIG client while publishing MDI to shared image gallery for dstImageLocation: "
                       f"{region}, dstSubscription: {SUB}, dstResourceGroupName: rg-images, dstGalleryName: "
                       f"gal_images, dstGalleryImageName: {image}. Error: Error waiting on shared image gallery future "
                       f"for resource group: rg-images, gallery name: gal_images, gallery image name: {image}.Error: "
                       "Future#WaitForCompletion: context has been cancelled: StatusCode=200 -- Original Error: "
                       f"context deadline exceeded}}. {located}")
            log = packerlog.customization_log(prefix=prefix, start=start, windows=False, provisioners=linux_steps,
                                              tail=packerlog.SIG_SUCCESS_TAIL, size=250_000, seed=12, finished=True)
        elif spec.outcome == "lowres":
            minutes, sub_state, message = 96.7, "Customizing", packer_failure
            log = packerlog.customization_log(prefix=prefix, start=start, windows=True, provisioners=windows_steps[:2],
                                              tail=packerlog.LOW_RESOURCES_TAIL, size=1_000_000, seed=13)
        elif spec.outcome == "noartifacts":
            minutes, sub_state = 31.1, "Building"
            message = ("Failed while waiting for packerizer: Microservice has failed: Failed while processing "
                       "request: Error when executing packerizer: Builds finished but no artifacts were created. "
                       f"{AIB_TROUBLESHOOT} {located} {search}")
            log = packerlog.customization_log(prefix=prefix, start=start, windows=False, provisioners=linux_steps,
                                              tail=packerlog.NO_ARTIFACTS_TAIL, size=200_000, seed=14)
        elif spec.outcome == "customizer":
            minutes, sub_state, message = 38.2, "Customizing", packer_failure
            log = packerlog.customization_log(prefix=prefix, start=start, windows=True,
                                              provisioners=["windows-update", "windows-restart", "powershell"],
                                              tail=packerlog.POWERSHELL_FAILURE_TAIL, size=1_000_000, seed=15)
            # the module feed is still broken: the next run fails the same way
            self.next_runs[template_id] = (RunOutcome("Failed", "Customizing", packer_failure.replace(
                log_url, "{log_url}").replace(operation, "{operation_id}"), log),)
        else:
            minutes, sub_state, message = 47.0, "", ""
            log = packerlog.customization_log(prefix=prefix, start=start, windows=True, provisioners=windows_steps,
                                              tail=packerlog.SUCCESS_TAIL, size=150_000, seed=16, finished=True)
        self.blobs[log_key] = log
        status = {"startTime": iso(start), "endTime": iso(start + timedelta(minutes=minutes)),
                  "runState": "Succeeded" if spec.outcome == "ok" else "Failed", "message": message}
        if sub_state:
            status["runSubState"] = sub_state
        return status

    # resource graph: patch assessment (for completeness of the Update Manager tables) ------------------
    def assessments(self) -> None:
        for i in range(1, 5):
            vm = self.refs[f"vm-prod-0{i}"]
            row = self._graph_base(vm, f"{vm}/patchAssessmentResults/latest", self.g("assessment", vm),
                                   "microsoft.compute/virtualmachines/patchassessmentresults")
            row["properties"] = {
                "rebootPending": False, "patchServiceUsed": "WU", "osType": "Windows",
                "startDateTime": iso(self.now - timedelta(hours=3)),
                "lastModifiedDateTime": iso(self.now - timedelta(hours=3) + timedelta(minutes=2)),
                "startedBy": "Platform", "errorDetails": {"code": "0", "message": "", "details": []},
                "availablePatchCountByClassification": {"security": 1 if i % 2 else 0, "critical": 0,
                                                        "definition": 1, "updateRollup": 0, "featurePack": 0,
                                                        "servicePack": 0, "tools": 0, "updates": 1, "other": 0},
            }
            self.graph["patchassessmentresources"].append(row)

    def build(self) -> Estate:
        self.resource_groups()
        self.machines()
        self.automation()
        self.log_analytics()
        self.maintenance()
        self.assessments()
        self.image_builder()
        seeds = update_manager(self.now, TENANT)
        providers = dict(DEFAULT_PROVIDERS)
        providers["Microsoft.Automation"] = "NotRegistered"
        return _estate(SUB, providers, resources=self.resources, graph=self.graph, seeds=seeds, refs=self.refs,
                       workspaces=self.workspaces(), blobs=self.blobs, next_runs=self.next_runs, now=self.now)


def _estate(subscription: str, providers: dict[str, str], *, resources: list[dict[str, Any]],
            graph: dict[str, list[dict[str, Any]]], seeds: Seeds, refs: dict[str, str],
            workspaces: tuple[Workspace, ...] = (), blobs: Mapping[str, str] | None = None,
            next_runs: Mapping[str, tuple[RunOutcome, ...]] | None = None, now: datetime) -> Estate:
    tables = {k: list(v) for k, v in graph.items()}
    for table, rows in seeds.graph.items():
        tables.setdefault(table, []).extend(rows)
    return Estate(
        subscription_id=subscription, tenant_id=TENANT, location=LOC, resources=(*resources, *seeds.resources),
        providers=MappingProxyType(providers), workspaces=workspaces,
        graph=MappingProxyType({k: tuple(v) for k, v in tables.items()}),
        blobs=MappingProxyType(dict(blobs or {})), next_runs=MappingProxyType(dict(next_runs or {})),
        refs=MappingProxyType({**refs, **seeds.refs}), now=now,
        instance_views=MappingProxyType(seeds.views), subscriptions=tuple(seeds.subscriptions),
        subscription_providers=MappingProxyType({k: MappingProxyType(v) for k, v in
                                                 seeds.subscription_providers.items()}),
        patch_outcomes=MappingProxyType(seeds.outcomes))


def _ps(name: str, uri: str) -> dict[str, Any]:
    return {"type": "PowerShell", "name": name, "scriptUri": uri, "runElevated": True, "runAsSystem": True,
            "validExitCodes": [0, 3010]}


def _ps_inline(name: str, lines: list[str]) -> dict[str, Any]:
    return {"type": "PowerShell", "name": name, "inline": lines, "runElevated": True, "runAsSystem": False}


def _wu() -> dict[str, Any]:
    return {"type": "WindowsUpdate", "name": "Windows updates", "searchCriteria": "IsInstalled=0",
            "filters": ["exclude:$_.Title -like '*Preview*'", "include:$true"], "updateLimit": 40}


def _restart() -> dict[str, Any]:
    return {"type": "WindowsRestart", "name": "Restart after updates", "restartTimeout": "10m",
            "restartCheckCommand": "powershell -command \"& {Write-Output 'restarted.'}\""}


def _shell(name: str, uri: str) -> dict[str, Any]:
    return {"type": "Shell", "name": name, "scriptUri": uri}


def _shell_inline(name: str, lines: list[str]) -> dict[str, Any]:
    return {"type": "Shell", "name": name, "inline": lines}


def _cols(spec: tuple[tuple[str, str], ...]) -> tuple[Column, ...]:
    return tuple(Column(name, type_) for name, type_ in spec)


HEARTBEAT_COLUMNS = (
    ("TenantId", "string"), ("SourceSystem", "string"), ("TimeGenerated", "datetime"),
    ("SourceComputerId", "string"), ("ComputerIP", "string"), ("Computer", "string"), ("Category", "string"),
    ("OSType", "string"), ("OSName", "string"), ("OSMajorVersion", "string"), ("OSMinorVersion", "string"),
    ("Version", "string"), ("ComputerEnvironment", "string"), ("Solutions", "string"), ("VMUUID", "string"),
    ("SubscriptionId", "string"), ("ResourceGroup", "string"), ("ResourceProvider", "string"),
    ("Resource", "string"), ("ResourceId", "string"), ("ResourceType", "string"), ("Type", "string"),
    ("_ResourceId", "string"),
)
UPDATE_COLUMNS = (
    ("TenantId", "string"), ("SourceSystem", "string"), ("TimeGenerated", "datetime"),
    ("SourceComputerId", "string"), ("Title", "string"), ("Classification", "string"), ("KBID", "string"),
    ("Product", "string"), ("ProductVersion", "string"), ("UpdateState", "string"), ("Approved", "bool"),
    ("ApprovalSource", "string"), ("Computer", "string"), ("ComputerEnvironment", "string"), ("OSType", "string"),
    ("Optional", "bool"), ("RebootBehavior", "string"), ("MSRCSeverity", "string"), ("UpdateID", "string"),
    ("ResourceId", "string"), ("Type", "string"), ("_ResourceId", "string"),
)
UPDATE_SUMMARY_COLUMNS = (
    ("TenantId", "string"), ("TimeGenerated", "datetime"), ("SourceComputerId", "string"), ("Computer", "string"),
    ("ComputerEnvironment", "string"), ("OsVersion", "string"), ("OSType", "string"),
    ("CriticalUpdatesMissing", "int"), ("SecurityUpdatesMissing", "int"), ("OtherUpdatesMissing", "int"),
    ("TotalUpdatesMissing", "int"), ("RestartPending", "bool"), ("WindowsUpdateSetting", "string"),
    ("WindowsUpdateAgentVersion", "string"), ("OldestMissingSecurityUpdateInDays", "int"),
    ("ResourceId", "string"), ("Type", "string"), ("_ResourceId", "string"),
)
OPERATION_COLUMNS = (
    ("TenantId", "string"), ("Computer", "string"), ("OperationStatus", "string"), ("Detail", "string"),
    ("OperationCategory", "string"), ("Solution", "string"), ("HelpLink", "string"),
    ("SourceComputerId", "string"), ("TimeGenerated", "datetime"), ("Type", "string"),
)


def sandbox_estate(blob_endpoint: str = BLOB_ENDPOINT, now: datetime | None = None) -> Estate:
    """The realistic estate (see the module docstring); timestamps are relative to `now` (default: now)."""
    return _Builder(now or utcnow(), blob_endpoint).build()


def fleet_estate(vm_count: int, seed: int = 0, now: datetime | None = None) -> Estate:
    """A large estate for benchmarks: `vm_count` VMs over 4 subscriptions (refs `fleet:subscription:<i>`,
    the estate's own subscription is the first), all assigned to a weekly schedule, about 10% failing the
    last run (`fleet:failing` of them), with their Resource Graph rows. Built in well under a second per
    1,000 VMs."""
    seeds = fleet(vm_count, seed, (now or utcnow()).replace(microsecond=0), TENANT)
    first = seeds.subscriptions[0]
    seeds.subscriptions = seeds.subscriptions[1:]
    return _estate(first, dict(DEFAULT_PROVIDERS), resources=[], graph={}, seeds=seeds,
                   refs={"subscription": first, "tenant": TENANT, "location": LOC}, now=(now or utcnow()))
