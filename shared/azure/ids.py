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


def canonical(resource_id: str) -> str:
    """The one spelling every key is made of: ARM ids are case-insensitive, and alerts send them
    lower-cased while events and the portal keep the case they were created with. Lower case,
    no empty segments, no trailing slash. Calls that create a resource take the case from the
    live resource, never from this form."""
    return "/" + "/".join(p for p in resource_id.strip().split("/") if p).lower()


_SUBSCRIPTION_SEGMENTS = 2
_GROUP_SEGMENTS = 4


def check_kind(resource_id: str, kinds: str) -> str:
    """`resource_id` in canonical form when it names exactly a resource of one of `kinds`
    (`Namespace/type[/childType]`, `subscription` or `resourceGroup`, alternatives separated by
    `|`), else InvalidResourceId naming why: a target of another type, or one with extra
    segments, would make an adapter act on a different resource than the one named."""
    parts = [p for p in resource_id.strip().split("/") if p]
    low = [p.lower() for p in parts]
    wanted = [k.strip() for k in kinds.split("|") if k.strip()]
    if len(low) >= _SUBSCRIPTION_SEGMENTS and low[0] == "subscriptions":
        if len(low) == _SUBSCRIPTION_SEGMENTS and "subscription" in wanted:
            return canonical(resource_id)
        if len(low) == _GROUP_SEGMENTS and low[2] == "resourcegroups" and "resourceGroup" in wanted:
            return canonical(resource_id)
        if len(low) > _GROUP_SEGMENTS + 2 and low[2] == "resourcegroups" and low[4] == "providers":
            rest = parts[6:]
            if len(rest) % 2 == 0:
                kind = "/".join([parts[5], *rest[0::2]]).lower()
                if any(kind == k.lower() for k in wanted):
                    return canonical(resource_id)
                raise InvalidResourceId("target", f"a {'/'.join([parts[5], *rest[0::2]])} where "
                                        f"{' or '.join(wanted)} is needed: {resource_id[:300]!r}")
    raise InvalidResourceId("target", f"expected the id of a {' or '.join(wanted)}, got {resource_id[:300]!r}")
