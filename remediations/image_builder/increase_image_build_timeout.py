"""Raise `buildTimeoutInMinutes` of a template whose build timed out, then build again.

The service refuses to update a template in place, so the template is recreated from
its own definition with the new timeout (through the vault), then run. The plan is empty
once the last run is no longer a failure: that is what makes a second apply a no-op.
"""

from __future__ import annotations

from collections.abc import Mapping

from remediations.base import Change, Plan, RemediationError, noop, register
from remediations.context import Context
from remediations.image_builder import templates as _images
from remediations.limits import DEFAULT_BUILD_TIMEOUT
from shared.azure.base import prop
from shared.core.domain import Mode

NAME = "increase-image-build-timeout"


@register
class IncreaseImageBuildTimeout:
    name = NAME
    fixes = ("aib.build_timeout", "aib.sig_replication_timeout")
    mode = Mode.AUTO
    summary = "recreates the template with a longer buildTimeoutInMinutes (doubled, capped), then runs it"
    target_kind = "Microsoft.VirtualMachineImages/imageTemplates"
    params = (("minutes", "the new timeout in minutes (default: double the current, at most the limit)"),)
    limit_names = ("max_build_timeout",)
    param_patterns = (("minutes", r"[1-9][0-9]{0,3}"),)

    def plan(self, target: str, params: Mapping[str, str], ctx: Context) -> Plan:
        limits = (("max_build_timeout", str(ctx.limits.max_build_timeout)),)
        template = _images.get_or_none(ctx, target)
        if template is None:
            return _images.restore_plan(ctx, NAME, target, limits)
        state = _images.run_state(template)
        if state not in _images.FAILED_RUNS:
            return noop(NAME, target, f"last run is {state or 'absent'}: no failed build to fix", limits)
        current = int(prop(template, "properties.buildTimeoutInMinutes") or 0)
        effective = current or DEFAULT_BUILD_TIMEOUT
        cap = ctx.limits.max_build_timeout
        wanted = int(params["minutes"]) if params.get("minutes") else min(cap, effective * 2)
        if wanted > cap:
            raise RemediationError(f"{wanted} minutes is over the limit of {cap} (max_build_timeout)")
        if effective >= cap:
            raise RemediationError(f"the build timeout is already at the limit of {cap} minutes: "
                                   "split the build or speed up its customizers")
        if wanted <= effective:
            return noop(NAME, target, f"timeout is already {effective} minutes", limits)
        intended = _images.definition(template)
        intended["properties"]["buildTimeoutInMinutes"] = wanted
        changes = (
            Change(target, "recreate", "properties.buildTimeoutInMinutes", current, wanted),
            Change(target, "run", "properties.lastRunStatus.runState", state, "Running"),
        )
        reason = f"the last build ({state}) ran out of its {effective}-minute timeout"
        return Plan(NAME, target, changes, reason, limits,
                    {"original": _images.definition(template), "intended": intended,
                     "id": template.get("id") or target})

    def apply(self, plan: Plan, ctx: Context) -> None:
        _images.apply_recreate(ctx, plan)
        ctx.images.start_run(plan.target)

    def verify(self, plan: Plan, ctx: Context) -> bool:
        template = ctx.images.get(plan.target)
        wanted = plan.request["intended"]["properties"].get("buildTimeoutInMinutes")
        return (prop(template, "properties.buildTimeoutInMinutes") == wanted
                and _images.run_state(template) not in _images.FAILED_RUNS)
