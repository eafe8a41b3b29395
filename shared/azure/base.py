"""What every adapter shares: the SDK client factory, the retry policy, REST-shaped data.

Adapters hand the rest of the product plain dicts shaped as the REST API documents them
(camelCase, as in `azure-rest-specs/`), so plans, audit records and the local double all
speak one language and no SDK model type leaks past `shared/azure`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.azure.clients import Clients
from shared.azure.ids import ResourceId, parse
from shared.azure.retry import RetryPolicy, status_of


class Adapter:
    def __init__(self, clients: Clients, retry: RetryPolicy | None = None) -> None:
        self.clients = clients
        self.retry = retry or RetryPolicy()


def rest(model: Any) -> dict[str, Any]:
    """An SDK result as the REST JSON it came from (typespec or msrest models alike)."""
    if model is None:
        return {}
    if isinstance(model, Mapping):
        as_dict = getattr(model, "as_dict", None)  # typespec models are Mappings keyed by REST names
        return dict(as_dict()) if callable(as_dict) else dict(model)
    serialize = getattr(model, "serialize", None)
    if callable(serialize):  # msrest models
        return dict(serialize(keep_readonly=True))
    raise TypeError(f"not an SDK model: {type(model).__name__}")


def is_not_found(exc: BaseException) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    return isinstance(exc, ResourceNotFoundError) or status_of(exc) == 404


def rid(resource_id: str) -> ResourceId:
    return parse(resource_id)


def prop(body: Mapping[str, Any], path: str, default: Any = None) -> Any:
    """`properties.lastRunStatus.runState` style lookup in REST JSON."""
    node: Any = body
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def lro(adapter: Adapter, begin: Any, *args: Any, **kwargs: Any) -> Any:
    """Starts a long-running operation and waits for it, surviving transient poll errors.

    The initial request is retried by the policy. A 429/5xx while polling does not lose
    the operation: the poller is rebuilt from its continuation token (the SDK's own way to
    resume) and polling goes on, within the same bounded number of attempts.
    """
    poller = adapter.retry.call(begin, *args, polling_interval=adapter.clients.polling_interval, **kwargs)
    token = poller.continuation_token()

    def wait() -> Any:
        nonlocal poller
        try:
            return poller.result()
        except Exception:
            poller = begin(*args, continuation_token=token, polling_interval=adapter.clients.polling_interval,
                           **kwargs)
            raise

    return adapter.retry.call(wait)
