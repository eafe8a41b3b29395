"""Azure VM Image Builder: image templates (get, create, patch, delete, run, run outputs)."""

from __future__ import annotations

import copy
from typing import Any

from shared.azure.base import Adapter, lro, rest, rid
from shared.azure.permissions import requires
from shared.azure.snapshot import read_once

# Properties the service owns: a definition resubmitted with them would be refused.
READ_ONLY = ("id", "name", "type", "systemData")
READ_ONLY_PROPERTIES = ("provisioningState", "provisioningError", "lastRunStatus", "exactStagingResourceGroup")


def definition(template: dict[str, Any]) -> dict[str, Any]:
    """The submittable definition of a template as GET returns it."""
    body = {k: copy.deepcopy(v) for k, v in template.items() if k not in READ_ONLY}
    props = body.get("properties") or {}
    body["properties"] = {k: v for k, v in props.items() if k not in READ_ONLY_PROPERTIES}
    return body


class ImageBuilder(Adapter):
    def _ops(self, template_id: str) -> Any:
        return self.clients.imagebuilder(rid(template_id).subscription).virtual_machine_image_templates

    @requires("Microsoft.VirtualMachineImages/imageTemplates/read")
    def get(self, template_id: str) -> dict[str, Any]:
        r = rid(template_id)
        return read_once("imageTemplate", template_id,
                         lambda: rest(self.retry.call(self._ops(template_id).get, r.resource_group, r.name)))

    @requires("Microsoft.VirtualMachineImages/imageTemplates/read")
    def list_all(self, subscription: str) -> list[dict[str, Any]]:
        ops = self.clients.imagebuilder(subscription).virtual_machine_image_templates
        return [rest(item) for item in self.retry.call(lambda: list(ops.list()))]

    # Submitting a template that runs as a user-assigned identity assigns that identity.
    @requires("Microsoft.VirtualMachineImages/imageTemplates/write",
              "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action")
    def create(self, template_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Waits for provisioning: a template is usable only once it is Succeeded."""
        r = rid(template_id)
        ops = self._ops(template_id)
        return rest(lro(self, ops.begin_create_or_update, r.resource_group, r.name, body))

    @requires("Microsoft.VirtualMachineImages/imageTemplates/write")
    def patch(self, template_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """PATCH may change only tags, vmProfile and distribute (api 2025-10-01)."""
        r = rid(template_id)
        ops = self._ops(template_id)
        return rest(lro(self, ops.begin_update, r.resource_group, r.name, body))

    @requires("Microsoft.VirtualMachineImages/imageTemplates/delete")
    def delete(self, template_id: str) -> None:
        r = rid(template_id)
        ops = self._ops(template_id)
        lro(self, ops.begin_delete, r.resource_group, r.name)

    @requires("Microsoft.VirtualMachineImages/imageTemplates/run/action")
    def start_run(self, template_id: str) -> None:
        """Starts a build and returns once the service accepted it: builds run for hours,
        and nothing here waits for one. `lastRunStatus` tells how it ends."""
        r = rid(template_id)
        ops = self._ops(template_id)
        # polling=False: send the run request, and leave no poller thread behind.
        self.retry.call(ops.begin_run, r.resource_group, r.name, polling=False)

    @requires("Microsoft.VirtualMachineImages/imageTemplates/runOutputs/read")
    def run_outputs(self, template_id: str) -> list[dict[str, Any]]:
        r = rid(template_id)
        ops = self._ops(template_id)
        return [rest(item) for item in self.retry.call(lambda: list(ops.list_run_outputs(r.resource_group, r.name)))]
