"""Azure Arc-enabled servers as Update Manager uses them (Microsoft.HybridCompute 2026-07-15, the
api-version azure-mgmt-hybridcompute 10 sends): machines GET / list / PATCH (MachineUpdate:
`osProfile.{windows,linux}Configuration.patchSettings.{assessmentMode,patchMode}`), assessPatches and
installPatches (LROs: 202 + `Location`, as the spec examples Machine_AssessPatches / _InstallPatches),
machine extensions GET / list / DELETE (202 + `Azure-AsyncOperation` + `Location`, Extension_Delete).

`properties.status` is Connected, Disconnected or Expired. A machine that isn't Connected can't run
anything: as the Arc connectivity guide says ("operations on extensions (such as install, uninstall,
or update) can't be completed while the server is disconnected. These operations are queued on the
service"), its patch operations and extension deletions are accepted and stay InProgress until the
machine is Connected again (`d.state.put` it back), when they complete on the next poll.
"""

from __future__ import annotations

from typing import Any

from sandbox import compute, patching
from sandbox.arm import not_found, require_resource_group, require_subscription
from sandbox.base import ArmError, Context, Request, Response
from sandbox.state import AsyncOperation
from sandbox.util import deep, iso, merge_patch, stable_guid, utcnow

API = ("2026-07-15",)
PROVIDER = "Microsoft.HybridCompute"
MACHINE_TYPE = "Microsoft.HybridCompute/machines"
EXT_TYPE = "Microsoft.HybridCompute/machines/extensions"
PUBLISHER = "Microsoft.SoftwareUpdateManagement"
EXTENSIONS = {"windows": ("WindowsOsUpdateExtension", "1.0.28.0"), "linux": ("LinuxOsUpdateExtension", "1.0.21.0")}
_PATCH_MODES = ("ImageDefault", "AutomaticByPlatform", "AutomaticByOS", "Manual")
_ASSESSMENT_MODES = ("ImageDefault", "AutomaticByPlatform")
_UPDATABLE = ("locationData", "osProfile", "cloudMetadata", "agentUpgrade", "parentClusterResourceId",
              "privateLinkScopeResourceId", "identityKeyStore", "tpmEkCertificate")


def machine_id(request: Request) -> str:
    return (f"/subscriptions/{request.param('subscription')}/resourceGroups/{request.param('group')}/providers/"
            f"{MACHINE_TYPE}/{request.param('name')}")


def os_type(machine: dict[str, Any]) -> str:
    return "Windows" if str((machine.get("properties") or {}).get("osType", "")).lower() == "windows" else "Linux"


def connected(ctx: Context, resource_id: str) -> bool:
    found = ctx.state.get(resource_id)
    return found is not None and (found.get("properties") or {}).get("status") == "Connected"


def _existing(ctx: Context, request: Request) -> dict[str, Any]:
    require_resource_group(ctx, request.param("subscription"), request.param("group"))
    found = ctx.state.get(machine_id(request))
    if found is None:
        raise not_found(machine_id(request))
    return found


def _headers(ctx: Context, request: Request, operation: AsyncOperation, *, asynchronous: bool) -> dict[str, str]:
    base = (f"{request.base_url}/subscriptions/{operation.subscription}/providers/{PROVIDER}/locations/"
            f"{operation.location}")
    version = request.query.get("api-version", API[0])
    headers = {"Location": f"{base}/operationResults/{operation.id}?api-version={version}",
               "Retry-After": str(ctx.lro_retry_after)}
    if asynchronous:
        headers["Azure-AsyncOperation"] = f"{base}/operationStatus/{operation.id}?api-version={version}"
    return headers


def _hold(ctx: Context, resource_id: str) -> Any:
    def held(op: AsyncOperation) -> bool:
        return not connected(ctx, resource_id)
    return held


# ---------------------------------------------------------------------------------------------
# Machines_Get / _ListByResourceGroup / _ListBySubscription / _Update


def machine_get(ctx: Context, request: Request) -> Response:
    with ctx.state.lock:
        ctx.state.observe_resource(machine_id(request))
        return Response.json(200, _existing(ctx, request))


def machine_list(ctx: Context, request: Request) -> Response:
    subscription = request.param("subscription")
    group = request.params.get("group")
    if group:
        require_resource_group(ctx, subscription, group)
    else:
        require_subscription(ctx, subscription)
    ids = ctx.state.ids_of_type(subscription, MACHINE_TYPE, group)
    try:
        start = int(request.query.get("$skiptoken", "0") or 0)
    except ValueError:
        raise ArmError(400, "InvalidParameter", "The value of parameter '$skiptoken' is invalid.",
                       target="$skiptoken") from None
    page = [m for m in (ctx.state.get(k) for k in ids[start:start + compute.PAGE_SIZE]) if m is not None]
    body: dict[str, Any] = {"value": page}
    if start + compute.PAGE_SIZE < len(ids):
        query = "&".join(f"{k}={v}" for k, v in request.query.items() if k.lower() != "$skiptoken")
        body["nextLink"] = f"{request.base_url}{request.path}?{query}&$skiptoken={start + compute.PAGE_SIZE}"
    return Response.json(200, body)


