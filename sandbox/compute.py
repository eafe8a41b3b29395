"""Azure virtual machines as Update Manager uses them (Microsoft.Compute 2026-04-01, the api-version
azure-mgmt-compute 39 sends): GET (`$expand=instanceView`), list by group and subscription (paged),
`instanceView`, PATCH (VirtualMachineUpdate), start / restart / deallocate / powerOff, assessPatches,
installPatches; VM extensions GET / list / DELETE.

Long-running operations answer as Compute does (spec examples VirtualMachine_*_MinimumSet_Gen,
VirtualMachine_AssessPatches/InstallPatches): POSTs 202 with `Azure-AsyncOperation` and `Location`
(`.../providers/Microsoft.Compute/locations/{loc}/operations/{id}`, the Location one with
`monitor=true`); PATCH 200 with the VM (provisioningState Updating) and the same headers. The status
URL answers 200 `{status: InProgress}` for `poll_after` polls, then the terminal status (with
`properties.output` for assess/install); the monitor URL answers 202 while running and 200 with the
operation's result (VirtualMachineAssessPatchesResult / VirtualMachineInstallPatchesResult) at the end.
A failed operation carries Compute's error, e.g. `VMGuestPatchInternalError` "An internal execution error
occurred. Please retry later." (Azure/azure-rest-api-specs#31144).

The VM PATCH refusals the service really makes (sources in the comments where they are raised):
- 409 PropertyChangeNotAllowed "Changing property 'windowsConfiguration.enableAutomaticUpdates' is not
  allowed." when enableAutomaticUpdates is sent with a value other than the VM's;
- 409 PropertyChangeNotAllowed "Changing property 'osProfile' is not allowed." for a VM that has no
  osProfile (created from a specialised / attached OS disk);
- 400 InvalidParameter "AutomaticByPlatformSettings cannot be set if the PatchMode is not
  'AutomaticByPlatform'.";
- 400 InvalidParameter "The patchMode 'AutomaticByOS' is invalid. For patchMode 'AutomaticByOS', the
  property 'enableAutomaticUpdates' must be set to true.".
Operations the guest must run (assess/install) on a VM that is not running are refused with 409
OperationNotAllowed, and extension changes on it with "Cannot modify extensions in the VM when the VM is
not running.". An assessment reinstalls a missing patch extension; one that is present but Failed makes
the operation fail (Update Manager troubleshoot guide: remove it, then assess again).
"""

from __future__ import annotations

import re
from typing import Any

from sandbox import patching
from sandbox.arm import not_found, require_resource_group, require_subscription
from sandbox.base import ArmError, Context, Request, Response
from sandbox.state import AsyncOperation
from sandbox.util import deep, iso, merge_patch, parse_duration, stable_guid, utcnow

API = ("2026-04-01",)
PROVIDER = "Microsoft.Compute"
VM_TYPE = "Microsoft.Compute/virtualMachines"
EXT_TYPE = "Microsoft.Compute/virtualMachines/extensions"
PAGE_SIZE = 200
_WINDOWS_MODES = ("Manual", "AutomaticByOS", "AutomaticByPlatform")
_LINUX_MODES = ("ImageDefault", "AutomaticByPlatform")
_ASSESSMENT_MODES = ("ImageDefault", "AutomaticByPlatform")
_ABP_REBOOT = ("Unknown", "IfRequired", "Never", "Always")


def vm_id(request: Request) -> str:
    return (f"/subscriptions/{request.param('subscription')}/resourceGroups/{request.param('group')}/providers/"
            f"{VM_TYPE}/{request.param('name')}")


def os_type(vm: dict[str, Any]) -> str:
    os_disk = ((vm.get("properties") or {}).get("storageProfile") or {}).get("osDisk") or {}
    return "Windows" if str(os_disk.get("osType", "")).lower() == "windows" else "Linux"


def _existing(ctx: Context, request: Request) -> dict[str, Any]:
    require_resource_group(ctx, request.param("subscription"), request.param("group"))
    found = ctx.state.get(vm_id(request))
    if found is None:
        raise not_found(vm_id(request))
    return found


def view_of(ctx: Context, vm: dict[str, Any]) -> dict[str, Any]:
    """The VM's instance view (a VM seeded without one is running with its agent Ready)."""
    found = ctx.state.instance_view(str(vm["id"]))
    if found is None:
        extensions = [_extension_view_for(e) for e in ctx.state.children(str(vm["id"]), "extensions")]
        found = patching.instance_view(vm, extensions=extensions, when=utcnow())
        ctx.state.set_instance_view(str(vm["id"]), found)
    return found


