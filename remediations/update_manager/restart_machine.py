"""Restart an Azure VM whose installed patches wait for a reboot.

A run whose reboot setting forbids rebooting leaves "Machine is Required to reboot. However, the
customer-specified reboot setting doesn't allow reboots." and `rebootStatus: Required`; the VM's instance view
says so in `patchStatus.availablePatchSummary.rebootPending` (Compute VirtualMachine_Get_InstanceView example).
The plan is empty once no reboot is pending. Refused with the reason where it would hurt or fail: a VM that is
not running (Compute refuses restarting a deallocated VM; it needs a start), or one that is installing updates
right now (`lastPatchInstallationSummary.status` InProgress). Arc-enabled servers have no restart operation in
ARM.
"""

from __future__ import annotations

from collections.abc import Mapping

from remediations.base import Change, Plan, RemediationError, noop, register
from remediations.context import Context
from remediations.update_manager.machines import read_machine
from shared.azure.base import prop
from shared.core.domain import Mode

NAME = "restart-machine"


@register
class RestartMachine:
    name = NAME
    fixes = ("aum.reboot_required",)
    mode = Mode.APPROVAL
    summary = "restarts a VM whose installed patches wait for a reboot (rebootPending), unless it is installing"
    target_kind = "Microsoft.Compute/virtualMachines"
    params = ()
    limit_names = ()

    def plan(self, target: str, params: Mapping[str, str], ctx: Context) -> Plan:
        machine = read_machine(ctx, target)
        status = prop(machine.body, "properties.instanceView.patchStatus") or {}
        pending = prop(status, "availablePatchSummary.rebootPending")
        if pending is not True:
            return noop(NAME, target, f"VM {machine.name} has no reboot pending")
        if machine.power_state != "running":
            raise RemediationError(f"VM {machine.name} is {machine.power_state or 'not running'}: a restart needs it "
                                   "running (Compute refuses restarting a deallocated VM); start it instead")
        if str(prop(status, "lastPatchInstallationSummary.status") or "").lower() == "inprogress":
            raise RemediationError(f"VM {machine.name} is installing updates now: it is not restarted mid-installation")
        change = Change(target, "restart", "instanceView.patchStatus.availablePatchSummary.rebootPending", True, False)
        return Plan(NAME, target, (change,), f"VM {machine.name} waits for a reboot to finish installing its patches",
                    (), {})

    def apply(self, plan: Plan, ctx: Context) -> None:
        ctx.patching.restart_vm(plan.target)

    def verify(self, plan: Plan, ctx: Context) -> bool:
        machine = read_machine(ctx, plan.target)
        pending = prop(machine.body, "properties.instanceView.patchStatus.availablePatchSummary.rebootPending")
        return machine.power_state == "running" and pending is not True
