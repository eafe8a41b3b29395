"""Azure Automation Update Management (2024-10-23): software update configurations, their runs
and machine runs, as `softwareUpdateConfiguration*.json` and its examples say.

Validation follows the spec's required fields and enums, plus the service limit the guides state:
a deployment's maintenance window (`duration`) is 30 minutes to 6 hours (Update Management
overview: "The value can't be less than 30 minutes and no more than 6 hours"; troubleshooting
guide: "increase the maintenance window to a maximum of 6 hours, or 360 minutes").
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

from sandbox.arm import list_of_type, not_found, parent_not_found, require_resource_group
from sandbox.base import ArmError, Context, Request, Response
from sandbox.odata import FilterError, compile_filter
from sandbox.util import format_duration, iso_offset, parse_datetime, parse_duration, utcnow

PAGE_SIZE = 100
MIN_DURATION = timedelta(minutes=30)
MAX_DURATION = timedelta(hours=6)
_WINDOWS_CLASSES = ("Unclassified", "Critical", "Security", "UpdateRollup", "FeaturePack", "ServicePack",
                    "Definition", "Tools", "Updates")
_LINUX_CLASSES = ("Unclassified", "Critical", "Security", "Other")
_FREQUENCIES = ("OneTime", "Day", "Hour", "Week", "Month")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _invalid(path: str, problem: str) -> ArmError:
    return ArmError(400, "BadRequest", f"Invalid value for '{path}': {problem}")


def _account(ctx: Context, request: Request) -> dict[str, Any]:
    subscription, group, name = request.param("subscription"), request.param("group"), request.param("account")
    require_resource_group(ctx, subscription, group)
    account_id = (f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Automation/"
                  f"automationAccounts/{name}")
    account = ctx.state.get(account_id)
    if account is None:
        raise parent_not_found(name)
    return account


def _child_id(account: dict[str, Any], kind: str, name: str) -> str:
    return f"{account['id']}/{kind}/{name}"


# ---------------------------------------------------------------------------------------------
# validation


def _string_list(value: Any, path: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(path, "an array of strings is expected")
    return list(value)


def _classes(value: Any, allowed: tuple[str, ...], path: str) -> str:
    if not isinstance(value, str):
        raise _invalid(path, "a comma separated string of classifications is expected")
    items = [v.strip() for v in value.split(",") if v.strip()]
    for item in items:
        if item not in allowed:
            raise _invalid(path, f"'{item}' is not one of {', '.join(allowed)}")
    return ", ".join(items)


def _vm_id(value: str, path: str) -> None:
    parts = [p.lower() for p in value.split("/") if p]
    if not (len(parts) == 8 and parts[0] == "subscriptions" and parts[2] == "resourcegroups"
            and parts[4] == "providers" and parts[5] == "microsoft.compute" and parts[6] == "virtualmachines"):
        raise _invalid(path, f"'{value}' is not the resource id of an Azure virtual machine")


def _duration(value: Any) -> str:
    path = "properties.updateConfiguration.duration"
    if value is None:
        return "PT2H"
    if not isinstance(value, str):
        raise _invalid(path, "an ISO 8601 duration such as 'PT2H' is expected")
    try:
        parsed = parse_duration(value)
    except ValueError:
        raise _invalid(path, f"'{value}' is not an ISO 8601 duration (PT[n]H[n]M[n]S)") from None
    if parsed < MIN_DURATION or parsed > MAX_DURATION:
        raise _invalid(path, f"'{value}': the maintenance window must be between 30 minutes (PT30M) and 6 hours "
                             "(PT6H)")
    return format_duration(parsed)


def _update_configuration(value: Any) -> dict[str, Any]:
    path = "properties.updateConfiguration"
    if not isinstance(value, dict):
        raise _invalid(path, "is required")
    out = dict(value)
    os_type = value.get("operatingSystem")
    if os_type not in ("Windows", "Linux"):
        raise _invalid(f"{path}.operatingSystem", f"{os_type!r} is not one of Windows, Linux")
    out["duration"] = _duration(value.get("duration"))
    vms = _string_list(value.get("azureVirtualMachines"), f"{path}.azureVirtualMachines")
    for index, vm in enumerate(vms):
        _vm_id(vm, f"{path}.azureVirtualMachines[{index}]")
    names = _string_list(value.get("nonAzureComputerNames"), f"{path}.nonAzureComputerNames")
    if "azureVirtualMachines" in value:
        out["azureVirtualMachines"] = vms
    if "nonAzureComputerNames" in value:
        out["nonAzureComputerNames"] = names
    windows, linux = value.get("windows"), value.get("linux")
    if windows is not None:
        if not isinstance(windows, dict):
            raise _invalid(f"{path}.windows", "an object is expected")
        windows = dict(windows)
        if windows.get("includedUpdateClassifications") is not None:
            windows["includedUpdateClassifications"] = _classes(windows["includedUpdateClassifications"],
                                                                _WINDOWS_CLASSES,
                                                                f"{path}.windows.includedUpdateClassifications")
        for key in ("excludedKbNumbers", "includedKbNumbers"):
            _string_list(windows.get(key), f"{path}.windows.{key}")
        out["windows"] = windows
    if linux is not None:
        if not isinstance(linux, dict):
            raise _invalid(f"{path}.linux", "an object is expected")
        linux = dict(linux)
        if linux.get("includedPackageClassifications") is not None:
            linux["includedPackageClassifications"] = _classes(linux["includedPackageClassifications"],
                                                               _LINUX_CLASSES,
                                                               f"{path}.linux.includedPackageClassifications")
        for key in ("excludedPackageNameMasks", "includedPackageNameMasks"):
            _string_list(linux.get(key), f"{path}.linux.{key}")
        out["linux"] = linux
    targets = value.get("targets")
    if targets is not None:
        if not isinstance(targets, dict):
            raise _invalid(f"{path}.targets", "an object is expected")
        for index, query in enumerate(targets.get("azureQueries") or []):
            if not isinstance(query, dict):
                raise _invalid(f"{path}.targets.azureQueries[{index}]", "an object is expected")
            _string_list(query.get("scope"), f"{path}.targets.azureQueries[{index}].scope")
            _string_list(query.get("locations"), f"{path}.targets.azureQueries[{index}].locations")
            tag = query.get("tagSettings")
            if tag is not None and (not isinstance(tag, dict) or tag.get("filterOperator") not in (None, "All", "Any")):
                raise _invalid(f"{path}.targets.azureQueries[{index}].tagSettings", "filterOperator is All or Any")
        for index, query in enumerate(targets.get("nonAzureQueries") or []):
            if not isinstance(query, dict):
                raise _invalid(f"{path}.targets.nonAzureQueries[{index}]", "an object is expected")
    return out


def _schedule(value: Any, existing: dict[str, Any] | None) -> dict[str, Any]:
    path = "properties.scheduleInfo"
    if not isinstance(value, dict):
        raise _invalid(path, "is required")
    out = dict(value)
    frequency = value.get("frequency")
    if frequency is not None and frequency not in _FREQUENCIES:
        raise _invalid(f"{path}.frequency", f"{frequency!r} is not one of {', '.join(_FREQUENCIES)}")
    now = utcnow()
    start = now + timedelta(minutes=10)
    if value.get("startTime") is not None:
        try:
            start = parse_datetime(str(value["startTime"]))
        except ValueError:
            raise _invalid(f"{path}.startTime", f"{value['startTime']!r} is not a date-time") from None
    if value.get("expiryTime") is not None:
        try:
            parse_datetime(str(value["expiryTime"]))
        except ValueError:
            raise _invalid(f"{path}.expiryTime", f"{value['expiryTime']!r} is not a date-time") from None
    interval = value.get("interval", 1)
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise _invalid(f"{path}.interval", "a positive integer is expected")
    advanced = value.get("advancedSchedule") or {}
    if not isinstance(advanced, dict):
        raise _invalid(f"{path}.advancedSchedule", "an object is expected")
    for day in advanced.get("weekDays") or []:
        if day not in _DAYS:
            raise _invalid(f"{path}.advancedSchedule.weekDays", f"{day!r} is not a day of the week")
    for day in advanced.get("monthDays") or []:
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 31:
            raise _invalid(f"{path}.advancedSchedule.monthDays", "days must be between 1 and 31")
    for occurrence in advanced.get("monthlyOccurrences") or []:
        if not isinstance(occurrence, dict) or occurrence.get("day") not in _DAYS or not (
                isinstance(occurrence.get("occurrence"), int) and -1 <= occurrence["occurrence"] <= 5):
            raise _invalid(f"{path}.advancedSchedule.monthlyOccurrences", "occurrence 1..5 (or -1) and a day")
    created = (existing or {}).get("creationTime") or iso_offset(now)
    out.update({
        "startTime": iso_offset(start), "startTimeOffsetMinutes": 0,
        "expiryTime": iso_offset(parse_datetime(str(value["expiryTime"]))) if value.get("expiryTime")
        else "9999-12-31T23:59:59.9999999+00:00",
        "expiryTimeOffsetMinutes": 0, "isEnabled": value.get("isEnabled", True),
        "nextRun": iso_offset(max(start, now)), "nextRunOffsetMinutes": 0, "interval": interval,
        "frequency": frequency or "OneTime", "creationTime": created, "lastModifiedTime": iso_offset(now),
        "timeZone": value.get("timeZone") or "UTC", "description": value.get("description") or "",
        "advancedSchedule": advanced,
    })
    return out


def _tasks(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _invalid("properties.tasks", "an object is expected")
    for key in ("preTask", "postTask"):
        task = value.get(key)
        if task is not None and (not isinstance(task, dict) or not isinstance(task.get("source", ""), str)
                                 or not isinstance(task.get("parameters") or {}, dict)):
            raise _invalid(f"properties.tasks.{key}", "an object with 'source' and 'parameters' is expected")
    return dict(value)


# ---------------------------------------------------------------------------------------------
# software update configurations


def _collection_item(configuration: dict[str, Any]) -> dict[str, Any]:
    """softwareUpdateConfigurationCollectionItem: the list's own, flatter shape."""
    props = configuration.get("properties", {})
    schedule = props.get("scheduleInfo", {})
    item: dict[str, Any] = {
        "updateConfiguration": props.get("updateConfiguration"), "tasks": props.get("tasks"),
        "frequency": schedule.get("frequency"), "startTime": schedule.get("startTime"),
        "creationTime": props.get("creationTime"), "lastModifiedTime": props.get("lastModifiedTime"),
        "provisioningState": props.get("provisioningState"), "nextRun": schedule.get("nextRun"),
    }
    return {"name": configuration["name"], "id": configuration["id"],
            "properties": {k: v for k, v in item.items() if v is not None}}