def _extension_view_for(extension: dict[str, Any]) -> dict[str, Any]:
    props = extension.get("properties") or {}
    handler = f"{props.get('publisher', '')}.{props.get('type', '')}"
    return patching.extension_view(str(extension.get("name")), handler, str(props.get("typeHandlerVersion", "")),
                                   str(props.get("provisioningState", "Succeeded")), when=utcnow())


def _lro_headers(ctx: Context, request: Request, operation: AsyncOperation) -> dict[str, str]:
    base = (f"{request.base_url}/subscriptions/{operation.subscription}/providers/{PROVIDER}/locations/"
            f"{operation.location}/operations/{operation.id}")
    version = request.query.get("api-version", API[0])
    return {"Azure-AsyncOperation": f"{base}?api-version={version}",
            "Location": f"{base}?monitor=true&api-version={version}", "Retry-After": str(ctx.lro_retry_after)}


def _with_view(ctx: Context, vm: dict[str, Any], expand: str) -> dict[str, Any]:
    body: dict[str, Any] = deep(vm)
    if "instanceview" in expand.lower().replace(" ", "").split(","):
        body.setdefault("properties", {})["instanceView"] = view_of(ctx, vm)
    return body


# ---------------------------------------------------------------------------------------------
# VirtualMachines_Get / _List / _ListAll / _InstanceView


def vm_get(ctx: Context, request: Request) -> Response:
    with ctx.state.lock:
        ctx.state.observe_resource(vm_id(request))
        vm = _existing(ctx, request)
        body = _with_view(ctx, vm, request.query.get("$expand", ""))
        extensions = ctx.state.children(str(vm["id"]), "extensions")
    if extensions:
        body["resources"] = extensions
    return Response.json(200, body)


def vm_list(ctx: Context, request: Request) -> Response:
    """VirtualMachines_List (group) / _ListAll (subscription): pages of PAGE_SIZE with `nextLink`."""
    subscription = request.param("subscription")
    group = request.params.get("group")
    if group:
        require_resource_group(ctx, subscription, group)
    else:
        require_subscription(ctx, subscription)
    ids = ctx.state.ids_of_type(subscription, VM_TYPE, group)
    try:
        start = int(request.query.get("$skiptoken", "0") or 0)
    except ValueError:
        raise ArmError(400, "InvalidParameter", "The value of parameter '$skiptoken' is invalid.",
                       target="$skiptoken") from None
    expand = request.query.get("$expand", "")
    status_only = request.query.get("statusOnly", "").lower() == "true"
    page = []
    with ctx.state.lock:
        for key in ids[start:start + PAGE_SIZE]:
            vm = ctx.state.get(key)
            if vm is not None:
                page.append(_with_view(ctx, vm, "instanceView" if status_only else expand))
    body: dict[str, Any] = {"value": page}
    if start + PAGE_SIZE < len(ids):
        query = "&".join(f"{k}={v}" for k, v in request.query.items() if k.lower() != "$skiptoken")
        body["nextLink"] = f"{request.base_url}{request.path}?{query}&$skiptoken={start + PAGE_SIZE}"
    return Response.json(200, body)


def vm_instance_view(ctx: Context, request: Request) -> Response:
    with ctx.state.lock:
        ctx.state.observe_resource(vm_id(request))
        vm = _existing(ctx, request)
        return Response.json(200, view_of(ctx, vm))


# ---------------------------------------------------------------------------------------------
# VirtualMachines_Update (PATCH)


def _config_key(vm: dict[str, Any]) -> str:
    return "windowsConfiguration" if os_type(vm) == "Windows" else "linuxConfiguration"


def _check_patch(current: dict[str, Any], patch: dict[str, Any]) -> None:
    """The refusals Compute makes before it changes anything."""
    props = patch.get("properties") or {}
    if not isinstance(props, dict):
        raise ArmError(400, "InvalidParameter", "The value of 'properties' is invalid: an object is expected.",
                       target="properties")
    if "osProfile" not in props or props.get("osProfile") is None:
        return
    os_patch = props["osProfile"]
    stored = (current.get("properties") or {}).get("osProfile")
    if not stored:
        # A VM attached from a specialised OS disk has no osProfile, and one can't be added: Compute answers
        # 409 PropertyChangeNotAllowed "Changing property 'osProfile' is not allowed." (MicrosoftDocs/azure-docs
        # #12602 and #21850: "You still don't get an OS profile if you create a VM using a specialized disk").
        raise ArmError(409, "PropertyChangeNotAllowed", "Changing property 'osProfile' is not allowed.",
                       target="osProfile")
    if not isinstance(os_patch, dict):
        raise ArmError(400, "InvalidParameter", "The value of 'osProfile' is invalid: an object is expected.",
                       target="osProfile")
    windows_patch = os_patch.get("windowsConfiguration") or {}
    if isinstance(windows_patch, dict) and windows_patch.get("enableAutomaticUpdates") is not None:
        current_value = (stored.get("windowsConfiguration") or {}).get("enableAutomaticUpdates", True)
        if bool(windows_patch["enableAutomaticUpdates"]) != bool(current_value):
            # enableAutomaticUpdates is set at creation: a PATCH that sends another value is refused with 409
            # PropertyChangeNotAllowed (MicrosoftDocs/azure-docs#112633, following the Update Manager prerequisite
            # steps; ansible-collections/azure#1332 and aztfmod/terraform-azurerm-caf#531: toggling it from false
            # fails "even with az cli"). The same value sent again changes nothing and passes here: the reports
            # are all of a different value (the sender's default) reaching a VM set the other way.
            raise ArmError(409, "PropertyChangeNotAllowed",
                           "Changing property 'windowsConfiguration.enableAutomaticUpdates' is not allowed.",
                           target="windowsConfiguration.enableAutomaticUpdates")


