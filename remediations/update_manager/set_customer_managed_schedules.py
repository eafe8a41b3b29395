"""Put an Azure VM on Customer Managed Schedules, the prerequisite of scheduled patching.

The prerequisite is `patchSettings.patchMode = AutomaticByPlatform` and
`automaticByPlatformSettings.bypassPlatformSafetyChecksOnUserSchedule = true`; with a schedule attached and
either missing, "Autopatch and schedule patch don't run. You get an error that the prerequisites for schedule
patch aren't met." (learn.microsoft.com/azure/update-manager/prerequsite-for-schedule-patching, "User
scenarios"). Arc-enabled servers need neither (scheduled-patching, "Prerequisites for scheduled patching").

One VM PATCH that carries only `patchSettings` (the REST body as the page shows it, without its
`enableAutomaticUpdates`): what the service refuses is never sent.
- `enableAutomaticUpdates` is set at creation; a PATCH that sends it with another value is refused with 409
  `PropertyChangeNotAllowed` "Changing property 'windowsConfiguration.enableAutomaticUpdates' is not
  allowed." (MicrosoftDocs/azure-docs#112633, following that page's own JSON). AutomaticByPlatform needs it
  true on Windows ("The properties provisionVMAgent and WindowsConfiguration.enableAutomaticUpdates must be
  true", Compute PatchSettings.patchMode): a Windows VM where it is false is refused with the reason, never
  patched.
- `automaticByPlatformSettings` is refused unless patchMode is AutomaticByPlatform ("AutomaticByPlatformSettings
  cannot be set if the PatchMode is not 'AutomaticByPlatform'.", Azure/bicep-registry-modules#2081): the body
  always sets both together.
- A VM with no `osProfile` (created from a specialised or attached disk, or migrated) has no patch settings to
  change (409 "Changing property 'osProfile' is not allowed."): refused with the reason.
- `provisionVMAgent` false: AutomaticByPlatform needs the VM agent; refused with the reason.

Only the bypass flag missing on an AutomaticByPlatform VM is the safe, automatic case (scenarios.md); a patchMode
change needs approval. `only=bypass` keeps a plan to the flag alone and refuses when patchMode must change too.
"""

from __future__ import annotations

from collections.abc import Mapping

from remediations.base import Change, Plan, RemediationError, noop, register
from remediations.context import Context
from remediations.update_manager import timing
from remediations.update_manager.machines import MachineFacts, patch_body, read_machine
from shared.core.domain import Mode

NAME = "set-customer-managed-schedules"
ABP = "AutomaticByPlatform"
BYPASS = "bypassPlatformSafetyChecksOnUserSchedule"


def refusal(machine: MachineFacts) -> str | None:
    """What the service would refuse about putting this VM on Customer Managed Schedules, or None."""
    if machine.os_profile is None:
        return (f"VM {machine.name} has no osProfile (created from a specialised or attached OS disk, or migrated): "
                "it has no patch settings to change, and Compute refuses adding one (PropertyChangeNotAllowed "
                "\"Changing property 'osProfile' is not allowed.\"); recreate it from a generalised image, or patch "
                "it another way")
    if machine.os_config.get("provisionVMAgent") is False:
        return (f"VM {machine.name} has provisionVMAgent false: AutomaticByPlatform needs the VM agent "
                "(Compute patchMode: the property provisionVMAgent must be true), and it is set at creation only")
    if machine.os_type == "windows" and machine.os_config.get("enableAutomaticUpdates") is False:
        return (f"VM {machine.name} has windowsConfiguration.enableAutomaticUpdates false; AutomaticByPlatform needs "
                "it true, and Compute refuses changing it after creation (409 PropertyChangeNotAllowed \"Changing "
                "property 'windowsConfiguration.enableAutomaticUpdates' is not allowed.\"): nothing was sent")
    return None


@register
class SetCustomerManagedSchedules:
    name = NAME
    fixes = ("aum.schedule_prereq_not_set",)
    mode = Mode.APPROVAL
    summary = ("sets an Azure VM's patchMode AutomaticByPlatform and bypassPlatformSafetyChecksOnUserSchedule true "
               "(VM PATCH of patchSettings only; refuses what Compute would refuse, naming why)")
    target_kind = "Microsoft.Compute/virtualMachines"
    params = (("only", "bypass: set only the bypass flag, and refuse when patchMode must change too"),
              ("before", "ISO time the change must start by (a coming run's cut-off); refused after it"))
    param_patterns = (("only", "bypass"), ("before", timing.DEADLINE_PATTERN))
    limit_names = ()

    def plan(self, target: str, params: Mapping[str, str], ctx: Context) -> Plan:
        machine = read_machine(ctx, target)
        settings = machine.patch_settings
        mode = str(settings.get("patchMode") or "")
        automatic = settings.get("automaticByPlatformSettings") or {}
        bypass = automatic.get(BYPASS) if isinstance(automatic, Mapping) else None
        field = f"properties.osProfile.{machine.config_key}.patchSettings"
        if machine.os_profile is not None and mode == ABP and bypass is True:
            return noop(NAME, target, f"VM {machine.name} is on Customer Managed Schedules")
        why = refusal(machine)
        if why:
            raise RemediationError(why)
        changes: list[Change] = []
        if mode != ABP:
            if params.get("only") == "bypass":
                raise RemediationError(f"VM {machine.name} has patchMode {mode or '(not set)'}: the patchMode must "
                                       "change too, which needs approval (only=bypass refuses it)")
            changes.append(Change(target, "patch", f"{field}.patchMode", mode or None, ABP))
        changes.append(Change(target, "patch", f"{field}.automaticByPlatformSettings.{BYPASS}", bypass, True))
        timing.check_deadline(params, ctx.now(), f"setting Customer Managed Schedules on {machine.name}")
        body = patch_body(machine, {"patchMode": ABP, "automaticByPlatformSettings": {BYPASS: True}})
        reason = (f"VM {machine.name} is not on Customer Managed Schedules (patchMode {mode or '(not set)'}, "
                  f"{BYPASS} {bypass if bypass is not None else '(not set)'}): its schedule cannot patch it")
        return Plan(NAME, target, tuple(changes), reason, (), {"body": body})

    def apply(self, plan: Plan, ctx: Context) -> None:
        ctx.patching.patch_vm(plan.target, dict(plan.request["body"]))

    def verify(self, plan: Plan, ctx: Context) -> bool:
        settings = read_machine(ctx, plan.target).patch_settings
        automatic = settings.get("automaticByPlatformSettings") or {}
        return settings.get("patchMode") == ABP and isinstance(automatic, Mapping) and automatic.get(BYPASS) is True
