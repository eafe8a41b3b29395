"""Helpers for tests/test_double.py: raw HTTP calls to the double, and a Swagger 2.0 validator.

The validator checks answers against the official definitions: the on-disk specs in
`tests/specs/` (unmodified copies; their origin and licence: tests/specs/README.md) and, for the services
whose specs aren't on disk, the definitions in `DERIVED` below, transcribed (structure only, no
descriptions) from Azure/azure-rest-api-specs:
- imagebuilder.json: specification/imagebuilder/resource-manager/Microsoft.VirtualMachineImages/
  ImageBuilder/stable/2025-10-01/imagebuilder.json
- resources.json (Provider, ProviderListResult, GenericResource): specification/resources/resource-manager/
  Microsoft.Resources/resources/stable/2025-04-01/resources.json
- resourcegraph.json (QueryResponse): specification/resourcegraph/resource-manager/Microsoft.ResourceGraph/
  ResourceGraph/stable/2021-03-01/resourcegraph.json
- OperationalInsights.json (queryResults): specification/operationalinsights/data-plane/
  Microsoft.OperationalInsights/stable/v1/OperationalInsights.json
- types.json: common-types/resource-management v2/v3/v5 (Resource, TrackedResource, ProxyResource,
  systemData, ErrorResponse); schedule.json: Automation 2015-10-31 scheduleFrequency (an enum, per the
  on-disk README).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

SPECS = Path(__file__).resolve().parent / "specs"

_RESOURCE_PROPS: dict[str, Any] = {
    "id": {"type": "string", "readOnly": True}, "name": {"type": "string", "readOnly": True},
    "type": {"type": "string", "readOnly": True},
    "systemData": {"$ref": "#/definitions/systemData", "readOnly": True},
}

_TYPES: dict[str, Any] = {"definitions": {
    "Resource": {"type": "object", "properties": _RESOURCE_PROPS, "x-ms-azure-resource": True},
    "TrackedResource": {"type": "object", "allOf": [{"$ref": "#/definitions/Resource"}], "required": ["location"],
                        "properties": {"tags": {"type": "object", "additionalProperties": {"type": "string"}},
                                       "location": {"type": "string"}}},
    "ProxyResource": {"type": "object", "allOf": [{"$ref": "#/definitions/Resource"}]},
    "systemData": {"type": "object", "properties": {
        "createdBy": {"type": "string"},
        "createdByType": {"type": "string", "enum": ["User", "Application", "ManagedIdentity", "Key"],
                          "x-ms-enum": {"modelAsString": True}},
        "createdAt": {"type": "string", "format": "date-time"}, "lastModifiedBy": {"type": "string"},
        "lastModifiedByType": {"type": "string", "enum": ["User", "Application", "ManagedIdentity", "Key"],
                               "x-ms-enum": {"modelAsString": True}},
        "lastModifiedAt": {"type": "string", "format": "date-time"}}},
    "ErrorAdditionalInfo": {"type": "object", "properties": {"type": {"type": "string"}, "info": {"type": "object"}}},
    "ErrorDetail": {"type": "object", "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}, "target": {"type": "string"},
        "details": {"type": "array", "items": {"$ref": "#/definitions/ErrorDetail"}},
        "additionalInfo": {"type": "array", "items": {"$ref": "#/definitions/ErrorAdditionalInfo"}}}},
    "ErrorResponse": {"type": "object", "properties": {"error": {"$ref": "#/definitions/ErrorDetail"}}},
}}

_SCHEDULE: dict[str, Any] = {"definitions": {
    "scheduleFrequency": {"type": "string", "enum": ["OneTime", "Day", "Hour", "Week", "Month"],
                          "x-ms-enum": {"modelAsString": True}},
}}

_STR = {"type": "string"}
_STRS = {"type": "array", "items": {"type": "string"}}
_BOOL = {"type": "boolean"}
_INT = {"type": "integer", "format": "int32"}
_T = "../../../../../../common-types/resource-management/v3/types.json#/definitions/"


def _sub(base: str, value: str, props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "x-ms-discriminator-value": value,
                           "allOf": [{"$ref": f"#/definitions/{base}"}], "properties": props}
    if required:
        out["required"] = required
    return out


_SCRIPT = {"scriptUri": _STR, "sha256Checksum": _STR, "inline": _STRS}
_PS = {**_SCRIPT, "runElevated": _BOOL, "runAsSystem": _BOOL, "validExitCodes": {"type": "array", "items": _INT}}
_IMAGEBUILDER: dict[str, Any] = {"definitions": {
    "ImageTemplateListResult": {"type": "object", "properties": {
        "value": {"type": "array", "items": {"$ref": "#/definitions/ImageTemplate"}}, "nextLink": _STR}},
    "ImageTemplateSource": {"type": "object", "discriminator": "type", "properties": {"type": _STR},
                            "required": ["type"]},
    "ImageTemplatePlatformImageSource": _sub("ImageTemplateSource", "PlatformImage", {
        "publisher": _STR, "offer": _STR, "sku": _STR, "version": _STR, "exactVersion": {**_STR, "readOnly": True},
        "planInfo": {"$ref": "#/definitions/PlatformImagePurchasePlan"}}),
    "ImageTemplateManagedImageSource": _sub("ImageTemplateSource", "ManagedImage", {"imageId": _STR}, ["imageId"]),
    "ImageTemplateSharedImageVersionSource": _sub("ImageTemplateSource", "SharedImageVersion", {
        "imageVersionId": _STR, "exactVersion": {**_STR, "readOnly": True}}, ["imageVersionId"]),
    "ImageTemplateInVMValidator": {"type": "object", "discriminator": "type",
                                   "properties": {"type": _STR, "name": _STR}, "required": ["type"]},
    "ImageTemplateShellValidator": _sub("ImageTemplateInVMValidator", "Shell", _SCRIPT),
    "ImageTemplatePowerShellValidator": _sub("ImageTemplateInVMValidator", "PowerShell", _PS),
    "ImageTemplateFileValidator": _sub("ImageTemplateInVMValidator", "File", {
        "sourceUri": _STR, "sha256Checksum": _STR, "destination": _STR}),
    "ImageTemplateCustomizer": {"type": "object", "discriminator": "type",
                                "properties": {"type": _STR, "name": _STR}, "required": ["type"]},
    "ImageTemplateShellCustomizer": _sub("ImageTemplateCustomizer", "Shell", _SCRIPT),
    "ImageTemplateRestartCustomizer": _sub("ImageTemplateCustomizer", "WindowsRestart", {
        "restartCommand": _STR, "restartCheckCommand": _STR, "restartTimeout": _STR}),
    "ImageTemplateWindowsUpdateCustomizer": _sub("ImageTemplateCustomizer", "WindowsUpdate", {
        "searchCriteria": _STR, "filters": _STRS, "updateLimit": {**_INT, "minimum": 0}}),
    "ImageTemplatePowerShellCustomizer": _sub("ImageTemplateCustomizer", "PowerShell", _PS),
    "ImageTemplateFileCustomizer": _sub("ImageTemplateCustomizer", "File", {
        "sourceUri": _STR, "sha256Checksum": _STR, "destination": _STR}),
    "ImageTemplateDistributor": {"type": "object", "discriminator": "type", "required": ["type", "runOutputName"],
                                 "properties": {"type": _STR,
                                                "runOutputName": {**_STR, "pattern": "^[A-Za-z0-9-_.]{1,64}$"},
                                                "artifactTags": {"type": "object", "additionalProperties": _STR}}},
    "ImageTemplateManagedImageDistributor": _sub("ImageTemplateDistributor", "ManagedImage", {
        "imageId": _STR, "location": _STR}, ["imageId", "location"]),
    "ImageTemplateSharedImageDistributor": _sub("ImageTemplateDistributor", "SharedImage", {
        "galleryImageId": _STR, "replicationRegions": _STRS, "excludeFromLatest": _BOOL,
        "storageAccountType": {"$ref": "#/definitions/SharedImageStorageAccountType"},
        "targetRegions": {"type": "array", "items": {"$ref": "#/definitions/TargetRegion"}},
        "versioning": {"$ref": "#/definitions/DistributeVersioner"},
        "replicationMode": {"type": "string", "enum": ["Full", "Shallow"], "x-ms-enum": {"modelAsString": True}}},
        ["galleryImageId"]),
    "TargetRegion": {"type": "object", "required": ["name"], "properties": {
        "name": _STR, "replicaCount": {**_INT, "minimum": 1},
        "storageAccountType": {"$ref": "#/definitions/SharedImageStorageAccountType"}}},
    "ImageTemplateVhdDistributor": _sub("ImageTemplateDistributor", "VHD", {"uri": _STR}),
    "PlatformImagePurchasePlan": {"type": "object", "required": ["planName", "planProduct", "planPublisher"],
                                  "properties": {"planName": _STR, "planProduct": _STR, "planPublisher": _STR}},
    "VirtualNetworkConfig": {"type": "object", "properties": {
        "subnetId": _STR, "containerInstanceSubnetId": _STR, "proxyVmSize": _STR}},
    "DataDisk": {"type": "object", "properties": {"sizeGB": {**_INT, "minimum": 0}}},
    "ImageTemplateVmProfile": {"type": "object", "properties": {
        "vmSize": _STR, "osDiskSizeGB": {**_INT, "minimum": 0}, "userAssignedIdentities": _STRS,
        "vnetConfig": {"$ref": "#/definitions/VirtualNetworkConfig"}}},
    "SharedImageStorageAccountType": {"type": "string", "enum": ["Standard_LRS", "Standard_ZRS", "Premium_LRS"],
                                      "x-ms-enum": {"modelAsString": True}},
    "ProvisioningState": {"type": "string", "enum": ["Creating", "Updating", "Succeeded", "Failed", "Deleting",
                                                     "Canceled"], "x-ms-enum": {"modelAsString": False}},
    "OnBuildError": {"type": "string", "enum": ["cleanup", "abort"], "x-ms-enum": {"modelAsString": True}},
    "ProvisioningError": {"type": "object", "properties": {
        "provisioningErrorCode": {"type": "string", "enum": [
            "BadSourceType", "BadPIRSource", "BadManagedImageSource", "BadSharedImageVersionSource",
            "BadCustomizerType", "UnsupportedCustomizerType", "NoCustomizerScript", "BadValidatorType",
            "UnsupportedValidatorType", "NoValidatorScript", "BadDistributeType", "BadSharedImageDistribute",
            "BadStagingResourceGroup", "ServerError", "Other"], "x-ms-enum": {"modelAsString": True}},
        "message": _STR}},
    "ImageTemplateLastRunStatus": {"type": "object", "properties": {
        "startTime": {"type": "string", "format": "date-time"}, "endTime": {"type": "string", "format": "date-time"},
        "runState": {"type": "string", "enum": ["Running", "Canceling", "Succeeded", "PartiallySucceeded", "Failed",
                                                "Canceled"], "x-ms-enum": {"modelAsString": False}},
        "runSubState": {"type": "string", "enum": ["Queued", "Building", "Customizing", "Optimizing", "Validating",
                                                   "Distributing"], "x-ms-enum": {"modelAsString": False}},
        "message": _STR}},
    "ImageTemplateAutoRun": {"type": "object", "properties": {
        "state": {"type": "string", "enum": ["Enabled", "Disabled"], "x-ms-enum": {"modelAsString": False}}}},
    "ImageTemplateProperties": {"type": "object", "required": ["source", "distribute"], "properties": {
        "source": {"$ref": "#/definitions/ImageTemplateSource"},
        "customize": {"type": "array", "items": {"$ref": "#/definitions/ImageTemplateCustomizer"}},
        "optimize": {"type": "object", "properties": {
            "vmBoot": {"type": "object", "properties": {"state": {"type": "string", "enum": ["Enabled", "Disabled"]}}},
            "workload": {"type": "object", "properties": {
                "state": {"type": "string", "enum": ["Enabled", "Disabled"]}, "scriptUri": _STR,
                "sha256Checksum": _STR}}}},
        "validate": {"type": "object", "properties": {
            "continueDistributeOnFailure": _BOOL, "sourceValidationOnly": _BOOL,
            "inVMValidations": {"type": "array", "items": {"$ref": "#/definitions/ImageTemplateInVMValidator"}}}},
        "distribute": {"type": "array", "items": {"$ref": "#/definitions/ImageTemplateDistributor"}},
        "errorHandling": {"type": "object", "properties": {
            "onCustomizerError": {"$ref": "#/definitions/OnBuildError"},
            "onValidationError": {"$ref": "#/definitions/OnBuildError"}}},
        "provisioningState": {"$ref": "#/definitions/ProvisioningState", "readOnly": True},
        "provisioningError": {"$ref": "#/definitions/ProvisioningError", "readOnly": True},
        "lastRunStatus": {"$ref": "#/definitions/ImageTemplateLastRunStatus", "readOnly": True},
        "buildTimeoutInMinutes": {**_INT, "minimum": 0, "maximum": 960},
        "vmProfile": {"$ref": "#/definitions/ImageTemplateVmProfile"},
        "additionalDataDisks": {"type": "array", "items": {"$ref": "#/definitions/DataDisk"}},
        "stagingResourceGroup": _STR, "exactStagingResourceGroup": {**_STR, "readOnly": True},
        "autoRun": {"$ref": "#/definitions/ImageTemplateAutoRun"},
        "managedResourceTags": {"type": "object", "additionalProperties": _STR}}},
    "ImageTemplateIdentity": {"type": "object", "properties": {
        "type": {"type": "string", "enum": ["UserAssigned", "None"], "x-ms-enum": {"modelAsString": False}},
        "userAssignedIdentities": {"$ref": "#/definitions/UserAssignedIdentities"}}},
    "UserAssignedIdentities": {"type": "object",
                               "additionalProperties": {"$ref": "#/definitions/UserAssignedIdentity"}},
    "UserAssignedIdentity": {"type": "object", "properties": {
        "principalId": {**_STR, "readOnly": True}, "clientId": {**_STR, "readOnly": True}}},
    "RunOutputProperties": {"type": "object", "properties": {
        "artifactId": _STR, "artifactUri": _STR,
        "provisioningState": {"$ref": "#/definitions/ProvisioningState", "readOnly": True}}},
    "ImageTemplate": {"type": "object", "required": ["identity"], "allOf": [{"$ref": _T + "TrackedResource"}],
                      "properties": {"properties": {"$ref": "#/definitions/ImageTemplateProperties"},
                                     "identity": {"$ref": "#/definitions/ImageTemplateIdentity"}}},
    "RunOutput": {"type": "object", "allOf": [{"$ref": _T + "ProxyResource"}],
                  "properties": {"properties": {"$ref": "#/definitions/RunOutputProperties"}}},
    "RunOutputCollection": {"type": "object", "properties": {
        "value": {"type": "array", "items": {"$ref": "#/definitions/RunOutput"}}, "nextLink": _STR}},
    "DistributeVersioner": {"type": "object", "discriminator": "scheme", "properties": {"scheme": _STR},
                            "required": ["scheme"]},
    "DistributeVersionerLatest": _sub("DistributeVersioner", "Latest", {"major": {**_INT, "minimum": -1}}),
    "DistributeVersionerSource": _sub("DistributeVersioner", "Source", {}),
}}

_RESOURCES: dict[str, Any] = {"definitions": {
    "ProviderResourceType": {"properties": {
        "resourceType": _STR, "locations": _STRS, "locationMappings": {"type": "array", "items": {"type": "object"}},
        "aliases": {"type": "array", "items": {"type": "object"}}, "apiVersions": _STRS,
        "defaultApiVersion": {**_STR, "readOnly": True}, "zoneMappings": {"type": "array", "items": {"type": "object"}},
        "apiProfiles": {"type": "array", "items": {"type": "object"}}, "capabilities": _STR,
        "properties": {"type": "object", "additionalProperties": _STR}}},
    "Provider": {"properties": {
        "id": {**_STR, "readOnly": True}, "namespace": _STR, "registrationState": {**_STR, "readOnly": True},
        "registrationPolicy": {**_STR, "readOnly": True},
        "resourceTypes": {"readOnly": True, "type": "array", "items": {"$ref": "#/definitions/ProviderResourceType"}},
        "providerAuthorizationConsentState": {"type": "string", "enum": [
            "NotSpecified", "Required", "NotRequired", "Consented"], "x-ms-enum": {"modelAsString": True}}}},
    "ProviderListResult": {"properties": {"value": {"type": "array", "items": {"$ref": "#/definitions/Provider"}},
                                          "nextLink": {**_STR, "readOnly": True}}},
    "Resource": {"properties": {"id": _STR, "name": _STR, "type": _STR, "location": _STR,
                                "extendedLocation": {"type": "object"},
                                "tags": {"type": "object", "additionalProperties": _STR}}},
    "GenericResource": {"allOf": [{"$ref": "#/definitions/Resource"}], "properties": {
        "plan": {"type": "object"}, "properties": {"type": "object"}, "kind": _STR, "managedBy": _STR,
        "sku": {"type": "object"}, "identity": {"type": "object"}}},
}}

_GRAPH: dict[str, Any] = {"definitions": {
    "QueryResponse": {"type": "object", "required": ["totalRecords", "count", "resultTruncated", "data"],
                      "properties": {
                          "totalRecords": {"type": "integer", "format": "int64"},
                          "count": {"type": "integer", "format": "int64"},
                          "resultTruncated": {"type": "string", "enum": ["true", "false"],
                                              "x-ms-enum": {"modelAsString": False}},
                          "$skipToken": _STR, "data": {},
                          "facets": {"type": "array", "items": {"type": "object"}}}},
    "ErrorResponse": {"type": "object", "required": ["error"],
                      "properties": {"error": {"$ref": "#/definitions/Error"}}},
    "Error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": _STR, "message": _STR, "details": {"type": "array", "items": {"$ref": "#/definitions/ErrorDetails"}}}},
    "ErrorDetails": {"type": "object", "required": ["code", "message"], "properties": {"code": _STR, "message": _STR},
                     "additionalProperties": {}},
}}

_LOGS: dict[str, Any] = {"definitions": {
    "queryResults": {"type": "object", "required": ["tables"], "properties": {
        "tables": {"type": "array", "items": {"$ref": "#/definitions/table"}}}},
    "table": {"type": "object", "required": ["name", "columns", "rows"], "properties": {
        "name": _STR, "columns": {"type": "array", "items": {"$ref": "#/definitions/column"}},
        # the spec says arrays of strings; the service (and the batch example) sends native JSON values
        "rows": {"type": "array", "items": {"type": "array"}}}},
    "column": {"type": "object", "properties": {"name": _STR, "type": _STR}},
    "errorResponse": {"type": "object", "required": ["error"],
                      "properties": {"error": {"$ref": "#/definitions/errorInfo"}}},
    "errorInfo": {"type": "object", "required": ["code", "message"], "properties": {
        "code": _STR, "message": _STR, "details": {"type": "array", "items": {"type": "object"}},
        "innererror": {"type": "object"}, "additionalProperties": {"type": "object"}}},
}}

DERIVED: dict[str, dict[str, Any]] = {
    "types.json": _TYPES, "schedule.json": _SCHEDULE, "imagebuilder.json": _IMAGEBUILDER,
    "resources.json": _RESOURCES, "resourcegraph.json": _GRAPH, "OperationalInsights.json": _LOGS,
}

_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")


class Spec:
    """Swagger 2.0 schema checks: $ref (resolved by file name), allOf, discriminators, types, formats,
    enums (unless extensible), required, bounds, patterns, and properties the definition doesn't declare."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = dict(DERIVED)
        for path in SPECS.rglob("*.json"):
            if "examples" not in path.parts:
                self.docs[path.name] = json.loads(path.read_text())

    def example(self, relative: str) -> dict[str, Any]:
        return dict(json.loads((SPECS / relative).read_text()))

    def errors(self, value: Any, doc: str, definition: str) -> list[str]:
        found: list[str] = []
        self._check(value, {"$ref": f"#/definitions/{definition}"}, doc, "$", found)
        return found

    def _resolve(self, ref: str, doc: str) -> tuple[dict[str, Any], str]:
        target, _, fragment = ref.partition("#")
        name = target.rsplit("/", 1)[-1] if target else doc
        node: Any = self.docs[name]
        for part in fragment.strip("/").split("/"):
            node = node[part]
        return node, name

    def _collect(self, schema: dict[str, Any], doc: str) -> tuple[dict[str, tuple[Any, str]], list[str], Any]:
        """Properties (with the doc they live in), required names, additionalProperties, through allOf."""
        props: dict[str, tuple[Any, str]] = {}
        required: list[str] = list(schema.get("required", []))
        extra = schema.get("additionalProperties")
        for part in schema.get("allOf", []):
            sub, sub_doc = self._resolve(part["$ref"], doc) if "$ref" in part else (part, doc)
            p, r, e = self._collect(sub, sub_doc)
            props.update(p)
            required += r
            extra = extra if extra is not None else e
        props.update({k: (v, doc) for k, v in schema.get("properties", {}).items()})
        return props, required, extra

    def _subtype(self, schema: dict[str, Any], doc: str, value: dict[str, Any], base: str) -> tuple[Any, str]:
        disc = schema.get("discriminator")
        if not disc or disc not in value:
            return schema, doc
        for definition in self.docs[doc].get("definitions", {}).values():
            parents = [p.get("$ref", "").rsplit("/", 1)[-1] for p in definition.get("allOf", [])]
            if definition.get("x-ms-discriminator-value") == value[disc] and base in parents:
                return definition, doc
        return schema, doc

    def _check(self, value: Any, schema: dict[str, Any], doc: str, path: str, errors: list[str]) -> None:
        base = ""
        while "$ref" in schema:
            base = schema["$ref"].rsplit("/", 1)[-1]
            schema, doc = self._resolve(schema["$ref"], doc)
        if value is None:
            if schema.get("x-nullable") is False:
                errors.append(f"{path}: null is not allowed")
            return
        if isinstance(value, dict) and base:
            schema, doc = self._subtype(schema, doc, value, base)
        kind = schema.get("type") or ("object" if "properties" in schema or "allOf" in schema else None)
        checks = {"object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list),
                  "string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
                  "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
                  "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool)}
        if kind in checks and not checks[kind](value):
            errors.append(f"{path}: expected {kind}, got {type(value).__name__} {value!r:.60}")
            return
        enum = schema.get("enum")
        if enum and value not in enum and not schema.get("x-ms-enum", {}).get("modelAsString", False):
            errors.append(f"{path}: {value!r} is not one of {enum}")
        if isinstance(value, str):
            self._string(value, schema, path, errors)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if "minimum" in schema and value < schema["minimum"]:
                errors.append(f"{path}: {value} < minimum {schema['minimum']}")
            if "maximum" in schema and value > schema["maximum"]:
                errors.append(f"{path}: {value} > maximum {schema['maximum']}")
        if isinstance(value, list) and "items" in schema:
            for index, item in enumerate(value):
                self._check(item, schema["items"], doc, f"{path}[{index}]", errors)
        if isinstance(value, dict) and kind == "object":
            self._object(value, schema, doc, path, errors)

    def _string(self, value: str, schema: dict[str, Any], path: str, errors: list[str]) -> None:
        fmt = schema.get("format")
        try:
            if fmt == "date-time":
                datetime.fromisoformat(value)
            elif fmt == "uuid":
                uuid.UUID(value)
            elif fmt == "duration" and not _DURATION.match(value):
                raise ValueError(value)
        except ValueError:
            errors.append(f"{path}: {value!r} is not a valid {fmt}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: {value!r} does not match {schema['pattern']}")

    def _object(self, value: dict[str, Any], schema: dict[str, Any], doc: str, path: str, errors: list[str]) -> None:
        props, required, extra = self._collect(schema, doc)
        for name in required:
            if name not in value:
                errors.append(f"{path}: required property '{name}' is missing")
        for key, item in value.items():
            if key in props:
                sub, sub_doc = props[key]
                self._check(item, sub, sub_doc, f"{path}.{key}", errors)
            elif isinstance(extra, dict) and extra:
                self._check(item, extra, doc, f"{path}.{key}", errors)
            elif extra is None and props:
                errors.append(f"{path}: property '{key}' is not defined by the spec")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None,
         token: str | None = "test-token") -> Answer:
    """One raw HTTP call (no SDK): for status codes, headers and bodies exactly as sent."""
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Answer(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


# ---------------------------------------------------------------------------------------------
# Update Manager (tests/test_double_update_manager.py): specs vendored under tests/specs, and the
# installed SDKs' models (generated from the same api-versions) as a second schema.

VENDORED = Path(__file__).resolve().parent / "specs"


class VendoredSpec(Spec):
    """`Spec` over the unmodified spec files of tests/specs (see its README), never the reference folder
    beside the repository."""

    def __init__(self) -> None:
        self.docs = dict(DERIVED)
        for path in VENDORED.rglob("*.json"):
            if "examples" not in path.parts:
                self.docs[path.name] = json.loads(path.read_text())

    def example(self, relative: str) -> dict[str, Any]:
        return dict(json.loads((VENDORED / relative).read_text()))


def undeclared(value: Any, model: Any, path: str = "$") -> list[str]:
    """Properties of `value` (a JSON answer) that the SDK model `model` (azure-mgmt-compute 39 /
    azure-mgmt-hybridcompute 10, generated from the 2026-04-01 / 2026-07-15 specs) doesn't declare, and
    required ones it lacks; recursive through nested models, lists and maps."""
    import sys
    import typing

    found: list[str] = []
    if value is None:
        return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found += undeclared(item, model, f"{path}[{index}]")
        return found
    if not isinstance(value, dict):
        return found
    module = sys.modules[model.__module__]
    package = sys.modules[model.__module__.rsplit(".", 1)[0]]
    hints = typing.get_type_hints(model, {**vars(module), "_models": package})
    fields = model()._attr_to_rest_field  # attribute -> rest field
    by_rest = {f._rest_name: (attr, f) for attr, f in fields.items()}
    for key, item in value.items():
        if key not in by_rest:
            found.append(f"{path}.{key}: not declared by {model.__name__}")
            continue
        attr, _field = by_rest[key]
        found += _check_hint(item, hints.get(attr), f"{path}.{key}")
    for rest, (_attr, field_) in by_rest.items():
        if not getattr(field_, "_is_optional", True) and "read" not in (getattr(field_, "_visibility", None) or []) \
                and rest not in value:
            found.append(f"{path}: required property '{rest}' missing")
    return found


def _check_hint(value: Any, hint: Any, path: str) -> list[str]:
    import typing

    if hint is None or value is None:
        return []
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union:
        models = [a for a in args if _is_model(a) or typing.get_origin(a) in (list, dict)]
        return _check_hint(value, models[0], path) if models else []
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [e for i, item in enumerate(value) for e in _check_hint(item, args[0], f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: expected an object"]
        return [e for k, item in value.items() for e in _check_hint(item, args[1], f"{path}.{k}")]
    if _is_model(hint):
        if not isinstance(value, dict):
            return [f"{path}: expected an object ({hint.__name__})"]
        return undeclared(value, hint, path)
    return []


def keys_within(answer: Any, example: Any, path: str = "$") -> list[str]:
    """Keys of `answer` that the spec example (e.g. a *_MaximumSet_Gen one, which carries every property)
    doesn't have, recursively; list items are compared with the example's first item."""
    found: list[str] = []
    if isinstance(answer, dict) and isinstance(example, dict):
        for key, value in answer.items():
            if key not in example:
                found.append(f"{path}.{key}")
            else:
                found += keys_within(value, example[key], f"{path}.{key}")
    elif isinstance(answer, list) and isinstance(example, list) and example:
        for index, item in enumerate(answer):
            found += keys_within(item, example[0], f"{path}[{index}]")
    return found


def _is_model(hint: Any) -> bool:
    """An SDK model class (the typespec generators' `_utils.model_base.Model`)."""
    return isinstance(hint, type) and any(c.__name__ == "Model" and c.__module__.endswith("model_base")
                                          for c in hint.__mro__)
