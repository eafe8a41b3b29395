"""Maintenance configurations (Microsoft.Maintenance 2023-04-01), the schedules Azure Update
Manager runs: GET, PUT (CreateOrUpdate), PATCH (Update), DELETE, list by subscription and by group.

Service limits enforced for the `InGuestPatch` scope (Update Manager schedules), with the
service's error code and wording (`InvalidMaintenanceWindow`, "Invalid maintenance window. Error:
..." as seen in hashicorp/terraform-provider-azurerm#29738 and Azure/azure-sdk-for-net#34604):
- `maintenanceWindow.duration` ("HH:mm") from 01:30 to 03:55: Microsoft Learn, "Maintenance
  configurations for Azure virtual machines" (articles/virtual-machines/maintenance-configurations.md,
  MicrosoftDocs/azure-docs PR #112164): "The upper maintenance window is 3.55 hours. A minimum of 1
  hour and 30 minutes is required for the maintenance window."; Update Manager's scheduling
  article: "Guest-scope maintenance windows must last from 1 hour 30 minutes through 3 hours 55 minutes."
- the recurrence ("Repeat") at least 6 hours (same article and PR).
- `startDateTime` is required ("startdatetime is not set for maintenance window").
- a monthly window needs a day of month or a week of month.
- an `InGuestPatch` configuration needs `extensionProperties.InGuestPatchMode` ("Extension properties
  must contain Patch mode", the wording scenarios.md quotes for aum.configuration_invalid).

Configuration assignments (ConfigurationAssignments_* for a resource, ConfigurationAssignmentsFor-
Subscriptions_* with a dynamic-scope `filter`, ConfigurationAssignmentsWithinSubscription_List): PUT 200
with the assignment (its `resourceId` filled in: the resource, or the subscription for a dynamic scope),
GET, DELETE 200 with `{id, name, type}` then 204 (the examples' shapes); every change is mirrored in Resource
Graph's `maintenanceresources` (`microsoft.maintenance/configurationassignments` rows).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from sandbox.arm import list_of_type, not_found, require_resource_group, require_subscription
from sandbox.base import ArmError, Context, Request, Response
from sandbox.util import iso, merge_patch, utcnow

_SCOPES = ("Host", "Resource", "OSImage", "Extension", "InGuestPatch", "SQLDB", "SQLManagedInstance")
_REBOOT = ("IfRequired", "Never", "Always")
_WINDOWS_CLASSES = ("Critical", "Security", "UpdateRollup", "FeaturePack", "ServicePack", "Definition", "Tools",
                    "Updates")
_LINUX_CLASSES = ("Critical", "Security", "Other")
_DEFAULT_DURATION = {"InGuestPatch": "03:55", "Host": "05:00", "OSImage": "05:00", "Extension": "05:00"}
GUEST_MIN_MINUTES = 90
GUEST_MAX_MINUTES = 235
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_RECUR = re.compile(r"^(?P<n>\d*)\s*(?P<unit>hours?|days?|weeks?|months?)(?P<rest>.*)$", re.IGNORECASE)


def _window_error(problem: str) -> ArmError:
    return ArmError(400, "InvalidMaintenanceWindow", f"Invalid maintenance window. Error: {problem}",
                    target="properties.maintenanceWindow")


def _invalid(path: str, problem: str) -> ArmError:
    return ArmError(400, "InvalidParameter", f"Invalid value for '{path}': {problem}", target=path)


def _config_id(request: Request) -> str:
    return (f"/subscriptions/{request.param('subscription')}/resourcegroups/{request.param('group')}/providers/"
            f"Microsoft.Maintenance/maintenanceConfigurations/{request.param('name')}")


def _minutes(duration: str) -> int:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", duration)
    if not match or int(match.group(2)) >= 60:
        raise _window_error(f"Duration '{duration}' is not in the HH:mm format.")
    return int(match.group(1)) * 60 + int(match.group(2))


def _timestamp(value: Any, name: str) -> None:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?", value.strip()):
        raise _window_error(f"{name} '{value}' is not in the 'yyyy-MM-dd HH:mm' format.")
    try:
        datetime.fromisoformat(value.strip())
    except ValueError:
        raise _window_error(f"{name} '{value}' is not a valid date.") from None


def _recurrence_hours(recur: str) -> float:
    match = _RECUR.match(recur.strip())
    if not match:
        raise _window_error(f"Recurrence '{recur}' is not valid. Examples: Day, 3Days, Week Saturday,Sunday, "
                            "Month day23,day24, Month Last Sunday, 6Hours.")
    n = int(match.group("n") or 1)
    unit = match.group("unit").lower().rstrip("s")
    rest = match.group("rest").strip().lower()
    if n < 1:
        raise _window_error(f"Recurrence '{recur}' must repeat at least once.")
    if unit == "month":
        if not rest:
            raise _window_error("Monthly maintenance window is missing day of month or week of month.")
        return n * 24 * 28.0
    if unit == "week":
        for day in (d.strip() for d in rest.split(",") if d.strip()):
            if day not in _WEEKDAYS:
                raise _window_error(f"'{day}' is not a day of the week in recurrence '{recur}'.")
        return n * 24 * 7.0
    return n * (24.0 if unit == "day" else 1.0)


def _validate_window(window: dict[str, Any], scope: str) -> dict[str, Any]:
    guest = scope == "InGuestPatch"
    if not window.get("startDateTime"):
        raise _window_error("StartDateTime is not set for maintenance window.")
    _timestamp(window["startDateTime"], "StartDateTime")
    if window.get("expirationDateTime"):
        _timestamp(window["expirationDateTime"], "ExpirationDateTime")
    else:
        window["expirationDateTime"] = "9999-12-31 23:59:59"
    duration = window.get("duration") or _DEFAULT_DURATION.get(scope, "05:00")
    if not isinstance(duration, str):
        raise _window_error(f"Duration '{duration}' is not in the HH:mm format.")
    minutes = _minutes(duration)
    if guest and not GUEST_MIN_MINUTES <= minutes <= GUEST_MAX_MINUTES:
        raise _window_error(f"Duration '{duration}' is not valid for the InGuestPatch maintenance scope: it "
                            "must be between 01:30 and 03:55.")
    window["duration"] = duration
    if not window.get("timeZone"):
        raise _window_error("TimeZone is not set for maintenance window.")
    recur = window.get("recurEvery")
    if recur is not None:
        if not isinstance(recur, str):
            raise _window_error(f"Recurrence '{recur}' is not valid.")
        hours = _recurrence_hours(recur)
        if guest and hours < 6:
            raise _window_error(f"Recurrence '{recur}' is not valid for the InGuestPatch maintenance scope: "
                                "it must repeat every 6 hours or more.")
    return window


def _validate_patches(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid("properties.installPatches", "an object is expected")
    patches: dict[str, Any] = {str(k): v for k, v in value.items()}
    reboot = patches.get("rebootSetting", "IfRequired")
    if reboot not in _REBOOT:
        raise _invalid("properties.installPatches.rebootSetting", f"'{reboot}' is not one of {', '.join(_REBOOT)}")
    patches["rebootSetting"] = reboot
    for key, allowed in (("windowsParameters", _WINDOWS_CLASSES), ("linuxParameters", _LINUX_CLASSES)):
        params = patches.get(key)
        if params is None:
            continue
        if not isinstance(params, dict):
            raise _invalid(f"properties.installPatches.{key}", "an object is expected")
        for item in params.get("classificationsToInclude") or []:
            if item not in allowed:
                raise _invalid(f"properties.installPatches.{key}.classificationsToInclude",
                               f"'{item}' is not one of {', '.join(allowed)}")
    return patches


def _validate(body: dict[str, Any]) -> dict[str, Any]:
    """The configuration as stored, or an error naming the field."""
    location = body.get("location")
    if not isinstance(location, str) or not location.strip():
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.",
                       target="location")
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise _invalid("properties", "an object is expected")
    props = dict(props)
    scope = props.get("maintenanceScope", "Host")
    if scope not in _SCOPES:
        raise _invalid("properties.maintenanceScope", f"'{scope}' is not one of {', '.join(_SCOPES)}")
    props["maintenanceScope"] = scope
    visibility = props.get("visibility", "Custom")
    if visibility not in ("Custom", "Public"):
        raise _invalid("properties.visibility", f"'{visibility}' is not Custom or Public")
    props["visibility"] = visibility
    props.setdefault("namespace", "Microsoft.Maintenance")
    window = props.get("maintenanceWindow") or {}
    if not isinstance(window, dict):
        raise _invalid("properties.maintenanceWindow", "an object is expected")
    if window or scope == "InGuestPatch":
        props["maintenanceWindow"] = _validate_window(dict(window), scope)
    if scope == "InGuestPatch" and not (props.get("extensionProperties") or {}).get("InGuestPatchMode"):
        raise ArmError(400, "InvalidParameter", "Extension properties must contain Patch mode",
                       target="properties.extensionProperties")
    if props.get("installPatches") is not None:
        if scope != "InGuestPatch":
            raise _invalid("properties.installPatches", "is only valid for the InGuestPatch maintenance scope")
        props["installPatches"] = _validate_patches(props["installPatches"])
    tags = body.get("tags")
    if tags is not None and (not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values())):
        raise _invalid("tags", "an object of string values is expected")
    return {"location": location, "tags": tags or {}, "properties": props}


def _stored(request: Request, config: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
    now = iso(utcnow())
    created = (existing or {}).get("systemData", {})
    return {
        "id": existing["id"] if existing else _config_id(request), "name": request.param("name"),
        "type": "Microsoft.Maintenance/maintenanceConfigurations", "location": config["location"],
        "tags": config["tags"],
        "systemData": {"createdBy": created.get("createdBy", "remediator@contoso.com"), "createdByType": "User",
                       "createdAt": created.get("createdAt", now), "lastModifiedBy": "remediator@contoso.com",
                       "lastModifiedByType": "User", "lastModifiedAt": now},
        "properties": config["properties"],
    }


def config_get(ctx: Context, request: Request) -> Response:
    require_resource_group(ctx, request.param("subscription"), request.param("group"))
    found = ctx.state.get(_config_id(request))
    if found is None:
        raise not_found(_config_id(request))
    return Response.json(200, found)


def config_put(ctx: Context, request: Request) -> Response:
    require_resource_group(ctx, request.param("subscription"), request.param("group"))
    config = _validate(request.json_object())
    with ctx.state.lock:
        existing = ctx.state.get(_config_id(request))
        stored = _stored(request, config, existing)
        ctx.state.put(_config_id(request), stored)
    return Response.json(200, stored)


def config_patch(ctx: Context, request: Request) -> Response:
    require_resource_group(ctx, request.param("subscription"), request.param("group"))
    patch = request.json_object()
    with ctx.state.lock:
        existing = ctx.state.get(_config_id(request))
        if existing is None:
            raise not_found(_config_id(request))
        current = {"location": existing.get("location"), "tags": existing.get("tags") or {},
                   "properties": existing.get("properties") or {}}
        changes = {k: v for k, v in patch.items() if k in ("tags", "properties")}
        if "tags" in changes:  # tags are replaced as a whole, as ARM PATCH does
            current["tags"] = {}
        merged = merge_patch(current, changes)
        stored = _stored(request, _validate(merged), existing)
        ctx.state.put(_config_id(request), stored)
    return Response.json(200, stored)


def config_delete(ctx: Context, request: Request) -> Response:
    require_resource_group(ctx, request.param("subscription"), request.param("group"))
    with ctx.state.lock:
        existing = ctx.state.get(_config_id(request))
        if existing is None:
            return Response.empty(204)
        ctx.state.delete(_config_id(request))
    return Response.json(200, existing)


def config_list(ctx: Context, request: Request) -> Response:
    return list_of_type(ctx, request, "Microsoft.Maintenance/maintenanceConfigurations")


# ---------------------------------------------------------------------------------------------
# configuration assignments

ASSIGNMENT_TYPE = "Microsoft.Maintenance/configurationAssignments"
_FILTER_KEYS = ("resourceTypes", "resourceGroups", "osTypes", "locations", "tagSettings")


def _target(ctx: Context, request: Request) -> str:
    """The assigned resource's id (as stored, else as the path spells it); 404 if it doesn't exist."""
    path = (f"/subscriptions/{request.param('subscription')}/resourcegroups/{request.param('group')}/providers/"
            f"{request.param('rp')}/{request.param('rtype')}/{request.param('rname')}")
    require_resource_group(ctx, request.param("subscription"), request.param("group"))
    found = ctx.state.get(path)
    if found is None:
        raise not_found(path)
    return str(found.get("id") or path)


def _assignment_body(request: Request, *, dynamic: bool) -> dict[str, Any]:
    body = request.json_object()
    props = body.get("properties")
    if not isinstance(props, dict):
        raise _invalid("properties", "an object is expected")
    config = props.get("maintenanceConfigurationId")
    if not isinstance(config, str) or "/providers/microsoft.maintenance/maintenanceconfigurations/" not in \
            config.lower():
        raise _invalid("properties.maintenanceConfigurationId", "the id of a maintenance configuration is required")
    out: dict[str, Any] = {"maintenanceConfigurationId": config}
    flt = props.get("filter")
    if flt is not None:
        if not dynamic or not isinstance(flt, dict):
            raise _invalid("properties.filter", "a filter is only valid for a subscription or resource group "
                           "(dynamic scope) assignment")
        for key in flt:
            if key not in _FILTER_KEYS:
                raise _invalid(f"properties.filter.{key}", f"not one of {', '.join(_FILTER_KEYS)}")
        tag_settings = flt.get("tagSettings")
        if tag_settings is not None:
            operator = (tag_settings or {}).get("filterOperator", "Any")
            if operator not in ("All", "Any"):
                raise _invalid("properties.filter.tagSettings.filterOperator", f"'{operator}' is not All or Any")
        out["filter"] = flt
    if isinstance(body.get("location"), str):
        out["_location"] = body["location"]
    return out


def _store_assignment(ctx: Context, assignment_id: str, name: str, target: str,
                      props: dict[str, Any]) -> dict[str, Any]:
    location = props.pop("_location", None)
    config_id = props["maintenanceConfigurationId"]
    if ctx.state.get(config_id) is None:
        raise not_found(config_id)
    stored: dict[str, Any] = {"id": assignment_id, "name": name, "type": ASSIGNMENT_TYPE,
                              "properties": {**props, "resourceId": target}}
    if location:
        stored["location"] = location
    ctx.state.put(assignment_id, stored)
    ctx.state.upsert_graph_row("maintenanceresources", assignment_row(ctx.state.tenant_id, stored))
    return stored


def assignment_row(tenant: str, assignment: dict[str, Any]) -> dict[str, Any]:
    """The `maintenanceresources` row of an assignment (query-logs: resourceId, maintenanceConfigurationId)."""
    assignment_id = str(assignment["id"])
    parts = [p for p in assignment_id.split("/") if p]
    return {"id": assignment_id.lower(), "name": assignment.get("name"),
            "type": "microsoft.maintenance/configurationassignments", "tenantId": tenant, "kind": "",
            "location": str(assignment.get("location", "")), "resourceGroup": parts[3].lower()
            if len(parts) > 3 and parts[2].lower() == "resourcegroups" else "", "subscriptionId": parts[1],
            "managedBy": "", "sku": None, "plan": None, "tags": None, "identity": None, "zones": None,
            "extendedLocation": None, "properties": dict(assignment.get("properties") or {})}


def _drop_assignment(ctx: Context, assignment_id: str) -> Response:
    with ctx.state.lock:
        existing = ctx.state.get(assignment_id)
        if existing is None:
            return Response.empty(204)
        ctx.state.delete(assignment_id)
        ctx.state.remove_graph_rows("maintenanceresources",
                                    lambda r: str(r.get("id", "")).lower() == assignment_id.lower())
    return Response.json(200, {"id": existing["id"], "name": existing["name"], "type": ASSIGNMENT_TYPE})


def _resource_assignment_id(ctx: Context, request: Request) -> tuple[str, str]:
    target = _target(ctx, request)
    return f"{target}/providers/Microsoft.Maintenance/configurationAssignments/{request.param('name')}", target


def assignment_put(ctx: Context, request: Request) -> Response:
    props = _assignment_body(request, dynamic=False)
    with ctx.state.lock:
        assignment_id, target = _resource_assignment_id(ctx, request)
        existing = ctx.state.get(assignment_id)
        stored = _store_assignment(ctx, str(existing["id"]) if existing else assignment_id, request.param("name"),
                                   target, props)
    return Response.json(200, stored)


def assignment_get(ctx: Context, request: Request) -> Response:
    assignment_id, _target_id = _resource_assignment_id(ctx, request)
    found = ctx.state.get(assignment_id)
    if found is None:
        raise not_found(assignment_id)
    return Response.json(200, found)


def assignment_delete(ctx: Context, request: Request) -> Response:
    assignment_id, _target_id = _resource_assignment_id(ctx, request)
    return _drop_assignment(ctx, assignment_id)


def assignment_list(ctx: Context, request: Request) -> Response:
    target = _target(ctx, request)
    return Response.json(200, {"value": ctx.state.children(f"{target}/providers/Microsoft.Maintenance",
                                                           "configurationAssignments")})


def _subscription_assignment_id(request: Request) -> str:
    return (f"/subscriptions/{request.param('subscription')}/providers/Microsoft.Maintenance/"
            f"configurationAssignments/{request.param('name')}")


def subscription_assignment_put(ctx: Context, request: Request) -> Response:
    require_subscription(ctx, request.param("subscription"))
    props = _assignment_body(request, dynamic=True)
    with ctx.state.lock:
        stored = _store_assignment(ctx, _subscription_assignment_id(request), request.param("name"),
                                   f"/subscriptions/{request.param('subscription')}", props)
    return Response.json(200, stored)


def subscription_assignment_patch(ctx: Context, request: Request) -> Response:
    require_subscription(ctx, request.param("subscription"))
    with ctx.state.lock:
        existing = ctx.state.get(_subscription_assignment_id(request))
        if existing is None:
            raise not_found(_subscription_assignment_id(request))
        patch = request.json_object()
        merged = merge_patch({"properties": existing.get("properties") or {}}, {"properties": patch.get("properties")
                                                                                 or {}})
        props = _assignment_body(Request(request.method, request.path, request.query, request.headers,
                                         json.dumps(merged).encode(), request.base_url, request.params), dynamic=True)
        stored = _store_assignment(ctx, str(existing["id"]), str(existing["name"]),
                                   f"/subscriptions/{request.param('subscription')}", props)
    return Response.json(200, stored)


def subscription_assignment_get(ctx: Context, request: Request) -> Response:
    require_subscription(ctx, request.param("subscription"))
    found = ctx.state.get(_subscription_assignment_id(request))
    if found is None:
        raise not_found(_subscription_assignment_id(request))
    return Response.json(200, found)


def subscription_assignment_delete(ctx: Context, request: Request) -> Response:
    require_subscription(ctx, request.param("subscription"))
    return _drop_assignment(ctx, _subscription_assignment_id(request))


def assignments_within_subscription(ctx: Context, request: Request) -> Response:
    """ConfigurationAssignmentsWithinSubscription_List: every assignment of the subscription."""
    subscription = request.param("subscription")
    require_subscription(ctx, subscription)
    return Response.json(200, {"value": ctx.state.of_type(subscription, ASSIGNMENT_TYPE)})
