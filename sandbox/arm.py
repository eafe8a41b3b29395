"""ARM itself: the provider catalog (types and api-versions), the checks ARM makes before a
resource provider sees a request, the Providers API, and GET of any resource by id.

The api-version lists include the versions the installed SDKs send (automation 2024-10-23,
maintenance 2023-04-01, imagebuilder 2025-10-01, resources 2025-04-01, resourcegraph 2021-03-01,
compute 2026-04-01, hybridcompute 2026-07-15)
and other published versions of the same types, so a caller pinning an older version still works;
the double always answers in the shape of the SDKs' version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sandbox.base import ArmError, Context, Request, Response
from sandbox.state import ProviderRecord, split_id, type_of

_COMPUTE = ("2026-04-01", "2025-04-01", "2024-11-01", "2024-07-01", "2024-03-01", "2023-09-01", "2023-07-01",
            "2023-03-01", "2022-11-01", "2022-08-01", "2022-03-01", "2021-11-01", "2021-07-01", "2021-04-01",
            "2021-03-01", "2020-12-01", "2020-06-01", "2019-12-01", "2019-07-01", "2019-03-01")
_GALLERY = ("2024-03-03", "2023-07-03", "2022-08-03", "2022-03-03", "2022-01-03", "2021-10-01", "2021-07-01",
            "2020-09-30", "2019-12-01")
_HYBRID = ("2026-07-15", "2025-01-13", "2024-07-10", "2024-05-20-preview", "2023-10-03-preview", "2022-12-27",
           "2022-11-10", "2022-03-10", "2021-05-20", "2020-08-02")
_AUTOMATION = ("2024-10-23", "2023-11-01", "2023-05-15-preview", "2022-08-08", "2022-02-22", "2021-06-22",
               "2020-01-13-preview", "2019-06-01", "2018-06-30", "2018-01-15", "2017-05-15-preview", "2015-10-31")
_MAINTENANCE = ("2023-10-01-preview", "2023-09-01-preview", "2023-04-01", "2022-11-01-preview",
                "2022-07-01-preview", "2021-09-01-preview", "2021-05-01", "2021-04-01-preview", "2020-07-01-preview",
                "2020-04-01", "2018-06-01-preview")
_AIB = ("2025-10-01", "2024-02-01", "2023-07-01", "2022-07-01", "2022-02-14", "2021-10-01", "2020-02-14")
_LAW = ("2025-02-01", "2023-09-01", "2022-10-01", "2021-12-01-preview", "2021-06-01", "2020-10-01", "2020-08-01",
        "2015-11-01-preview")
_IDENTITY = ("2024-11-30", "2023-07-31-preview", "2023-01-31", "2018-11-30")
_STORAGE = ("2024-01-01", "2023-05-01", "2023-01-01", "2022-09-01", "2021-09-01", "2021-04-01", "2019-06-01")
_NETWORK = ("2024-05-01", "2024-01-01", "2023-11-01", "2023-09-01", "2023-05-01", "2022-07-01")
_RESOURCES = ("2025-04-01", "2025-03-01", "2024-11-01", "2024-07-01", "2024-03-01", "2023-07-01", "2022-09-01",
              "2021-04-01", "2020-06-01", "2019-10-01")
_GRAPH = ("2024-04-01", "2022-10-01", "2021-06-01-preview", "2021-03-01", "2020-04-01-preview", "2019-04-01")

CATALOG: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "Microsoft.Compute": {"virtualMachines": _COMPUTE, "virtualMachines/extensions": _COMPUTE,
                          "virtualMachineScaleSets": _COMPUTE, "disks": _COMPUTE, "images": _COMPUTE,
                          "galleries": _GALLERY, "galleries/images": _GALLERY, "galleries/images/versions": _GALLERY},
    "Microsoft.HybridCompute": {"machines": _HYBRID, "machines/extensions": _HYBRID},
    "Microsoft.Automation": {"automationAccounts": _AUTOMATION,
                             "automationAccounts/softwareUpdateConfigurations": _AUTOMATION,
                             "automationAccounts/softwareUpdateConfigurationRuns": _AUTOMATION,
                             "automationAccounts/softwareUpdateConfigurationMachineRuns": _AUTOMATION,
                             "automationAccounts/runbooks": _AUTOMATION, "automationAccounts/jobs": _AUTOMATION,
                             "automationAccounts/hybridRunbookWorkerGroups": _AUTOMATION},
    "Microsoft.Maintenance": {"maintenanceConfigurations": _MAINTENANCE, "configurationAssignments": _MAINTENANCE,
                              "applyUpdates": _MAINTENANCE, "updates": _MAINTENANCE,
                              "publicMaintenanceConfigurations": _MAINTENANCE},
    "Microsoft.VirtualMachineImages": {"imageTemplates": _AIB, "imageTemplates/runOutputs": _AIB,
                                       "imageTemplates/triggers": _AIB, "locations/operations": _AIB},
    "Microsoft.OperationalInsights": {"workspaces": _LAW},
    "Microsoft.ManagedIdentity": {"userAssignedIdentities": _IDENTITY},
    "Microsoft.Storage": {"storageAccounts": _STORAGE},
    "Microsoft.Network": {"networkInterfaces": _NETWORK, "virtualNetworks": _NETWORK,
                          "virtualNetworks/subnets": _NETWORK, "publicIPAddresses": _NETWORK},
    "Microsoft.ResourceGraph": {"resources": _GRAPH, "queries": _GRAPH},
    "Microsoft.Resources": {"resourceGroups": _RESOURCES, "subscriptions": _RESOURCES, "providers": _RESOURCES,
                            "deployments": _RESOURCES},
}
_LOCATIONS = ("West Europe", "North Europe", "East US", "East US 2", "West US 2", "UK South", "Sweden Central")
_TENANT_LEVEL = {"Microsoft.ResourceGraph", "Microsoft.Resources"}


def canonical_namespace(namespace: str) -> str | None:
    return next((ns for ns in CATALOG if ns.lower() == namespace.lower()), None)


def canonical_type(namespace: str, type_: str) -> str | None:
    types = CATALOG.get(namespace, {})
    return next((t for t in types if t.lower() == type_.lower()), None)


def check_api_version(request: Request, namespace: str, type_: str) -> None:
    """ARM's api-version checks: present, and one the type supports."""
    version = request.query.get("api-version")
    if not version:
        raise ArmError(400, "MissingApiVersionParameter",
                       "The api-version query parameter (?api-version=) is required for all requests.")
    versions = CATALOG[namespace][type_]
    if version.lower() not in (v.lower() for v in versions):
        raise ArmError(400, "InvalidApiVersionParameter",
                       f"The api-version '{version}' is invalid. The supported versions are '{','.join(versions)}'.")


