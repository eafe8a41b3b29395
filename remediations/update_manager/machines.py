"""What the Update Manager remediations share: a machine's patch facts as ARM gives them (an Azure VM with its
instance view, an Arc-enabled server), its patch extension, its installation results and schedules as Resource
Graph holds them, and a maintenance configuration's PUT body.

Extension names (learn.microsoft.com/azure/update-manager/troubleshoot, "Windows/Linux patch update extension
isn't installed" and "Windows/Linux OS update extension isn't installed"): Azure VMs `WindowsPatchExtension` /
`LinuxPatchExtension` (publisher Microsoft.CPlat.Core), Arc-enabled servers `WindowsOsUpdateExtension` /
`LinuxOsUpdateExtension` (Microsoft.SoftwareUpdateManagement).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from remediations.base import RemediationError
from remediations.context import Context
from shared.azure.base import is_not_found, prop
from shared.azure.patching import is_arc

VM_EXTENSIONS = {"windows": "WindowsPatchExtension", "linux": "LinuxPatchExtension"}
ARC_EXTENSIONS = {"windows": "WindowsOsUpdateExtension", "linux": "LinuxOsUpdateExtension"}
MACHINE_KINDS = "Microsoft.Compute/virtualMachines | Microsoft.HybridCompute/machines"
DONE = ("succeeded", "completedwithwarnings")
_READ_ONLY = ("id", "name", "type", "systemData", "etag")


def when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class MachineFacts:
    """An Azure VM (with its instance view) or an Arc-enabled server, as ARM returns it now."""

    id: str
    kind: str  # "vm" | "arc"
    body: Mapping[str, Any] = field(repr=False)
    os_type: str  # "windows" | "linux"

    @property
    def name(self) -> str:
        return self.id.rstrip("/").rsplit("/", 1)[-1]

    @property
    def os_profile(self) -> Mapping[str, Any] | None:
        profile = prop(self.body, "properties.osProfile")
        return profile if isinstance(profile, Mapping) else None

    @property
    def config_key(self) -> str:
        return "windowsConfiguration" if self.os_type == "windows" else "linuxConfiguration"

    @property
    def os_config(self) -> Mapping[str, Any]:
        config = (self.os_profile or {}).get(self.config_key)
        return config if isinstance(config, Mapping) else {}

    @property
    def patch_settings(self) -> Mapping[str, Any]:
        settings = self.os_config.get("patchSettings")
        return settings if isinstance(settings, Mapping) else {}

    @property
    def power_state(self) -> str:
        """`running`, `deallocated`, `stopped`, ... (a VM's instance view); "" for an Arc machine."""
        for status in prop(self.body, "properties.instanceView.statuses") or []:
            code = str(status.get("code", ""))
            if code.startswith("PowerState/"):
                return code.removeprefix("PowerState/").lower()
        return ""

    @property
    def arc_status(self) -> str:
        return str(prop(self.body, "properties.status") or "")

    @property
    def location(self) -> str:
        return str(self.body.get("location") or "")

    @property
    def agent_ready(self) -> bool | None:
        statuses = prop(self.body, "properties.instanceView.vmAgent.statuses") or []
        if not statuses:
            return None
        return any(str(s.get("displayStatus", "")).lower() == "ready" for s in statuses)

    @property
    def extension_name(self) -> str:
        return (ARC_EXTENSIONS if self.kind == "arc" else VM_EXTENSIONS)[self.os_type]

    def guest_refusal(self, operation: str) -> str | None:
        """Why the guest cannot run `operation` now (what the service would refuse), or None."""
        if self.kind == "arc":
            if self.arc_status.lower() != "connected":
                return (f"Arc-enabled server {self.name} is {self.arc_status or 'not Connected'}: {operation} is "
                        "queued until it reconnects (aum.arc_disconnected): reconnect its agent first")
            return None
        power = self.power_state
        if power and power != "running":
            return (f"VM {self.name} is {power}: Compute refuses {operation} on a VM that is not running "
                    "(OperationNotAllowed); start it first")
        return None


def read_machine(ctx: Context, machine_id: str) -> MachineFacts:
    """The machine now (a VM with `$expand=instanceView`); a machine that is gone is a refusal."""
    try:
        body = ctx.compute.arc_machine(machine_id) if is_arc(machine_id) else ctx.compute.vm(machine_id)
    except Exception as exc:
        if is_not_found(exc):
            raise RemediationError(f"{machine_id} does not exist (ARM answers 404)") from None
        raise
    if is_arc(machine_id):
        os_type = str(prop(body, "properties.osType") or "").lower()
    else:
        os_type = str(prop(body, "properties.storageProfile.osDisk.osType") or "").lower()
    if os_type not in ("windows", "linux"):
        raise RemediationError(f"{machine_id}: the OS type is not Windows or Linux ({os_type or 'not reported'})")
    return MachineFacts(str(body.get("id") or machine_id), "arc" if is_arc(machine_id) else "vm", body, os_type)


def patch_extension(ctx: Context, machine: MachineFacts) -> dict[str, Any] | None:
    """The machine's patch extension (REST JSON), or None when it is not installed."""
    listed = ctx.compute.arc_extensions(machine.id) if machine.kind == "arc" else ctx.compute.vm_extensions(machine.id)
    wanted = machine.extension_name.lower()
    for extension in listed:
        names = {str(extension.get("name", "")).lower(), str(prop(extension, "properties.type") or "").lower()}
        if wanted in names:
            return extension
    return None


def extension_state(machine: MachineFacts, extension: Mapping[str, Any]) -> str:
    """provisioningState, or the VM instance view's status for it (the one the agent reports)."""
    state = str(prop(extension, "properties.provisioningState") or "")
    if machine.kind == "vm":
        name = str(extension.get("name", ""))
        for view in prop(machine.body, "properties.instanceView.extensions") or []:
            if str(view.get("name", "")).lower() == name.lower():
                for status in view.get("statuses") or []:
                    code = str(status.get("code", ""))
                    if code.startswith("ProvisioningState/"):
                        return code.removeprefix("ProvisioningState/").split("/")[0].capitalize() or state
    return state


def patch_body(machine: MachineFacts, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The PATCH body that sets only these patchSettings (nothing else of the OS profile is sent)."""
    return {"properties": {"osProfile": {machine.config_key: {"patchSettings": dict(settings)}}}}


def configuration_body(configuration: Mapping[str, Any]) -> dict[str, Any]:
    """A maintenance configuration as GET returned it, minus read-only fields: the whole PUT body (keeps
    extensionProperties.InGuestPatchMode, installPatches, tags, visibility, every window field)."""
    import copy

    body = {k: copy.deepcopy(v) for k, v in configuration.items() if k not in _READ_ONLY}
    body.setdefault("properties", {})
    return body


def schedule_refusal(ctx: Context, configuration_id: str, configuration: Mapping[str, Any]) -> str | None:
    """Why the configuration may not be edited now (too close to its next run; the margin is longer when
    an Event Grid system topic shows it has pre/post events)."""
    from remediations.update_manager.timing import edit_refusal

    return edit_refusal(configuration, ctx.now(), pre_events=ctx.patching.has_event_topic(configuration_id))


def installation_runs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The installation summary rows (not their softwarepatches), newest first."""
    runs = [r for r in rows if "softwarepatches" not in str(r.get("type", "")).lower()]
    return sorted(runs, key=lambda r: when(prop(r, "properties.startDateTime")) or datetime.min.replace(tzinfo=UTC),
                  reverse=True)


def configuration_of_run(run_id: str) -> str:
    """A scheduled run's id is its configuration's id + `/providers/microsoft.maintenance/applyupdates/<time>`."""
    low = run_id.lower()
    at = low.find("/providers/microsoft.maintenance/applyupdates/")
    return run_id[:at] if at > 0 and "/maintenanceconfigurations/" in low[:at] else ""
