"""Azure VM Image Builder image templates (Microsoft.VirtualMachineImages 2025-10-01).

Long-running operations answer as the spec's `x-ms-long-running-operation-options` and examples say:
- PUT (create): 201, `Azure-AsyncOperation` + `Retry-After`; provisioningState Creating -> Succeeded;
  final-state-via azure-async-operation (the SDK then GETs the template).
- PATCH: 202 + `Azure-AsyncOperation` when `properties` change (provisioningState Updating); 200 at
  once for tags/identity only (the spec allows both).
- DELETE: 202 + `Location` (final-state-via location), 204 when absent.
- run / cancel: 202 + `Azure-AsyncOperation` + `Retry-After` (the spec's run example has only that header).
The operation status URL is `/subscriptions/{s}/providers/Microsoft.VirtualMachineImages/locations/
{location}/operations/{ID}` (the examples' shape); it answers 202 with `{"status": "InProgress"}` for
`poll_after` polls, then 200 with the terminal status (a failed build: `PackerBuildFailed`, as the
real service reports it). 202-while-running lets the same URL serve both polling styles.

Update in place is refused as the service refuses it: a PUT over an existing template is 409
"Update/Upgrade of image templates is currently not supported" (troubleshooting guide). PATCH may
change only what `ImageTemplateUpdateParameters` holds: tags, identity, properties.vmProfile and
properties.distribute.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.arm import list_of_type, not_found, require_resource_group, require_subscription
from sandbox.base import ArmError, Context, Request, Response
from sandbox.estate import RunOutcome
from sandbox.state import AsyncOperation
from sandbox.util import iso, stable_guid, utcnow

PROVIDER = "Microsoft.VirtualMachineImages"
_NAME = re.compile(r"^[A-Za-z0-9-_.]{1,64}$")
_SOURCES = {"PlatformImage": ("publisher", "offer", "sku", "version"), "ManagedImage": ("imageId",),
            "SharedImageVersion": ("imageVersionId",)}
_CUSTOMIZERS = ("Shell", "PowerShell", "WindowsRestart", "WindowsUpdate", "File")
_DISTRIBUTORS = {"ManagedImage": ("imageId", "location"), "SharedImage": ("galleryImageId",), "VHD": ()}
_RUN_OUTPUT = re.compile(r"^[A-Za-z0-9-_.]{1,64}$")
_STEPS = ("Queued", "Building", "Customizing", "Distributing")
CONFLICT = "Update/Upgrade of image templates is currently not supported"


def _invalid(path: str, problem: str) -> ArmError:
    return ArmError(400, "InvalidParameter", f"Invalid value for '{path}': {problem}", target=path)


def _template_id(request: Request) -> str:
    return (f"/subscriptions/{request.param('subscription')}/resourceGroups/{request.param('group')}/providers/"
            f"{PROVIDER}/imageTemplates/{request.param('name')}")


def _existing(ctx: Context, request: Request) -> dict[str, Any]:
    require_resource_group(ctx, request.param("subscription"), request.param("group"))
    template_id = _template_id(request)
    found = ctx.state.get(template_id)
    if found is None:
        raise not_found(template_id)
    return found


def _lro_headers(ctx: Context, request: Request, operation: AsyncOperation, header: str) -> dict[str, str]:
    url = (f"{request.base_url}/subscriptions/{operation.subscription}/providers/{PROVIDER}/locations/"
           f"{operation.location}/operations/{operation.id}?api-version={request.query.get('api-version', '')}")
    return {header: url, "Retry-After": str(ctx.lro_retry_after)}


# ---------------------------------------------------------------------------------------------
# validation (ImageTemplate / ImageTemplateUpdateParameters)


def _check_identity(identity: Any) -> dict[str, Any]:
    if not isinstance(identity, dict):
        raise _invalid("identity", "is required")
    kind = identity.get("type")
    if kind not in ("UserAssigned", "None"):
        raise _invalid("identity.type", f"'{kind}' is not UserAssigned or None")
    out = dict(identity)
    identities = identity.get("userAssignedIdentities") or {}
    if kind == "UserAssigned":
        if not isinstance(identities, dict) or len(identities) != 1:
            raise _invalid("identity.userAssignedIdentities", "exactly one user-assigned identity is required")
        out["userAssignedIdentities"] = {
            key: {"principalId": stable_guid(key.lower(), "principal"), "clientId": stable_guid(key.lower(), "client")}
            for key in identities}
    return out


def _check_vm_profile(profile: Any, path: str) -> dict[str, Any]:
    if not isinstance(profile, dict):
        raise _invalid(path, "an object is expected")
    size = profile.get("vmSize", "")
    if not isinstance(size, str):
        raise _invalid(f"{path}.vmSize", "a VM size name is expected")
    disk = profile.get("osDiskSizeGB", 0)
    if isinstance(disk, bool) or not isinstance(disk, int) or disk < 0:
        raise _invalid(f"{path}.osDiskSizeGB", "a non-negative integer is expected")
    identities = profile.get("userAssignedIdentities", [])
    if not isinstance(identities, list) or not all(isinstance(i, str) for i in identities):
        raise _invalid(f"{path}.userAssignedIdentities", "an array of resource ids is expected")
    vnet = profile.get("vnetConfig")
    if vnet is not None and (not isinstance(vnet, dict) or (vnet.get("containerInstanceSubnetId")
                                                             and not vnet.get("subnetId"))):
        raise _invalid(f"{path}.vnetConfig", "containerInstanceSubnetId may be given only with subnetId")
    return dict(profile)


def _check_distribute(value: Any, path: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise _invalid(path, "at least one distribution target is required")
    out = []
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(item, dict):
            raise _invalid(where, "an object is expected")
        kind = item.get("type")
        if kind not in _DISTRIBUTORS:
            raise _invalid(f"{where}.type", f"'{kind}' is not one of {', '.join(_DISTRIBUTORS)}")
        name = item.get("runOutputName")
        if not isinstance(name, str) or not _RUN_OUTPUT.match(name):
            raise _invalid(f"{where}.runOutputName", "is required and must match ^[A-Za-z0-9-_.]{1,64}$")
        for required in _DISTRIBUTORS[kind]:
            if not item.get(required):
                raise _invalid(f"{where}.{required}", "is required")
        if item.get("replicationRegions") and item.get("targetRegions"):
            raise _invalid(f"{where}.targetRegions", "can't be given together with replicationRegions")
        for r_index, region in enumerate(item.get("targetRegions") or []):
            if not isinstance(region, dict) or not region.get("name"):
                raise _invalid(f"{where}.targetRegions[{r_index}].name", "is required")
            count = region.get("replicaCount", 1)
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise _invalid(f"{where}.targetRegions[{r_index}].replicaCount", "must be at least 1")
        out.append(dict(item))
    names = [d["runOutputName"].lower() for d in out]
    if len(set(names)) != len(names):
        raise _invalid(path, "runOutputName values must be unique")
    return out


def _check_template(body: dict[str, Any]) -> dict[str, Any]:
    location = body.get("location")
    if not isinstance(location, str) or not location:
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.",
                       target="location")
    identity = _check_identity(body.get("identity"))
    props = body.get("properties")
    if not isinstance(props, dict):
        raise _invalid("properties", "is required")
    props = {k: v for k, v in props.items()
             if k not in ("provisioningState", "provisioningError", "lastRunStatus", "exactStagingResourceGroup")}
    source = props.get("source")
    if not isinstance(source, dict) or source.get("type") not in _SOURCES:
        raise _invalid("properties.source.type", f"must be one of {', '.join(_SOURCES)}")
    for required in _SOURCES[source["type"]]:
        if not source.get(required):
            raise _invalid(f"properties.source.{required}", "is required")
    for index, step in enumerate(props.get("customize") or []):
        if not isinstance(step, dict) or step.get("type") not in _CUSTOMIZERS:
            raise _invalid(f"properties.customize[{index}].type", f"must be one of {', '.join(_CUSTOMIZERS)}")
        if step["type"] in ("Shell", "PowerShell") and bool(step.get("scriptUri")) == bool(step.get("inline")):
            raise _invalid(f"properties.customize[{index}]", "exactly one of 'scriptUri' or 'inline' is required")
        if step["type"] == "PowerShell" and step.get("runAsSystem") and not step.get("runElevated"):
            raise _invalid(f"properties.customize[{index}].runAsSystem", "can be true only when runElevated is true")
    props["distribute"] = _check_distribute(props.get("distribute"), "properties.distribute")
    timeout = props.get("buildTimeoutInMinutes", 0)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 0 <= timeout <= 960:
        raise _invalid("properties.buildTimeoutInMinutes", f"{timeout!r} is not between 0 and 960")
    if "vmProfile" in props:
        props["vmProfile"] = _check_vm_profile(props["vmProfile"], "properties.vmProfile")
    tags = body.get("tags")
    if tags is not None and (not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values())):
        raise _invalid("tags", "an object of string values is expected")
    return {"location": location, "identity": identity, "tags": tags, "properties": props}


# ---------------------------------------------------------------------------------------------
# templates


def template_get(ctx: Context, request: Request) -> Response:
    require_resource_group(ctx, request.param("subscription"), request.param("group"))
    template_id = _template_id(request)
    with ctx.state.lock:
        ctx.state.observe_resource(template_id)
        found = ctx.state.get(template_id)
    if found is None:
        raise not_found(template_id)
    return Response.json(200, found)


def template_list(ctx: Context, request: Request) -> Response:
    return list_of_type(ctx, request, f"{PROVIDER}/imageTemplates")


def template_put(ctx: Context, request: Request) -> Response:
    require_resource_group(ctx, request.param("subscription"), request.param("group"))
    name = request.param("name")
    if not _NAME.match(name):
        raise _invalid("imageTemplateName", "must match ^[A-Za-z0-9-_.]{1,64}$")
    template_id = _template_id(request)
    body = request.json_object()
    with ctx.state.lock:
        if ctx.state.get(template_id) is not None:
            raise ArmError(409, "Conflict", CONFLICT)
        checked = _check_template(body)
        properties = dict(checked["properties"])
        properties["provisioningState"] = "Creating"
        if not properties.get("stagingResourceGroup"):
            properties["exactStagingResourceGroup"] = (
                f"/subscriptions/{request.param('subscription')}/resourceGroups/IT_{request.param('group')}_{name}_"
                f"{stable_guid(template_id.lower(), 'staging')}")
        else:
            properties["exactStagingResourceGroup"] = properties["stagingResourceGroup"]
        template: dict[str, Any] = {"id": template_id, "name": name, "type": f"{PROVIDER}/imageTemplates",
                                    "location": checked["location"], "identity": checked["identity"],
                                    "properties": properties}
        if checked["tags"] is not None:
            template["tags"] = checked["tags"]
        ctx.state.put(template_id, template)

        def complete(op: AsyncOperation) -> None:
            current = ctx.state.get(template_id)
            if current is not None:
                current["properties"]["provisioningState"] = "Succeeded"
                ctx.state.put(template_id, current)

        operation = ctx.state.start_operation("imageTemplates.put", template_id, PROVIDER, checked["location"],
                                              complete)
    return Response.json(201, template, _lro_headers(ctx, request, operation, "Azure-AsyncOperation"))


_PATCHABLE = {"tags", "identity", "properties"}
_PATCHABLE_PROPERTIES = {"vmProfile", "distribute"}


def template_patch(ctx: Context, request: Request) -> Response:
    body = request.json_object()
    for key in body:
        if key not in _PATCHABLE:
            raise _invalid(key, "only tags, identity, properties.vmProfile and properties.distribute can be "
                                "updated on an image template")
    props = body.get("properties")
    if props is not None:
        if not isinstance(props, dict):
            raise _invalid("properties", "an object is expected")
        for key in props:
            if key not in _PATCHABLE_PROPERTIES:
                raise _invalid(f"properties.{key}", "only tags, identity, properties.vmProfile and "
                                                    "properties.distribute can be updated on an image template")
    with ctx.state.lock:
        template = _existing(ctx, request)
        if template["properties"].get("lastRunStatus", {}).get("runState") in ("Running", "Canceling"):
            raise ArmError(409, "Conflict", "The image template can't be updated while a build is running.")
        if "tags" in body:
            tags = body["tags"]
            if tags is not None and (not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values())):
                raise _invalid("tags", "an object of string values is expected")
            template["tags"] = tags or {}
        if "identity" in body:
            template["identity"] = _check_identity(body["identity"])
        if not props:
            ctx.state.put(template["id"], template)
            return Response.json(200, template)
        if "vmProfile" in props:
            merged = {**template["properties"].get("vmProfile", {}), **(props["vmProfile"] or {})}
            template["properties"]["vmProfile"] = _check_vm_profile(merged, "properties.vmProfile")
        if "distribute" in props:
            template["properties"]["distribute"] = _check_distribute(props["distribute"], "properties.distribute")
        template["properties"]["provisioningState"] = "Updating"
        ctx.state.put(template["id"], template)
        template_id = template["id"]

        def complete(op: AsyncOperation) -> None:
            current = ctx.state.get(template_id)
            if current is not None:
                current["properties"]["provisioningState"] = "Succeeded"
                ctx.state.put(template_id, current)

        operation = ctx.state.start_operation("imageTemplates.patch", template_id, PROVIDER, template["location"],
                                              complete)
    return Response.empty(202, _lro_headers(ctx, request, operation, "Azure-AsyncOperation"))


def template_delete(ctx: Context, request: Request) -> Response:
    require_resource_group(ctx, request.param("subscription"), request.param("group"))
    template_id = _template_id(request)
    with ctx.state.lock:
        template = ctx.state.get(template_id)
        if template is None:
            return Response.empty(204)
        template["properties"]["provisioningState"] = "Deleting"
        ctx.state.put(template_id, template)

        def complete(op: AsyncOperation) -> None:
            ctx.state.delete(template_id)

        operation = ctx.state.start_operation("imageTemplates.delete", template_id, PROVIDER, template["location"],
                                              complete)
    return Response.empty(202, _lro_headers(ctx, request, operation, "Location"))


# ---------------------------------------------------------------------------------------------
# run, cancel, run outputs


def _log_account(template: dict[str, Any]) -> str:
    """The template's staging storage account: the one its earlier logs are in, as the service reuses it."""
    message = str(template["properties"].get("lastRunStatus", {}).get("message", ""))
    previous = re.search(r"/blob/([a-z0-9]{3,24})/packerlogs/", message)
    if previous:
        return previous.group(1)
    return stable_guid(str(template["id"]).lower(), "storage").replace("-", "")[:24]