def suc_get(ctx: Context, request: Request) -> Response:
    account = _account(ctx, request)
    resource_id = _child_id(account, "softwareUpdateConfigurations", request.param("name"))
    found = ctx.state.get(resource_id)
    if found is None:
        raise not_found(resource_id)
    return Response.json(200, found)


def suc_put(ctx: Context, request: Request) -> Response:
    account = _account(ctx, request)
    body = request.json_object()
    name = request.param("name")
    props = body.get("properties")
    if not isinstance(props, dict):
        raise _invalid("properties", "is required")
    with ctx.state.lock:
        resource_id = _child_id(account, "softwareUpdateConfigurations", name)
        existing = ctx.state.get(resource_id)
        old = (existing or {}).get("properties", {})
        now = iso_offset(utcnow())
        new_props: dict[str, Any] = {
            "updateConfiguration": _update_configuration(props.get("updateConfiguration")),
            "scheduleInfo": _schedule(props.get("scheduleInfo"), old.get("scheduleInfo")),
        }
        tasks = _tasks(props.get("tasks"))
        if tasks is not None:
            new_props["tasks"] = tasks
        new_props.update({
            "provisioningState": "Succeeded", "error": {},
            "creationTime": old.get("creationTime", now), "createdBy": old.get("createdBy", "remediator@contoso.com"),
            "lastModifiedBy": "remediator@contoso.com", "lastModifiedTime": now,
        })
        stored = {"id": existing["id"] if existing else resource_id, "name": name, "properties": new_props}
        ctx.state.put(resource_id, stored)
    answer = {**stored, "properties": {**new_props, "provisioningState": "Provisioning"}}
    return Response.json(200 if existing else 201, answer)


