"""Facts derived from Azure resource ids, shared by every envelope."""

from __future__ import annotations

import re

from shared.core.domain import Family
from shared.core.errors import PayloadError
from shared.diagnosis.envelopes._reader import MAX_ID_CHARS

_SUBSCRIPTION = re.compile(r"/subscriptions/([^/]+)", re.IGNORECASE)
# /subscriptions/S[/resourceGroups/G][/providers/NS/type/name[/type/name...]]: what ARM names things by.
_SEGMENT = r"[^/\s\x00-\x1f\x7f]+"
ARM_ID = re.compile(
    rf"/subscriptions/{_SEGMENT}(?:/resourceGroups/{_SEGMENT})?(?:/providers/{_SEGMENT}(?:/{_SEGMENT}/{_SEGMENT})+)?/?",
    re.IGNORECASE,
)

SUCCESS_STATES = frozenset({"succeeded", "success", "completed", "resolved"})
PENDING_STATES = frozenset(
    {"running", "inprogress", "in progress", "notstarted", "not started", "scheduled", "started",
     "accepted", "creating", "updating", "deleting", "canceling", "registering", "pending"}
)


# What only patching speaks of: Automation Update Management's table, Update Manager's patch
# operations and Resource Graph tables (what the deployment's own log alert rules query).
_UPDATE_WORDS = ("updaterunprogress", "/installpatches/", "/assesspatches/", "patchinstallationresources",
                 "patchassessmentresources", "softwareupdateconfiguration")


def subscription_of(resource_id: str | None) -> str | None:
    if not resource_id:
        return None
    match = _SUBSCRIPTION.search(resource_id)
    return match.group(1) if match else None


def resource_id(value: str | None, path: str) -> str | None:
    """`value` if it is an ARM resource id; a PayloadError naming `path` if it is anything else.

    A failure's resource is what a remediation acts on: an id that cannot be one (a URL,
    a name, a path with an empty segment) is refused here, not by the Azure SDK later.
    """
    if value is None:
        return None
    if len(value) > MAX_ID_CHARS:
        raise PayloadError(path, f"{len(value)} characters; an id has at most {MAX_ID_CHARS}")
    if not ARM_ID.fullmatch(value):
        raise PayloadError(path, f"expected an ARM resource id (/subscriptions/<id>/...), got {value[:80]!r}")
    return value


def family_of(*names: str | None) -> Family | None:
    """The guide a resource or operation belongs to, from its provider namespace."""
    for name in names:
        if not name:
            continue
        low = name.lower()
        if "microsoft.virtualmachineimages" in low:
            return Family.AIB
        if "microsoft.automation" in low or "microsoft.maintenance" in low or any(
                word in low for word in _UPDATE_WORDS):
            return Family.UPDATE
    return None


def is_failure_status(status: str | None) -> bool:
    """True unless the status says success or still in progress."""
    if status is None:
        return True
    low = status.strip().lower()
    return low not in SUCCESS_STATES and low not in PENDING_STATES