def check_versions(request: Request, versions: tuple[str, ...]) -> None:
    """The same checks against a route's own list (an operation that exists only in the SDK's version)."""
    version = request.query.get("api-version")
    if not version:
        raise ArmError(400, "MissingApiVersionParameter",
                       "The api-version query parameter (?api-version=) is required for all requests.")
    if version.lower() not in (v.lower() for v in versions):
        raise ArmError(400, "InvalidApiVersionParameter",
                       f"The api-version '{version}' is invalid. The supported versions are '{','.join(versions)}'.")


def require_subscription(ctx: Context, subscription: str) -> None:
    if not ctx.state.has_subscription(subscription):
        raise ArmError(404, "SubscriptionNotFound", f"The subscription '{subscription}' could not be found.")


def require_resource_group(ctx: Context, subscription: str, resource_group: str) -> None:
    require_subscription(ctx, subscription)
    if not ctx.state.has_resource_group(subscription, resource_group):
        raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{resource_group}' could not be found.")


def list_of_type(ctx: Context, request: Request, type_: str) -> Response:
    """A List / ListByResourceGroup answer: every resource of `type_` in the subscription or group."""
    subscription = request.param("subscription")
    group = request.params.get("group")
    if group:
        require_resource_group(ctx, subscription, group)
    else:
        require_subscription(ctx, subscription)
    return Response.json(200, {"value": ctx.state.of_type(subscription, type_, group)})


