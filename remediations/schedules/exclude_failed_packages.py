"""Add the packages / KBs that failed in a deployment's last run to its exclusions, so the next run goes ahead
without them (approval: a person decides what stays unpatched).

- Update Manager maintenance configuration: `installPatches.linuxParameters.packageNameMasksToExclude` /
  `installPatches.windowsParameters.kbNumbersToExclude` (Maintenance REST spec 2023-04-01, InputLinuxParameters /
  InputWindowsParameters). The failed updates are the `softwarepatches` rows with `installationState: Failed`
  of the run's failed installations (Resource Graph `patchinstallationresources`, learn.microsoft.com/azure/
  update-manager/query-logs). The configuration is read whole and PUT whole (its PATCH has no documented
  partial semantics), keeping `extensionProperties.InGuestPatchMode`, the window and the rest of installPatches;
  an edit too close to the next run is refused (`remediations.update_manager.timing`). A machine as target
  means the schedule of its last failed scheduled run, with that machine's failed updates only.
- Automation software update configuration: `updateConfiguration.linux.excludedPackageNameMasks` /
  `updateConfiguration.windows.excludedKbNumbers` (Automation REST spec 2024-10-23); the failed updates come from
  Log Analytics `UpdateRunProgress` (InstallationStatus Failed, by the run's CorrelationId;
  learn.microsoft.com/azure/azure-monitor/reference/tables/updaterunprogress).

An update already excluded is not added again, so the second run plans nothing. At most
`max_exclusions_per_change` at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from remediations.base import Change, Plan, RemediationError, noop, register
from remediations.context import Context
from remediations.update_manager.machines import (
    configuration_body,
    configuration_of_run,
    installation_runs,
    schedule_refusal,
)
from shared.azure.automation import submittable
from shared.azure.base import prop, rid
from shared.azure.insights import kql_string
from shared.core.domain import Mode

NAME = "exclude-failed-packages"
FAILED_UPDATES = """UpdateRunProgress
| where CorrelationId =~ {run} and InstallationStatus =~ 'Failed'
| distinct Computer, OSType, KBID, Product, Title"""
UM_FIELDS = {"linux": ("linuxParameters", "packageNameMasksToExclude"),
             "windows": ("windowsParameters", "kbNumbersToExclude")}
AUTOMATION_FIELDS = {"linux": ("linux", "excludedPackageNameMasks"), "windows": ("windows", "excludedKbNumbers")}


def _package(row: Mapping[str, Any]) -> str:
    """A Linux update's package name (no version): the mask that excludes it."""
    name = str(prop(row, "properties.patchName") or row.get("Product") or row.get("Title") or "").strip()
    return name.split(" ", 1)[0]


def _kb(row: Mapping[str, Any]) -> str:
    return str(prop(row, "properties.kbId") or row.get("KBID") or "").strip().upper().removeprefix("KB")


