"""Guest patching, the WRITE side (Microsoft.Compute, Microsoft.HybridCompute, Microsoft.Maintenance), and the
few per-machine reads the Update Manager remediations plan from.

Writes: a VM's or Arc machine's patch settings (PATCH, the body sent exactly as given: nothing the caller
did not put in it, so an unchanged `enableAutomaticUpdates` is never sent again), a patch extension's
removal, on-demand `assessPatches` / `installPatches`, a VM's start and restart (every one a long-running
operation, waited for), a machine's configuration assignment (PUT / DELETE) and a maintenance
configuration's PUT (the whole body: PATCH's partial-body behaviour is not specified). Each declares the
RBAC action the Update Manager permissions page lists for it
(learn.microsoft.com/azure/update-manager/roles-permissions).

Reads: one machine's installation results, its latest assessment and its configuration assignments, a
configuration's runs, and the fleet's size, from Azure Resource Graph (targeted queries, through every
page; the estate-wide ones are `shared.azure.resourcegraph`'s).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

from shared.azure.base import Adapter, lro, rest, rid
from shared.azure.permissions import requires
from shared.azure.resourcegraph import (
    APPLY_TYPE,
    ARC_TYPE,
    ASSIGNMENT_TYPE,
    RUN_TYPE,
    VM_TYPE,
    ResourceGraph,
    kql_string,
)

_VM_OPERATIONS = "Microsoft.Compute/locations/operations/read"  # an async operation's status (machine's sub)
_ARC_OPERATIONS = "Microsoft.HybridCompute/locations/updateCenterOperationResults/read"

MACHINE_INSTALLATIONS = """patchinstallationresources
| where id startswith {prefix}
| where todatetime(properties.lastModifiedDateTime) > ago({days}d)
| project id, type, properties
| order by id asc"""

MACHINE_ASSESSMENT = """patchassessmentresources
| where id =~ {summary}
| project id, type, properties
| order by id asc"""

CONFIGURATION_RUNS = f"""maintenanceresources
| where type in~ ('{RUN_TYPE}', '{APPLY_TYPE}')
| where tostring(properties.correlationId) startswith {{prefix}}
| where todatetime(properties.startDateTime) > ago({{days}}d)
| project id, type, properties
| order by id asc"""

MACHINE_ASSIGNMENTS = f"""maintenanceresources
| where type =~ '{ASSIGNMENT_TYPE}'
| where tostring(properties.resourceId) =~ {{machine}}
| project id, name, type, properties
| order by id asc"""

FLEET = f"""resources
| where type in~ ('{VM_TYPE}', '{ARC_TYPE}')
| summarize machines = count()"""

SYSTEM_TOPICS = """resources
| where type =~ 'microsoft.eventgrid/systemtopics'
| where tostring(properties.source) =~ {source}
| project id, name
| order by id asc"""


def _bytes(body: dict[str, Any]) -> io.BytesIO:
    """msrest operations take a model or a stream: a stream keeps the REST shape (a fresh one per attempt)."""
    return io.BytesIO(json.dumps(body).encode())


def is_arc(machine_id: str) -> bool:
    return "/providers/microsoft.hybridcompute/machines/" in machine_id.lower()


class Patching(Adapter):
    # ------------------------------------------------------------------ patch settings

    @requires("Microsoft.Compute/virtualMachines/write", _VM_OPERATIONS)
    def patch_vm(self, vm_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """VirtualMachines_Update with exactly `body` (REST JSON), waited for."""
        r = rid(vm_id)
        ops = self.clients.compute(r.subscription).virtual_machines
        return rest(lro(self, ops.begin_update, r.resource_group, r.name, body))

    @requires("Microsoft.HybridCompute/machines/write")
    def patch_arc(self, machine_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Machines_Update (synchronous) with exactly `body`."""
        r = rid(machine_id)
        ops = self.clients.hybridcompute(r.subscription).machines
        return rest(self.retry.call(ops.update, r.resource_group, r.name, body))

    # ------------------------------------------------------------------ extensions

    @requires("Microsoft.Compute/virtualMachines/extensions/delete", _VM_OPERATIONS)
    def delete_vm_extension(self, vm_id: str, name: str) -> None:
        r = rid(vm_id)
        ops = self.clients.compute(r.subscription).virtual_machine_extensions
        lro(self, ops.begin_delete, r.resource_group, r.name, name)

    # The delete is long-running: polling its status needs the provider's operation reads (RBAC
    # "Microsoft.HybridCompute" operations: locations/operationstatus/read, locations/operationresults/read).
    @requires("Microsoft.HybridCompute/machines/extensions/delete",
              "Microsoft.HybridCompute/locations/operationstatus/read",
              "Microsoft.HybridCompute/locations/operationresults/read")
    def delete_arc_extension(self, machine_id: str, name: str) -> None:
        r = rid(machine_id)
        ops = self.clients.hybridcompute(r.subscription).machine_extensions
        lro(self, ops.begin_delete, r.resource_group, r.name, name)

    # ------------------------------------------------------------------ on-demand operations

    @requires("Microsoft.Compute/virtualMachines/assessPatches/action", _VM_OPERATIONS)
    def assess_vm(self, vm_id: str) -> dict[str, Any]:
        """The assessment's result (VirtualMachineAssessPatchesResult)."""
        r = rid(vm_id)
        ops = self.clients.compute(r.subscription).virtual_machines
        return rest(lro(self, ops.begin_assess_patches, r.resource_group, r.name))

    @requires("Microsoft.HybridCompute/machines/assessPatches/action", _ARC_OPERATIONS)
    def assess_arc(self, machine_id: str) -> dict[str, Any]:
        r = rid(machine_id)
        ops = self.clients.hybridcompute(r.subscription).machines
        return rest(lro(self, ops.begin_assess_patches, r.resource_group, r.name))

    @requires("Microsoft.Compute/virtualMachines/installPatches/action", _VM_OPERATIONS)
    def install_vm(self, vm_id: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """VirtualMachineInstallPatchesParameters (REST JSON) -> the installation's result."""
        r = rid(vm_id)
        ops = self.clients.compute(r.subscription).virtual_machines
        return rest(lro(self, ops.begin_install_patches, r.resource_group, r.name, parameters))

    @requires("Microsoft.HybridCompute/machines/installPatches/action", _ARC_OPERATIONS)
    def install_arc(self, machine_id: str, parameters: dict[str, Any]) -> dict[str, Any]:
        r = rid(machine_id)
        ops = self.clients.hybridcompute(r.subscription).machines
        return rest(lro(self, ops.begin_install_patches, r.resource_group, r.name, parameters))

    def assess(self, machine_id: str) -> dict[str, Any]:
        return self.assess_arc(machine_id) if is_arc(machine_id) else self.assess_vm(machine_id)

    def install(self, machine_id: str, parameters: dict[str, Any]) -> dict[str, Any]:
        return self.install_arc(machine_id, parameters) if is_arc(machine_id) else \
            self.install_vm(machine_id, parameters)

    # ------------------------------------------------------------------ power (Azure VMs only)

    @requires("Microsoft.Compute/virtualMachines/start/action", _VM_OPERATIONS)
    def start_vm(self, vm_id: str) -> None:
        r = rid(vm_id)
        ops = self.clients.compute(r.subscription).virtual_machines
        lro(self, ops.begin_start, r.resource_group, r.name)

    @requires("Microsoft.Compute/virtualMachines/restart/action", _VM_OPERATIONS)
    def restart_vm(self, vm_id: str) -> None:
        r = rid(vm_id)
        ops = self.clients.compute(r.subscription).virtual_machines
        lro(self, ops.begin_restart, r.resource_group, r.name)

    # ------------------------------------------------------------------ schedules

    @requires("Microsoft.Maintenance/configurationAssignments/read")
    def assignments_of(self, machine_id: str) -> list[dict[str, Any]]:
        """A machine's configuration assignments, from ARM itself (ConfigurationAssignments_List)."""
        r = rid(machine_id)
        ops = self.clients.maintenance(r.subscription).configuration_assignments
        kind = r.types[0]
        return [rest(item) for item in self.retry.call(
            lambda: list(ops.list(r.resource_group, r.namespace, kind, r.name)))]

    @requires("Microsoft.Maintenance/configurationAssignments/write")
    def put_assignment(self, machine_id: str, name: str, configuration_id: str,
                       location: str | None = None) -> dict[str, Any]:
        """ConfigurationAssignments_CreateOrUpdate on the machine."""
        r = rid(machine_id)
        ops = self.clients.maintenance(r.subscription).configuration_assignments
        body: dict[str, Any] = {"properties": {"maintenanceConfigurationId": configuration_id}}
        if location:
            body["location"] = location
        return rest(self.retry.call(lambda: ops.create_or_update(
            r.resource_group, r.namespace, r.types[0], r.name, name, _bytes(body), content_type="application/json")))

    @requires("Microsoft.Maintenance/configurationAssignments/delete")
    def delete_assignment(self, machine_id: str, name: str) -> None:
        r = rid(machine_id)
        ops = self.clients.maintenance(r.subscription).configuration_assignments
        self.retry.call(ops.delete, r.resource_group, r.namespace, r.types[0], r.name, name)

    @requires("Microsoft.Maintenance/maintenanceConfigurations/write")
    def put_configuration(self, configuration_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """MaintenanceConfigurations_CreateOrUpdate with the whole body."""
        r = rid(configuration_id)
        ops = self.clients.maintenance(r.subscription).maintenance_configurations
        return rest(self.retry.call(lambda: ops.create_or_update(r.resource_group, r.name, _bytes(body),
                                                                 content_type="application/json")))

    # ------------------------------------------------------------------ Resource Graph, per machine

    def _graph(self, subscriptions: Sequence[str], query: str) -> list[dict[str, Any]]:
        return ResourceGraph(self.clients, self.retry).rows(subscriptions, query)

    @requires("Microsoft.ResourceGraph/resources/read",
              "Microsoft.Compute/virtualMachines/patchInstallationResults/read",
              "Microsoft.Compute/virtualMachines/patchInstallationResults/softwarePatches/read",
              "Microsoft.HybridCompute/machines/patchInstallationResults/read",
              "Microsoft.HybridCompute/machines/patchInstallationResults/softwarePatches/read")
    def installations_of(self, machine_id: str, days: int = 30) -> list[dict[str, Any]]:
        """The machine's installation rows of the last `days` (kept 30): runs and their softwarepatches."""
        prefix = kql_string(machine_id.rstrip("/") + "/patchInstallationResults/")
        return self._graph([rid(machine_id).subscription],
                           MACHINE_INSTALLATIONS.format(prefix=prefix, days=int(days)))

    @requires("Microsoft.ResourceGraph/resources/read",
              "Microsoft.Compute/virtualMachines/patchAssessmentResults/latest/read",
              "Microsoft.HybridCompute/machines/patchAssessmentResults/read")
    def latest_assessment(self, machine_id: str) -> dict[str, Any] | None:
        """The machine's latest assessment summary row (kept 7 days), or None."""
        summary = kql_string(machine_id.rstrip("/") + "/patchAssessmentResults/latest")
        rows = self._graph([rid(machine_id).subscription], MACHINE_ASSESSMENT.format(summary=summary))
        return rows[0] if rows else None

    @requires("Microsoft.ResourceGraph/resources/read", "Microsoft.Maintenance/applyUpdates/read")
    def runs_of(self, configuration_id: str, days: int = 30) -> list[dict[str, Any]]:
        """A configuration's run records of the last `days`: per run and per machine (`applyupdates`)."""
        prefix = kql_string(configuration_id.rstrip("/") + "/providers/microsoft.maintenance/applyupdates/")
        return self._graph([rid(configuration_id).subscription],
                           CONFIGURATION_RUNS.format(prefix=prefix, days=int(days)))

    @requires("Microsoft.ResourceGraph/resources/read", "Microsoft.Maintenance/configurationAssignments/read")
    def graph_assignments_of(self, machine_id: str) -> list[dict[str, Any]]:
        """The machine's static assignments as Resource Graph holds them (any resource id it was assigned as)."""
        return self._graph([rid(machine_id).subscription], MACHINE_ASSIGNMENTS.format(machine=kql_string(machine_id)))

    @requires("Microsoft.ResourceGraph/resources/read", "Microsoft.Compute/virtualMachines/read",
              "Microsoft.HybridCompute/machines/read")
    def fleet_size(self, subscriptions: Sequence[str]) -> int:
        """How many VMs and Arc-enabled servers the subscriptions hold (the fleet a share is taken of)."""
        rows = self._graph(subscriptions, FLEET)
        return sum(int(r.get("machines") or 0) for r in rows)

    @requires("Microsoft.ResourceGraph/resources/read", "Microsoft.EventGrid/systemTopics/read")
    def has_event_topic(self, configuration_id: str) -> bool:
        """Whether an Event Grid system topic has the configuration as its source (pre/post events)."""
        return bool(self._graph([rid(configuration_id).subscription],
                                SYSTEM_TOPICS.format(source=kql_string(configuration_id))))
