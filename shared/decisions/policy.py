"""Who may change what: modes, scopes and change budgets, decided in one place.

Modes: `observe` (diagnose and record only), `suggest` (propose every change for
approval), `auto` (apply what the catalog marks auto; propose what it marks approval).
The mode is the strictest of the global setting, the per-remediation setting and the
resource's `remediator-mode` tag, so a tag can hold a resource back but never push it
past what the operator configured. Every decision carries its reason, for the audit.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol

from shared.core.domain import Mode

TAG = "remediator-mode"
# The fleet-wide hourly budget every automatic change spends (a hot row: Counters shards it).
GLOBAL_SCOPE = "global"
Window = Literal["hour", "day"]


class PolicyMode(StrEnum):
    OBSERVE = "observe"
    SUGGEST = "suggest"
    AUTO = "auto"


_RANK = {PolicyMode.OBSERVE: 0, PolicyMode.SUGGEST: 1, PolicyMode.AUTO: 2}


class Action(StrEnum):
    APPLY = "apply"
    PROPOSE = "propose"  # an approval card, applied only after a human approves
    OBSERVE = "observe"
    DENY = "deny"  # out of scope or over budget


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str


class Budget(Protocol):
    """Change budgets (rate limits); `take` counts a change only when it is within limits."""

    def take(self, scope: str, window: Window, limit: int) -> bool: ...


class MemoryBudget:
    """One process's budget: the CLI's, and tests'."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def take(self, scope: str, window: Window, limit: int) -> bool:
        key = (scope, window)
        if self.counts.get(key, 0) >= limit:
            return False
        self.counts[key] = self.counts.get(key, 0) + 1
        return True


class PolicyError(ValueError):
    """A policy setting that cannot be used (named in the message)."""


@dataclass(frozen=True, slots=True)
class Policy:
    mode: PolicyMode = PolicyMode.SUGGEST
    per_remediation: Mapping[str, PolicyMode] = field(default_factory=dict)
    allowed_scopes: tuple[str, ...] = ()  # subscription or resource group ids; empty = any
    max_changes_per_hour: int = 20
    max_changes_per_target_per_day: int = 3

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Policy:
        env = os.environ if env is None else env
        try:
            mode = PolicyMode(env.get("REMEDIATOR_MODE", "suggest").strip().lower())
            per: dict[str, PolicyMode] = {}
            for item in _split(env.get("REMEDIATOR_REMEDIATION_MODES", "")):
                name, _, value = item.partition("=")
                per[name.strip()] = PolicyMode(value.strip().lower())
            return cls(
                mode=mode,
                per_remediation=per,
                allowed_scopes=tuple(s.rstrip("/").lower() for s in _split(env.get("REMEDIATOR_ALLOWED_SCOPES", ""))),
                max_changes_per_hour=int(env.get("REMEDIATOR_MAX_CHANGES_PER_HOUR", "20")),
                max_changes_per_target_per_day=int(env.get("REMEDIATOR_MAX_CHANGES_PER_TARGET_PER_DAY", "3")),
            )
        except ValueError as exc:
            raise PolicyError(f"policy settings: {exc} (modes: observe, suggest, auto; limits: integers)") from None

    def in_scope(self, target: str) -> bool:
        if not self.allowed_scopes:
            return True
        low = target.rstrip("/").lower()
        return any(low == s or low.startswith(s + "/") for s in self.allowed_scopes)

    def mode_for(self, remediation: str, tags: Mapping[str, str] | None = None) -> tuple[PolicyMode, str]:
        mode, why = self.mode, f"global mode {self.mode.value}"
        if remediation in self.per_remediation and _RANK[self.per_remediation[remediation]] < _RANK[mode]:
            mode, why = self.per_remediation[remediation], f"{remediation} set to {self.per_remediation[remediation]}"
        tag = {k.lower(): v for k, v in (tags or {}).items()}.get(TAG)
        if tag is not None:
            try:
                tagged = PolicyMode(tag.strip().lower())
            except ValueError:
                return PolicyMode.OBSERVE, f"resource tag {TAG}={tag!r} is not a mode: observing only"
            if _RANK[tagged] < _RANK[mode]:
                mode, why = tagged, f"resource tag {TAG}={tagged.value}"
        return mode, why

    def decide(self, remediation: str, catalog_mode: Mode, target: str, tags: Mapping[str, str] | None = None,
               *, approved: bool = False) -> Decision:
        """What to do with a non-empty plan. `approved`: a human already said yes."""
        if not self.in_scope(target):
            return Decision(Action.DENY, f"{target} is outside the allowed scopes")
        if catalog_mode is Mode.ADVICE:
            return Decision(Action.OBSERVE, "advice only: no API can fix it")
        mode, why = self.mode_for(remediation, tags)
        if mode is PolicyMode.OBSERVE:
            return Decision(Action.OBSERVE, why)
        if approved:
            return Decision(Action.APPLY, "approved")
        if mode is PolicyMode.AUTO and catalog_mode is Mode.AUTO:
            return Decision(Action.APPLY, f"{why}; {remediation} is safe to apply automatically")
        return Decision(Action.PROPOSE, f"{why}; {remediation} needs approval")

    def spend(self, budget: Budget, target: str) -> Decision | None:
        """Counts one change against both budgets; a Decision to deny when either is spent.
        The narrow budget goes first; a change refused by the global one still used its
        target's slot (budgets err on the side of fewer changes)."""
        budgets: list[tuple[str, Window, int]] = [(f"target:{target.lower()}", "day",
                                                    self.max_changes_per_target_per_day),
                                                   (GLOBAL_SCOPE, "hour", self.max_changes_per_hour)]
        take_all = getattr(budget, "take_all", None)
        if take_all is not None:  # both in one transaction where the store can (Table Storage)
            refused = take_all(budgets)
        else:
            refused = next((i for i, (scope, window, limit) in enumerate(budgets)
                            if not budget.take(scope, window, limit)), None)
        if refused == 0:
            return Decision(Action.DENY, f"{self.max_changes_per_target_per_day} changes to this target today already")
        if refused == 1:
            return Decision(Action.DENY, f"circuit breaker: {self.max_changes_per_hour} changes this hour already")
        return None


def _split(value: str) -> list[str]:
    return [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]
