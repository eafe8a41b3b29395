"""Start a stopped or deallocated Azure VM before its maintenance window, so the run can patch it.

"Patches aren't getting applied for the machines that are in shutdown state ... Keep your machines turned on at
least 15 minutes before the scheduled update." (learn.microsoft.com/azure/update-manager/troubleshoot, "Unable to
apply patches for the shutdown machines"); turning machines on is the first pre-event the pre/post events
overview lists. On a PreMaintenanceEvent the gate asks for it with `before` = the latest time that still leaves
those 15 minutes (and precedes the cancellation cut-off): a start asked for later is refused with the reason.
Automatic only for machines tagged `remediator-start-before-window=true`; otherwise proposed (scenarios.md).
Arc-enabled servers have no start operation in ARM: refused with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping

from remediations.base import Change, Plan, RemediationError, noop, register
from remediations.context import Context
from remediations.update_manager import timing
from remediations.update_manager.machines import read_machine
from shared.core.domain import Mode

NAME = "start-machines-before-window"
OPT_IN_TAG = "remediator-start-before-window"
STOPPED = ("deallocated", "stopped", "deallocating", "stopping")


@register
class StartMachinesBeforeWindow:
    name = NAME
    fixes = ("aum.machine_unavailable",)
    mode = Mode.APPROVAL
    summary = ("starts a stopped or deallocated VM of a coming run before its window (approval, or automatic for "
               f"VMs tagged {OPT_IN_TAG}=true)")
    target_kind = "Microsoft.Compute/virtualMachines"
    params = (("before", "ISO time the VM must be started by (15 minutes before the run, within the cancellation "
                         "cut-off); refused after it"),)
    param_patterns = (("before", timing.DEADLINE_PATTERN),)
    limit_names = ()

    def plan(self, target: str, params: Mapping[str, str], ctx: Context) -> Plan:
        machine = read_machine(ctx, target)
        power = machine.power_state
        if power not in STOPPED:
            return noop(NAME, target, f"VM {machine.name} is {power or 'in no reported power state'}")
        timing.check_deadline(params, ctx.now(), f"starting {machine.name}")
        if power in ("deallocating", "stopping"):
            raise RemediationError(f"VM {machine.name} is {power}: start it once that operation has finished")
        change = Change(target, "start", "instanceView.powerState", f"PowerState/{power}", "PowerState/running")
        reason = f"VM {machine.name} is {power}: a run cannot patch it (ShutdownOrUnresponsive)"
        return Plan(NAME, target, (change,), reason, (), {})

    def apply(self, plan: Plan, ctx: Context) -> None:
        ctx.patching.start_vm(plan.target)

    def verify(self, plan: Plan, ctx: Context) -> bool:
        return read_machine(ctx, plan.target).power_state == "running"