def suc_delete(ctx: Context, request: Request) -> Response:
    account = _account(ctx, request)
    resource_id = _child_id(account, "softwareUpdateConfigurations", request.param("name"))
    return Response.empty(200 if ctx.state.delete(resource_id) else 204)


def _filtered(items: list[dict[str, Any]], request: Request) -> list[dict[str, Any]]:
    text = request.query.get("$filter")
    if not text:
        return items
    try:
        predicate = compile_filter(text)
    except (FilterError, ValueError) as exc:
        raise ArmError(400, "BadRequest", f"Invalid $filter '{text}': {exc}") from None
    return [item for item in items if predicate(item)]


def accounts_list(ctx: Context, request: Request) -> Response:
    """AutomationAccount_List / _ListByResourceGroup: the accounts, as GET returns each."""
    return list_of_type(ctx, request, "Microsoft.Automation/automationAccounts")


def suc_list(ctx: Context, request: Request) -> Response:
    account = _account(ctx, request)
    items = _filtered(ctx.state.children(account["id"], "softwareUpdateConfigurations"), request)
    return Response.json(200, {"value": [_collection_item(i) for i in items]})


# ---------------------------------------------------------------------------------------------
# runs and machine runs


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ArmError(400, "BadRequest", f"Invalid value for '{name}': '{raw}' is not an integer") from None
    if value < 0:
        raise ArmError(400, "BadRequest", f"Invalid value for '{name}': must not be negative")
    return value


