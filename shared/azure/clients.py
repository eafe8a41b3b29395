"""Builds the real Azure SDK clients, lazily and once per subscription.

In Azure: `DefaultAzureCredential` (the Function App's managed identity). Against a local
double (loopback endpoints): a static token, and bearer auth allowed over plain http.
azure-core's own retries are off here; `shared.azure.retry` owns retrying.
"""

from __future__ import annotations

import functools
import time
from typing import Any
from urllib.parse import urlsplit

from shared.azure.endpoints import ARM_SCOPE, LOGS_SCOPE, Endpoints, is_loopback

POOL_SIZE = 32  # a Functions worker runs several invocations at once; requests' default is 10


def pooled_transport(pool_size: int = POOL_SIZE, **timeouts: float) -> Any:
    """A requests transport whose connection pool fits the threads that share a client
    (`timeouts`: connection_timeout, read_timeout)."""
    import importlib

    from azure.core.pipeline.transport import RequestsTransport

    adapters = importlib.import_module("requests.adapters")
    session = _session_class()()
    adapter = adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return RequestsTransport(session=session, session_owner=True, **timeouts)


@functools.cache
def _session_class() -> Any:
    """A requests Session that reads the environment's proxy and CA-bundle settings once per origin.

    requests looks them up on every request (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE: a scan
    of os.environ, about a tenth of a request's own CPU here). A worker's environment does not
    change while it runs (changing an app setting restarts it), so each origin's answer is kept.
    Explicit per-request proxies are honoured as requests honours them."""
    import importlib

    requests = importlib.import_module("requests")

    class EnvironmentOnceSession(requests.Session):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self._environment: dict[tuple[Any, ...], dict[str, Any]] = {}

        def merge_environment_settings(self, url: str, proxies: Any, stream: Any, verify: Any,
                                       cert: Any) -> dict[str, Any]:
            if proxies or not self.trust_env:
                return super().merge_environment_settings(url, proxies, stream, verify, cert)  # type: ignore[no-any-return]
            parts = urlsplit(url)
            key = (parts.scheme, parts.netloc, stream, verify, cert)
            settings = self._environment.get(key)
            if settings is None:
                settings = super().merge_environment_settings(url, {}, stream, verify, cert)
                self._environment[key] = settings
            return {**settings, "proxies": dict(settings["proxies"])}

    return EnvironmentOnceSession


class StaticToken:
    """A credential for the local double, which checks that a token is sent, not its value."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("local-double-token", int(time.time()) + 3600)


def _auth_policy(credential: Any, scope: str, url: str) -> Any:
    """Bearer auth; on loopback it may use plain http (azure-core's `enforce_https` option)."""
    from azure.core.pipeline.policies import BearerTokenCredentialPolicy

    if not is_loopback(url):
        return None  # the SDK's default policy (ARM challenge-aware auth)

    class LoopbackBearer(BearerTokenCredentialPolicy):  # type: ignore[type-arg]
        def on_request(self, request: Any) -> None:
            request.context.options["enforce_https"] = False
            super().on_request(request)

    return LoopbackBearer(credential, scope)


class Clients:
    """One place that knows how to reach Azure; adapters ask it for SDK clients."""

    def __init__(self, endpoints: Endpoints | None = None, credential: Any = None, timeout: float = 30.0,
                 polling_interval: float = 30.0) -> None:
        self.endpoints = endpoints or Endpoints.from_env()
        self._credential = credential
        self._timeout = timeout
        # Seconds between LRO polls when the service sends no Retry-After (tests: 0).
        self.polling_interval = polling_interval
        self._cache: dict[tuple[str, str], Any] = {}

    @property
    def credential(self) -> Any:
        if self._credential is None:
            if self.endpoints.local:
                self._credential = StaticToken()
            else:
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential()
        return self._credential

    def _common(self, url: str, scope: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "transport": pooled_transport(connection_timeout=min(10.0, self._timeout), read_timeout=self._timeout),
            "retry_total": 0,
        }
        policy = _auth_policy(self.credential, scope, url)
        if policy is not None:
            kwargs["authentication_policy"] = policy
        return kwargs

    def _mgmt(self, key: str, subscription: str, factory: Any) -> Any:
        cached = self._cache.get((key, subscription))
        if cached is None:
            cached = factory(
                self.credential, subscription, base_url=self.endpoints.arm,
                **self._common(self.endpoints.arm, ARM_SCOPE),
            )
            self._cache[(key, subscription)] = cached
        return cached

    def resources(self, subscription: str) -> Any:
        from azure.mgmt.resource.resources import ResourceManagementClient

        return self._mgmt("resources", subscription, ResourceManagementClient)

    def automation(self, subscription: str) -> Any:
        from azure.mgmt.automation import AutomationClient

        return self._mgmt("automation", subscription, AutomationClient)

    def maintenance(self, subscription: str) -> Any:
        from azure.mgmt.maintenance import MaintenanceManagementClient

        return self._mgmt("maintenance", subscription, MaintenanceManagementClient)

    def compute(self, subscription: str) -> Any:
        from azure.mgmt.compute import ComputeManagementClient

        return self._mgmt("compute", subscription, ComputeManagementClient)

    def hybridcompute(self, subscription: str) -> Any:
        from azure.mgmt.hybridcompute import HybridComputeManagementClient

        return self._mgmt("hybridcompute", subscription, HybridComputeManagementClient)

    def imagebuilder(self, subscription: str) -> Any:
        from azure.mgmt.imagebuilder import ImageBuilderClient

        return self._mgmt("imagebuilder", subscription, ImageBuilderClient)

    def resourcegraph(self) -> Any:
        cached = self._cache.get(("resourcegraph", ""))
        if cached is None:
            from azure.mgmt.resourcegraph import ResourceGraphClient

            cached = ResourceGraphClient(
                self.credential, base_url=self.endpoints.arm, **self._common(self.endpoints.arm, ARM_SCOPE)
            )
            self._cache[("resourcegraph", "")] = cached
        return cached

    def logs(self) -> Any:
        cached = self._cache.get(("logs", ""))
        if cached is None:
            from azure.monitor.query import LogsQueryClient

            cached = LogsQueryClient(
                self.credential, endpoint=self.endpoints.logs, **self._common(self.endpoints.logs, LOGS_SCOPE)
            )
            self._cache[("logs", "")] = cached
        return cached
