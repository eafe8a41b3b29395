"""The remediation contract: plan (read live state, return the exact change), apply,
verify. A plan is data; an empty plan means the fix is already in place, which is what
makes every remediation idempotent and gives dry run for free.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from shared.core.domain import Diagnosis, Mode

if TYPE_CHECKING:
    from remediations.context import Context


class Result(StrEnum):
    APPLIED = "applied"
    NOOP = "noop"
    DRY_RUN = "dry-run"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Change:
    """One change to one resource, before -> after."""

    resource_id: str
    action: str
    field: str
    before: Any
    after: Any

    def to_dict(self) -> dict[str, Any]:
        return {"resource_id": self.resource_id, "action": self.action, "field": self.field,
                "before": self.before, "after": self.after}


def change_key(change: Mapping[str, Any]) -> str:
    """One change as a canonical string: what an approval approves, compared at execution."""
    return json.dumps([str(change.get("resource_id", "")).lower(), change.get("action"), change.get("field"),
                       change.get("before"), change.get("after")], sort_keys=True, default=str)


def digest(changes: Iterable[Mapping[str, Any]]) -> str:
    """The approved plan's fingerprint: target, field, before -> after of every change."""
    return hashlib.sha256("\n".join(sorted(change_key(c) for c in changes)).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Plan:
    """The exact change, before -> after. `request` carries what apply will send (not shown)."""

    remediation: str
    target: str
    changes: tuple[Change, ...]
    reason: str
    limits: tuple[tuple[str, str], ...] = ()
    request: Mapping[str, Any] = field(default_factory=dict, compare=False)
    # Finishes (or rolls back) an interrupted change kept in the vault: no new change, no budget.
    resume: bool = False

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def digest(self) -> str:
        return digest(c.to_dict() for c in self.changes)

    def within(self, approved: Iterable[Mapping[str, Any]]) -> bool:
        """True when every change of this plan was among the `approved` ones."""
        allowed = {change_key(c) for c in approved}
        return all(change_key(c.to_dict()) in allowed for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {"remediation": self.remediation, "target": self.target, "reason": self.reason,
                "changes": [c.to_dict() for c in self.changes], "limits": dict(self.limits),
                "digest": self.digest, "resume": self.resume}


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Result
    plan: Plan | None
    verified: bool = False
    error: str | None = None
    duration_ms: int = 0
    transient: bool = False  # failed on an error that may pass (throttling, 5xx): worth a later retry
    drifted: bool = False  # not applied: the live plan is no longer the one that was approved

    @property
    def changes(self) -> tuple[Change, ...]:
        return self.plan.changes if self.plan else ()

    def to_dict(self) -> dict[str, Any]:
        return {"result": self.result.value, "verified": self.verified, "error": self.error,
                "reason": self.plan.reason if self.plan else None,
                "changes": [c.to_dict() for c in self.changes], "duration_ms": self.duration_ms,
                "plan": self.plan.to_dict() if self.plan else None}


class RemediationError(RuntimeError):
    """A permanent failure with a reason a person can act on."""


class Remediation(Protocol):
    name: str
    fixes: tuple[str, ...]
    mode: Mode
    summary: str
    target_kind: str
    params: tuple[tuple[str, str], ...]  # (name, meaning)
    limit_names: tuple[str, ...]  # Limits fields that bound it
    # Optional class attribute `param_patterns: tuple[tuple[str, str], ...]`: a full-match regex per parameter.
    # Optional `params_from(diagnosis) -> Mapping[str, str]`: what a diagnosed failure tells it (e.g. which
    # provider namespace the error names), for runs the product starts itself.

    def plan(self, target: str, params: Mapping[str, str], ctx: Context) -> Plan: ...

    def apply(self, plan: Plan, ctx: Context) -> None: ...

    def verify(self, plan: Plan, ctx: Context) -> bool: ...


@dataclass
class Registry:
    """Remediations by name; a module registers itself with `@register`."""

    items: dict[str, Remediation] = field(default_factory=dict)

    def register(self, remediation: Remediation) -> Remediation:
        if remediation.name in self.items:
            raise ValueError(f"remediation {remediation.name!r} registered twice")
        self.items[remediation.name] = remediation
        return remediation


REGISTRY = Registry()
# One module per remediation, in a folder per service (scenarios.md's required names).
MODULES = (
    "providers.register_resource_provider",
    "schedules.extend_maintenance_window",
    "image_builder.increase_image_build_timeout",
    "image_builder.increase_image_build_vm_size",
    "image_builder.rerun_image_build",
    "image_builder.recreate_image_template",
    "automation.readd_changed_machines",
    "automation.remove_missing_machines",
    "schedules.exclude_failed_packages",
    "update_manager.set_customer_managed_schedules",
    "update_manager.enable_periodic_assessment",
    "update_manager.reinstall_patch_extension",
    "update_manager.assess_patches_now",
    "update_manager.install_patches_now",
    "update_manager.start_machines_before_window",
    "update_manager.restart_machine",
    "update_manager.reassign_maintenance_configuration",
)


def register(cls: type[Any]) -> type[Any]:
    """Class decorator: one instance per remediation, by its name."""
    REGISTRY.register(cls())
    return cls


def registry() -> Registry:
    """Every remediation, loaded on first use (cold start pays for none of them)."""
    import importlib

    for module in MODULES:
        importlib.import_module(f"remediations.{module}")
    return REGISTRY


def params_from(name: str, diagnosis: Diagnosis) -> dict[str, str]:
    """The parameters remediation `name` takes from a diagnosis (none unless it says how)."""
    derive = getattr(registry().items.get(name), "params_from", None)
    return dict(derive(diagnosis)) if callable(derive) else {}


_VALUE = re.compile(r"[^\x00-\x1f\x7f]{1,256}")


def check_request(remediation: Remediation, target: str, params: Mapping[str, str]) -> str:
    """A request refused before it is accepted, naming the field: a target of another type or
    with extra segments (an adapter would act on a different resource), a parameter the
    remediation does not take (it would be ignored and the default applied), or a value it
    cannot use. Returns the target in canonical form (every key is made of it)."""
    from shared.azure.ids import check_kind
    from shared.core.errors import PayloadError

    canonical = check_kind(target, remediation.target_kind)
    known = dict(remediation.params)
    patterns = dict(getattr(remediation, "param_patterns", ()))
    for name, value in params.items():
        if name not in known:
            takes = ", ".join(sorted(known)) or "none"
            raise PayloadError(f"params.{name}"[:80], f"{remediation.name} takes no parameter {name[:64]!r} "
                               f"(it takes: {takes})")
        pattern = patterns.get(name)
        if not _VALUE.fullmatch(value) or (pattern and not re.fullmatch(pattern, value)):
            raise PayloadError(f"params.{name}", f"not a value {remediation.name} can use for {name}: "
                               f"{value[:80]!r} ({known[name]})")
    return canonical


def noop(name: str, target: str, reason: str, limits: tuple[tuple[str, str], ...] = ()) -> Plan:
    return Plan(name, target, (), reason, limits)
