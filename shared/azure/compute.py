"""Azure VMs and Arc-enabled servers, read one at a time (Microsoft.Compute, Microsoft.HybridCompute).

For the few machines a failed run names, what Resource Graph does not hold: a VM's instance view
(VM agent status, extension statuses, `patchStatus`) and an Arc machine's extensions. The sweep never
reads machines one by one: it reads Resource Graph (`shared.azure.resourcegraph`). Writes (patch
settings, assessments, restarts) come with the remediations that need them.
"""

from __future__ import annotations

from typing import Any

from shared.azure.base import Adapter, rest, rid
from shared.azure.permissions import requires


class Compute(Adapter):
    @requires("Microsoft.Compute/virtualMachines/read")
    def vm(self, vm_id: str) -> dict[str, Any]:
        """The VM as GET with `$expand=instanceView` returns it (REST JSON)."""
        r = rid(vm_id)
        ops = self.clients.compute(r.subscription).virtual_machines
        return rest(self.retry.call(ops.get, r.resource_group, r.name, expand="instanceView"))

    @requires("Microsoft.Compute/virtualMachines/extensions/read")
    def vm_extensions(self, vm_id: str) -> list[dict[str, Any]]:
        r = rid(vm_id)
        ops = self.clients.compute(r.subscription).virtual_machine_extensions
        result = rest(self.retry.call(ops.list, r.resource_group, r.name))
        return [dict(item) for item in result.get("value") or []]

    @requires("Microsoft.HybridCompute/machines/read")
    def arc_machine(self, machine_id: str) -> dict[str, Any]:
        r = rid(machine_id)
        ops = self.clients.hybridcompute(r.subscription).machines
        return rest(self.retry.call(ops.get, r.resource_group, r.name))

    @requires("Microsoft.HybridCompute/machines/extensions/read")
    def arc_extensions(self, machine_id: str) -> list[dict[str, Any]]:
        r = rid(machine_id)
        ops = self.clients.hybridcompute(r.subscription).machine_extensions
        return [rest(item) for item in self.retry.call(lambda: list(ops.list(r.resource_group, r.name)))]
