"""Move a template's build VM one step up the configured size ladder, then build again.

PATCH may change `vmProfile` (api 2025-10-01), so no recreate is needed. Only a failed
last run is acted on, and only one step per failure: a size off the ladder is refused
rather than guessed at.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from remediations.base import Change, Plan, RemediationError, noop, register
from remediations.context import Context
from remediations.image_builder import templates as _images
from shared.azure.base import prop
from shared.core.domain import Mode

NAME = "increase-image-build-vm-size"


@register
class IncreaseImageBuildVmSize:
    name = NAME
    fixes = ("aib.low_resources", "aib.sysprep_timing")
    mode = Mode.AUTO
    summary = "moves vmProfile.vmSize one step up the size ladder (PATCH), then runs the template"
    target_kind = "Microsoft.VirtualMachineImages/imageTemplates"
    params = (("size", "the size to use instead of the next ladder step (must be on the ladder, above the current)"),)
    limit_names = ("vm_size_ladder",)
    param_patterns = (("size", r"Standard_[A-Za-z0-9_]{1,60}"),)

    def plan(self, target: str, params: Mapping[str, str], ctx: Context) -> Plan:
        ladder = ctx.limits.vm_size_ladder
        limits = (("vm_size_ladder", " < ".join(ladder)),)
        template = _images.require_template(ctx, target)
        state = _images.run_state(template)
        if state not in _images.FAILED_RUNS:
            return noop(NAME, target, f"last run is {state or 'absent'}: no failed build to fix", limits)
        current = str(prop(template, "properties.vmProfile.vmSize") or "")
        effective = current or ladder[0]  # the service's default build VM is the smallest
        lower = [s.lower() for s in ladder]
        if effective.lower() not in lower:
            raise RemediationError(f"build VM size {effective} is not on the ladder ({', '.join(ladder)})")
        at = lower.index(effective.lower())
        if params.get("size"):
            wanted = params["size"]
            if wanted.lower() not in lower or lower.index(wanted.lower()) <= at:
                raise RemediationError(f"size {wanted} must be on the ladder and above {effective}")
            wanted = ladder[lower.index(wanted.lower())]
        elif at + 1 < len(ladder):
            wanted = ladder[at + 1]
        else:
            raise RemediationError(f"build VM size {effective} is already the top of the ladder")
        profile = copy.deepcopy(prop(template, "properties.vmProfile") or {})
        profile["vmSize"] = wanted
        changes = (
            Change(target, "patch", "properties.vmProfile.vmSize", current or None, wanted),
            Change(target, "run", "properties.lastRunStatus.runState", state, "Running"),
        )
        return Plan(NAME, target, changes, f"the last build ({state}) ran short of resources on {effective}",
                    limits, {"patch": {"properties": {"vmProfile": profile}}})

    def apply(self, plan: Plan, ctx: Context) -> None:
        ctx.images.patch(plan.target, dict(plan.request["patch"]))
        ctx.images.start_run(plan.target)

    def verify(self, plan: Plan, ctx: Context) -> bool:
        template = ctx.images.get(plan.target)
        wanted = plan.request["patch"]["properties"]["vmProfile"]["vmSize"]
        return (prop(template, "properties.vmProfile.vmSize") == wanted
                and _images.run_state(template) not in _images.FAILED_RUNS)
