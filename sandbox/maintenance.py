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
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sandbox.arm import list_of_type, not_found, require_resource_group
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