def _check_patch_settings(props: dict[str, Any]) -> None:
    profile = props.get("osProfile")
    if profile is None:
        return
    if not isinstance(profile, dict):
        raise ArmError(400, "InvalidParameter", "The value of 'properties.osProfile' is invalid.",
                       target="properties.osProfile")
    for key in ("windowsConfiguration", "linuxConfiguration"):
        settings = ((profile.get(key) or {}).get("patchSettings")) or {}
        target = f"properties.osProfile.{key}.patchSettings"
        if settings.get("patchMode") is not None and settings["patchMode"] not in _PATCH_MODES:
            raise ArmError(400, "InvalidParameter", f"The value '{settings['patchMode']}' of '{target}.patchMode' is "
                           f"not valid. Allowed values: {', '.join(_PATCH_MODES)}.", target=f"{target}.patchMode")
        if settings.get("assessmentMode") is not None and settings["assessmentMode"] not in _ASSESSMENT_MODES:
            raise ArmError(400, "InvalidParameter", f"The value '{settings['assessmentMode']}' of '{target}."
                           f"assessmentMode' is not valid. Allowed values: {', '.join(_ASSESSMENT_MODES)}.",
                           target=f"{target}.assessmentMode")


def machine_patch(ctx: Context, request: Request) -> Response:
    """Machines_Update: synchronous, 200 with the machine (Machines_Update example)."""
    patch = request.json_object()
    with ctx.state.lock:
        current = _existing(ctx, request)
        props = patch.get("properties") or {}
        if not isinstance(props, dict):
            raise ArmError(400, "InvalidParameter", "The value of 'properties' is invalid.", target="properties")
        unknown = sorted(set(props) - set(_UPDATABLE))
        if unknown:
            raise ArmError(400, "InvalidParameter", f"The property 'properties.{unknown[0]}' can't be updated.",
                           target=f"properties.{unknown[0]}")
        _check_patch_settings(props)
        merged = deep(current)
        if isinstance(patch.get("tags"), dict):
            merged["tags"] = dict(patch["tags"])
        if props:
            merged["properties"] = merge_patch(merged.get("properties") or {}, props)
        for key in ("identity", "kind"):
            if key in patch:
                merged[key] = deep(patch[key])
        ctx.state.put(str(current["id"]), merged)
    return Response.json(200, merged)


# ---------------------------------------------------------------------------------------------
# assessPatches / installPatches


def _extension_id(machine: dict[str, Any]) -> str:
    return f"{machine['id']}/extensions/{EXTENSIONS[os_type(machine).lower()][0]}"


def extension_body(resource_id: str, location: str, name: str, version: str, state: str, *,
                   message: str | None = None) -> dict[str, Any]:
    return {"id": resource_id, "name": name, "type": EXT_TYPE, "location": location,
            "properties": {"publisher": PUBLISHER, "type": name, "typeHandlerVersion": version,
                           "autoUpgradeMinorVersion": True, "enableAutomaticUpgrade": True, "settings": {},
                           "provisioningState": state,
                           "instanceView": {"name": name, "type": name, "typeHandlerVersion": version, "status": {
                               "code": "success" if state == "Succeeded" else "failed",
                               "level": "Info" if state == "Succeeded" else "Error",
                               "displayStatus": "Provisioning succeeded" if state == "Succeeded" else
                               f"Provisioning {state.lower()}",
                               "message": message or ("Extension installed successfully." if state == "Succeeded"
                                                      else f"Extension {name} is {state.lower()}."),
                               "time": iso(utcnow())}}}}


def _extension_failure(ctx: Context, machine: dict[str, Any]) -> dict[str, Any] | None:
    extension_id = _extension_id(machine)
    found = ctx.state.get(extension_id)
    if found is None:  # troubleshoot guide: an on-demand assessment or patching installs the extension
        name, version = EXTENSIONS[os_type(machine).lower()]
        ctx.state.put(extension_id, extension_body(extension_id, str(machine.get("location")), name, version,
                                                   "Succeeded"))
        return None
    props = found.get("properties") or {}
    if props.get("provisioningState") == "Succeeded":
        return None
    message = ((props.get("instanceView") or {}).get("status") or {}).get("message", "")
    return {"code": "ExtensionOperationFailed", "message": f"The extension '{found.get('name')}' is in the "
            f"'{props.get('provisioningState')}' state: {message}"}


