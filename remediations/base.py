"""The remediation contract: plan (read live state, return the exact change), apply,
verify. A plan is data; an empty plan means the fix is already in place, which is what
makes every remediation idempotent and gives dry run for free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from shared.core.domain import Mode

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


@dataclass(frozen=True, slots=True)
class Plan:
    """The exact change, before -> after. `request` carries what apply will send (not shown)."""

    remediation: str
    target: str
    changes: tuple[Change, ...]
    reason: str
    limits: tuple[tuple[str, str], ...] = ()
    request: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def empty(self) -> bool:
        return not self.changes

    def to_dict(self) -> dict[str, Any]:
        return {"remediation": self.remediation, "target": self.target, "reason": self.reason,
                "changes": [c.to_dict() for c in self.changes], "limits": dict(self.limits)}


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Result
    plan: Plan | None
    verified: bool = False
    error: str | None = None
    duration_ms: int = 0
    transient: bool = False  # failed on an error that may pass (throttling, 5xx): worth a later retry

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


def noop(name: str, target: str, reason: str, limits: tuple[tuple[str, str], ...] = ()) -> Plan:
    return Plan(name, target, (), reason, limits)
