"""Remove and re-add, in a deployment, the machines whose SourceComputerId changed.

A machine whose agent was reinstalled, or a clone, reports under a new SourceComputerId
and its runs fail to start ("hybrid worker group that does not exist"). The guide's
fix: find them with the Heartbeat query, then remove them from the deployment and add
them back so it binds to the new id. Two PUTs; the deployment ends as it was listed. The
deployment as it was is kept in the vault before the first PUT and dropped after the second,
so a failed or interrupted second PUT is finished by the next attempt (the machines never stay
out of patching), whatever the live state then says.
"""

from __future__ import annotations

from collections.abc import Mapping

from remediations.automation import machines as _machines
from remediations.base import Change, Plan, noop, register
from remediations.context import Context
from shared.azure.automation import submittable
from shared.azure.base import prop
from shared.core.domain import Mode

NAME = "readd-changed-machines"


@register
class ReaddChangedMachines:
    name = NAME
    fixes = ("um.failed_to_start",)
    mode = Mode.AUTO
    summary = "removes and re-adds, in the deployment, machines whose SourceComputerId changed (Heartbeat)"
    target_kind = "Microsoft.Automation/automationAccounts/softwareUpdateConfigurations"
    params = (("workspace", "the Log Analytics workspace id (default REMEDIATOR_WORKSPACE_ID)"),)
    limit_names = ("max_machines_per_change",)
    param_patterns = (("workspace", r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"),)

    def plan(self, target: str, params: Mapping[str, str], ctx: Context) -> Plan:
        limits = (("max_machines_per_change", str(ctx.limits.max_machines_per_change)),)
        kept = ctx.vault.get(target)
        if kept is not None and kept.get("remediation") == NAME:
            change = Change(target, "restore", "properties.updateConfiguration",
                            "machines removed by an interrupted re-add", "the deployment as it was listed")
            return Plan(NAME, target, (change,), "finish an interrupted re-add", limits,
                        {"restored": kept["original"]}, resume=True)
        failed = _machines.failed_run(ctx, target)
        if failed is None:
            return noop(NAME, target, "no machine failed to start in the latest run", limits)
        edited = _machines.when(prop(failed.configuration, "properties.lastModifiedTime"))
        sightings = ctx.insights.source_id_sightings(_machines.workspace(dict(params), ctx))
        changes: list[Change] = []
        changed: list[_machines.FailedMachine] = []
        for machine in failed.machines:
            seen = sorted((s for s in sightings if _machines.same_computer(s.computer, machine.computer)),
                          key=lambda s: s.last_seen)
            if not seen or not machine.source_computer_id:
                continue
            latest = seen[-1].source_computer_id
            # Saving the deployment after the new id appeared is what re-adding achieves.
            rebound = edited is not None and edited > seen[-1].first_seen
            if latest.lower() != machine.source_computer_id.lower() and not rebound:
                changed.append(machine)
                changes.append(Change(target, "readd", f"properties.updateConfiguration.{machine.list_name}",
                                      f"{machine.target} (SourceComputerId {machine.source_computer_id})",
                                      f"{machine.target} (SourceComputerId {latest})"))
        if not changes:
            return noop(NAME, target, "no machine that failed to start has a SourceComputerId changed since the "
                                      "deployment was last saved", limits)
        drop = _machines.bounded(changed, ctx, "re-add")
        reason = f"{len(changes)} machine(s) failed to start after their SourceComputerId changed"
        return Plan(NAME, target, tuple(changes), reason, limits,
                    {"removed": _machines.without(failed.configuration, drop),
                     "restored": submittable(failed.configuration)})

    def apply(self, plan: Plan, ctx: Context) -> None:
        restored = dict(plan.request["restored"])
        if not plan.resume:
            ctx.vault.keep(plan.target, restored, dict(plan.request["removed"]), remediation=NAME)
            ctx.automation.put_configuration(plan.target, dict(plan.request["removed"]))
        ctx.automation.put_configuration(plan.target, restored)
        ctx.vault.drop(plan.target)

    def verify(self, plan: Plan, ctx: Context) -> bool:
        config = ctx.automation.get_configuration(plan.target)
        wanted = plan.request["restored"]["properties"].get("updateConfiguration", {})
        got = prop(config, "properties.updateConfiguration") or {}
        return all(sorted(got.get(k) or []) == sorted(wanted.get(k) or [])
                   for k in (_machines.AZURE_VMS, _machines.NON_AZURE))