def machine_assess(ctx: Context, request: Request) -> Response:
    with ctx.state.lock:
        machine = _existing(ctx, request)
        resource_id = str(machine["id"])
        kind = os_type(machine)
        activity = stable_guid("assessment", resource_id, str(utcnow().timestamp()))
        started = utcnow()

        def complete(op: AsyncOperation) -> None:
            current = ctx.state.get(resource_id)
            if current is None:
                op.status, op.error = "Failed", {"code": "ResourceNotFound", "message": "The machine no longer exists."}
                return
            failure, status, error, facts = compute.finish_assessment(
                ctx, current, kind, _extension_failure(ctx, current), activity=activity, start=started)
            if failure is not None or facts is None:
                op.status, op.error = "Failed", failure
                return
            op.result = {"status": status, "assessmentActivityId": activity, "rebootPending": facts["reboot_pending"],
                         "availablePatchCountByClassification": patching.counts(facts["patches"]),
                         "startDateTime": iso(started), "lastModifiedDateTime": iso(facts["end"]),
                         "startedBy": "User", "patchServiceUsed": patching.patch_service(kind), "osType": kind,
                         "errorDetails": compute.api_error(error)}

        operation = ctx.state.start_operation("arc-assess", resource_id, PROVIDER, str(machine.get("location")),
                                              complete)
        operation.hold = _hold(ctx, resource_id)
    return Response.empty(202, _headers(ctx, request, operation, asynchronous=False))


def machine_install(ctx: Context, request: Request) -> Response:
    body = request.json_object()
    with ctx.state.lock:
        machine = _existing(ctx, request)
        kind = os_type(machine)
        params = compute.check_install_parameters(body, kind)
        resource_id = str(machine["id"])
        activity = stable_guid("installation", resource_id, str(utcnow().timestamp()))
        started = utcnow()

        def complete(op: AsyncOperation) -> None:
            current = ctx.state.get(resource_id)
            if current is None:
                op.status, op.error = "Failed", {"code": "ResourceNotFound", "message": "The machine no longer exists."}
                return
            outcome = ctx.state.pop_patch_outcome(resource_id, "install")
            failure = _extension_failure(ctx, current) or (dict(outcome.lro_error) if outcome and outcome.lro_error
                                                           else None)
            if failure is not None:
                op.status, op.error = "Failed", failure
                return
            done = compute.record_installation(ctx, current, kind, activity=activity, body=body, params=params,
                                               outcome=outcome, started_by="User", start=started)
            summary = done["summary"]
            op.result = {"status": summary["status"], "installationActivityId": activity,
                         "rebootStatus": summary["rebootStatus"],
                         "maintenanceWindowExceeded": summary["maintenanceWindowExceeded"],
                         **{k: summary[k] for k in ("excludedPatchCount", "notSelectedPatchCount", "pendingPatchCount",
                                                    "installedPatchCount", "failedPatchCount")},
                         "startDateTime": iso(started), "lastModifiedDateTime": iso(done["end"]), "startedBy": "User",
                         "patchServiceUsed": patching.patch_service(kind), "osType": kind,
                         "errorDetails": compute.api_error(summary["error"])}

        operation = ctx.state.start_operation("arc-install", resource_id, PROVIDER, str(machine.get("location")),
                                              complete)
        operation.hold = _hold(ctx, resource_id)
    return Response.empty(202, _headers(ctx, request, operation, asynchronous=False))


# ---------------------------------------------------------------------------------------------
# MachineExtensions_Get / _List / _Delete


def _machine_extension_id(request: Request) -> str:
    return f"{machine_id(request)}/extensions/{request.param('extension')}"


def extension_get(ctx: Context, request: Request) -> Response:
    with ctx.state.lock:
        _existing(ctx, request)
        ctx.state.observe_resource(_machine_extension_id(request))
        found = ctx.state.get(_machine_extension_id(request))
        if found is None:
            raise not_found(_machine_extension_id(request))
        return Response.json(200, found)


def extension_list(ctx: Context, request: Request) -> Response:
    with ctx.state.lock:
        machine = _existing(ctx, request)
        return Response.json(200, {"value": ctx.state.children(str(machine["id"]), "extensions")})


def extension_delete(ctx: Context, request: Request) -> Response:
    with ctx.state.lock:
        machine = _existing(ctx, request)
        extension_id = _machine_extension_id(request)
        found = ctx.state.get(extension_id)
        if found is None:
            return Response.empty(204)
        found.setdefault("properties", {})["provisioningState"] = "Deleting"
        ctx.state.put(extension_id, found)

        def complete(op: AsyncOperation) -> None:
            ctx.state.delete(extension_id)

        operation = ctx.state.start_operation("arc-extension-delete", extension_id, PROVIDER,
                                              str(machine.get("location")), complete)
        operation.hold = _hold(ctx, str(machine["id"]))
    return Response.empty(202, _headers(ctx, request, operation, asynchronous=True))


def operation_get(ctx: Context, request: Request) -> Response:
    require_subscription(ctx, request.param("subscription"))
    with ctx.state.lock:
        operation = ctx.state.observe_operation(request.param("operation"))
        if operation is None or operation.subscription.lower() != request.param("subscription").lower():
            raise ArmError(404, "OperationNotFound", f"The operation '{request.param('operation')}' was not found.")
        return compute.operation_answer(ctx, request, operation, request.param("kind").lower() == "operationresults")