def _check_patch_settings(vm: dict[str, Any]) -> None:
    """PatchSettings / LinuxPatchSettings of the merged VM, as Compute validates them."""
    key = _config_key(vm)
    config = ((vm.get("properties") or {}).get("osProfile") or {}).get(key) or {}
    settings = config.get("patchSettings") or {}
    if not isinstance(settings, dict):
        raise ArmError(400, "InvalidParameter", f"The value of '{key}.patchSettings' is invalid.",
                       target=f"{key}.patchSettings")
    modes = _WINDOWS_MODES if key == "windowsConfiguration" else _LINUX_MODES
    mode = settings.get("patchMode")
    if mode is not None and mode not in modes:
        raise ArmError(400, "InvalidParameter", f"The value '{mode}' of property '{key}.patchSettings.patchMode' is "
                       f"not valid. Allowed values: {', '.join(modes)}.", target=f"{key}.patchSettings.patchMode")
    assessment = settings.get("assessmentMode")
    if assessment is not None and assessment not in _ASSESSMENT_MODES:
        raise ArmError(400, "InvalidParameter", f"The value '{assessment}' of property '{key}.patchSettings."
                       f"assessmentMode' is not valid. Allowed values: {', '.join(_ASSESSMENT_MODES)}.",
                       target=f"{key}.patchSettings.assessmentMode")
    automatic = settings.get("automaticByPlatformSettings")
    if automatic:
        if mode != "AutomaticByPlatform":
            # Azure/bicep-registry-modules#2081 (a Linux VM with patchMode ImageDefault): code InvalidParameter,
            # target linuxConfiguration.patchSettings.automaticByPlatformSettings.
            raise ArmError(400, "InvalidParameter", "AutomaticByPlatformSettings cannot be set if the PatchMode is "
                           "not 'AutomaticByPlatform'.", target=f"{key}.patchSettings.automaticByPlatformSettings")
        reboot = automatic.get("rebootSetting") if isinstance(automatic, dict) else None
        if reboot is not None and reboot not in _ABP_REBOOT:
            raise ArmError(400, "InvalidParameter", f"The value '{reboot}' of property '{key}.patchSettings."
                           "automaticByPlatformSettings.rebootSetting' is not valid.",
                           target=f"{key}.patchSettings.automaticByPlatformSettings.rebootSetting")
    if key == "windowsConfiguration" and mode == "AutomaticByOS" and config.get("enableAutomaticUpdates") is False:
        # kumarvna/terraform-azurerm-virtual-machine#13: Code="InvalidParameter", Target=
        # "windowsConfiguration.patchSettings.patchMode".
        raise ArmError(400, "InvalidParameter", "The patchMode 'AutomaticByOS' is invalid. For patchMode "
                       "'AutomaticByOS', the property 'enableAutomaticUpdates' must be set to true.",
                       target="windowsConfiguration.patchSettings.patchMode")


