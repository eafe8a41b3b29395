"""Lengthen the maintenance window of a schedule whose last run ran out of it.

Two services, one remediation: an Automation software update configuration
(`updateConfiguration.duration`, ISO 8601, at most PT6H) or an Update Manager
maintenance configuration (`maintenanceWindow.duration`, HH:mm, at most 03:55).

Idempotency comes from the failed run, not from the current value: the new window is
the window the failed run had plus one step, so applying twice changes nothing, and a
schedule changed since the failure is left alone.

Update Manager: the configuration is read (GET) and written back whole (PUT) with the new
duration: PATCH's partial-body behaviour is not specified, and a body without
`extensionProperties.InGuestPatchMode` is refused ("Extension properties must contain Patch
mode"), so everything else (extensionProperties, installPatches, the window's start, time zone
and recurrence, tags) is sent as it was. An edit too close to the next run is refused
(`remediations.update_manager.timing`): within 15 minutes it would not take effect for that run,
and with pre-events within 40 minutes it would cancel it (learn.microsoft.com/azure/update-
manager/pre-post-scripts-overview, "Timeline of schedules for pre and post events").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from remediations.base import Change, Plan, RemediationError, noop, register
from remediations.context import Context
from remediations.schedules.durations import format_hhmm, format_iso, parse_any, parse_hhmm, parse_iso
from remediations.update_manager.machines import configuration_body, schedule_refusal
from shared.azure.automation import submittable
from shared.azure.base import prop
from shared.core.domain import Mode

NAME = "extend-maintenance-window"


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@register
class ExtendMaintenanceWindow:
    name = NAME
    fixes = ("um.maintenance_window_exceeded",)
    mode = Mode.AUTO
    summary = "lengthens the maintenance window of a schedule whose last run exceeded it (one step, capped)"
    target_kind = ("Microsoft.Automation/automationAccounts/softwareUpdateConfigurations | "
                   "Microsoft.Maintenance/maintenanceConfigurations")
    params = (("duration", "the new window (PT4H, 03:30 or minutes) instead of one step up; within the limit"),)
    limit_names = ("window_step", "automation_max_window", "update_manager_max_window")
    param_patterns = (("duration", r"PT(?:\d{1,2}H)?(?:\d{1,3}M)?|\d{1,2}:\d{2}|\d{1,3}"),)

    def plan(self, target: str, params: Mapping[str, str], ctx: Context) -> Plan:
        low = target.lower()
        if "/softwareupdateconfigurations/" in low:
            from remediations.automation.machines import refuse_while_readd_pending

            refuse_while_readd_pending(ctx, target, NAME)
            return self._plan_automation(target, params, ctx)
        if "/microsoft.maintenance/maintenanceconfigurations/" in low:
            return self._plan_update_manager(target, params, ctx)
        raise RemediationError(f"target {target!r} is neither a software update configuration "
                               "nor a maintenance configuration")

    def _wanted(self, baseline: timedelta, cap: timedelta, params: Mapping[str, str], ctx: Context) -> timedelta:
        if params.get("duration"):
            try:
                wanted = parse_any(params["duration"])
            except ValueError as exc:
                raise RemediationError(str(exc)) from None
            if wanted > cap:
                raise RemediationError(f"{params['duration']} is over the maximum window {cap}")
            return wanted
        if baseline >= cap:
            raise RemediationError(f"the window is already at the maximum {cap}: split the deployment instead")
        return min(cap, baseline + ctx.limits.window_step)

    def _plan_automation(self, target: str, params: Mapping[str, str], ctx: Context) -> Plan:
        cap = ctx.limits.automation_max_window
        limits = (("automation_max_window", format_iso(cap)), ("window_step", format_iso(ctx.limits.window_step)))
        config = ctx.automation.get_configuration(target)
        current_raw = str(prop(config, "properties.updateConfiguration.duration") or "PT2H")
        current = parse_iso(current_raw)
        run = ctx.automation.latest_run(target)
        if run is None or prop(run, "properties.status") != "MaintenanceWindowExceeded":
            status = prop(run, "properties.status") if run else "absent"
            return noop(NAME, target, f"latest run is {status}: the window was not exceeded", limits)
        baseline = parse_iso(str(prop(run, "properties.configuredDuration") or current_raw))
        wanted = self._wanted(baseline, cap, params, ctx)
        if current >= wanted:
            return noop(NAME, target, f"window is already {format_iso(current)}", limits)
        changed, started = _time(prop(config, "properties.lastModifiedTime")), _time(prop(run, "properties.startTime"))
        if current != baseline and changed and started and changed > started:
            return noop(NAME, target, f"window was changed to {format_iso(current)} after the failed run", limits)
        body = submittable(config)
        body["properties"]["updateConfiguration"]["duration"] = format_iso(wanted)
        change = Change(target, "put", "properties.updateConfiguration.duration", current_raw, format_iso(wanted))
        reason = f"run {run.get('name')} exceeded its {format_iso(baseline)} window"
        return Plan(NAME, target, (change,), reason, limits, {"kind": "automation", "body": body})

    def _plan_update_manager(self, target: str, params: Mapping[str, str], ctx: Context) -> Plan:
        cap = ctx.limits.update_manager_max_window
        limits = (("update_manager_max_window", format_hhmm(cap)), ("window_step", format_hhmm(ctx.limits.window_step)))
        config = ctx.maintenance.get_configuration(target)
        current_raw = str(prop(config, "properties.maintenanceWindow.duration") or "")
        if not current_raw:
            raise RemediationError(f"{target} has no maintenanceWindow.duration")
        current = parse_hhmm(current_raw)
        subscription = target.split("/")[2]
        runs = [r for r in ctx.maintenance.failed_runs([subscription])
                if r.configuration_id.lower() == target.lower() and r.window_exceeded]
        if not runs:
            return noop(NAME, target, "no recent run of this configuration exceeded its window", limits)
        latest = max(runs, key=lambda r: r.started_at or datetime.min.replace(tzinfo=ctx.now().tzinfo))
        changed = _time(prop(config, "systemData.lastModifiedAt"))
        if changed and latest.started_at and changed > latest.started_at:
            return noop(NAME, target, f"window was changed to {current_raw} after the failed run", limits)
        wanted = self._wanted(current, cap, params, ctx)
        if current >= wanted:
            return noop(NAME, target, f"window is already {current_raw}", limits)
        refused = schedule_refusal(ctx, target, config)
        if refused:
            raise RemediationError(refused)
        body = configuration_body(config)
        body["properties"].setdefault("maintenanceWindow", {})["duration"] = format_hhmm(wanted)
        change = Change(target, "put", "properties.maintenanceWindow.duration", current_raw, format_hhmm(wanted))
        machines = [m.rsplit("/", 1)[-1] for m in latest.window_exceeded]
        reason = f"{len(machines)} machine(s) exceeded the {current_raw} window: {', '.join(machines)}"
        return Plan(NAME, target, (change,), reason, limits, {"kind": "update-manager", "body": body})

    def apply(self, plan: Plan, ctx: Context) -> None:
        if plan.request["kind"] == "automation":
            ctx.automation.put_configuration(plan.target, plan.request["body"])
        else:
            ctx.patching.put_configuration(plan.target, dict(plan.request["body"]))

    def verify(self, plan: Plan, ctx: Context) -> bool:
        wanted = plan.changes[0].after
        if plan.request["kind"] == "automation":
            config = ctx.automation.get_configuration(plan.target)
            return parse_iso(str(prop(config, "properties.updateConfiguration.duration"))) == parse_iso(wanted)
        config = ctx.maintenance.get_configuration(plan.target)
        kept = plan.request["body"]["properties"]
        return bool(prop(config, "properties.maintenanceWindow.duration") == wanted
                    and prop(config, "properties.extensionProperties") == kept.get("extensionProperties")
                    and prop(config, "properties.installPatches") == kept.get("installPatches"))
