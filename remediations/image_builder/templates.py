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
    """A missing template: if an interrupted recreate deleted it, the kept definitions bring
    it back (the intended one, else the original); otherwise there is nothing to act on."""
    kept = ctx.vault.get(template_id)
    if kept is None:
        raise RemediationError(f"image template {template_id} does not exist")
    change = Change(template_id, "restore", "template", "missing (deleted by an interrupted recreate)",
                    "recreated from the definition kept before the delete")
    return Plan(name, template_id, (change,), "finish an interrupted recreate", limits,
                {"intended": kept["intended"], "original": kept.get("original"),
                 "id": kept.get("template_id") or template_id}, resume=True)


def apply_recreate(ctx: Context, plan: Plan) -> None:
    """Carries out a recreate plan, or finishes an interrupted one (`plan.resume`)."""
    template_id = str(plan.request.get("id") or plan.target)  # the live spelling: names keep their case
    if plan.resume:
        finish(ctx, template_id, plan.request["intended"], plan.request.get("original"))
    else:
        recreate(ctx, template_id, plan.request["original"], plan.request["intended"])


def recreate(ctx: Context, template_id: str, original: dict[str, Any], intended: dict[str, Any]) -> None:
    """Delete, then create `intended`, with both definitions kept in the vault first. A transient
    error (throttling, an ARM outage) leaves the vault as it is and is raised as transient, so
    the retry finishes the recreate; a permanent refusal of `intended` brings the original back."""
    try:
        ctx.vault.keep(template_id, original, intended)
    except Exception as exc:
        raise RemediationError(f"could not keep the definition of {template_id} before deleting it, so it was "
                               f"not deleted: {exc}") from exc
    if get_or_none(ctx, template_id) is not None:
        ctx.images.delete(template_id)
    finish(ctx, template_id, intended, original)


def finish(ctx: Context, template_id: str, intended: dict[str, Any], original: dict[str, Any] | None) -> None:
    """The template is gone and the vault holds its definitions: create `intended`; if the service
    refuses it for good, restore `original`. The vault is dropped only once one of them exists."""
    from shared.azure.retry import is_transient

    try:
        ctx.images.create(template_id, intended)
    except Exception as create_error:
        if is_transient(create_error) or original is None or original == intended:
            raise  # transient: the vault keeps both for the retry; permanent with nothing else to try
        try:
            ctx.images.create(template_id, original)
        except Exception as restore_error:
            if is_transient(restore_error):
                raise
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


__all__ = ["FAILED_RUNS", "apply_recreate", "definition", "finish", "get_or_none", "recreate", "require_template",
           "restore_plan", "run_state"]
