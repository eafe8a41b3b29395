"""Parsing ARM resource ids into the parts SDK calls need."""

from __future__ import annotations

from dataclasses import dataclass

from shared.core.errors import PayloadError


class InvalidResourceId(PayloadError):
    """A target that names no resource a remediation can act on (a subscription or group
    where a resource is needed, or no ARM id at all): refused with the reason, never a crash."""


@dataclass(frozen=True, slots=True)
class ResourceId:
    subscription: str
    resource_group: str
    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.names[-1]

    @property
    def parent_name(self) -> str:
        return self.names[0]

    def child(self, type_: str, name: str) -> str:
        base = "/".join(f"{t}/{n}" for t, n in zip(self.types, self.names, strict=True))
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/"
                f"{self.namespace}/{base}/{type_}/{name}")


def parse(resource_id: str) -> ResourceId:
    """Splits `/subscriptions/S/resourceGroups/G/providers/NS/type/name[/type/name...]`."""
    parts = [p for p in resource_id.strip().split("/") if p]
    low = [p.lower() for p in parts]
    try:
        sub = parts[low.index("subscriptions") + 1]
        group = parts[low.index("resourcegroups") + 1]
        at = low.index("providers")
        namespace = parts[at + 1]
        rest = parts[at + 2:]
    except (ValueError, IndexError):
        raise InvalidResourceId("target", f"not an ARM resource id: {resource_id!r}") from None
    if not rest or len(rest) % 2:
        raise InvalidResourceId("target", f"not an ARM resource id (type/name pairs expected): {resource_id!r}")
    return ResourceId(sub, group, namespace, tuple(rest[0::2]), tuple(rest[1::2]))
