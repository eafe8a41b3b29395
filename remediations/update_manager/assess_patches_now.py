"""Start an on-demand patch assessment (Azure VM `assessPatches`, Arc-enabled server `assessPatches`) and wait
for it (learn.microsoft.com/azure/update-manager/manage-vms-programmatically, "Update assessment").

For `An internal execution error occurred. Please retry later.` the fix is to run it again, once: the plan is
empty when the machine's latest assessment (Resource Graph `patchassessmentresources`) succeeded, or one is
running. An assessment that itself ends in that error (`VMGuestPatchInternalError`, the wording Compute's
operation carries, Azure/azure-rest-api-specs#31144) is started once more after INTERNAL_RETRY_SECONDS, as the
message asks; any other failure is reported. The guest must run it: a VM that is not running is refused
(Compute answers OperationNotAllowed), and an Arc-enabled server that is not Connected too (its operations queue
until it reconnects).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediations.base import Change, Plan, RemediationError, noop, register
from remediations.context import Context
from remediations.update_manager.machines import MACHINE_KINDS, read_machine, when
from shared.azure.base import prop
from shared.core.domain import Mode

NAME = "assess-patches-now"
INTERNAL_ERROR = "VMGuestPatchInternalError"
INTERNAL_RETRY_SECONDS = 30.0


def _code(exc: BaseException) -> str:
    return str(getattr(getattr(exc, "error", None), "code", "") or "")


def latest_status(ctx: Context, machine_id: str) -> tuple[str, Any]:
    row = ctx.patching.latest_assessment(machine_id)
    if row is None:
        return "", None
    return str(prop(row, "properties.status") or ""), when(prop(row, "properties.lastModifiedDateTime"))


@register
class AssessPatchesNow:
    name = NAME
    fixes = ("aum.internal_execution_error",)
    mode = Mode.AUTO
    summary = "starts an on-demand patch assessment on an Azure VM or Arc-enabled server (once, when the last failed)"
    target_kind = MACHINE_KINDS
    params = ()
    limit_names = ()

    def plan(self, target: str, params: Mapping[str, str], ctx: Context) -> Plan:
        status, at = latest_status(ctx, target)
        if status.lower() == "succeeded":
            return noop(NAME, target, f"the latest assessment succeeded ({at:%Y-%m-%d %H:%M} UTC)" if at else
                        "the latest assessment succeeded")
        if status.lower() == "inprogress":
            return noop(NAME, target, "an assessment is running")
        machine = read_machine(ctx, target)
        refused = machine.guest_refusal("assessPatches")
        if refused:
            raise RemediationError(refused)
        change = Change(target, "assessPatches", "patchAssessmentResults/latest.status", status or None, "Succeeded")
        reason = f"the latest assessment of {machine.name} is {status or 'missing'}: assess it again"
        return Plan(NAME, target, (change,), reason, (), {})

    def apply(self, plan: Plan, ctx: Context) -> None:
        from azure.core.exceptions import HttpResponseError

        try:
            result = ctx.patching.assess(plan.target)
        except HttpResponseError as exc:
            if _code(exc) != INTERNAL_ERROR:
                raise
            ctx.sleep(INTERNAL_RETRY_SECONDS)  # "An internal execution error occurred. Please retry later."
            result = ctx.patching.assess(plan.target)
        status = str(result.get("status") or "")
        if status.lower() not in ("succeeded", "completedwithwarnings"):
            error = result.get("error") or result.get("errorDetails") or {}
            raise RemediationError(f"the assessment ended {status or 'without a status'}: "
                                   f"{(error or {}).get('message') or 'no error reported'}")

    def verify(self, plan: Plan, ctx: Context) -> bool:
        return latest_status(ctx, plan.target)[0].lower() in ("succeeded", "completedwithwarnings")
