"""Delete a template whose submission failed and submit its definition again.

For "Update/Upgrade of image templates is currently not supported": the template is in
a failed provisioning state and can only be deleted and resubmitted. The vault keeps
the definition across the delete.
"""

from __future__ import annotations

from collections.abc import Mapping

from remediations.base import Change, Plan, noop, register
from remediations.context import Context
from remediations.image_builder import templates as _images
from shared.azure.base import prop
from shared.core.domain import Mode

NAME = "recreate-image-template"


@register
class RecreateImageTemplate:
    name = NAME
    fixes = ("aib.template_update_not_supported",)
    mode = Mode.APPROVAL
    summary = "deletes a template in a failed provisioning state and resubmits its definition"
    target_kind = "Microsoft.VirtualMachineImages/imageTemplates"
    params = ()
    limit_names = ()

    def plan(self, target: str, params: Mapping[str, str], ctx: Context) -> Plan:
        template = _images.get_or_none(ctx, target)
        if template is None:
            return _images.restore_plan(ctx, NAME, target)
        state = str(prop(template, "properties.provisioningState") or "")
        if state != "Failed":
            return noop(NAME, target, f"provisioning state is {state}: nothing to recreate")
        error = prop(template, "properties.provisioningError.message") or "no message"
        definition = _images.definition(template)
        change = Change(target, "recreate", "properties.provisioningState", state, "Succeeded")
        return Plan(NAME, target, (change,), f"submission failed: {error}", (),
                    {"original": definition, "intended": definition, "id": template.get("id") or target})

    def apply(self, plan: Plan, ctx: Context) -> None:
        _images.apply_recreate(ctx, plan)

    def verify(self, plan: Plan, ctx: Context) -> bool:
        return bool(prop(ctx.images.get(plan.target), "properties.provisioningState") == "Succeeded")
