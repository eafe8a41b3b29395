"""Azure Automation Update Management: software update configurations, runs, machine runs."""

from __future__ import annotations

import copy
from typing import Any

from shared.azure.base import Adapter, rest, rid
from shared.azure.permissions import requires

# Properties the service owns; a PUT sends the configuration without them.
READ_ONLY_PROPERTIES = ("provisioningState", "error", "creationTime", "createdBy", "lastModifiedTime",
                        "lastModifiedBy")


def submittable(configuration: dict[str, Any]) -> dict[str, Any]:
    """A software update configuration as GET returns it, made into a PUT body (a copy)."""
    properties = configuration.get("properties") or {}
    return {"properties": {k: copy.deepcopy(v) for k, v in properties.items() if k not in READ_ONLY_PROPERTIES}}


class Automation(Adapter):
    def _client(self, resource_id: str) -> Any:
        return self.clients.automation(rid(resource_id).subscription)

    @requires("Microsoft.Automation/automationAccounts/read")
    def list_accounts(self, subscription: str) -> list[str]:
        """Automation account ids in a subscription (where the sweep looks for deployments)."""
        ops = self.clients.automation(subscription).automation_account
        return [str(rest(a)["id"]) for a in self.retry.call(lambda: list(ops.list()))]

    @requires("Microsoft.Automation/automationAccounts/softwareUpdateConfigurations/read")
    def get_configuration(self, configuration_id: str) -> dict[str, Any]:
        r = rid(configuration_id)
        ops = self._client(configuration_id).software_update_configurations
        return rest(self.retry.call(ops.get_by_name, r.resource_group, r.parent_name, r.name))

    @requires("Microsoft.Automation/automationAccounts/softwareUpdateConfigurations/read")
    def list_configurations(self, account_id: str) -> list[dict[str, Any]]:
        r = rid(account_id)
        ops = self._client(account_id).software_update_configurations
        result = self.retry.call(ops.list, r.resource_group, r.parent_name)
        return [rest(item) for item in (result.value or [])]

    @requires("Microsoft.Automation/automationAccounts/softwareUpdateConfigurations/write")
    def put_configuration(self, configuration_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT is a full replace: callers send the whole configuration they read, changed."""
        r = rid(configuration_id)
        ops = self._client(configuration_id).software_update_configurations
        return rest(self.retry.call(ops.create, r.resource_group, r.parent_name, r.name, body))

    @requires("Microsoft.Automation/automationAccounts/softwareUpdateConfigurationRuns/read")
    def list_runs(self, account_id: str, filter: str | None = None, top: int | None = None) -> list[dict[str, Any]]:
        r = rid(account_id)
        ops = self._client(account_id).software_update_configuration_runs
        result = self.retry.call(ops.list, r.resource_group, r.parent_name, filter=filter,
                                 top=str(top) if top else None)
        return [rest(item) for item in (result.value or [])]

    @requires("Microsoft.Automation/automationAccounts/softwareUpdateConfigurationRuns/read")
    def get_run(self, account_id: str, run_id: str) -> dict[str, Any]:
        r = rid(account_id)
        ops = self._client(account_id).software_update_configuration_runs
        return rest(self.retry.call(ops.get_by_id, r.resource_group, r.parent_name, run_id))

    @requires("Microsoft.Automation/automationAccounts/softwareUpdateConfigurationMachineRuns/read")
    def list_machine_runs(self, account_id: str, filter: str | None = None) -> list[dict[str, Any]]:
        r = rid(account_id)
        ops = self._client(account_id).software_update_configuration_machine_runs
        result = self.retry.call(ops.list, r.resource_group, r.parent_name, filter=filter)
        return [rest(item) for item in (result.value or [])]

    def latest_run(self, configuration_id: str) -> dict[str, Any] | None:
        """The configuration's newest run (runs list newest first per the API)."""
        r = rid(configuration_id)
        name = r.name.replace("'", "''")
        runs = self.list_runs(configuration_id, filter=f"properties/softwareUpdateConfiguration/name eq '{name}'")
        runs.sort(key=lambda run: str(run.get("properties", {}).get("startTime") or ""), reverse=True)
        return runs[0] if runs else None

    def machine_runs_of(self, configuration_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.list_machine_runs(configuration_id, filter=f"properties/correlationId eq {run_id}")
