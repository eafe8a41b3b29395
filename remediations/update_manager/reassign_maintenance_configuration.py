"""Restore a machine's configuration assignment to the schedule it had, when the schedule stopped triggering it.

"When a VM is moved to another subscription or resource group, the scheduled maintenance configuration
associated to the VM isn't running ... Re-create the resource assignment." (learn.microsoft.com/azure/update-
manager/troubleshoot, "Maintenance configuration isn't applied when VM is moved to a different subscription or
resource group"). The machine missed the schedule when the schedule's last run happened (its run record in
Resource Graph) and the machine, which existed then, has no installation result for it.

- No assignment to that schedule any more (deleted, or left behind under the machine's old id): one PUT of the
  assignment on the machine as it is now.
- An assignment that is there but did not trigger: removed and created again (two steps, the intent kept in the
  vault before the first and dropped after the second, so the machine never stays unassigned: an interrupted
  re-assignment is finished by the next attempt). The new assignment's name carries the missed run's time
  (`...-r<yyyyMMddHHmmss>`), and ARM's `systemData` its time of creation: either shows it was re-created after
  that run, which is what makes the plan empty the second time.

The schedule is the one named (`configuration`), else the machine's own assignment or the schedule its last
results name. A machine in a schedule only by a dynamic scope has no assignment of its own: refused
(aum.dynamic_scope_miss is advice).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from remediations.base import Change, Plan, RemediationError, noop, register
from remediations.context import Context
from remediations.update_manager.install_patches_now import CONFIG_PATTERN, RUN_TYPE, USER_CANCELLED
from remediations.update_manager.machines import (
    MACHINE_KINDS,
    configuration_of_run,
    installation_runs,
    read_machine,
    when,
)
from shared.azure.base import prop
from shared.core.domain import Mode

NAME = "reassign-maintenance-configuration"
_EPOCH = datetime.min.replace(tzinfo=UTC)


def _name(configuration_id: str, machine: str, stamp: str | None = None) -> str:
    base = f"{configuration_id.rstrip('/').rsplit('/', 1)[-1]}-{machine}"
    return (base[:60] + f"-r{stamp}") if stamp else base[:80]


def _reassigned_after(assignment: Mapping[str, Any], stamp: str, start: datetime) -> bool:
    if str(assignment.get("name", "")).lower().endswith(f"-r{stamp}".lower()):
        return True
    changed = when(prop(assignment, "systemData.lastModifiedAt")) or when(prop(assignment, "systemData.createdAt"))
    return changed is not None and changed > start


def _latest_run(ctx: Context, configuration_id: str) -> dict[str, Any] | None:
    now = ctx.now()
    runs = [r for r in ctx.patching.runs_of(configuration_id) if str(r.get("type", "")).lower() == RUN_TYPE
            and (when(prop(r, "properties.endDateTime")) or now) <= now]
    runs = [r for r in runs if not any(w in str((prop(r, "properties.errorDetails") or {}).get("message") or "")
                                       .lower() for w in USER_CANCELLED)]
    return max(runs, key=lambda r: when(prop(r, "properties.startDateTime")) or _EPOCH) if runs else None


@register
class ReassignMaintenanceConfiguration:
    name = NAME
    fixes = ("aum.schedule_not_triggered",)
    mode = Mode.APPROVAL
    summary = ("restores a machine's configuration assignment to the schedule it had (re-creates it when the "
               "schedule's last run did not trigger the machine)")
    target_kind = MACHINE_KINDS
    params = (("configuration", "the maintenance configuration the machine had (default: its assignment or the "
                                "schedule its results name)"),)
    param_patterns = (("configuration", CONFIG_PATTERN),)
    limit_names = ()

    def plan(self, target: str, params: Mapping[str, str], ctx: Context) -> Plan:
        kept = ctx.vault.get(target)
        if kept is not None and kept.get("remediation") == NAME:
            intended = dict(kept["intended"])
            change = Change(target, "put", "configurationAssignments", "removed by an interrupted re-assignment",
                            intended["name"])
            return Plan(NAME, target, (change,), "finish an interrupted re-assignment", (), intended, resume=True)
        machine = read_machine(ctx, target)
        assignments = ctx.patching.assignments_of(target)
        config_id = params.get("configuration") or self._schedule(ctx, target, assignments)
        run = _latest_run(ctx, config_id)
        if run is None:
            return noop(NAME, target, f"{config_id.rsplit('/', 1)[-1]} has had no run lately")
        run_id = str(prop(run, "properties.correlationId") or "").lower()
        stamp = run_id.rsplit("/", 1)[-1]
        start = when(prop(run, "properties.startDateTime")) or _EPOCH
        created = when(prop(machine.body, "properties.timeCreated"))
        mine = [a for a in assignments
                if str(prop(a, "properties.maintenanceConfigurationId") or "").lower() == config_id.lower()]
        installs = installation_runs(ctx.patching.installations_of(target))
        if any(str(prop(i, "properties.maintenanceRunId") or "").lower() == run_id for i in installs):
            return noop(NAME, target, f"the last run ({stamp}) triggered {machine.name}")
        if created is not None and created > start:
            return noop(NAME, target, f"{machine.name} was created after the last run ({stamp})")
        if mine and any(_reassigned_after(a, stamp, start) for a in mine):
            return noop(NAME, target, f"{machine.name} was re-assigned to {config_id.rsplit('/', 1)[-1]} after "
                                      f"the run it missed ({stamp})")
        field = "providers/Microsoft.Maintenance/configurationAssignments"
        if not mine:
            name = _name(config_id, machine.name)
            request = {"name": name, "configuration": config_id, "location": machine.location, "remove": None}
            change = Change(target, "put", field, None, f"{name} -> {config_id.rsplit('/', 1)[-1]}")
            reason = (f"{machine.name} is no longer assigned to {config_id.rsplit('/', 1)[-1]}, whose last run "
                      f"({stamp}) it missed")
        else:
            old = str(mine[0].get("name"))
            name = _name(config_id, machine.name, stamp)
            request = {"name": name, "configuration": config_id, "location": machine.location, "remove": old}
            change = Change(target, "reassign", field, old, name)
            reason = (f"{machine.name} is assigned to {config_id.rsplit('/', 1)[-1]} ({old}) but its last run "
                      f"({stamp}) did not trigger it: the assignment is re-created")
        return Plan(NAME, target, (change,), reason, (), request)

    def _schedule(self, ctx: Context, target: str, assignments: list[dict[str, Any]]) -> str:
        configs = {str(prop(a, "properties.maintenanceConfigurationId") or "") for a in assignments} - {""}
        if not configs:
            for row in installation_runs(ctx.patching.installations_of(target)):
                config = configuration_of_run(str(prop(row, "properties.maintenanceRunId") or ""))
                if config:
                    return config
            raise RemediationError("no schedule this machine was assigned to is known (a dynamic scope assigns "
                                   "none of its own): pass configuration=<maintenance configuration id>")
        if len(configs) > 1:
            raise RemediationError(f"the machine is assigned to {len(configs)} schedules: pass configuration=<id>")
        return configs.pop()

    def apply(self, plan: Plan, ctx: Context) -> None:
        request = dict(plan.request)
        if not plan.resume and request.get("remove"):
            ctx.vault.keep(plan.target, {"name": request["remove"]}, request, remediation=NAME)
            ctx.patching.delete_assignment(plan.target, str(request["remove"]))
        ctx.patching.put_assignment(plan.target, str(request["name"]), str(request["configuration"]),
                                    str(request.get("location") or "") or None)
        ctx.vault.drop(plan.target)

    def verify(self, plan: Plan, ctx: Context) -> bool:
        wanted = str(plan.request["configuration"]).lower()
        names = {str(a.get("name", "")).lower() for a in ctx.patching.assignments_of(plan.target)
                 if str(prop(a, "properties.maintenanceConfigurationId") or "").lower() == wanted}
        return str(plan.request["name"]).lower() in names
