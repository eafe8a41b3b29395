"""Azure Update Manager: maintenance configurations, and per-machine results from Resource Graph."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime
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


# The run each result belongs to: apply-update records tie a run (correlationId) to its configuration.
RUN_CONFIGURATIONS = """maintenanceresources
| where type =~ 'microsoft.maintenance/applyupdates'
| where todatetime(properties.startDateTime) > ago({days}d)
| project id, properties"""


@dataclass(frozen=True, slots=True)
class UpdateManagerRun:
    """One scheduled run of a maintenance configuration that did not end well."""

    configuration_id: str
    correlation_id: str
    status: str
    started_at: datetime | None
    window_exceeded: tuple[str, ...]  # machine ids whose installation ran out of the window
    failed_machines: tuple[tuple[str, str], ...]  # (machine id, error message)


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


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
        return self._graph(subscriptions, FAILED_INSTALLATIONS.format(days=days))

    @requires("Microsoft.Maintenance/maintenanceConfigurations/read")
    def failed_runs(self, subscriptions: list[str], days: int = 7) -> list[UpdateManagerRun]:
        """Runs with a failed or window-exceeded machine, each tied to its configuration."""
        results = self.failed_installations(subscriptions, days)
        if not results:
            return []
        configuration_of: dict[str, tuple[str, datetime | None]] = {}
        for row in self._graph(subscriptions, RUN_CONFIGURATIONS.format(days=days)):
            props = row.get("properties") or {}
            if props.get("correlationId") and props.get("maintenanceConfigurationId"):
                configuration_of[str(props["correlationId"]).lower()] = (
                    str(props["maintenanceConfigurationId"]), _when(props.get("startDateTime")))
        runs: dict[str, dict[str, Any]] = {}
        for row in results:
            props = row.get("properties") or {}
            correlation = str(props.get("maintenanceRunId") or "").lower()
            if correlation not in configuration_of:
                continue  # an on-demand installation: no schedule to change
            machine = str(row.get("id", "")).split("/patchInstallationResults/", 1)[0]
            run = runs.setdefault(correlation, {"exceeded": [], "failed": [], "status": "Failed"})
            if props.get("maintenanceWindowExceeded") is True:
                run["exceeded"].append(machine)
                run["status"] = "MaintenanceWindowExceeded"
            if str(props.get("status", "")).lower() == "failed":
                message = str((props.get("errorDetails") or {}).get("message") or "installation failed")
                run["failed"].append((machine, message))
        return [UpdateManagerRun(configuration_of[c][0], c, r["status"], configuration_of[c][1],
                                 tuple(sorted(r["exceeded"])), tuple(r["failed"])) for c, r in sorted(runs.items())]

    def _graph(self, subscriptions: list[str], query: str) -> list[dict[str, Any]]:
        """A Resource Graph query's rows, through every result page."""
        client = self.clients.resourcegraph()
        rows: list[dict[str, Any]] = []
        skip_token: str | None = None
        while True:
            request: dict[str, Any] = {"subscriptions": subscriptions, "query": query,
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