def not_found(resource_id: str) -> ArmError:
    """ARM's 404 for an absent resource, worded as ARM words it."""
    parts = split_id(resource_id)
    low = [p.lower() for p in parts]
    if "providers" in low:
        at = len(low) - 1 - low[::-1].index("providers")
        rest = parts[at + 1:]
        group = parts[3] if len(parts) > 3 and low[2] == "resourcegroups" else ""
        return ArmError(404, "ResourceNotFound", f"The Resource '{'/'.join(rest)}' under resource group '{group}' "
                        "was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix")
    return ArmError(404, "ResourceNotFound", f"The Resource '{resource_id}' was not found.")


def parent_not_found(name: str) -> ArmError:
    return ArmError(404, "ParentResourceNotFound", "Can not perform requested operation on nested resource. "
                    f"Parent resource '{name}' not found.")


def require_registered(ctx: Context, request: Request, subscription: str, namespace: str, enforce: bool) -> None:
    """Writes to a namespace the subscription isn't registered for fail as ARM fails them (when enforced)."""
    if not enforce or request.method in ("GET", "HEAD"):
        return
    record = ctx.state.provider(namespace, subscription)
    if record is not None and record.state != "Registered":
        raise ArmError(409, "MissingSubscriptionRegistration",
                       f"The subscription is not registered to use namespace '{record.namespace}'. See "
                       "https://aka.ms/rps-not-found for how to register subscriptions.")


# ---------------------------------------------------------------------------------------------
# Providers API (Resources 2025-04-01)


def provider_body(subscription: str, record: ProviderRecord) -> dict[str, Any]:
    types = CATALOG.get(record.namespace, {})
    return {
        "id": f"/subscriptions/{subscription}/providers/{record.namespace}",
        "namespace": record.namespace,
        "registrationState": record.state,
        "registrationPolicy": "RegistrationFree" if record.namespace in _TENANT_LEVEL else "RegistrationRequired",
        "resourceTypes": [{"resourceType": t, "locations": list(_LOCATIONS), "apiVersions": list(v),
                           "capabilities": "None"} for t, v in types.items()],
    }


def _observe_provider(ctx: Context, record: ProviderRecord) -> None:
    """A GET during registration: `poll_after` GETs see Registering, the next one Registered."""
    if record.state == "Registering":
        if record.pending > 0:
            record.pending -= 1
        else:
            record.state = "Registered"
    elif record.state == "Unregistering":
        if record.pending > 0:
            record.pending -= 1
        else:
            record.state = "NotRegistered"


def _record(ctx: Context, request: Request) -> tuple[str, ProviderRecord]:
    subscription = request.param("subscription")
    require_subscription(ctx, subscription)
    namespace = request.param("namespace")
    record = ctx.state.provider(namespace, subscription)
    if record is None:
        raise ArmError(404, "InvalidResourceNamespace", f"The resource namespace '{namespace}' is invalid.")
    return subscription, record


def providers_get(ctx: Context, request: Request) -> Response:
    with ctx.state.lock:
        subscription, record = _record(ctx, request)
        _observe_provider(ctx, record)
        return Response.json(200, provider_body(subscription, record))


def providers_list(ctx: Context, request: Request) -> Response:
    subscription = request.param("subscription")
    require_subscription(ctx, subscription)
    with ctx.state.lock:
        records = ctx.state.providers(subscription)
        for record in records:
            _observe_provider(ctx, record)
        return Response.json(200, {"value": [provider_body(subscription, r) for r in records]})


