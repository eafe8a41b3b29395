"""Facts derived from Azure resource ids, shared by every envelope."""

from __future__ import annotations

import re

from shared.domain import Family

_SUBSCRIPTION = re.compile(r"/subscriptions/([^/]+)", re.IGNORECASE)

SUCCESS_STATES = frozenset({"succeeded", "success", "completed", "resolved"})
PENDING_STATES = frozenset(
    {"running", "inprogress", "in progress", "notstarted", "not started", "scheduled", "started",
     "accepted", "creating", "updating", "deleting", "canceling", "registering", "pending"}
)


def subscription_of(resource_id: str | None) -> str | None:
    if not resource_id:
        return None
    match = _SUBSCRIPTION.search(resource_id)
    return match.group(1) if match else None


def family_of(*names: str | None) -> Family | None:
    """The guide a resource or operation belongs to, from its provider namespace."""
    for name in names:
        if not name:
            continue
        low = name.lower()
        if "microsoft.virtualmachineimages" in low:
            return Family.AIB
        if "microsoft.automation" in low or "microsoft.maintenance" in low:
            return Family.UPDATE
    return None


def is_failure_status(status: str | None) -> bool:
    """True unless the status says success or still in progress."""
    if status is None:
        return True
    low = status.strip().lower()
    return low not in SUCCESS_STATES and low not in PENDING_STATES