@register
class ExcludeFailedPackages:
    name = NAME
    fixes = ("um.run_failed_linux",)
    mode = Mode.APPROVAL
    summary = "adds the packages / KBs that failed in the last run to the deployment's or schedule's exclusions"
    target_kind = ("Microsoft.Automation/automationAccounts/softwareUpdateConfigurations | "
                   "Microsoft.Maintenance/maintenanceConfigurations | Microsoft.Compute/virtualMachines | "
                   "Microsoft.HybridCompute/machines")
    params = (("workspace", "the Log Analytics workspace id, for an Automation deployment (default "
                            "REMEDIATOR_WORKSPACE_ID)"),)
    param_patterns = (("workspace", r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"),)
    limit_names = ("max_exclusions_per_change",)

    def plan(self, target: str, params: Mapping[str, str], ctx: Context) -> Plan:
        low = target.lower()
        if "/softwareupdateconfigurations/" in low:
            return self._plan_automation(target, params, ctx)
        if "/microsoft.maintenance/maintenanceconfigurations/" in low:
            return self._plan_schedule(target, None, ctx)
        return self._plan_machine(target, ctx)

    def _limits(self, ctx: Context) -> tuple[tuple[str, str], ...]:
        return (("max_exclusions_per_change", str(ctx.limits.max_exclusions_per_change)),)

    def _bounded(self, added: list[str], ctx: Context) -> None:
        if len(added) > ctx.limits.max_exclusions_per_change:
            raise RemediationError(f"{len(added)} updates to exclude, over max_exclusions_per_change "
                                   f"({ctx.limits.max_exclusions_per_change}): review the run by hand")

    # ------------------------------------------------------------ Update Manager

    def _failed_updates(self, ctx: Context, machine_id: str, run_id: str) -> dict[str, set[str]]:
        """os type -> the failed updates' package names / KB numbers of the machine's installation for the run."""
        rows = ctx.patching.installations_of(machine_id)
        runs = [r for r in installation_runs(rows) if str(prop(r, "properties.maintenanceRunId") or "").lower() ==
                run_id.lower() and str(prop(r, "properties.status") or "").lower() == "failed"]
        found: dict[str, set[str]] = {}
        for run in runs:
            os_type = str(prop(run, "properties.osType") or "").lower()
            prefix = str(run.get("id", "")).lower() + "/softwarepatches/"
            for row in rows:
                if str(row.get("id", "")).lower().startswith(prefix) and \
                        str(prop(row, "properties.installationState") or "").lower() == "failed":
                    value = _kb(row) if os_type == "windows" else _package(row)
                    if value:
                        found.setdefault(os_type, set()).add(value)
        return found

    def _plan_machine(self, target: str, ctx: Context) -> Plan:
        rows = installation_runs(ctx.patching.installations_of(target))
        failed = next((r for r in rows if str(prop(r, "properties.status") or "").lower() == "failed"
                       and configuration_of_run(str(prop(r, "properties.maintenanceRunId") or ""))), None)
        if failed is None:
            return noop(NAME, target, "no scheduled installation of this machine failed lately", self._limits(ctx))
        run_id = str(prop(failed, "properties.maintenanceRunId"))
        return self._plan_schedule(configuration_of_run(run_id), (target, run_id), ctx, plan_target=target)

    def _plan_schedule(self, config_id: str, machine_run: tuple[str, str] | None, ctx: Context,
                       plan_target: str | None = None) -> Plan:
        target = plan_target or config_id
        limits = self._limits(ctx)
        if machine_run is not None:
            updates = self._failed_updates(ctx, *machine_run)
        else:
            run_id = self._latest_failed_run(ctx, config_id)
            if run_id is None:
                return noop(NAME, target, "the schedule's recent runs had no failed installation", limits)
            updates = {}
            for install in ctx.graph.installations([rid(config_id).subscription], days=30, run_id=run_id):
                if str(install.get("status") or "").lower() != "failed":
                    continue
                machine = str(install.get("id", "")).split("/patchInstallationResults/", 1)[0]
                for os_type, names in self._failed_updates(ctx, machine, run_id).items():
                    updates.setdefault(os_type, set()).update(names)
        if not updates:
            return noop(NAME, target, "the failed installation names no failed update", limits)
        configuration = ctx.maintenance.get_configuration(config_id)
        patches = prop(configuration, "properties.installPatches") or {}
        body = configuration_body(configuration)
        out = body["properties"].setdefault("installPatches", {})
        changes: list[Change] = []
        added_all: list[str] = []
        for os_type, names in sorted(updates.items()):
            section, key = UM_FIELDS[os_type]
            current = list((patches.get(section) or {}).get(key) or [])
            have = {c.lower().removeprefix("kb") for c in current}
            added = sorted(n for n in names if n.lower().removeprefix("kb") not in have)
            if not added:
                continue
            added_all.extend(added)
            out.setdefault(section, {})[key] = [*current, *added]
            changes.append(Change(config_id, "put", f"properties.installPatches.{section}.{key}", current,
                                  [*current, *added]))
        if not changes:
            return noop(NAME, target, "the updates that failed are already excluded", limits)
        self._bounded(added_all, ctx)
        refused = schedule_refusal(ctx, config_id, configuration)
        if refused:
            raise RemediationError(refused)
        reason = f"{len(added_all)} update(s) failed in the last run: {', '.join(added_all)}"
        return Plan(NAME, target, tuple(changes), reason, limits,
                    {"kind": "update-manager", "configuration": config_id, "body": body})

    def _latest_failed_run(self, ctx: Context, config_id: str) -> str | None:
        runs = [r for r in ctx.patching.runs_of(config_id, days=30)
                if str(r.get("type", "")).lower() == "microsoft.maintenance/maintenanceconfigurations/applyupdates"]
        runs.sort(key=lambda r: str(prop(r, "properties.startDateTime") or ""), reverse=True)
        for run in runs[:3]:
            run_id = str(prop(run, "properties.correlationId") or "")
            if any(str(i.get("status") or "").lower() == "failed"
                   for i in ctx.graph.installations([rid(config_id).subscription], days=30, run_id=run_id)):
                return run_id
        return None

    # ------------------------------------------------------------ Automation

    def _plan_automation(self, target: str, params: Mapping[str, str], ctx: Context) -> Plan:
        limits = self._limits(ctx)
        config = ctx.automation.get_configuration(target)
        run = ctx.automation.latest_run(target)
        if run is None or prop(run, "properties.status") != "Failed":
            status = prop(run, "properties.status") if run else "absent"
            return noop(NAME, target, f"latest run is {status}: nothing failed", limits)
        workspace = params.get("workspace") or ctx.workspace_id
        if not workspace:
            raise RemediationError("a Log Analytics workspace id is needed (param workspace, or "
                                   "REMEDIATOR_WORKSPACE_ID)")
        rows = ctx.insights.query(str(workspace), FAILED_UPDATES.format(run=kql_string(str(run.get("name")))),
                                  timedelta(days=30))
        os_type = str(prop(config, "properties.updateConfiguration.operatingSystem") or "").lower()
        if os_type not in AUTOMATION_FIELDS:
            raise RemediationError(f"the deployment's operatingSystem is {os_type or 'not set'}")
        names = {(_kb(r) if os_type == "windows" else _package(r)) for r in rows} - {""}
        if not names:
            return noop(NAME, target, "UpdateRunProgress names no failed update for the latest run", limits)
        section, key = AUTOMATION_FIELDS[os_type]
        current = list((prop(config, f"properties.updateConfiguration.{section}") or {}).get(key) or [])
        have = {c.lower().removeprefix("kb") for c in current}
        added = sorted(n for n in names if n.lower().removeprefix("kb") not in have)
        if not added:
            return noop(NAME, target, "the updates that failed are already excluded", limits)
        self._bounded(added, ctx)
        body = submittable(config)
        body["properties"]["updateConfiguration"].setdefault(section, {})[key] = [*current, *added]
        change = Change(target, "put", f"properties.updateConfiguration.{section}.{key}", current, [*current, *added])
        reason = f"{len(added)} update(s) failed in run {run.get('name')}: {', '.join(added)}"
        return Plan(NAME, target, (change,), reason, limits, {"kind": "automation", "body": body})

    # ------------------------------------------------------------ both

    def apply(self, plan: Plan, ctx: Context) -> None:
        if plan.request["kind"] == "automation":
            ctx.automation.put_configuration(plan.target, dict(plan.request["body"]))
        else:
            ctx.patching.put_configuration(str(plan.request["configuration"]), dict(plan.request["body"]))

    def verify(self, plan: Plan, ctx: Context) -> bool:
        if plan.request["kind"] == "automation":
            config = ctx.automation.get_configuration(plan.target)
        else:
            config = ctx.maintenance.get_configuration(str(plan.request["configuration"]))
        return all(set(c.after) <= set(prop(config, c.field) or []) for c in plan.changes)