def _finish_run(ctx: Context, template_id: str, op: AsyncOperation, outcome: RunOutcome, account: str) -> None:
    template = ctx.state.get(template_id)
    if template is None:
        op.status, op.error = "Failed", {"code": "ResourceNotFound", "message": "The image template was deleted."}
        return
    props = template["properties"]
    status = props.get("lastRunStatus", {})
    if status.get("runState") == "Canceling":
        status.update({"runState": "Canceled", "endTime": iso(utcnow(), 9),
                       "message": "The image build was canceled."})
        props["lastRunStatus"] = status
        ctx.state.put(template_id, template)
        op.status = "Canceled"
        op.error = {"code": "OperationCanceled", "message": "The image build was canceled."}
        return
    message = outcome.message
    if outcome.log is not None:
        log_guid = stable_guid(template_id.lower(), op.id, "log")
        ctx.state.put_blob(account, "packerlogs", f"{log_guid}/customization.log", outcome.log)
        message = message.replace("{log_url}", f"{ctx.state.blob_endpoint}/{account}/packerlogs/{log_guid}/"
                                               "customization.log")
    message = message.replace("{operation_id}", op.id.lower())
    status.update({"runState": outcome.run_state, "endTime": iso(utcnow(), 9), "message": message})
    if outcome.run_sub_state:
        status["runSubState"] = outcome.run_sub_state
    else:
        status.pop("runSubState", None)
    props["lastRunStatus"] = status
    ctx.state.put(template_id, template)
    if outcome.run_state in ("Succeeded", "PartiallySucceeded"):
        for target in props.get("distribute", []):
            artifact: dict[str, Any] = {"provisioningState": "Succeeded"}
            if target.get("type") == "SharedImage":
                version = f"0.{utcnow().strftime('%y%j')}.{utcnow().strftime('%H%M%S')}"
                artifact["artifactId"] = f"{target['galleryImageId']}/versions/{version}"
            elif target.get("type") == "ManagedImage":
                artifact["artifactId"] = target["imageId"]
            else:
                artifact["artifactUri"] = target.get("uri") or (
                    f"https://{stable_guid(template_id.lower(), 'vhd').replace('-', '')[:24]}.blob.core.windows.net/"
                    f"vhds/{target['runOutputName']}.vhd")
            name = target["runOutputName"]
            ctx.state.put(f"{template_id}/runOutputs/{name}", {
                "id": f"{template_id}/runOutputs/{name}", "name": name,
                "type": f"{PROVIDER}/imageTemplates/runOutputs", "properties": artifact})
        return
    op.status = "Failed" if outcome.run_state == "Failed" else outcome.run_state
    op.error = {"code": outcome.error_code, "message": message}


