"""Reinstall the patch extension: remove it, then start an on-demand assessment, which installs it again.

"If the extension is already present on the machine but the extension status is not Succeeded, ensure that you
remove the extension and trigger an on-demand operation which will install it again."
(learn.microsoft.com/azure/update-manager/troubleshoot, "Windows/Linux patch update extension isn't installed"
and, for Arc-enabled servers, "Windows/Linux OS update extension isn't installed".) The same reinstall fixes a
Linux `MsftLinuxPatchAutoAssess` service or timer that points at a removed extension version (troubleshoot,
"MsftLinuxPatchAutoAssess service is not running, or Time is not active": the extension must be Succeeded).

Two steps; the intent is kept in the vault before the first (the removal) and dropped after the second, so an
interrupted reinstall is finished by the next attempt: a machine never stays without its extension. At most once
per machine per day: a machine whose extension is still not Succeeded although an on-demand assessment ran in
the last day is refused (the reinstall did not help; see the extension's logs). What the service would refuse is
refused first, with the reason: extensions cannot change on a VM that is not running ("Cannot modify extensions
in the VM when the VM is not running."), nor with `allowExtensionOperations` false, nor on a VM whose agent is
Not Ready; an Arc-enabled server that is not Connected only queues them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from remediations.base import Change, Plan, RemediationError, noop, register
from remediations.context import Context
from remediations.update_manager.machines import (
    MACHINE_KINDS,
    MachineFacts,
    extension_state,
    patch_extension,
    read_machine,
    when,
)
from shared.azure.base import prop
from shared.core.domain import Mode

NAME = "reinstall-patch-extension"
ONCE_PER = timedelta(days=1)
AUTO_ASSESS = ("msftlinuxpatchautoassess", "auto-assess", "autoassess")


def _assessment(ctx: Context, machine_id: str) -> tuple[str, str, str, datetime | None]:
    row = ctx.patching.latest_assessment(machine_id) or {}
    error = prop(row, "properties.errorDetails") or {}
    texts = " ".join([str(error.get("message") or ""), *(str(d.get("message") or "") for d in
                                                         error.get("details") or [] if isinstance(d, Mapping))])
    return (str(prop(row, "properties.status") or ""), str(prop(row, "properties.startedBy") or ""), texts,
            when(prop(row, "properties.startDateTime")))


def _refusal(machine: MachineFacts) -> str | None:
    if machine.kind == "vm":
        if machine.os_profile is not None and machine.os_profile.get("allowExtensionOperations") is False:
            return (f"VM {machine.name} has osProfile.allowExtensionOperations false: no extension can be removed or "
                    "installed (troubleshoot, 'Allow Extension Operations check failed'): set it to true first")
        if machine.agent_ready is False:
            return f"the VM agent of {machine.name} is Not Ready: extensions cannot change until it is Ready"
    return machine.guest_refusal("removing and reinstalling the patch extension")


@register
class ReinstallPatchExtension:
    name = NAME
    fixes = ("aum.extension_failed", "aum.auto_assessment_not_running")
    mode = Mode.AUTO
    summary = ("removes a patch extension that is not Succeeded (or whose auto-assessment fails), then starts an "
               "on-demand assessment, which reinstalls it; at most once per machine per day")
    target_kind = MACHINE_KINDS
    params = ()
    limit_names = ()

    def plan(self, target: str, params: Mapping[str, str], ctx: Context) -> Plan:
        kept = ctx.vault.get(target)
        if kept is not None and kept.get("remediation") == NAME:
            change = Change(target, "assessPatches", "extensions", "patch extension removed by an interrupted "
                            "reinstall", "reinstalled by an on-demand assessment")
            return Plan(NAME, target, (change,), "finish an interrupted reinstall", (), dict(kept["intended"]),
                        resume=True)
        machine = read_machine(ctx, target)
        extension = patch_extension(ctx, machine)
        status, started_by, texts, started = _assessment(ctx, target)
        auto_assess_failing = status.lower() == "failed" and any(word in texts.lower() for word in AUTO_ASSESS)
        state = extension_state(machine, extension) if extension is not None else ""
        if extension is None:
            return noop(NAME, target, f"{machine.name} has no {machine.extension_name}: the next on-demand or "
                                      "scheduled operation installs it")
        if state.lower() == "succeeded" and not auto_assess_failing:
            return noop(NAME, target, f"{extension.get('name')} is Succeeded")
        now = ctx.now()
        if started_by.lower() == "user" and started is not None and now - started < ONCE_PER:
            raise RemediationError(f"an on-demand assessment ran on {machine.name} at {started:%Y-%m-%d %H:%M} UTC and "
                                   f"{extension.get('name')} is still {state or 'failing'}: reinstalled at most once "
                                   "per machine per day; read the extension's logs")
        refused = _refusal(machine)
        if refused:
            raise RemediationError(refused)
        name = str(extension.get("name"))
        why = (f"{name} is {state or 'in no state'}" if state.lower() != "succeeded" else
               f"{name} is Succeeded but its auto-assessment fails ({texts[:160]})")
        changes = (Change(f"{target}/extensions/{name}", "delete", "extension", state or None, "removed"),
                   Change(target, "assessPatches", f"extensions/{name}", "removed", "Succeeded (reinstalled)"))
        request = {"kind": machine.kind, "extension": name}
        return Plan(NAME, target, changes, f"{why}: remove it and assess again, which reinstalls it", (), request)

    def apply(self, plan: Plan, ctx: Context) -> None:
        request = dict(plan.request)
        if not plan.resume:
            ctx.vault.keep(plan.target, {"extension": request["extension"]}, request, remediation=NAME)
            if request["kind"] == "arc":
                ctx.patching.delete_arc_extension(plan.target, request["extension"])
            else:
                ctx.patching.delete_vm_extension(plan.target, request["extension"])
        ctx.patching.assess(plan.target)  # a failed assessment raises: the vault keeps the intent for a retry
        ctx.vault.drop(plan.target)

    def verify(self, plan: Plan, ctx: Context) -> bool:
        machine = read_machine(ctx, plan.target)
        extension = patch_extension(ctx, machine)
        return extension is not None and extension_state(machine, extension).lower() == "succeeded"
