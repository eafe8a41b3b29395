"""Azure Resource Graph: Update Manager's results and the machines it patches, read in bulk.

Update Manager keeps what it did in Resource Graph (learn.microsoft.com/azure/update-manager/query-logs):
`patchinstallationresources` (installation runs, 30 days), `patchassessmentresources` (7 days) and
`maintenanceresources` (`configurationassignments`, per-machine `applyupdates`, per-run
`maintenanceconfigurations/applyupdates`); the machines themselves are `resources` rows (VMs with their
`osProfile` patch settings and `properties.extended.instanceView.powerState`, Arc machines with their
`status`, and their extensions). The queries follow the guide's sample queries.

One query per table and batch of subscriptions, never a request per machine: subscriptions go in
groups of at most SUBSCRIPTION_BATCH (Resource Graph's guidance keeps groups under 300), each result is
read through every page (`$skipToken`, at most 1,000 rows a page). Paging needs an ordered query with a
non-dynamic column, so every query ends in `order by id asc`. Results hold only what the caller may read:
each method declares the read actions its table needs.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from shared.azure.base import Adapter
from shared.azure.permissions import requires

SUBSCRIPTION_BATCH = 300
PAGE_SIZE = 1000
ID_BATCH = 300  # ids per `in~ (...)` filter
PATCH_EXTENSIONS = ("WindowsPatchExtension", "LinuxPatchExtension",  # Azure VMs
                    "WindowsOsUpdateExtension", "LinuxOsUpdateExtension")  # Arc-enabled servers

VM_TYPE = "microsoft.compute/virtualmachines"
ARC_TYPE = "microsoft.hybridcompute/machines"
ASSIGNMENT_TYPE = "microsoft.maintenance/configurationassignments"
APPLY_TYPE = "microsoft.maintenance/applyupdates"
CONFIGURATION_TYPE = "microsoft.maintenance/maintenanceconfigurations"
RUN_TYPE = "microsoft.maintenance/maintenanceconfigurations/applyupdates"

_EXTENSIONS = ", ".join(f"'{name}'" for name in PATCH_EXTENSIONS)

# Installation runs (summary rows, not their softwarepatches), as the guide's "Count of update
# installations" sample reads them.
INSTALLATIONS = """patchinstallationresources
| where type !has 'softwarepatches'
| where todatetime(properties.lastModifiedDateTime) > ago({days}d){where}
| project id, type, subscriptionId,
    status = tostring(properties.status),
    rebootStatus = tostring(properties.rebootStatus),
    maintenanceWindowExceeded = tostring(properties.maintenanceWindowExceeded),
    osType = tostring(properties.osType),
    startedBy = tostring(properties.startedBy),
    maintenanceRunId = tostring(properties.maintenanceRunId),
    startDateTime = tostring(properties.startDateTime),
    lastModifiedDateTime = tostring(properties.lastModifiedDateTime),
    installedPatchCount = tostring(properties.installedPatchCount),
    failedPatchCount = tostring(properties.failedPatchCount),
    pendingPatchCount = tostring(properties.pendingPatchCount),
    errorDetails = properties.errorDetails
| order by id asc"""

# The last assessment of each machine (summary rows), as the guide's "List available updates" sample reads them.
ASSESSMENTS = """patchassessmentresources
| where type !has 'softwarepatches'
| where todatetime(properties.lastModifiedDateTime) > ago({days}d)
| project id, type, subscriptionId,
    status = tostring(properties.status),
    osType = tostring(properties.osType),
    rebootPending = tostring(properties.rebootPending),
    startedBy = tostring(properties.startedBy),
    lastModifiedDateTime = tostring(properties.lastModifiedDateTime),
    errorDetails = properties.errorDetails
