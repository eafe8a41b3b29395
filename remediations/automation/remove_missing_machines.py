"""Remove from a deployment the machines that failed to start because they no longer exist.

Only machines verified gone: an Azure VM whose resource ARM answers 404 for, or a
non-Azure computer with no heartbeat for `missing_after_days`. A machine that is merely
off or unreachable stays in the deployment.
"""

from __future__ import annotations

from collections.abc import Mapping

from remediations.automation import machines as _machines
from remediations.base import Change, Plan, noop, register
from remediations.context import Context
from shared.azure.base import prop
from shared.core.domain import Mode

NAME = "remove-missing-machines"


@register
class RemoveMissingMachines:
    name = NAME
    fixes = ("um.failed_to_start",)
    mode = Mode.APPROVAL
    summary = "removes from the deployment machines that failed to start and are verified gone"
    target_kind = "Microsoft.Automation/automationAccounts/softwareUpdateConfigurations"
    params = (("workspace", "Log Analytics workspace id, for non-Azure machines (default REMEDIATOR_WORKSPACE_ID)"),)
    limit_names = ("max_machines_per_change", "missing_after_days")
    param_patterns = (("workspace", r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"),)

    def plan(self, target: str, params: Mapping[str, str], ctx: Context) -> Plan:
        limits = (("max_machines_per_change", str(ctx.limits.max_machines_per_change)),
                  ("missing_after_days", str(ctx.limits.missing_after_days)))
        _machines.refuse_while_readd_pending(ctx, target, NAME)
        failed = _machines.failed_run(ctx, target)
        if failed is None:
            return noop(NAME, target, "no machine failed to start in the latest run", limits)
        listed = prop(failed.configuration, "properties.updateConfiguration") or {}
        candidates = [m for m in failed.machines
                      if m.target.lower() in {x.lower() for x in listed.get(m.list_name) or []}]
        if not candidates:
            return noop(NAME, target, "the machines that failed to start are no longer in the deployment", limits)
        gone: list[_machines.FailedMachine] = []
        non_azure = [m for m in candidates if m.list_name == _machines.NON_AZURE]
        sightings = (ctx.insights.source_id_sightings(_machines.workspace(dict(params), ctx),
                                                      ctx.limits.missing_after_days) if non_azure else [])
        for machine in candidates:
            if machine.list_name == _machines.AZURE_VMS:
                if not ctx.resources.exists(machine.target):
                    gone.append(machine)
            elif not any(_machines.same_computer(s.computer, machine.computer) for s in sightings):
                gone.append(machine)
        if not gone:
            return noop(NAME, target, "every machine that failed to start still exists", limits)
        drop = _machines.bounded(gone, ctx, "remove")
        body = _machines.without(failed.configuration, drop)
        changes = tuple(
            Change(target, "put", f"properties.updateConfiguration.{name}", listed.get(name) or [],
                   body["properties"]["updateConfiguration"][name])
            for name in sorted(drop)
        )
        reason = f"{len(gone)} machine(s) failed to start and no longer exist: " + \
            ", ".join(m.computer for m in gone)
        return Plan(NAME, target, changes, reason, limits, {"body": body})

    def apply(self, plan: Plan, ctx: Context) -> None:
        ctx.automation.put_configuration(plan.target, dict(plan.request["body"]))

    def verify(self, plan: Plan, ctx: Context) -> bool:
        got = prop(ctx.automation.get_configuration(plan.target), "properties.updateConfiguration") or {}
        return all(sorted(got.get(c.field.rsplit(".", 1)[-1]) or []) == sorted(c.after) for c in plan.changes)
