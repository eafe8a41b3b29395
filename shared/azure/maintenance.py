"""Azure Update Manager: maintenance configurations, and per-machine results from Resource Graph."""

from __future__ import annotations

import io
import json
from typing import Any

from shared.azure.base import Adapter, rest, rid
from shared.azure.permissions import requires

# Update Manager keeps per-machine installation results in Azure Resource Graph (30 days).
FAILED_INSTALLATIONS = """patchinstallationresources
| where type in~ ('microsoft.compute/virtualmachines/patchinstallationresults',
                  'microsoft.hybridcompute/machines/patchinstallationresults')
| where properties.status =~ 'Failed' or properties.maintenanceWindowExceeded == true
| where todatetime(properties.lastModifiedDateTime) > ago({days}d)
| project id, name, type, subscriptionId, resourceGroup, properties"""


class Maintenance(Adapter):
    def _ops(self, resource_id: str) -> Any:
        return self.clients.maintenance(rid(resource_id).subscription).maintenance_configurations

    @requires("Microsoft.Maintenance/maintenanceConfigurations/read")
    def get_configuration(self, configuration_id: str) -> dict[str, Any]:
        r = rid(configuration_id)
        return rest(self.retry.call(self._ops(configuration_id).get, r.resource_group, r.name))

    @requires("Microsoft.Maintenance/maintenanceConfigurations/read")
    def list_configurations(self, subscription: str) -> list[dict[str, Any]]:
        ops = self.clients.maintenance(subscription).maintenance_configurations
        return [rest(item) for item in self.retry.call(lambda: list(ops.list()))]

    @requires("Microsoft.Maintenance/maintenanceConfigurations/write")
    def patch_configuration(self, configuration_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """PATCH with the REST body as JSON: only the fields sent change."""
        r = rid(configuration_id)
        ops = self._ops(configuration_id)

        # A fresh stream per attempt: a retried request must not send an exhausted one.
        return rest(self.retry.call(lambda: ops.update(r.resource_group, r.name, _json_body(body),
                                                       content_type="application/json")))

    @requires("Microsoft.Compute/virtualMachines/read", "Microsoft.HybridCompute/machines/read")
    def failed_installations(self, subscriptions: list[str], days: int = 7) -> list[dict[str, Any]]:
        """Failed or window-exceeded installation results, through every result page."""
        client = self.clients.resourcegraph()
        rows: list[dict[str, Any]] = []
        skip_token: str | None = None
        while True:
            request: dict[str, Any] = {"subscriptions": subscriptions, "query": FAILED_INSTALLATIONS.format(days=days),
                                       "options": {"resultFormat": "objectArray", "$top": 1000}}
            if skip_token:
                request["options"]["$skipToken"] = skip_token
            response = self.retry.call(_query, client, request)
            rows.extend(response.data or [])
            skip_token = response.skip_token
            if not skip_token:
                return rows


def _query(client: Any, request: dict[str, Any]) -> Any:
    return client.resources(_json_body(request), content_type="application/json")


def _json_body(body: dict[str, Any]) -> io.BytesIO:
    """msrest operations take a model or bytes: bytes keep the body in its REST shape."""
    return io.BytesIO(json.dumps(body).encode())