def vm_patch(ctx: Context, request: Request) -> Response:
    patch = request.json_object()
    with ctx.state.lock:
        current = _existing(ctx, request)
        _check_patch(current, patch)
        merged = deep(current)
        if isinstance(patch.get("tags"), dict):
            merged["tags"] = dict(patch["tags"])  # ARM PATCH replaces tags as a whole
        for key in ("properties", "identity", "plan", "zones"):
            if key in patch:
                merged[key] = merge_patch(merged.get(key), patch[key]) if isinstance(patch[key], dict) else \
                    deep(patch[key])
        touched = "osProfile" in (patch.get("properties") or {})
        if touched:
            _check_patch_settings(merged)
        merged.setdefault("properties", {})["provisioningState"] = "Updating"
        ctx.state.put(str(current["id"]), merged)
        view = view_of(ctx, current)
        if touched:
            view.setdefault("patchStatus", {})["configurationStatuses"] = patching.patch_configuration_statuses(
                False, utcnow())
            ctx.state.set_instance_view(str(current["id"]), view)
        resource_id = str(current["id"])

        def complete(op: AsyncOperation) -> None:
            stored = ctx.state.get(resource_id)
            if stored is None:
                return
            stored.setdefault("properties", {})["provisioningState"] = "Succeeded"
            ctx.state.put(resource_id, stored)
            done_view = ctx.state.instance_view(resource_id)
            if done_view is not None and touched:
                done_view.setdefault("patchStatus", {})["configurationStatuses"] = \
                    patching.patch_configuration_statuses(True, utcnow())
                ctx.state.set_instance_view(resource_id, done_view)

        operation = ctx.state.start_operation("vm-update", resource_id, PROVIDER, str(current.get("location")),
                                              complete)
    return Response.json(200, merged, _lro_headers(ctx, request, operation))


# ---------------------------------------------------------------------------------------------
# power: start / restart / deallocate / powerOff


def _not_running(name: str, operation: str, power: str) -> ArmError:
    if power in ("deallocated", "deallocating"):
        # Compute's wording for an operation a deallocated VM can't take ("(OperationNotAllowed) Operation 'PUT'
        # is not allowed on VM '...' since the VM is deallocated or marked to be deallocated.").
        return ArmError(409, "OperationNotAllowed", f"Operation '{operation}' is not allowed on VM '{name}' since "
                        "the VM is deallocated or marked to be deallocated.")
    return ArmError(409, "OperationNotAllowed", f"Operation '{operation}' is not allowed on VM '{name}' since the VM "
                    f"is not running (power state '{power}').")


def _set_power(ctx: Context, resource_id: str, power: str) -> None:
    view = ctx.state.instance_view(resource_id)
    vm = ctx.state.get(resource_id)
    if view is None or vm is None:
        return
    extensions = view.get("extensions") or []
    fresh = patching.instance_view(vm, power=power, agent_ready=True, extensions=extensions,
                                   when=utcnow(), patch_status=view.get("patchStatus"), os_name=view.get("osName"))
    ctx.state.set_instance_view(resource_id, fresh)


def _power_action(ctx: Context, request: Request, action: str, transient: str, final: str) -> Response:
    with ctx.state.lock:
        vm = _existing(ctx, request)
        view = view_of(ctx, vm)
        power = patching.power_of(view)
        if action == "restart" and power in ("deallocated", "deallocating"):
            raise _not_running(str(vm["name"]), action, power)
        resource_id = str(vm["id"])

        def progress(op: AsyncOperation, observed: int) -> None:
            _set_power(ctx, resource_id, transient)

        def complete(op: AsyncOperation) -> None:
            _set_power(ctx, resource_id, final)
            if action == "restart":
                _clear_reboot_pending(ctx, resource_id)
                set_reboot_pending(ctx, resource_id, False)

        operation = ctx.state.start_operation(f"vm-{action}", resource_id, PROVIDER, str(vm.get("location")),
                                              complete, progress=progress)
        _set_power(ctx, resource_id, transient)
    return Response.empty(202, _lro_headers(ctx, request, operation))


def _clear_reboot_pending(ctx: Context, resource_id: str) -> None:
    view = ctx.state.instance_view(resource_id)
    if view is None:
        return
    summary = (view.get("patchStatus") or {}).get("availablePatchSummary")
    if isinstance(summary, dict):
        summary["rebootPending"] = False
        ctx.state.set_instance_view(resource_id, view)


def vm_start(ctx: Context, request: Request) -> Response:
    return _power_action(ctx, request, "start", "starting", "running")


def vm_restart(ctx: Context, request: Request) -> Response:
    return _power_action(ctx, request, "restart", "starting", "running")


def vm_deallocate(ctx: Context, request: Request) -> Response:
    return _power_action(ctx, request, "deallocate", "deallocating", "deallocated")


def vm_power_off(ctx: Context, request: Request) -> Response:
    return _power_action(ctx, request, "powerOff", "stopping", "stopped")


# ---------------------------------------------------------------------------------------------
# assessPatches / installPatches


def _patch_extension(ctx: Context, vm: dict[str, Any]) -> dict[str, Any] | None:
    name = patching.PATCH_EXTENSIONS[os_type(vm).lower()][0]
    return ctx.state.get(f"{vm['id']}/extensions/{name}")