def template_run(ctx: Context, request: Request) -> Response:
    with ctx.state.lock:
        template = _existing(ctx, request)
        props = template["properties"]
        if props.get("provisioningState") != "Succeeded":
            raise ArmError(409, "Conflict", "The image template can't be run: its provisioning state is "
                                            f"'{props.get('provisioningState')}'.")
        if props.get("lastRunStatus", {}).get("runState") in ("Running", "Canceling"):
            raise ArmError(409, "Conflict", "A build of this image template is already running.")
        template_id = template["id"]
        outcome = ctx.state.pop_next_run(template_id)
        account = _log_account(template)
        props["lastRunStatus"] = {"startTime": iso(utcnow(), 9), "runState": "Running", "runSubState": "Queued",
                                  "message": ""}
        ctx.state.put(template_id, template)

        def progress(op: AsyncOperation, observed: int) -> None:
            current = ctx.state.get(template_id)
            if current is not None and current["properties"].get("lastRunStatus", {}).get("runState") == "Running":
                current["properties"]["lastRunStatus"]["runSubState"] = _STEPS[min(observed, len(_STEPS) - 1)]
                ctx.state.put(template_id, current)

        def complete(op: AsyncOperation) -> None:
            _finish_run(ctx, template_id, op, outcome, account)

        operation = ctx.state.start_operation("imageTemplates.run", template_id, PROVIDER, template["location"],
                                              complete, progress=progress)
    return Response.empty(202, _lro_headers(ctx, request, operation, "Azure-AsyncOperation"))


