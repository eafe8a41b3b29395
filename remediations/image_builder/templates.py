"""What the image template remediations share: reading the failure off the live template,
and the one safe way to recreate a template (keep, delete, create, drop)."""

from __future__ import annotations

from typing import Any

from remediations.base import Change, Plan, RemediationError
from remediations.context import Context
from shared.azure.base import is_not_found, prop
from shared.azure.imagebuilder import definition

FAILED_RUNS = frozenset({"Failed", "PartiallySucceeded", "Canceled"})


def run_state(template: dict[str, Any]) -> str:
    return str(prop(template, "properties.lastRunStatus.runState") or "")


def get_or_none(ctx: Context, template_id: str) -> dict[str, Any] | None:
    try:
        return ctx.images.get(template_id)
    except Exception as exc:
        if is_not_found(exc):
            return None
        raise


def restore_plan(ctx: Context, name: str, template_id: str, limits: tuple[tuple[str, str], ...] = ()) -> Plan:
    """A missing template: if an interrupted recreate deleted it, the kept definition brings
    it back; otherwise there is nothing to act on."""
    kept = ctx.vault.get(template_id)
    if kept is None:
        raise RemediationError(f"image template {template_id} does not exist")
    change = Change(template_id, "restore", "template", "missing (deleted by an interrupted recreate)",
                    "recreated from the definition kept before the delete")
    return Plan(name, template_id, (change,), "finish an interrupted recreate", limits, {"intended": kept["intended"]})


def apply_recreate(ctx: Context, plan: Plan) -> None:
    """Carries out a recreate plan, or finishes an interrupted one (only `intended` known)."""
    if "original" in plan.request:
        recreate(ctx, plan.target, plan.request["original"], plan.request["intended"])
    else:
        ctx.images.create(plan.target, plan.request["intended"])
        ctx.vault.drop(plan.target)


def recreate(ctx: Context, template_id: str, original: dict[str, Any], intended: dict[str, Any]) -> None:
    """Delete, then create `intended`. If the create fails, the original comes back; if the
    process dies in between, the vault still holds both for the next attempt."""
    try:
        ctx.vault.keep(template_id, original, intended)
    except Exception as exc:
        raise RemediationError(f"could not keep the definition of {template_id} before deleting it, so it was "
                               f"not deleted: {exc}") from exc
    if get_or_none(ctx, template_id) is not None:
        ctx.images.delete(template_id)
    try:
        ctx.images.create(template_id, intended)
    except Exception as create_error:
        try:
            ctx.images.create(template_id, original)
        except Exception as restore_error:
            raise RemediationError(
                f"recreate of {template_id} failed ({create_error}) and so did restoring its original "
                f"definition ({restore_error}); the definition is kept in the vault for the next attempt"
            ) from restore_error
        ctx.vault.drop(template_id)
        raise RemediationError(f"recreate of {template_id} failed, original definition restored: {create_error}") \
            from create_error
    ctx.vault.drop(template_id)


def require_template(ctx: Context, template_id: str) -> dict[str, Any]:
    template = get_or_none(ctx, template_id)
    if template is None:
        raise RemediationError(f"image template {template_id} does not exist")
    return template


__all__ = ["FAILED_RUNS", "apply_recreate", "definition", "get_or_none", "recreate", "require_template",
           "restore_plan", "run_state"]