def install_patch_extension(ctx: Context, vm: dict[str, Any]) -> None:
    """What an on-demand operation does when the patch extension is missing: installs it."""
    name, version, full = patching.PATCH_EXTENSIONS[os_type(vm).lower()]
    resource_id = f"{vm['id']}/extensions/{name}"
    ctx.state.put(resource_id, extension_body(resource_id, str(vm.get("location")), name, version, "Succeeded"))
    view = view_of(ctx, vm)
    others = [e for e in view.get("extensions") or [] if e.get("name") != name]
    view["extensions"] = [*others, patching.extension_view(name, f"{patching.PATCH_PUBLISHER}.{name}", full,
                                                           "Succeeded", when=utcnow())]
    ctx.state.set_instance_view(str(vm["id"]), view)


def extension_body(resource_id: str, location: str, name: str, version: str, state: str) -> dict[str, Any]:
    return {"id": resource_id, "name": name, "type": EXT_TYPE, "location": location,
            "properties": {"publisher": patching.PATCH_PUBLISHER, "type": name, "typeHandlerVersion": version,
                           "autoUpgradeMinorVersion": True, "enableAutomaticUpgrade": True, "settings": {},
                           "provisioningState": state}}


def _extension_failure(ctx: Context, vm: dict[str, Any]) -> dict[str, Any] | None:
    """The error of a patch extension that is present but not Succeeded, or None."""
    extension = _patch_extension(ctx, vm)
    if extension is None:
        install_patch_extension(ctx, vm)
        return None
    state = (extension.get("properties") or {}).get("provisioningState")
    if state == "Succeeded":
        return None
    message = next((s.get("message") for e in view_of(ctx, vm).get("extensions") or []
                    if e.get("name") == extension.get("name") for s in e.get("statuses") or []),
                   f"Extension is in state {state}.")
    return {"code": "VMExtensionProvisioningError",
            "message": f"VM has reported a failure when processing extension '{extension.get('name')}'. "
                       f"Error message: \"{message}\"."}


def _guest_ready(ctx: Context, vm: dict[str, Any], operation: str) -> None:
    power = patching.power_of(view_of(ctx, vm))
    if power != "running":
        raise _not_running(str(vm["name"]), operation, power)