def _newest_first(item: dict[str, Any]) -> str:
    props = item.get("properties", {})
    when = props.get("startTime") or props.get("creationTime") or ""
    try:
        return iso_offset(parse_datetime(when))
    except ValueError:
        return ""


def _page(ctx: Context, request: Request, kind: str) -> Response:
    account = _account(ctx, request)
    items = sorted(ctx.state.children(account["id"], kind), key=_newest_first, reverse=True)
    items = _filtered(items, request)
    skip = _int_param(request, "$skip") or 0
    top = _int_param(request, "$top")
    limit = min(top, PAGE_SIZE) if top is not None else PAGE_SIZE
    page = items[skip:skip + limit]
    body: dict[str, Any] = {"value": page}
    end = skip + len(page)
    if end < len(items) and (top is None or top > limit):
        query = {"api-version": request.query.get("api-version", ""), "$skip": str(end)}
        if request.query.get("$filter"):
            query["$filter"] = request.query["$filter"]
        if top is not None:
            query["$top"] = str(top - limit)
        body["nextLink"] = f"{request.base_url}{account['id']}/{kind}?{urlencode(query, safe='$', quote_via=quote)}"
    return Response.json(200, body)


def _by_id(ctx: Context, request: Request, kind: str) -> Response:
    account = _account(ctx, request)
    resource_id = _child_id(account, kind, request.param("name"))
    found = ctx.state.get(resource_id)
    if found is None:
        raise not_found(resource_id)
    return Response.json(200, found)


def runs_list(ctx: Context, request: Request) -> Response:
    return _page(ctx, request, "softwareUpdateConfigurationRuns")


def runs_get(ctx: Context, request: Request) -> Response:
    return _by_id(ctx, request, "softwareUpdateConfigurationRuns")


def machine_runs_list(ctx: Context, request: Request) -> Response:
    return _page(ctx, request, "softwareUpdateConfigurationMachineRuns")


def machine_runs_get(ctx: Context, request: Request) -> Response:
    return _by_id(ctx, request, "softwareUpdateConfigurationMachineRuns")