| order by id asc"""

# Assignments (static: a machine's; dynamic: a subscription's, with its filter), and the runs of the
# last days: per machine (`applyupdates`) and per run (`maintenanceconfigurations/applyupdates`, which
# carries the cancellation message, as the pre/post events page's query reads it).
MAINTENANCE = f"""maintenanceresources
| where type in~ ({{types}})
| where type =~ '{ASSIGNMENT_TYPE}' or todatetime(properties.startDateTime) > ago({{days}}d){{where}}
| project id, type, subscriptionId,
    maintenanceConfigurationId = tostring(properties.maintenanceConfigurationId),
    resourceId = tostring(properties.resourceId),
    correlationId = tostring(properties.correlationId),
    status = tostring(properties.status),
    startDateTime = tostring(properties.startDateTime),
    endDateTime = tostring(properties.endDateTime),
    filter = properties.filter,
    runDetails = iff(type =~ '{RUN_TYPE}', properties, dynamic(null))
| order by id asc"""

# VMs, Arc machines, the patch extensions that are not Succeeded (a missing one is installed by the next
# operation; a healthy one says nothing), and the maintenance configurations: the facts a diagnosis decides from.
MACHINES = f"""resources
| where type in~ ('{VM_TYPE}', '{ARC_TYPE}', '{VM_TYPE}/extensions', '{ARC_TYPE}/extensions', '{CONFIGURATION_TYPE}')
| extend extensionType = tostring(properties.type)
| where type !has 'extensions' or (extensionType in~ ({_EXTENSIONS})
    and tostring(properties.provisioningState) !~ 'Succeeded'){{where}}
| extend windowsPatch = properties.osProfile.windowsConfiguration.patchSettings,
    linuxPatch = properties.osProfile.linuxConfiguration.patchSettings
| project id, name, type, location, resourceGroup, subscriptionId, tags,
    osType = tostring(coalesce(properties.storageProfile.osDisk.osType, properties.osType)),
    patchMode = tostring(coalesce(windowsPatch.patchMode, linuxPatch.patchMode)),
    assessmentMode = tostring(coalesce(windowsPatch.assessmentMode, linuxPatch.assessmentMode)),
    bypassPlatformSafetyChecksOnUserSchedule = tostring(coalesce(
        windowsPatch.automaticByPlatformSettings.bypassPlatformSafetyChecksOnUserSchedule,
        linuxPatch.automaticByPlatformSettings.bypassPlatformSafetyChecksOnUserSchedule)),
    allowExtensionOperations = tostring(properties.osProfile.allowExtensionOperations),
    hasOsProfile = tostring(isnotnull(properties.osProfile)),
    powerState = tostring(properties.extended.instanceView.powerState.code),
    arcStatus = tostring(properties.status),
    timeCreated = tostring(properties.timeCreated),
    extensionType,
    provisioningState = tostring(properties.provisioningState),
    extensionStatus = tostring(properties.instanceView.status.code),
    maintenanceScope = tostring(properties.maintenanceScope),
    inGuestPatchMode = tostring(properties.extensionProperties.InGuestPatchMode),
    duration = tostring(properties.maintenanceWindow.duration),
    recurEvery = tostring(properties.maintenanceWindow.recurEvery)
| order by id asc"""


def kql_string(value: str) -> str:
    """A KQL string literal: backslashes and quotes escaped, so an id can never end the literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _in(column: str, values: Sequence[str]) -> str:
    return f"\n| where {column} in~ ({', '.join(kql_string(v) for v in values)})"