def _patches_of(ctx: Context, machine: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    found = ctx.state.available_patches(str(machine["id"]))
    if found is None:
        found = patching.default_patches(str(machine["id"]), kind, utcnow())
        ctx.state.set_available_patches(str(machine["id"]), found)
    return found


def api_error(error: dict[str, Any] | None) -> dict[str, Any] | None:
    if not error:
        return None
    return {"code": error.get("code"), "message": error.get("message"),
            "details": [dict(d) for d in error.get("details") or []]}


def _machine_location(machine: dict[str, Any]) -> str:
    return str(machine.get("location", "")).replace(" ", "").lower()


def record_assessment(ctx: Context, machine: dict[str, Any], kind: str, *, activity: str, status: str,
                      error: dict[str, Any] | None, started_by: str, start: Any) -> dict[str, Any]:
    """Writes the assessment's patchassessmentresources rows; returns its facts (patches, counts)."""
    machine_id = str(machine["id"])
    patches = _patches_of(ctx, machine, kind) if status != "Failed" else []
    end = utcnow()
    reboot_pending = ctx.state.reboot_pending.get(machine_id.lower(), False)
    rows = patching.assessment_rows(machine_id, tenant=ctx.state.tenant_id, location=_machine_location(machine),
                                    os_type=kind, activity=activity, patches=patches, status=status, error=error,
                                    started_by=started_by, start=start, end=end, reboot_pending=reboot_pending)
    prefix = f"{machine_id}/patchassessmentresults/latest".lower()
    ctx.state.remove_graph_rows("patchassessmentresources",
                                lambda r: str(r.get("id", "")).lower().startswith(prefix))
    ctx.state.add_graph_rows("patchassessmentresources", rows)
    return {"patches": patches, "end": end, "reboot_pending": reboot_pending}


def set_reboot_pending(ctx: Context, machine_id: str, pending: bool) -> None:
    ctx.state.reboot_pending[machine_id.lower()] = pending


def finish_assessment(ctx: Context, machine: dict[str, Any], kind: str, extension_failure: dict[str, Any] | None,
                      *, activity: str, start: Any) -> tuple[dict[str, Any] | None, str, dict[str, Any] | None,
                                                          dict[str, Any] | None]:
    """An on-demand assessment of a VM or an Arc machine, done: its seeded outcome taken, its
    Resource Graph rows written. (failure of the operation, run status, error details, facts); a
    failed operation has no facts."""
    outcome = ctx.state.pop_patch_outcome(str(machine["id"]), "assess")
    failure = extension_failure or (dict(outcome.lro_error) if outcome and outcome.lro_error else None)
    if failure is not None:
        record_assessment(ctx, machine, kind, activity=activity, status="Failed", error=failure,
                          started_by="User", start=start)
        return failure, "Failed", failure, None
    status = outcome.status if outcome else "Succeeded"
    error = dict(outcome.error) if outcome and outcome.error else None
    facts = record_assessment(ctx, machine, kind, activity=activity, status=status, error=error,
                              started_by="User", start=start)
    return None, status, error, facts


def vm_assess(ctx: Context, request: Request) -> Response:
    with ctx.state.lock:
        vm = _existing(ctx, request)
        _guest_ready(ctx, vm, "assessPatches")
        resource_id = str(vm["id"])
        kind = os_type(vm)
        activity = stable_guid("assessment", resource_id, str(utcnow().timestamp()))
        started = utcnow()

        def complete(op: AsyncOperation) -> None:
            current = ctx.state.get(resource_id)
            if current is None:
                op.status, op.error = "Failed", {"code": "ResourceNotFound", "message": "The VM no longer exists."}
                return
            failure, status, error, facts = finish_assessment(ctx, current, kind, _extension_failure(ctx, current),
                                                              activity=activity, start=started)
            if failure is not None or facts is None:
                op.status, op.error = "Failed", failure
                _set_summary(ctx, resource_id, "availablePatchSummary", {
                    "status": "Failed", "assessmentActivityId": activity, "rebootPending": False,
                    "criticalAndSecurityPatchCount": 0, "otherPatchCount": 0, "startTime": iso(started),
                    "lastModifiedTime": iso(utcnow()), "error": api_error(failure)})
                return
            important, other = patching.critical_and_security(facts["patches"])
            op.result = {
                "status": status, "assessmentActivityId": activity, "rebootPending": facts["reboot_pending"],
                "criticalAndSecurityPatchCount": important, "otherPatchCount": other,
                "startDateTime": iso(started),
                "availablePatches": [{
                    "patchId": p["patchId"], "name": p["name"], "version": p["version"], "kbId": p["kbId"],
                    "classifications": p["classifications"], "rebootBehavior": p["rebootBehavior"],
                    "activityId": activity, "publishedDate": p["publishedDate"],
                    "lastModifiedDateTime": iso(facts["end"]), "assessmentState": "Available"}
                    for p in facts["patches"]],
                "error": api_error(error)}
            _set_summary(ctx, resource_id, "availablePatchSummary", {
                "status": status, "assessmentActivityId": activity, "rebootPending": facts["reboot_pending"],
                "criticalAndSecurityPatchCount": important, "otherPatchCount": other, "startTime": iso(started),
                "lastModifiedTime": iso(facts["end"]), "error": api_error(error)})

        def progress(op: AsyncOperation, observed: int) -> None:
            _set_summary(ctx, resource_id, "availablePatchSummary", {
                "status": "InProgress", "assessmentActivityId": activity, "startTime": iso(started),
                "lastModifiedTime": iso(utcnow())})

        operation = ctx.state.start_operation("vm-assess", resource_id, PROVIDER, str(vm.get("location")), complete,
                                              progress=progress)
    return Response.empty(202, _lro_headers(ctx, request, operation))


def _set_summary(ctx: Context, resource_id: str, key: str, summary: dict[str, Any]) -> None:
    view = ctx.state.instance_view(resource_id)
    if view is None:
        return
    view.setdefault("patchStatus", {})[key] = summary
    ctx.state.set_instance_view(resource_id, view)


def check_install_parameters(body: dict[str, Any], kind: str, *, prefix: str = "") -> dict[str, Any]:
    """VirtualMachineInstallPatchesParameters / MachineInstallPatchesParameters: the OS's parameters."""
    duration = body.get("maximumDuration")
    if not isinstance(duration, str) or not duration:
        raise ArmError(400, "InvalidParameter", "Required parameter 'maximumDuration' is missing (null).",
                       target=f"{prefix}maximumDuration")
    try:
        if parse_duration(duration).total_seconds() <= 0:
            raise ValueError(duration)
    except ValueError:
        raise ArmError(400, "InvalidParameter", f"The value '{duration}' of parameter 'maximumDuration' is not a "
                       "valid ISO 8601 duration, such as PT4H.", target=f"{prefix}maximumDuration") from None
    reboot = body.get("rebootSetting")
    if reboot not in patching.REBOOT_SETTINGS:
        raise ArmError(400, "InvalidParameter", f"The value '{reboot}' of parameter 'rebootSetting' is not valid. "
                       f"Allowed values: {', '.join(patching.REBOOT_SETTINGS)}.", target=f"{prefix}rebootSetting")
    key = "windowsParameters" if kind == "Windows" else "linuxParameters"
    params = body.get(key)
    if not isinstance(params, dict):
        raise ArmError(400, "InvalidParameter", f"Required parameter '{key}' is missing (null): the machine runs "
                       f"{kind}.", target=f"{prefix}{key}")
    allowed = tuple(patching.WINDOWS_CLASSES) if kind == "Windows" else patching.LINUX_CLASSES
    for item in params.get("classificationsToInclude") or []:
        if item not in allowed:
            raise ArmError(400, "InvalidParameter", f"The value '{item}' of parameter '{key}.classificationsToInclude'"
                           f" is not valid. Allowed values: {', '.join(allowed)}.",
                           target=f"{prefix}{key}.classificationsToInclude")
    return params


def record_installation(ctx: Context, machine: dict[str, Any], kind: str, *, activity: str,
                        body: dict[str, Any], params: dict[str, Any], outcome: Any, started_by: str,
                        start: Any) -> dict[str, Any]:
    """Installs (selects, applies the outcome), writes patchinstallationresources rows, updates the
    machine's available updates; returns the summary and the per-update details."""
    machine_id = str(machine["id"])
    patches = _patches_of(ctx, machine, kind)
    details = patching.select(patches, kind, params)
    status = outcome.status if outcome and outcome.status != "Succeeded" else None
    exceeded = bool(outcome.maintenance_window_exceeded) if outcome else False
    details = patching.apply_outcome(details, status, exceeded)
    summary = patching.install_summary(details, str(body.get("rebootSetting")), status=status,
                                       reboot_status=outcome.reboot_status if outcome else None,
                                       window_exceeded=exceeded,
                                       error=dict(outcome.error) if outcome and outcome.error else None)
    end = utcnow()
    rows = patching.installation_rows(machine_id, tenant=ctx.state.tenant_id, location=_machine_location(machine),
                                      os_type=kind, activity=activity, details=details, summary=summary,
                                      started_by=started_by, start=start, end=end,
                                      maintenance_run_id=params.get("maintenanceRunId"))
    ctx.state.add_graph_rows("patchinstallationresources", rows)
    installed = {p["patchId"] for p, s in details if s == "Installed"}
    ctx.state.set_available_patches(machine_id, [p for p in patches if p["patchId"] not in installed])
    set_reboot_pending(ctx, machine_id, summary["rebootStatus"] == "Required")
    return {"summary": summary, "details": details, "end": end}


def vm_install(ctx: Context, request: Request) -> Response:
    body = request.json_object()
    with ctx.state.lock:
        vm = _existing(ctx, request)
        kind = os_type(vm)
        params = check_install_parameters(body, kind)
        _guest_ready(ctx, vm, "installPatches")
        resource_id = str(vm["id"])
        activity = stable_guid("installation", resource_id, str(utcnow().timestamp()))
        started = utcnow()

        def complete(op: AsyncOperation) -> None:
            current = ctx.state.get(resource_id)
            if current is None:
                op.status, op.error = "Failed", {"code": "ResourceNotFound", "message": "The VM no longer exists."}
                return
            outcome = ctx.state.pop_patch_outcome(resource_id, "install")
            failure = _extension_failure(ctx, current) or (dict(outcome.lro_error) if outcome and outcome.lro_error
                                                           else None)
            if failure is not None:
                op.status, op.error = "Failed", failure
                return
            done = record_installation(ctx, current, kind, activity=activity, body=body, params=params,
                                       outcome=outcome, started_by="User", start=started)
            summary = done["summary"]
            counts = {k: summary[k] for k in ("excludedPatchCount", "notSelectedPatchCount", "pendingPatchCount",
                                              "installedPatchCount", "failedPatchCount")}
            op.result = {"status": summary["status"], "installationActivityId": activity,
                         "rebootStatus": summary["rebootStatus"],
                         "maintenanceWindowExceeded": summary["maintenanceWindowExceeded"], **counts,
                         "patches": [{"patchId": p["patchId"], "name": p["name"], "version": p["version"],
                                      "kbId": p["kbId"], "classifications": p["classifications"],
                                      "installationState": s} for p, s in done["details"]],
                         "startDateTime": iso(started), "error": api_error(summary["error"])}
            _set_summary(ctx, resource_id, "lastPatchInstallationSummary", {
                "status": summary["status"], "installationActivityId": activity,
                "maintenanceWindowExceeded": summary["maintenanceWindowExceeded"], **counts,
                "startTime": iso(started), "lastModifiedTime": iso(done["end"]), "error": api_error(summary["error"])})
            remaining = ctx.state.available_patches(resource_id) or []
            important, other = patching.critical_and_security(remaining)
            _set_summary(ctx, resource_id, "availablePatchSummary", {
                "status": "Succeeded", "assessmentActivityId": activity,
                "rebootPending": summary["rebootStatus"] == "Required",
                "criticalAndSecurityPatchCount": important, "otherPatchCount": other, "startTime": iso(started),
                "lastModifiedTime": iso(done["end"]), "error": None})

        operation = ctx.state.start_operation("vm-install", resource_id, PROVIDER, str(vm.get("location")), complete)
    return Response.empty(202, _lro_headers(ctx, request, operation))


# ---------------------------------------------------------------------------------------------
# VirtualMachineExtensions_Get / _List / _Delete


def _extension_id(request: Request) -> str:
    return f"{vm_id(request)}/extensions/{request.param('extension')}"


def _with_extension_view(ctx: Context, vm: dict[str, Any], extension: dict[str, Any], expand: str) -> dict[str, Any]:
    body: dict[str, Any] = deep(extension)
    if expand.lower() == "instanceview":
        found = next((e for e in view_of(ctx, vm).get("extensions") or [] if e.get("name") == extension.get("name")),
                     None)
        body.setdefault("properties", {})["instanceView"] = found or _extension_view_for(extension)
    return body


def extension_get(ctx: Context, request: Request) -> Response:
    with ctx.state.lock:
        vm = _existing(ctx, request)
        ctx.state.observe_resource(_extension_id(request))
        found = ctx.state.get(_extension_id(request))
        if found is None:
            raise not_found(_extension_id(request))
        return Response.json(200, _with_extension_view(ctx, vm, found, request.query.get("$expand", "")))


def extension_list(ctx: Context, request: Request) -> Response:
    with ctx.state.lock:
        vm = _existing(ctx, request)
        expand = request.query.get("$expand", "")
        return Response.json(200, {"value": [_with_extension_view(ctx, vm, e, expand)
                                             for e in ctx.state.children(str(vm["id"]), "extensions")]})


def extension_delete(ctx: Context, request: Request) -> Response:
    with ctx.state.lock:
        vm = _existing(ctx, request)
        extension_id = _extension_id(request)
        found = ctx.state.get(extension_id)
        if found is None:
            return Response.empty(204)
        if patching.power_of(view_of(ctx, vm)) != "running":
            raise ArmError(409, "OperationNotAllowed", "Cannot modify extensions in the VM when the VM is not running.")
        found.setdefault("properties", {})["provisioningState"] = "Deleting"
        ctx.state.put(extension_id, found)
        name = str(found.get("name"))
        resource_id = str(vm["id"])

        def complete(op: AsyncOperation) -> None:
            ctx.state.delete(extension_id)
            view = ctx.state.instance_view(resource_id)
            if view is not None:
                view["extensions"] = [e for e in view.get("extensions") or [] if e.get("name") != name]
                ctx.state.set_instance_view(resource_id, view)

        operation = ctx.state.start_operation("vm-extension-delete", extension_id, PROVIDER, str(vm.get("location")),
                                              complete)
    return Response.empty(202, _lro_headers(ctx, request, operation))


# ---------------------------------------------------------------------------------------------
# operation status (Azure-AsyncOperation) and result (Location, monitor=true)


_OP = re.compile(r"^[0-9A-Fa-f-]{36}$")


def operation_get(ctx: Context, request: Request) -> Response:
    require_subscription(ctx, request.param("subscription"))
    with ctx.state.lock:
        operation = ctx.state.observe_operation(request.param("operation"))
        if operation is None or operation.subscription.lower() != request.param("subscription").lower() or \
                not _OP.match(request.param("operation")):
            raise ArmError(404, "OperationNotFound", f"The operation '{request.param('operation')}' was not found.")
        return operation_answer(ctx, request, operation, request.query.get("monitor", "").lower() == "true")


def operation_answer(ctx: Context, request: Request, operation: AsyncOperation, monitor: bool) -> Response:
    """Azure-AsyncOperation: 200 with the status body. Location (`monitor=true`): 202 while running, then
    200 with the result (empty for operations without one), or the error with 400 for a failed one."""
    if monitor:
        if not operation.done:
            return Response.empty(202, {"Location": f"{request.base_url}{request.path}?"
                                                    + "&".join(f"{k}={v}" for k, v in request.query.items()),
                                        "Retry-After": str(ctx.lro_retry_after)})
        if operation.status == "Succeeded":
            return Response.json(200, operation.result) if operation.result is not None else Response.empty(200)
        return Response.json(400, {"error": deep(operation.error or {"code": "OperationFailed",
                                                                      "message": "The operation failed."})})
    return Response.json(200, operation.body())
