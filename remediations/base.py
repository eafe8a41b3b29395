"""The remediation contract: plan (read live state, return the exact change), apply,
verify. A plan is data; an empty plan means the fix is already in place, which is what
makes every remediation idempotent and gives dry run for free.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from shared.domain import Mode


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
    remediation: str
    target: str
    changes: tuple[Change, ...]
    reason: str
    limits: tuple[tuple[str, str], ...] = ()

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

    def to_dict(self) -> dict[str, Any]:
        return {"result": self.result.value, "verified": self.verified, "error": self.error,
                "plan": self.plan.to_dict() if self.plan else None}


class RemediationError(RuntimeError):
    """A permanent failure with a reason a person can act on."""


class Remediation(Protocol):
    name: str
    fixes: tuple[str, ...]
    mode: Mode
    summary: str

    def plan(self, target: str, params: Mapping[str, str], ctx: Any) -> Plan: ...

    def apply(self, plan: Plan, ctx: Any) -> None: ...

    def verify(self, plan: Plan, ctx: Any) -> bool: ...


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


def register(factory: Callable[[], Remediation]) -> Callable[[], Remediation]:
    REGISTRY.register(factory())
    return factory
