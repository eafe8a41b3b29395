"""Turn on periodic assessment: `patchSettings.assessmentMode = AutomaticByPlatform`, so the platform assesses
the machine every 24 hours (learn.microsoft.com/azure/update-manager/assessment-options, "Periodic assessment").

An Azure VM: a VM PATCH carrying only `patchSettings.assessmentMode` (never `enableAutomaticUpdates`: see
set-customer-managed-schedules); the VM needs an osProfile and the VM agent ("The platform will trigger periodic
patch assessments. The property provisionVMAgent must be true", Compute PatchSettings.assessmentMode), both set
at creation only, so a VM without them is refused with the reason. An Arc-enabled server: a machine PATCH of
`properties.osProfile.<os>Configuration.patchSettings.assessmentMode` (HybridCompute Machines_Update example).
The periodic assessment policy does not set it on specialised, migrated or restored VMs (troubleshoot,
"Periodic assessment isn't getting set correctly ..."): this is the remediation task for them.
"""

from __future__ import annotations

from collections.abc import Mapping

from remediations.base import Change, Plan, RemediationError, noop, register
from remediations.context import Context
from remediations.update_manager.machines import MACHINE_KINDS, patch_body, read_machine
from shared.core.domain import Mode

NAME = "enable-periodic-assessment"
ABP = "AutomaticByPlatform"


@register
class EnablePeriodicAssessment:
    name = NAME
    fixes = ("aum.periodic_assessment_not_enabled",)
    mode = Mode.AUTO
    summary = "sets patchSettings.assessmentMode to AutomaticByPlatform on an Azure VM or Arc-enabled server"
    target_kind = MACHINE_KINDS
    params = ()
    limit_names = ()

    def plan(self, target: str, params: Mapping[str, str], ctx: Context) -> Plan:
        machine = read_machine(ctx, target)
        current = str(machine.patch_settings.get("assessmentMode") or "")
        if current == ABP:
            return noop(NAME, target, f"{machine.name} is already assessed periodically (assessmentMode {ABP})")
        if machine.kind == "vm":
            if machine.os_profile is None:
                raise RemediationError(f"VM {machine.name} has no osProfile (specialised or migrated): it has no patch "
                                       "settings, and Compute refuses adding one (PropertyChangeNotAllowed)")
            if machine.os_config.get("provisionVMAgent") is False:
                raise RemediationError(f"VM {machine.name} has provisionVMAgent false: periodic assessment needs the "
                                       "VM agent, which is set at creation only")
        field = f"properties.osProfile.{machine.config_key}.patchSettings.assessmentMode"
        change = Change(target, "patch", field, current or "ImageDefault", ABP)
        reason = f"{machine.name} has assessmentMode {current or 'ImageDefault (not set)'}: no periodic assessment data"
        return Plan(NAME, target, (change,), reason, (),
                    {"kind": machine.kind, "body": patch_body(machine, {"assessmentMode": ABP})})

    def apply(self, plan: Plan, ctx: Context) -> None:
        if plan.request["kind"] == "arc":
            ctx.patching.patch_arc(plan.target, dict(plan.request["body"]))
        else:
            ctx.patching.patch_vm(plan.target, dict(plan.request["body"]))

    def verify(self, plan: Plan, ctx: Context) -> bool:
        return read_machine(ctx, plan.target).patch_settings.get("assessmentMode") == ABP
