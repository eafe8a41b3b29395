"""Hard limits on every change, explicit and configurable (environment, then defaults).

A setting may tighten a limit, never loosen it past what the service allows: the
Automation window stops at 6 h, an image build at 960 minutes, whatever is configured.

Fleet limits stand beside the per-target ones (a prerequisite flip can touch hundreds of VMs):
`max_machines_per_change` bounds one fan-out (a gate, a run, a sweep acting on many machines at
once), `max_fleet_share_per_hour` the share of the fleet changed automatically in an hour. Both are
checked before anything is changed, as Cloud Custodian's `max-resources-percent` is: a fan-out
over either is refused whole, naming the limit (`fan_out_refusal`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import timedelta

AUTOMATION_MAX_WINDOW = timedelta(hours=6)  # softwareUpdateConfigurations: duration PT30M..PT6H
UPDATE_MANAGER_MIN_WINDOW = timedelta(hours=1, minutes=30)  # InGuestPatch window: 01:30..03:55
UPDATE_MANAGER_MAX_WINDOW = timedelta(hours=3, minutes=55)
SERVICE_MAX_BUILD_TIMEOUT = 960  # imageTemplates: buildTimeoutInMinutes 0..960 (0 = 240)
DEFAULT_BUILD_TIMEOUT = 240
DEFAULT_LADDER = ("Standard_D1_v2", "Standard_D2ds_v4", "Standard_D4ds_v4", "Standard_D8ds_v4")
REGISTER_NAMESPACES = ("Microsoft.Automation", "Microsoft.Compute", "Microsoft.Maintenance", "Microsoft.HybridCompute",
                       "Microsoft.GuestConfiguration")


class LimitError(ValueError):
    """A limit setting that cannot be used (named in the message)."""


@dataclass(frozen=True, slots=True)
class Limits:
    automation_max_window: timedelta = AUTOMATION_MAX_WINDOW
    update_manager_max_window: timedelta = UPDATE_MANAGER_MAX_WINDOW
    window_step: timedelta = timedelta(hours=1)
    max_build_timeout: int = SERVICE_MAX_BUILD_TIMEOUT
    vm_size_ladder: tuple[str, ...] = DEFAULT_LADDER
    max_machines_per_change: int = 20
    missing_after_days: int = 30
    # Namespaces register-resource-provider may register (scenarios.md's allow-list; the deployed role
    # grants `<ns>/register/action` for these only) and those the sweep checks on every subscription.
    register_namespaces: tuple[str, ...] = REGISTER_NAMESPACES
    check_namespaces: tuple[str, ...] = ("Microsoft.Automation",)
    register_wait_seconds: float = 300.0
    max_fleet_share_per_hour: int = 10  # percent of the fleet's machines changed automatically per hour
    max_exclusions_per_change: int = 10  # packages / KBs exclude-failed-packages adds at once

    def __post_init__(self) -> None:
        if not timedelta(minutes=30) <= self.automation_max_window <= AUTOMATION_MAX_WINDOW:
            raise LimitError("automation_max_window must be within PT30M..PT6H")
        if not UPDATE_MANAGER_MIN_WINDOW <= self.update_manager_max_window <= UPDATE_MANAGER_MAX_WINDOW:
            raise LimitError("update_manager_max_window must be within 01:30..03:55")
        if not 6 <= self.max_build_timeout <= SERVICE_MAX_BUILD_TIMEOUT:
            raise LimitError(f"max_build_timeout must be within 6..{SERVICE_MAX_BUILD_TIMEOUT} minutes")
        if self.window_step <= timedelta(0):
            raise LimitError("window_step must be positive")
        if len(self.vm_size_ladder) < 2 or len(set(self.vm_size_ladder)) != len(self.vm_size_ladder):
            raise LimitError("vm_size_ladder needs at least two distinct sizes")
        if self.max_machines_per_change < 1 or self.missing_after_days < 1:
            raise LimitError("max_machines_per_change and missing_after_days must be at least 1")
        if not 1 <= self.max_fleet_share_per_hour <= 100:
            raise LimitError("max_fleet_share_per_hour must be a percentage within 1..100")
        if self.max_exclusions_per_change < 1:
            raise LimitError("max_exclusions_per_change must be at least 1")

    def fleet_allowance(self, fleet: int) -> int:
        """Machines of a fleet of `fleet` that may be changed automatically in one hour (at least one)."""
        return max(1, fleet * self.max_fleet_share_per_hour // 100)

    def fan_out_refusal(self, machines: int, fleet: int) -> str | None:
        """Why a fan-out to `machines` machines of a `fleet` may not start, naming the limit; None when within."""
        if machines > self.max_machines_per_change:
            return (f"{machines} machines in one change is over max_machines_per_change "
                    f"({self.max_machines_per_change}): nothing was changed automatically")
        allowed = self.fleet_allowance(fleet)
        if machines > allowed:
            return (f"{machines} of {fleet} machines is over max_fleet_share_per_hour "
                    f"({self.max_fleet_share_per_hour}% = {allowed} an hour): nothing was changed automatically")
        return None

    def describe(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = ",".join(value) if isinstance(value, tuple) else str(value)
        return out

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Limits:
        env = os.environ if env is None else env
        kwargs: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get("REMEDIATOR_" + f.name.upper())
            if raw is None or not raw.strip():
                continue
            try:
                kwargs[f.name] = _parse(f.name, raw.strip())
            except ValueError as exc:
                raise LimitError(f"REMEDIATOR_{f.name.upper()}={raw!r}: {exc}") from None
        return cls(**kwargs)  # type: ignore[arg-type]


def _parse(name: str, raw: str) -> object:
    if name.endswith(("_window", "_step")):
        return timedelta(minutes=float(raw))
    if name in ("vm_size_ladder", "register_namespaces", "check_namespaces"):
        return tuple(p.strip() for p in raw.split(",") if p.strip())
    if name == "register_wait_seconds":
        return float(raw)
    return int(raw)