def providers_register(ctx: Context, request: Request) -> Response:
    with ctx.state.lock:
        subscription, record = _record(ctx, request)
        if record.state in ("NotRegistered", "Unregistered", "Unregistering"):
            record.state = "Registering"
            record.pending = ctx.poll_after
        return Response.json(200, provider_body(subscription, record))


def providers_unregister(ctx: Context, request: Request) -> Response:
    with ctx.state.lock:
        subscription, record = _record(ctx, request)
        if record.state in ("Registered", "Registering"):
            record.state = "Unregistering"
            record.pending = ctx.poll_after
        return Response.json(200, provider_body(subscription, record))


# ---------------------------------------------------------------------------------------------
# GET any resource by id (Resources_GetById)


def resolve_type(resource_id: str) -> tuple[str, str]:
    """(namespace, type) as the catalog spells them, or ArmError for what ARM would refuse."""
    full = type_of(resource_id)
    if not full:
        raise ArmError(400, "InvalidResourceId", f"The resource id '{resource_id}' is not a valid resource id.")
    namespace_raw, _, type_raw = full.partition("/")
    namespace = canonical_namespace(namespace_raw)
    if namespace is None:
        raise ArmError(400, "InvalidResourceNamespace", f"The resource namespace '{namespace_raw}' is invalid.")
    type_ = canonical_type(namespace, type_raw)
    if type_ is None:
        raise ArmError(400, "InvalidResourceType", f"The resource type '{type_raw}' could not be found in the "
                       f"namespace '{namespace}'.")
    return namespace, type_


def generic_head(ctx: Context, request: Request) -> Response:
    """Resources_CheckExistenceById: 204 when the resource exists, 404 when it doesn't (no body)."""
    try:
        generic_get(ctx, request)
    except ArmError as error:
        if error.status == 404:
            return Response.empty(404)
        raise
    return Response.empty(204)


def generic_get(ctx: Context, request: Request) -> Response:
    resource_id = request.path.rstrip("/")
    parts = split_id(resource_id)
    if len(parts) == 2:  # the subscription itself
        check_api_version(request, "Microsoft.Resources", "subscriptions")
        require_subscription(ctx, parts[1])
        return Response.json(200, {"id": f"/subscriptions/{parts[1]}", "subscriptionId": parts[1],
                                   "tenantId": ctx.state.tenant_id, "displayName": "Contoso Operations",
                                   "state": "Enabled", "authorizationSource": "RoleBased",
                                   "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01",
                                                            "quotaId": "EnterpriseAgreement_2014-09-01",
                                                            "spendingLimit": "Off"}})
    namespace, type_ = resolve_type(resource_id)
    check_api_version(request, namespace, type_)
    if (namespace, type_) == ("Microsoft.Compute", "virtualMachines") and len(parts) == 8:
        from sandbox import compute  # the VM as Compute answers it (instanceView on $expand, its extensions)

        return compute.vm_get(ctx, _as_vm_request(request, parts))
    require_subscription(ctx, parts[1])
    if len(parts) > 4 and parts[2].lower() == "resourcegroups":
        require_resource_group(ctx, parts[1], parts[3])
    with ctx.state.lock:
        ctx.state.observe_resource(resource_id)
        found = ctx.state.get(resource_id)
    if found is None:
        if type_ == "resourceGroups":
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{parts[3]}' could not be found.")
        low = [p.lower() for p in parts]
        at = len(low) - 1 - low[::-1].index("providers")
        if len(parts) - at - 1 > 3:  # a nested resource: ARM checks the parent first
            parent = "/".join(["", *parts[:-2]])
            if ctx.state.get(parent) is None:
                raise parent_not_found(parts[-3])
        raise not_found(resource_id)
    if "type" not in found:
        found["type"] = f"{namespace}/{type_}"
    return Response.json(200, found)


def _as_vm_request(request: Request, parts: list[str]) -> Request:
    return Request(request.method, request.path, request.query, request.headers, request.body, request.base_url,
                   {"subscription": parts[1], "group": parts[3], "name": parts[7]})
