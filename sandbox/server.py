"""The HTTP side of the double: routes, the request handler, and `AzureDouble`.

Every request goes through the same steps, in the order a real front door applies them:
latency -> injected fault (error or dropped connection) -> authentication -> ARM's api-version
(and, when enforced, provider registration) checks -> the route's handler. Each request is recorded
(before its answer is written, so a test that has its answer also sees its record).

Operation names (for `faults` and `requests_for`):
    providers.list, providers.get, providers.register, providers.unregister, resources.get,
    resources.checkExistence (HEAD by id),
    softwareUpdateConfigurations.{list,get,put,delete}, softwareUpdateConfigurationRuns.{list,get},
    softwareUpdateConfigurationMachineRuns.{list,get}, maintenanceConfigurations.{list,get,put,patch,delete},
    imageTemplates.{list,get,put,patch,delete,run,cancel}, imageTemplates.runOutputs.{list,get},
    imageTemplates.operations.get (LRO status polls), resourceGraph.resources, logs.query, logs.batch,
    blob.get, unknown (no route);
    Update Manager: virtualMachines.{list,get,instanceView,patch,start,restart,deallocate,powerOff,assessPatches,
    installPatches}, virtualMachines.operations.get (Compute LRO polls), virtualMachineExtensions.{list,get,delete},
    machines.{list,get,patch,assessPatches,installPatches}, machines.operations.get (HybridCompute LRO polls),
    machineExtensions.{list,get,delete}, configurationAssignments.{list,get,put,delete} (a resource's),
    configurationAssignmentsForSubscriptions.{get,put,patch,delete} (dynamic scopes),
    configurationAssignmentsWithinSubscription.list.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote

from sandbox import arm, automation, blob, compute, graph, hybrid, imagebuilder, logs, maintenance
from sandbox.base import ArmError, Context, Request, Response
from sandbox.estate import Estate
from sandbox.state import Fault, Faults, RequestLog, RequestRecord, State
from sandbox.util import stable_guid, utcnow

Handler = Callable[[Context, Request], Response]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    operation: str
    handler: Handler
    kind: str = "arm"  # arm | logs | blob
    api: tuple[str, str] | None = None  # (namespace, type) whose api-versions apply
    write_namespace: str | None = None  # provider a write needs registered (when enforced)
    versions: tuple[str, ...] | None = None  # the only api-versions accepted (instead of `api`'s)
    select: bool = False  # the route takes only requests of `versions`; the others go on to later routes


def _r(method: str, path: str, operation: str, handler: Handler, *, kind: str = "arm",
       api: tuple[str, str] | None = None, writes: str | None = None,
       versions: tuple[str, ...] | None = None, select: bool = False) -> Route:
    return Route(method, re.compile(f"^{path}/?$", re.IGNORECASE), operation, handler, kind, api, writes, versions,
                 select)


_S = r"/subscriptions/(?P<subscription>[^/]+)"
_G = _S + r"/resourceGroups/(?P<group>[^/]+)"
_AA = _G + r"/providers/Microsoft\.Automation/automationAccounts/(?P<account>[^/]+)"
_MC = r"/providers/Microsoft\.Maintenance/maintenanceConfigurations"
_IT = r"/providers/Microsoft\.VirtualMachineImages/imageTemplates"
_VMS = r"/providers/Microsoft\.Compute/virtualMachines"
_HMS = r"/providers/Microsoft\.HybridCompute/machines"
_CA = r"/providers/Microsoft\.Maintenance/configurationAssignments"
_NAME = r"/(?P<name>[^/]+)"
_VM = _G + _VMS + _NAME
_HM = _G + _HMS + _NAME
_TARGET = _G + r"/providers/(?P<rp>[^/]+)/(?P<rtype>[^/]+)/(?P<rname>[^/]+)" + _CA
_EXT = r"/extensions/(?P<extension>[^/]+)"

_RESOURCES = ("Microsoft.Resources", "providers")
_SUC = ("Microsoft.Automation", "automationAccounts/softwareUpdateConfigurations")
_RUN = ("Microsoft.Automation", "automationAccounts/softwareUpdateConfigurationRuns")
_MRUN = ("Microsoft.Automation", "automationAccounts/softwareUpdateConfigurationMachineRuns")
_MAINT = ("Microsoft.Maintenance", "maintenanceConfigurations")
_TPL = ("Microsoft.VirtualMachineImages", "imageTemplates")
_OUT = ("Microsoft.VirtualMachineImages", "imageTemplates/runOutputs")
_OPS = ("Microsoft.VirtualMachineImages", "locations/operations")
_ASSIGN = ("Microsoft.Maintenance", "configurationAssignments")
_C = compute.API
_H = hybrid.API

ROUTES: tuple[Route, ...] = (
    _r("GET", _S + r"/providers", "providers.list", arm.providers_list, api=_RESOURCES),
    _r("GET", _S + r"/providers/(?P<namespace>[^/]+)", "providers.get", arm.providers_get, api=_RESOURCES),
    _r("POST", _S + r"/providers/(?P<namespace>[^/]+)/register", "providers.register", arm.providers_register,
       api=_RESOURCES),
    _r("POST", _S + r"/providers/(?P<namespace>[^/]+)/unregister", "providers.unregister",
       arm.providers_unregister, api=_RESOURCES),
    _r("POST", r"/providers/Microsoft\.ResourceGraph/resources", "resourceGraph.resources", graph.query,
       api=("Microsoft.ResourceGraph", "resources")),
    # Automation Update Management
    _r("GET", _S + r"/providers/Microsoft\.Automation/automationAccounts", "automationAccounts.list",
       automation.accounts_list, api=("Microsoft.Automation", "automationAccounts")),
    _r("GET", _G + r"/providers/Microsoft\.Automation/automationAccounts", "automationAccounts.list",
       automation.accounts_list, api=("Microsoft.Automation", "automationAccounts")),
    _r("GET", _AA + r"/softwareUpdateConfigurations", "softwareUpdateConfigurations.list", automation.suc_list,
       api=_SUC),
    _r("GET", _AA + r"/softwareUpdateConfigurations" + _NAME, "softwareUpdateConfigurations.get",
       automation.suc_get, api=_SUC),
    _r("PUT", _AA + r"/softwareUpdateConfigurations" + _NAME, "softwareUpdateConfigurations.put",
       automation.suc_put, api=_SUC, writes="Microsoft.Automation"),
    _r("DELETE", _AA + r"/softwareUpdateConfigurations" + _NAME, "softwareUpdateConfigurations.delete",
       automation.suc_delete, api=_SUC, writes="Microsoft.Automation"),
    _r("GET", _AA + r"/softwareUpdateConfigurationRuns", "softwareUpdateConfigurationRuns.list",
       automation.runs_list, api=_RUN),
    _r("GET", _AA + r"/softwareUpdateConfigurationRuns" + _NAME, "softwareUpdateConfigurationRuns.get",
       automation.runs_get, api=_RUN),
    _r("GET", _AA + r"/softwareUpdateConfigurationMachineRuns", "softwareUpdateConfigurationMachineRuns.list",
       automation.machine_runs_list, api=_MRUN),
    _r("GET", _AA + r"/softwareUpdateConfigurationMachineRuns" + _NAME,
       "softwareUpdateConfigurationMachineRuns.get", automation.machine_runs_get, api=_MRUN),
    # Update Manager maintenance configurations
    _r("GET", _S + _MC, "maintenanceConfigurations.list", maintenance.config_list, api=_MAINT),
    _r("GET", _G + _MC, "maintenanceConfigurations.list", maintenance.config_list, api=_MAINT),
    _r("GET", _G + _MC + _NAME, "maintenanceConfigurations.get", maintenance.config_get, api=_MAINT),
    _r("PUT", _G + _MC + _NAME, "maintenanceConfigurations.put", maintenance.config_put, api=_MAINT,
       writes="Microsoft.Maintenance"),
    _r("PATCH", _G + _MC + _NAME, "maintenanceConfigurations.patch", maintenance.config_patch, api=_MAINT,
       writes="Microsoft.Maintenance"),
    _r("DELETE", _G + _MC + _NAME, "maintenanceConfigurations.delete", maintenance.config_delete, api=_MAINT,
       writes="Microsoft.Maintenance"),
    # Image Builder
    _r("GET", _S + _IT, "imageTemplates.list", imagebuilder.template_list, api=_TPL),
    _r("GET", _G + _IT, "imageTemplates.list", imagebuilder.template_list, api=_TPL),
    _r("GET", _G + _IT + _NAME, "imageTemplates.get", imagebuilder.template_get, api=_TPL),
    _r("PUT", _G + _IT + _NAME, "imageTemplates.put", imagebuilder.template_put, api=_TPL,
       writes="Microsoft.VirtualMachineImages"),
    _r("PATCH", _G + _IT + _NAME, "imageTemplates.patch", imagebuilder.template_patch, api=_TPL,
       writes="Microsoft.VirtualMachineImages"),
    _r("DELETE", _G + _IT + _NAME, "imageTemplates.delete", imagebuilder.template_delete, api=_TPL,
       writes="Microsoft.VirtualMachineImages"),
    _r("POST", _G + _IT + _NAME + r"/run", "imageTemplates.run", imagebuilder.template_run, api=_TPL,
       writes="Microsoft.VirtualMachineImages"),
    _r("POST", _G + _IT + _NAME + r"/cancel", "imageTemplates.cancel", imagebuilder.template_cancel, api=_TPL,
       writes="Microsoft.VirtualMachineImages"),
    _r("GET", _G + _IT + _NAME + r"/runOutputs", "imageTemplates.runOutputs.list", imagebuilder.run_outputs_list,
       api=_OUT),
    _r("GET", _G + _IT + _NAME + r"/runOutputs/(?P<output>[^/]+)", "imageTemplates.runOutputs.get",
       imagebuilder.run_output_get, api=_OUT),
    _r("GET", _S + r"/providers/Microsoft\.VirtualMachineImages/locations/(?P<location>[^/]+)/operations/"
       r"(?P<operation>[^/]+)", "imageTemplates.operations.get", imagebuilder.operation_get, api=_OPS),
    # Update Manager: Azure VMs (Compute 2026-04-01, the only version these routes take). A GET with another
    # published api-version (Resources_GetById callers) goes on to `resources.get`, which answers the same.
    _r("GET", _S + _VMS, "virtualMachines.list", compute.vm_list, versions=_C),
    _r("GET", _G + _VMS, "virtualMachines.list", compute.vm_list, versions=_C),
    _r("GET", _VM, "virtualMachines.get", compute.vm_get, versions=_C, select=True),
    _r("PATCH", _VM, "virtualMachines.patch", compute.vm_patch, versions=_C, writes="Microsoft.Compute"),
    _r("GET", _VM + r"/instanceView", "virtualMachines.instanceView", compute.vm_instance_view, versions=_C),
    _r("POST", _VM + r"/start", "virtualMachines.start", compute.vm_start, versions=_C, writes="Microsoft.Compute"),
    _r("POST", _VM + r"/restart", "virtualMachines.restart", compute.vm_restart, versions=_C,
       writes="Microsoft.Compute"),
    _r("POST", _VM + r"/deallocate", "virtualMachines.deallocate", compute.vm_deallocate, versions=_C,
       writes="Microsoft.Compute"),
    _r("POST", _VM + r"/powerOff", "virtualMachines.powerOff", compute.vm_power_off, versions=_C,
       writes="Microsoft.Compute"),
    _r("POST", _VM + r"/assessPatches", "virtualMachines.assessPatches", compute.vm_assess, versions=_C,
       writes="Microsoft.Compute"),
    _r("POST", _VM + r"/installPatches", "virtualMachines.installPatches", compute.vm_install, versions=_C,
       writes="Microsoft.Compute"),
    _r("GET", _VM + r"/extensions", "virtualMachineExtensions.list", compute.extension_list, versions=_C),
    _r("GET", _VM + _EXT, "virtualMachineExtensions.get", compute.extension_get, versions=_C),
    _r("DELETE", _VM + _EXT, "virtualMachineExtensions.delete", compute.extension_delete, versions=_C,
       writes="Microsoft.Compute"),
    _r("GET", _S + r"/providers/Microsoft\.Compute/locations/(?P<location>[^/]+)/operations/(?P<operation>[^/]+)",
       "virtualMachines.operations.get", compute.operation_get, versions=_C),
    # Arc-enabled servers (HybridCompute 2026-07-15)
    _r("GET", _S + _HMS, "machines.list", hybrid.machine_list, versions=_H),
    _r("GET", _G + _HMS, "machines.list", hybrid.machine_list, versions=_H),
    _r("GET", _HM, "machines.get", hybrid.machine_get, versions=_H, select=True),
    _r("PATCH", _HM, "machines.patch", hybrid.machine_patch, versions=_H, writes="Microsoft.HybridCompute"),
    _r("POST", _HM + r"/assessPatches", "machines.assessPatches", hybrid.machine_assess, versions=_H,
       writes="Microsoft.HybridCompute"),
    _r("POST", _HM + r"/installPatches", "machines.installPatches", hybrid.machine_install, versions=_H,
       writes="Microsoft.HybridCompute"),
    _r("GET", _HM + r"/extensions", "machineExtensions.list", hybrid.extension_list, versions=_H),
    _r("GET", _HM + _EXT, "machineExtensions.get", hybrid.extension_get, versions=_H),
    _r("DELETE", _HM + _EXT, "machineExtensions.delete", hybrid.extension_delete, versions=_H,
       writes="Microsoft.HybridCompute"),
    _r("GET", _S + r"/providers/Microsoft\.HybridCompute/locations/(?P<location>[^/]+)/"
       r"(?P<kind>operationStatus|operationResults)/(?P<operation>[^/]+)", "machines.operations.get",
       hybrid.operation_get, versions=_H),
    # maintenance configuration assignments (a resource's; a subscription's dynamic scopes)
    _r("GET", _TARGET, "configurationAssignments.list", maintenance.assignment_list, api=_ASSIGN),
    _r("GET", _TARGET + _NAME, "configurationAssignments.get", maintenance.assignment_get, api=_ASSIGN),
    _r("PUT", _TARGET + _NAME, "configurationAssignments.put", maintenance.assignment_put, api=_ASSIGN,
       writes="Microsoft.Maintenance"),
    _r("DELETE", _TARGET + _NAME, "configurationAssignments.delete", maintenance.assignment_delete, api=_ASSIGN,
       writes="Microsoft.Maintenance"),
    _r("GET", _S + _CA, "configurationAssignmentsWithinSubscription.list",
       maintenance.assignments_within_subscription, api=_ASSIGN),
    _r("GET", _S + _CA + _NAME, "configurationAssignmentsForSubscriptions.get",
       maintenance.subscription_assignment_get, api=_ASSIGN),
    _r("PUT", _S + _CA + _NAME, "configurationAssignmentsForSubscriptions.put",
       maintenance.subscription_assignment_put, api=_ASSIGN, writes="Microsoft.Maintenance"),
    _r("PATCH", _S + _CA + _NAME, "configurationAssignmentsForSubscriptions.patch",
       maintenance.subscription_assignment_patch, api=_ASSIGN, writes="Microsoft.Maintenance"),
    _r("DELETE", _S + _CA + _NAME, "configurationAssignmentsForSubscriptions.delete",
       maintenance.subscription_assignment_delete, api=_ASSIGN, writes="Microsoft.Maintenance"),
    # any other resource, by id (Resources_GetById); checks its own api-version
    _r("GET", r"/subscriptions/[^/]+(?:/.+)?", "resources.get", arm.generic_get),
    _r("HEAD", r"/subscriptions/[^/]+(?:/.+)?", "resources.checkExistence", arm.generic_head),
    # Log Analytics query API
    _r("POST", r"/v1/workspaces/(?P<workspace>[^/]+)/query", "logs.query", logs.query_post, kind="logs"),
    _r("GET", r"/v1/workspaces/(?P<workspace>[^/]+)/query", "logs.query", logs.query_get, kind="logs"),
    _r("POST", r"/v1(?P<resource>/subscriptions/.+)/query", "logs.query", logs.query_resource, kind="logs"),
    _r("POST", r"/v1/\$batch", "logs.batch", logs.batch, kind="logs"),
    # Blob storage (read)
    _r("GET", r"/blob/(?P<account>[^/]+)/(?P<container>[^/]+)/(?P<path>.+)", "blob.get", blob.get_blob,
       kind="blob"),
    _r("HEAD", r"/blob/(?P<account>[^/]+)/(?P<container>[^/]+)/(?P<path>.+)", "blob.get", blob.get_blob,
       kind="blob"),
)


def match(method: str, path: str, api_version: str | None = None) -> tuple[Route | None, dict[str, str], bool]:
    """(route, params, path_known): path_known is True when the path exists for another method."""
    known = False
    for route in ROUTES:
        found = route.pattern.match(path)
        if not found:
            continue
        if route.select and (api_version or "").lower() not in (v.lower() for v in route.versions or ()):
            continue
        if route.method == method:
            return route, {k: v for k, v in found.groupdict().items() if v is not None}, True
        known = True
    return None, {}, known


_FAULT_CODES = {
    408: ("RequestTimeout", "The request timed out."),
    429: ("SubscriptionRequestsThrottled", "Number of requests for operation '{operation}' exceeded the limit. "
                                           "Please try again after '{retry}' seconds."),
    500: ("InternalServerError", "Encountered internal server error. Diagnostic information: timestamp '{time}', "
                                 "tracking id '{tracking}'."),
    502: ("BadGateway", "The gateway did not receive a valid response from the resource provider."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Please retry the request."),
    504: ("GatewayTimeout", "The gateway did not receive a response from the resource provider within the "
                            "specified time period."),
}
_STORAGE_FAULTS = {500: ("InternalError", "The server encountered an internal error. Please retry the request."),
                   503: ("ServerBusy", "The server is busy."),
                   429: ("ServerBusy", "Operations per second is over the account limit.")}


def _fault_response(fault: Fault, route: Route | None, operation: str) -> Response:
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    if route is not None and route.kind == "blob":
        code, message = _STORAGE_FAULTS.get(fault.status, ("InternalError", "Injected fault."))
        return blob.storage_error(fault.status, code, message, headers)
    code, message = _FAULT_CODES.get(fault.status, ("InjectedFault", "The double injected this fault."))
    text = message.format(operation=operation, retry=fault.retry_after if fault.retry_after is not None else 1,
                          time=utcnow().isoformat(), tracking=stable_guid(operation, str(time.time_ns())))
    return Response.json(fault.status, {"error": {"code": code, "message": text}}, headers)


def _unauthenticated(route: Route | None, tenant_id: str, header: str) -> Response:
    if route is not None and route.kind == "blob":
        return blob.unauthenticated(tenant_id)
    if route is not None and route.kind == "logs":
        return Response.json(401, {"error": {"message": "Valid authentication was not provided",
                                             "code": "AuthorizationRequiredError"}})
    problem = ("The 'Authorization' header is missing." if not header
               else "The 'Authorization' header is not a bearer token.")
    challenge = (f'Bearer authorization_uri="https://login.microsoftonline.com/{tenant_id}", error="invalid_token", '
                 'error_description="The authentication failed because of missing \'Authorization\' header."')
    return Response.json(401, {"error": {"code": "AuthenticationFailed",
                                         "message": f"Authentication failed. {problem}"}},
                         {"WWW-Authenticate": challenge})


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # concurrent clients in tests must not see connection resets

    def __init__(self, address: tuple[str, int], double: AzureDouble) -> None:
        self.double = double
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    # Headers and body go out in two writes: with Nagle's algorithm on, the body would wait
    # for the client's delayed ACK (~40 ms a request on Linux loopback).
    disable_nagle_algorithm = True

    protocol_version = "HTTP/1.1"
    server_version = "AzureDouble/1.0"
    sys_version = ""
    timeout = 120
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is the record."""

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length:
            return self.rfile.read(int(length))
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return b""

    def _serve(self) -> None:
        double = self.server.double
        body = self._read_body()
        raw_path, _, raw_query = self.path.partition("?")
        path = unquote(raw_path)
        query = {k: v[0] for k, v in parse_qs(raw_query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        host = headers.get("host") or "{}:{}".format(*self.server.server_address[:2])
        route, params, known = match(self.command, path, query.get("api-version"))
        operation = route.operation if route else "unknown"
        request = Request(self.command, path, query, headers, body, f"http://{host}", params)
        delay = double.faults.latency(operation)
        if delay:
            time.sleep(delay)
        fault = double.faults.decide(operation) if not double.stopped else Fault("drop")
        text = body.decode("utf-8", "replace") if body else ""
        if fault is not None and fault.kind == "drop":
            double.record(RequestRecord(self.command, path, query, operation, 0, time.time(), text))
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None:
            response = _fault_response(fault, route, operation)
        else:
            response = double.dispatch(route, request, known)
        double.record(RequestRecord(self.command, path, query, operation, response.status, time.time(), text))
        self._write(response)

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        request_id = stable_guid("request", str(time.time_ns()))
        headers = {"x-ms-request-id": request_id, "x-ms-correlation-request-id": request_id, **response.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)


class AzureDouble:
    """A local HTTP double of ARM, Log Analytics and a blob endpoint, for the unmodified Azure SDKs.

    The socket is bound at construction, so `url` (and the estate's blob URLs) are known before
    `start()`. `poll_after` is how many polls (or GETs) a long-running operation or a provider
    registration stays in progress before it completes.
    """

    def __init__(self, estate: Estate | None = None, poll_after: int = 2, *, host: str = "127.0.0.1", port: int = 0,
                 seed: int = 0, lro_retry_after: int | None = None, enforce_registration: bool = False) -> None:
        self.estate = estate or Estate.empty()
        self.poll_after = poll_after
        self.faults = Faults(seed)
        self.enforce_registration = enforce_registration
        self.lro_retry_after = lro_retry_after if lro_retry_after is not None else (0 if poll_after <= 5 else 1)
        self._log = RequestLog()
        self._httpd = _HTTPServer((host, port), self)
        bound_host, bound_port = self._httpd.server_address[:2]
        self.url = f"http://{bound_host!s}:{bound_port}"
        self.state = State(self.estate, self.blob_endpoint, poll_after)
        self.context = Context(self.state, poll_after, self.lro_retry_after)
        self._thread: threading.Thread | None = None
        self.stopped = False

    # lifecycle -------------------------------------------------------------------------------------
    def start(self) -> str:
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"azure-double-{self.url}", daemon=True)
            self._thread.start()
        return self.url

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.close_connections()
        self._httpd.server_close()

    def __enter__(self) -> AzureDouble:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # endpoints ---------------------------------------------------------------------------------------
    @property
    def arm_url(self) -> str:
        return self.url

    @property
    def logs_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def blob_endpoint(self) -> str:
        return f"{self.url}/blob"

    def blob_url(self, account: str, container: str, path: str) -> str:
        return f"{self.blob_endpoint}/{account}/{container}/{path.lstrip('/')}"

    # what happened ----------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        return self._log.all()

    def requests_for(self, operation: str, method: str | None = None) -> list[RequestRecord]:
        return [r for r in self._log.all() if r.operation == operation and (method is None or r.method == method)]

    def clear_requests(self) -> None:
        self._log.clear()

    def record(self, record: RequestRecord) -> None:
        self._log.add(record)

    # Log Analytics rows (the default workspace unless named) ------------------------------------------
    @property
    def refs(self) -> dict[str, str]:
        """Well-known ids and values of the estate (`sandbox_estate().refs`), blob URLs resolved."""
        return dict(self.state.refs)

    @property
    def heartbeat(self) -> list[dict[str, Any]]:
        return self.state.log_rows("Heartbeat")

    def tables(self, workspace: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """A workspace's tables as rows (TimeGenerated as datetime)."""
        ws = self.state.workspace(workspace)
        if ws is None:
            return {}
        return {name: self.state.log_rows(name, ws.customer_id) for name in ws.tables}

    # dispatch ------------------------------------------------------------------------------------------
    def dispatch(self, route: Route | None, request: Request, path_known: bool) -> Response:
        if route is None:
            if path_known:
                return Response.json(405, {"error": {"code": "MethodNotAllowed", "message": f"The requested "
                                                     f"resource does not support http method '{request.method}'."}})
            return Response.json(404, {"error": {"code": "NotFound", "message": f"The double has no route for "
                                                 f"{request.method} {request.path}."}})
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthenticated(route, self.state.tenant_id, header)
        try:
            if route.versions is not None:
                arm.check_versions(request, route.versions)
            elif route.api is not None:
                arm.check_api_version(request, *route.api)
            if route.write_namespace is not None and "subscription" in route.pattern.groupindex:
                arm.require_registered(self.context, request, request.params["subscription"], route.write_namespace,
                                       self.enforce_registration)
            return route.handler(self.context, request)
        except ArmError as error:
            return Response.json(error.status, error.body(), error.headers)
        except Exception as exc:  # a bug in the double: answer 500 with the cause, keep serving
            return Response.json(500, {"error": {"code": "InternalServerError",
                                                 "message": f"The double failed: {exc!r}",
                                                 "details": [{"code": "Traceback",
                                                              "message": traceback.format_exc()[-2000:]}]}})