def _batches(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


class ResourceGraph(Adapter):
    @requires("Microsoft.ResourceGraph/resources/read",
              "Microsoft.Compute/virtualMachines/patchInstallationResults/read",
              "Microsoft.HybridCompute/machines/patchInstallationResults/read")
    def installations(self, subscriptions: Sequence[str], *, days: int = 7,
                      run_id: str | None = None) -> list[dict[str, Any]]:
        """Installation runs of the last `days` (of one maintenance run when `run_id` is given)."""
        where = f"\n| where tostring(properties.maintenanceRunId) =~ {kql_string(run_id)}" if run_id else ""
        return self.rows(subscriptions, INSTALLATIONS.format(days=int(days), where=where))

    @requires("Microsoft.ResourceGraph/resources/read",
              "Microsoft.Compute/virtualMachines/patchAssessmentResults/latest/read",
              "Microsoft.HybridCompute/machines/patchAssessmentResults/read")
    def assessments(self, subscriptions: Sequence[str], *, days: int = 7) -> list[dict[str, Any]]:
        """Each machine's latest assessment (kept 7 days)."""
        return self.rows(subscriptions, ASSESSMENTS.format(days=int(days)))

    @requires("Microsoft.ResourceGraph/resources/read", "Microsoft.Maintenance/applyUpdates/read",
              "Microsoft.Maintenance/configurationAssignments/read")
    def maintenance(self, subscriptions: Sequence[str], *, days: int = 7, configuration_id: str | None = None,
                    correlation_id: str | None = None, per_machine: bool = True) -> list[dict[str, Any]]:
        """Configuration assignments and the runs of the last `days` (one configuration's; one run's
        records, with that configuration's assignments, when `correlation_id` is given). Without
        `per_machine`, only the per-run records: a sweep knows which machines ran from their results."""
        kinds = (ASSIGNMENT_TYPE, APPLY_TYPE, RUN_TYPE) if per_machine else (ASSIGNMENT_TYPE, RUN_TYPE)
        where = ""
        if configuration_id:  # a run's records name their configuration, or start with its id
            where += (f"\n| where tostring(properties.maintenanceConfigurationId) =~ {kql_string(configuration_id)} "
                      f"or tostring(properties.correlationId) startswith {kql_string(configuration_id + '/')}")
        if correlation_id:
            where += (f"\n| where type =~ '{ASSIGNMENT_TYPE}' or tostring(properties.correlationId) =~ "
                      f"{kql_string(correlation_id)} or id =~ {kql_string(correlation_id)}")
        types = ", ".join(f"'{t}'" for t in kinds)
        return self.rows(subscriptions, MAINTENANCE.format(days=int(days), where=where, types=types))

    @requires("Microsoft.ResourceGraph/resources/read", "Microsoft.Compute/virtualMachines/read",
              "Microsoft.HybridCompute/machines/read", "Microsoft.Compute/virtualMachines/extensions/read",
              "Microsoft.HybridCompute/machines/extensions/read",
              "Microsoft.Maintenance/maintenanceConfigurations/read")
    def machines(self, subscriptions: Sequence[str], *, ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """VMs and Arc machines with their patch extensions, and the maintenance configurations (only the
        resources of `ids` and their extensions when given, in batches of ID_BATCH ids)."""
        if ids is None:
            return self.rows(subscriptions, MACHINES.format(where=""))
        rows: list[dict[str, Any]] = []
        unique = sorted({i.lower() for i in ids})
        for batch in _batches(unique, ID_BATCH):
            parents = "tolower(iff(type has 'extensions', tostring(split(id, '/extensions/')[0]), id))"
            rows.extend(self.rows(subscriptions, MACHINES.format(where=_in(parents, batch))))
        return rows

    def rows(self, subscriptions: Sequence[str], query: str) -> list[dict[str, Any]]:
        """A query's rows over the subscriptions (in batches), through every result page."""
        client = self.clients.resourcegraph()
        rows: list[dict[str, Any]] = []
        for batch in _batches(sorted(set(subscriptions)), SUBSCRIPTION_BATCH):
            skip_token: str | None = None
            while True:
                options: dict[str, Any] = {"resultFormat": "objectArray", "$top": PAGE_SIZE}
                if skip_token:
                    options["$skipToken"] = skip_token
                request = {"subscriptions": batch, "query": query, "options": options}
                response = self.retry.call(_query, client, request)
                rows.extend(response.data or [])
                skip_token = response.skip_token
                if not skip_token:
                    break
        return rows


def _query(client: Any, request: dict[str, Any]) -> Any:
    # A fresh body per attempt: a retried request must not send an exhausted stream.
    return client.resources(io.BytesIO(json.dumps(request).encode()), content_type="application/json")