def template_cancel(ctx: Context, request: Request) -> Response:
    with ctx.state.lock:
        template = _existing(ctx, request)
        status = template["properties"].get("lastRunStatus", {})
        if status.get("runState") != "Running":
            raise ArmError(409, "Conflict", "There is no running build of this image template to cancel.")
        status["runState"] = "Canceling"
        ctx.state.put(template["id"], template)
        template_id = template["id"]

        def complete(op: AsyncOperation) -> None:
            for run in ctx.state.pending_operations(template_id):
                if run.kind == "imageTemplates.run":
                    while not run.done:
                        ctx.state.observe_operation(run.id)

        operation = ctx.state.start_operation("imageTemplates.cancel", template_id, PROVIDER, template["location"],
                                              complete)
    return Response.empty(202, _lro_headers(ctx, request, operation, "Azure-AsyncOperation"))


def run_outputs_list(ctx: Context, request: Request) -> Response:
    template = _existing(ctx, request)
    return Response.json(200, {"value": ctx.state.children(template["id"], "runOutputs")})


def run_output_get(ctx: Context, request: Request) -> Response:
    template = _existing(ctx, request)
    output_id = f"{template['id']}/runOutputs/{request.param('output')}"
    found = ctx.state.get(output_id)
    if found is None:
        raise not_found(output_id)
    return Response.json(200, found)


def operation_get(ctx: Context, request: Request) -> Response:
    require_subscription(ctx, request.param("subscription"))
    with ctx.state.lock:
        operation = ctx.state.observe_operation(request.param("operation"))
        if operation is None or operation.subscription.lower() != request.param("subscription").lower():
            raise ArmError(404, "OperationNotFound", f"The operation '{request.param('operation')}' was not found.")
        body = operation.body()
        done = operation.done
    if done:
        return Response.json(200, body)
    return Response.json(202, body, {"Retry-After": str(ctx.lro_retry_after)})
