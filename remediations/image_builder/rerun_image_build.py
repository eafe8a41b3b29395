"""Run a template again whose last build failed (e.g. no artifacts were created)."""

from __future__ import annotations

from collections.abc import Mapping

from remediations.base import Change, Plan, RemediationError, noop, register
from remediations.context import Context
from remediations.image_builder import templates as _images
from shared.azure.base import prop
from shared.core.domain import Mode

NAME = "rerun-image-build"


@register
class RerunImageBuild:
    name = NAME
    fixes = ("aib.no_artifacts",)
    mode = Mode.AUTO
    summary = "runs the template again when its last build failed"
    target_kind = "Microsoft.VirtualMachineImages/imageTemplates"
    params = ()
    limit_names = ()

    def plan(self, target: str, params: Mapping[str, str], ctx: Context) -> Plan:
        template = _images.require_template(ctx, target)
        if prop(template, "properties.provisioningState") != "Succeeded":
            raise RemediationError(f"template is {prop(template, 'properties.provisioningState')}, "
                                   "not Succeeded: it cannot run until it is recreated")
        state = _images.run_state(template)
        if state not in _images.FAILED_RUNS:
            return noop(NAME, target, f"last run is {state or 'absent'}: nothing to run again")
        change = Change(target, "run", "properties.lastRunStatus.runState", state, "Running")
        return Plan(NAME, target, (change,), f"the last build ended {state}")

    def apply(self, plan: Plan, ctx: Context) -> None:
        ctx.images.start_run(plan.target)

    def verify(self, plan: Plan, ctx: Context) -> bool:
        return _images.run_state(ctx.images.get(plan.target)) not in _images.FAILED_RUNS
