"""A one-time install on a machine that missed its schedule's last run, with the schedule's own settings.

The machine missed a run when the run's record (Resource Graph `maintenanceresources`,
`maintenanceconfigurations/applyupdates`) shows it happened and the machine has no Succeeded or
CompletedWithWarnings installation for it (`patchinstallationresources`, by `maintenanceRunId`), nor any since
(an on-demand one that caught it up). A run cancelled through the cancellation API was not missed (manage-pre-post-
events: "Cancelation by user" is no failure). The install uses the configuration's `installPatches`: its
classifications, KB / package inclusions and exclusions, its reboot setting, and its window as
`maximumDuration` (VirtualMachineInstallPatchesParameters / MachineInstallPatchesParameters, the
VirtualMachine_InstallPatches and Machine_InstallPatches spec examples). The guest must run it: a VM that is
not running, or an Arc-enabled server that is not Connected, is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from remediations.base import Change, Plan, RemediationError, noop, register
from remediations.context import Context
from remediations.schedules.durations import format_iso, parse_hhmm
from remediations.update_manager import timing
from remediations.update_manager.machines import (
    DONE,
    MACHINE_KINDS,
    configuration_of_run,
    installation_runs,
    read_machine,
    when,
)
from shared.azure.base import prop
from shared.core.domain import Mode

NAME = "install-patches-now"
RUN_TYPE = "microsoft.maintenance/maintenanceconfigurations/applyupdates"
USER_CANCELLED = ("cancellation api", "cancelation api")
WINDOWS_CLASSES = {"critical": "Critical", "security": "Security", "updaterollup": "UpdateRollUp",
                   "featurepack": "FeaturePack", "servicepack": "ServicePack", "definition": "Definition",
                   "tools": "Tools", "updates": "Updates"}
CONFIG_PATTERN = (r"/subscriptions/[^/]+/resource[gG]roups/[^/]+/providers/Microsoft\.Maintenance/"
                  r"maintenanceConfigurations/[^/]+")
_EPOCH = datetime.min.replace(tzinfo=UTC)


def _text(row: Mapping[str, Any]) -> str:
    error = prop(row, "properties.errorDetails") or {}
    return str((error or {}).get("message") or "") if isinstance(error, Mapping) else str(error)


def install_parameters(configuration: Mapping[str, Any], os_type: str) -> dict[str, Any]:
    """The schedule's installPatches as a one-time install's parameters."""
    patches = prop(configuration, "properties.installPatches") or {}
    window = str(prop(configuration, "properties.maintenanceWindow.duration") or "")
    try:
        duration = format_iso(parse_hhmm(window))
    except ValueError:
        raise RemediationError(f"the schedule's maintenanceWindow.duration {window!r} is not HH:mm") from None
    body: dict[str, Any] = {"maximumDuration": duration, "rebootSetting": str(patches.get("rebootSetting") or
                                                                              "IfRequired")}
    if os_type == "windows":
        source = patches.get("windowsParameters") or {}
        params: dict[str, Any] = {
            "classificationsToInclude": [WINDOWS_CLASSES.get(str(c).lower(), str(c))
                                         for c in source.get("classificationsToInclude") or []]}
        for key in ("kbNumbersToInclude", "kbNumbersToExclude"):
            if source.get(key):
                params[key] = list(source[key])
        if source.get("excludeKbsRequiringReboot") is not None:
            params["excludeKbsRequiringReboot"] = bool(source["excludeKbsRequiringReboot"])
        body["windowsParameters"] = params
    else:
        source = patches.get("linuxParameters") or {}
        params = {"classificationsToInclude": list(source.get("classificationsToInclude") or [])}
        for key in ("packageNameMasksToInclude", "packageNameMasksToExclude"):
            if source.get(key):
                params[key] = list(source[key])
        body["linuxParameters"] = params
    return body


def missed_run(ctx: Context, machine_id: str, configuration: str | None) -> tuple[str, dict[str, Any], str] | None:
    """(configuration id, the run's record, why) of the latest run the machine missed, or None."""
    now = ctx.now()
    installs = installation_runs(ctx.patching.installations_of(machine_id))
    configs: dict[str, str] = {}
    if configuration:
        configs[configuration.lower()] = configuration
    else:
        for assignment in ctx.patching.assignments_of(machine_id):
            config = str(prop(assignment, "properties.maintenanceConfigurationId") or "")
            if config:
                configs.setdefault(config.lower(), config)
        for row in installs:
            config = configuration_of_run(str(prop(row, "properties.maintenanceRunId") or ""))
            if config:
                configs.setdefault(config.lower(), config)
    found: list[tuple[datetime, str, dict[str, Any], str]] = []
    for config in configs.values():
        runs = [r for r in ctx.patching.runs_of(config) if str(r.get("type", "")).lower() == RUN_TYPE]
        ended = [r for r in runs if (when(prop(r, "properties.endDateTime")) or now) <= now]
        if not ended:
            continue
        run = max(ended, key=lambda r: when(prop(r, "properties.startDateTime")) or _EPOCH)
        if any(word in _text(run).lower() for word in USER_CANCELLED):
            continue  # cancelled through the cancellation API: nothing was missed
        run_id = str(prop(run, "properties.correlationId") or run.get("id") or "").lower()
        start = when(prop(run, "properties.startDateTime")) or _EPOCH
        mine = [i for i in installs if str(prop(i, "properties.maintenanceRunId") or "").lower() == run_id]
        if any(str(prop(i, "properties.status") or "").lower() in DONE for i in mine):
            continue
        since = [i for i in installs if (when(prop(i, "properties.startDateTime")) or _EPOCH) >= start
                 and str(prop(i, "properties.status") or "").lower() in (*DONE, "inprogress")]
        if since:
            continue  # caught up (or catching up) since
        status = str(prop(mine[0], "properties.status")) if mine else ""
        why = (f"its installation for run {run_id.rsplit('/', 1)[-1]} is {status}" if status else
               f"it has no installation result for run {run_id.rsplit('/', 1)[-1]}"
               + (f" ({_text(run)})" if _text(run) else ""))
        found.append((start, config, run, why))
    if not found:
        return None
    _, config, run, why = max(found, key=lambda item: item[0])
    return config, run, why


@register
class InstallPatchesNow:
    name = NAME
    fixes = ("aum.machine_unavailable", "aum.run_cancelled_by_platform", "aum.internal_execution_error",
             "aum.reboot_not_completed")
    mode = Mode.APPROVAL
    summary = ("a one-time install on a machine that missed its schedule's last run, with the schedule's "
               "classifications, exclusions, reboot setting and window")
    target_kind = MACHINE_KINDS
    params = (("configuration", "the maintenance configuration whose run was missed (default: the machine's "
                                "assignments and results)"),
              ("before", "ISO time the install must start by; refused after it"))
    param_patterns = (("configuration", CONFIG_PATTERN), ("before", timing.DEADLINE_PATTERN))
    limit_names = ()

    def plan(self, target: str, params: Mapping[str, str], ctx: Context) -> Plan:
        missed = missed_run(ctx, target, params.get("configuration"))
        if missed is None:
            return noop(NAME, target, "the machine missed no run of its schedules (or caught up since)")
        config_id, run, why = missed
        configuration = ctx.maintenance.get_configuration(config_id)
        machine = read_machine(ctx, target)
        refused = machine.guest_refusal("installPatches")
        if refused:
            raise RemediationError(refused)
        timing.check_deadline(params, ctx.now(), f"installing patches on {machine.name}")
        body = install_parameters(configuration, machine.os_type)
        os_params = body.get("windowsParameters") or body.get("linuxParameters") or {}
        after = (f"one-time install: {', '.join(os_params.get('classificationsToInclude') or []) or 'no class'}, "
                 f"reboot {body['rebootSetting']}, within {body['maximumDuration']}")
        run_name = str(prop(run, "properties.correlationId") or "").rsplit("/", 1)[-1]
        change = Change(target, "installPatches", "patchInstallationResults", f"missed run {run_name}", after)
        reason = f"{machine.name} missed the last run of {config_id.rsplit('/', 1)[-1]}: {why}"
        since = (ctx.now() - timedelta(minutes=1)).isoformat()
        return Plan(NAME, target, (change,), reason, (), {"parameters": body, "since": since,
                                                           "configuration": config_id})

    def apply(self, plan: Plan, ctx: Context) -> None:
        result = ctx.patching.install(plan.target, dict(plan.request["parameters"]))
        status = str(result.get("status") or "")
        if status.lower() not in DONE:
            error = result.get("error") or result.get("errorDetails") or {}
            raise RemediationError(f"the installation ended {status or 'without a status'}: "
                                   f"{(error or {}).get('message') or 'no error reported'}")

    def verify(self, plan: Plan, ctx: Context) -> bool:
        since = when(plan.request["since"]) or _EPOCH
        return any((when(prop(i, "properties.startDateTime")) or _EPOCH) >= since
                   and str(prop(i, "properties.status") or "").lower() in DONE
                   for i in installation_runs(ctx.patching.installations_of(plan.target)))
