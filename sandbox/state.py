"""The double's state: resources, providers, long-running operations, logs, graph rows, blobs;
plus the fault knobs and the request log tests assert on.

One re-entrant lock guards everything, so a handler's read-modify-write (and an operation's
completion callback) is atomic against concurrent requests. Every value crossing the boundary is
deep-copied: callers can't mutate the store by accident, and the store can't mutate theirs.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.estate import BLOB_ENDPOINT, Estate, LogTable, RunOutcome, Workspace
from sandbox.kql import Table
from sandbox.patching import PatchOutcome
from sandbox.um_estate import paused_gc
from sandbox.util import deep, deep_replace, iso, parse_datetime, replace_text, stable_guid, utcnow

# ---------------------------------------------------------------------------------------------
# request log


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the double saw it. `status` 0 means the connection was dropped (a fault)."""

    method: str
    path: str
    query: dict[str, str]
    operation: str
    status: int
    time: float
    body: str = ""


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[RequestRecord] = []

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._items.append(record)

    def all(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


# ---------------------------------------------------------------------------------------------
# faults


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do instead of answering: `error` (status, optional Retry-After) or `drop` the connection."""

    kind: str
    status: int = 0
    retry_after: int | None = None


@dataclass(slots=True)
class _Next:
    remaining: int
    fault: Fault


@dataclass(slots=True)
class _Rate:
    rate: float
    fault: Fault


class Faults:
    """Fault injection per operation name (or "*" for every operation), with a seeded RNG.

    Deterministic rules (`fail_next`, `drop_next`) are consumed first, in the order given; then
    `drop_rate`, then `set_rate`. `latency_ms` delays every answer; `set_latency` one operation's.
    """

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._next: list[tuple[str, _Next]] = []
        self._rates: dict[str, _Rate] = {}
        self._drops: dict[str, float] = {}
        self._latency: dict[str, int] = {}
        self.latency_ms = 0

    def fail_next(self, operation: str, count: int, status: int = 500, retry_after: int | None = None) -> None:
        """The next `count` calls of `operation` answer `status` (with `Retry-After` if given)."""
        with self._lock:
            self._next.append((operation, _Next(count, Fault("error", status, retry_after))))

    def drop_next(self, operation: str, count: int) -> None:
        """The next `count` calls of `operation` get their connection closed without an answer."""
        with self._lock:
            self._next.append((operation, _Next(count, Fault("drop"))))

    def set_rate(self, operation: str, rate: float, status: int = 429, retry_after: int | None = 1) -> None:
        """A fraction `rate` (0..1) of the calls answer `status`."""
        with self._lock:
            self._rates[operation] = _Rate(rate, Fault("error", status, retry_after))

    def drop_rate(self, operation: str, rate: float) -> None:
        """A fraction `rate` (0..1) of the calls get their connection closed without an answer."""
        with self._lock:
            self._drops[operation] = rate

    def set_latency(self, operation: str, ms: int) -> None:
        with self._lock:
            self._latency[operation] = ms

    def seed(self, seed: int) -> None:
        with self._lock:
            self._rng.seed(seed)

    def clear(self) -> None:
        with self._lock:
            self._next.clear()
            self._rates.clear()
            self._drops.clear()
            self._latency.clear()
            self.latency_ms = 0

    def latency(self, operation: str) -> float:
        with self._lock:
            ms = self._latency.get(operation, self._latency.get("*", self.latency_ms))
        return max(ms, 0) / 1000.0

    def decide(self, operation: str) -> Fault | None:
        with self._lock:
            for index, (name, rule) in enumerate(self._next):
                if name in (operation, "*") and rule.remaining > 0:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        del self._next[index]
                    return rule.fault
            drop = self._drops.get(operation, self._drops.get("*"))
            if drop and self._rng.random() < drop:
                return Fault("drop")
            rate = self._rates.get(operation, self._rates.get("*"))
            if rate and self._rng.random() < rate.rate:
                return rate.fault
        return None


# ---------------------------------------------------------------------------------------------
# providers and long-running operations


@dataclass(slots=True)
class ProviderRecord:
    namespace: str
    state: str
    pending: int = 0


Completion = Callable[["AsyncOperation"], None]


@dataclass(slots=True)
class AsyncOperation:
    """An ARM asynchronous operation: InProgress for `pending` observations, then `complete` decides."""

    id: str
    kind: str
    resource_id: str
    location: str
    subscription: str
    provider: str
    pending: int
    start: datetime
    complete: Completion
    progress: Callable[[AsyncOperation, int], None] | None = None
    status: str = "InProgress"
    end: datetime | None = None
    error: dict[str, Any] | None = None
    observed: int = 0
    result: dict[str, Any] | None = None  # the operation's output (Compute: `properties.output`)
    hold: Callable[[AsyncOperation], bool] | None = None  # True while the operation can't progress

    @property
    def held(self) -> bool:
        return self.hold is not None and not self.done and self.hold(self)

    @property
    def done(self) -> bool:
        return self.status != "InProgress"

    def body(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "id": f"/subscriptions/{self.subscription}/providers/{self.provider}/locations/{self.location}/"
                  f"operations/{self.id}",
            "name": self.id, "status": self.status, "startTime": iso(self.start)}
        if self.end is not None:
            value["endTime"] = iso(self.end)
        if self.error:
            value["error"] = deep(self.error)
        if self.result is not None and self.done:
            value["properties"] = {"output": deep(self.result)}
        return value


# ---------------------------------------------------------------------------------------------
# resource ids


def split_id(resource_id: str) -> list[str]:
    return [p for p in resource_id.split("/") if p]


def type_of(resource_id: str) -> str:
    """The ARM type an id names: 'Microsoft.Compute/virtualMachines', 'Microsoft.Resources/resourceGroups'."""
    parts = split_id(resource_id)
    low = [p.lower() for p in parts]
    if "providers" in low:
        at = len(low) - 1 - low[::-1].index("providers")
        rest = parts[at + 1:]
        if len(rest) >= 3:
            return "/".join([rest[0], *rest[1::2][: (len(rest) - 1) // 2]])
    if len(parts) == 4 and low[2] == "resourcegroups":
        return "Microsoft.Resources/resourceGroups"
    if len(parts) == 2 and low[0] == "subscriptions":
        return "Microsoft.Resources/subscriptions"
    return ""


@dataclass(slots=True)
class _Workspace:
    customer_id: str
    resource_id: str
    tables: dict[str, Table] = field(default_factory=dict)


def _load_table(table: LogTable) -> Table:
    types = {c.name: c.type for c in table.columns}
    rows = [_typed_row(r, types) for r in table.rows]
    return Table(tuple(c.name for c in table.columns), types, rows)


def _typed_row(row: Mapping[str, Any], types: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, type_ in types.items():
        value = row.get(name)
        if type_ == "datetime" and isinstance(value, str) and value:
            value = parse_datetime(value)
        out[name] = deep(value)
    return out


class State:
    """Everything the double knows. Public methods are thread-safe; values are copies."""

    def __init__(self, estate: Estate, blob_endpoint: str, poll_after: int) -> None:
        self.lock = threading.RLock()
        self.poll_after = poll_after
        self.tenant_id = estate.tenant_id
        self.default_subscription = estate.subscription_id
        self.location = estate.location
        self.blob_endpoint = blob_endpoint
        self.refs: dict[str, str] = {k: replace_text(v, BLOB_ENDPOINT, blob_endpoint) for k, v in estate.refs.items()}
        self.subscriptions: dict[str, str] = {estate.subscription_id.lower(): estate.subscription_id}
        self._resources: dict[str, dict[str, Any]] = {}
        self._providers: dict[tuple[str, str], ProviderRecord] = {}
        self._operations: dict[str, AsyncOperation] = {}
        self._workspaces: dict[str, _Workspace] = {}
        self._graph: dict[str, list[dict[str, Any]]] = {}
        self._blobs: dict[str, bytes] = {}
        self._next_runs: dict[str, deque[RunOutcome]] = {}
        self._views: dict[str, dict[str, Any]] = {}  # instance views (VMs), by resource id
        self._patches: dict[str, list[dict[str, Any]]] = {}  # a machine's available OS updates
        self._patch_outcomes: dict[str, deque[PatchOutcome]] = {}
        self.version = 0  # bumped by every change the Resource Graph tables derive from
        self.cache: dict[str, tuple[int, Any]] = {}  # derived views keyed by name: (version, value)
        self.reboot_pending: dict[str, bool] = {}  # machines whose last installation left a reboot pending
        with paused_gc():
            self._load(estate, blob_endpoint)

    def _load(self, estate: Estate, blob_endpoint: str) -> None:
        for namespace, registration in estate.providers.items():
            self.set_provider_state(namespace, registration, estate.subscription_id)
        for subscription in estate.subscriptions:
            self.subscriptions.setdefault(subscription.lower(), subscription)
        for subscription, providers in estate.subscription_providers.items():
            self.subscriptions.setdefault(subscription.lower(), subscription)
            for namespace, registration in providers.items():
                self.set_provider_state(namespace, registration, subscription)
        for resource in estate.resources:
            self._store(str(resource["id"]), deep_replace(dict(resource), BLOB_ENDPOINT, blob_endpoint))
        for resource_id, view in estate.instance_views.items():
            self._views[resource_id.rstrip("/").lower()] = deep(dict(view))
        for machine_id, patch_outcomes in estate.patch_outcomes.items():
            self.set_next_patch_outcome(machine_id, *patch_outcomes)
        for workspace in estate.workspaces:
            self.add_workspace(workspace)
        for table, rows in estate.graph.items():
            self._graph.setdefault(table.lower(), []).extend(deep_replace(dict(r), BLOB_ENDPOINT, blob_endpoint)
                                                             for r in rows)
        for key, text in estate.blobs.items():
            account, container, path = key.split("/", 2)
            self.put_blob(account, container, path, text)
        for template_id, outcomes in estate.next_runs.items():
            self.set_next_run(template_id, *(RunOutcome(o.run_state, o.run_sub_state,
                                                        replace_text(o.message, BLOB_ENDPOINT, blob_endpoint),
                                                        o.log, o.error_code) for o in outcomes))

    # resources -----------------------------------------------------------------------------------
    def get(self, resource_id: str) -> dict[str, Any] | None:
        """The resource as GET returns it (ids compare case-insensitively), or None."""
        with self.lock:
            value = self._resources.get(resource_id.rstrip("/").lower())
            return deep(value) if value is not None else None

    def put(self, resource_id: str, body: Mapping[str, Any]) -> None:
        """Seeds or replaces a resource; its resource group (and subscription) appear if missing."""
        self._store(resource_id, deep(dict(body)))

    def _store(self, resource_id: str, value: dict[str, Any]) -> None:
        """`put` of a value the store may keep as it is (already a private copy)."""
        value.setdefault("id", resource_id)
        value.setdefault("name", split_id(resource_id)[-1])
        parts = split_id(resource_id)
        with self.lock:
            if len(parts) >= 2 and parts[0].lower() == "subscriptions":
                self.subscriptions.setdefault(parts[1].lower(), parts[1])
            if len(parts) > 4 and parts[2].lower() == "resourcegroups":
                rg_id = "/".join(["", *parts[:4]])
                if rg_id.lower() not in self._resources:
                    self._resources[rg_id.lower()] = {
                        "id": rg_id, "name": parts[3], "type": "Microsoft.Resources/resourceGroups",
                        "location": value.get("location") or self.location, "tags": {},
                        "properties": {"provisioningState": "Succeeded"}}
            self._resources[resource_id.rstrip("/").lower()] = value
            self.version += 1

    def delete(self, resource_id: str) -> bool:
        """Removes a resource and everything nested under it; True if it existed."""
        key = resource_id.rstrip("/").lower()
        with self.lock:
            existed = self._resources.pop(key, None) is not None
            for child in [k for k in self._resources if k.startswith(key + "/")]:
                del self._resources[child]
            self._views.pop(key, None)
            self.version += 1
            return existed

    def ids_of_type(self, subscription: str, type_: str, resource_group: str | None = None) -> list[str]:
        """The (lower-case) ids of one ARM type in a subscription (and group), in insertion order, uncopied:
        list pages copy only the resources they return."""
        sub = subscription.lower()
        rg = resource_group.lower() if resource_group is not None else None
        wanted = type_.lower()
        with self.lock:
            out = []
            for key in self._resources:
                parts = key.split("/")
                if len(parts) < 3 or parts[2] != sub or (rg is not None and (len(parts) < 5 or parts[4] != rg)):
                    continue
                if type_of(key).lower() == wanted:
                    out.append(key)
            return out

    # instance views (Microsoft.Compute virtual machines) ---------------------------------------------
    def instance_view(self, resource_id: str) -> dict[str, Any] | None:
        with self.lock:
            value = self._views.get(resource_id.rstrip("/").lower())
            return deep(value) if value is not None else None

    def set_instance_view(self, resource_id: str, view: Mapping[str, Any]) -> None:
        with self.lock:
            self._views[resource_id.rstrip("/").lower()] = deep(dict(view))
            self.version += 1

    def power_states(self) -> dict[str, dict[str, Any]]:
        """Each VM's PowerState status ({code, level, displayStatus}) by lower-case id, uncopied."""
        with self.lock:
            out: dict[str, dict[str, Any]] = {}
            for key, view in self._views.items():
                for item in view.get("statuses") or []:
                    if str(item.get("code", "")).startswith("PowerState/"):
                        out[key] = item
            return out

    # a machine's OS updates and the outcomes of its next patch operations -------------------------
    def available_patches(self, resource_id: str) -> list[dict[str, Any]] | None:
        with self.lock:
            value = self._patches.get(resource_id.rstrip("/").lower())
            return deep(value) if value is not None else None

    def set_available_patches(self, resource_id: str, patches: Iterable[Mapping[str, Any]]) -> None:
        with self.lock:
            self._patches[resource_id.rstrip("/").lower()] = [deep(dict(p)) for p in patches]

    def set_next_patch_outcome(self, resource_id: str, *outcomes: PatchOutcome) -> None:
        """How the machine's next assessPatches / installPatches end, in order (a `persistent` outcome
        stays until replaced); after them, they succeed."""
        with self.lock:
            self._patch_outcomes[resource_id.rstrip("/").lower()] = deque(outcomes)

    def pop_patch_outcome(self, resource_id: str, operation: str) -> PatchOutcome | None:
        with self.lock:
            queue = self._patch_outcomes.get(resource_id.rstrip("/").lower())
            if not queue:
                return None
            for index, outcome in enumerate(queue):
                if outcome.operation == operation:
                    if not outcome.persistent:
                        del queue[index]
                    return outcome
            return None

    def children(self, parent_id: str, child_type: str) -> list[dict[str, Any]]:
        """Direct children of `parent_id` of one type ('softwareUpdateConfigurationRuns'), in insertion order."""
        prefix = f"{parent_id.rstrip('/').lower()}/{child_type.lower()}/"
        with self.lock:
            return [deep(v) for k, v in self._resources.items() if k.startswith(prefix) and "/" not in k[len(prefix):]]

    def of_type(self, subscription: str, type_: str, resource_group: str | None = None) -> list[dict[str, Any]]:
        """Resources of an ARM type in a subscription (and resource group)."""
        with self.lock:
            out = []
            for key, value in self._resources.items():
                parts = key.split("/")
                if len(parts) < 3 or parts[2] != subscription.lower():
                    continue
                if resource_group is not None and (len(parts) < 5 or parts[4] != resource_group.lower()):
                    continue
                if type_of(key).lower() == type_.lower():
                    out.append(deep(value))
            return out

    def all_resources(self) -> list[dict[str, Any]]:
        with self.lock:
            return [deep(v) for v in self._resources.values()]

    def has_subscription(self, subscription: str) -> bool:
        with self.lock:
            return subscription.lower() in self.subscriptions

    def has_resource_group(self, subscription: str, resource_group: str) -> bool:
        with self.lock:
            return f"/subscriptions/{subscription}/resourcegroups/{resource_group}".lower() in self._resources

    # providers -----------------------------------------------------------------------------------
    def provider(self, namespace: str, subscription: str | None = None) -> ProviderRecord | None:
        with self.lock:
            sub = (subscription or self.default_subscription).lower()
            record = self._providers.get((sub, namespace.lower()))
            if record is None and sub in self.subscriptions:
                default = self._providers.get((self.default_subscription.lower(), namespace.lower()))
                if default is not None:  # another subscription of the tenant starts like the estate's
                    record = ProviderRecord(default.namespace, default.state)
                    self._providers[(sub, namespace.lower())] = record
            return record

    def providers(self, subscription: str | None = None) -> list[ProviderRecord]:
        with self.lock:
            sub = (subscription or self.default_subscription).lower()
            names = sorted({ns for (_s, ns) in self._providers})
            return [r for r in (self.provider(n, sub) for n in names) if r is not None]

    def set_provider_state(self, namespace: str, registration: str, subscription: str | None = None) -> None:
        """Sets a provider's registrationState (e.g. "NotRegistered") directly."""
        with self.lock:
            sub = (subscription or self.default_subscription).lower()
            self._providers[(sub, namespace.lower())] = ProviderRecord(namespace, registration)

    # long-running operations ----------------------------------------------------------------------------
    def start_operation(self, kind: str, resource_id: str, provider: str, location: str, complete: Completion, *,
                        progress: Callable[[AsyncOperation, int], None] | None = None) -> AsyncOperation:
        parts = split_id(resource_id)
        op_id = stable_guid(kind, resource_id, str(time.time_ns()), str(random.random())).upper()
        operation = AsyncOperation(op_id, kind, resource_id, location.replace(" ", "").lower(), parts[1], provider,
                                   self.poll_after, utcnow(), complete, progress)
        with self.lock:
            self._operations[op_id.lower()] = operation
        return operation

    def observe_operation(self, op_id: str) -> AsyncOperation | None:
        """One poll of the operation: counts down, then completes it. None if unknown."""
        with self.lock:
            operation = self._operations.get(op_id.lower())
            if operation is not None:
                self._advance(operation)
            return operation

    def observe_resource(self, resource_id: str) -> None:
        """A GET of a resource counts as an observation of its pending operations."""
        key = resource_id.lower()
        with self.lock:
            for operation in list(self._operations.values()):
                if not operation.done and operation.resource_id.lower() == key:
                    self._advance(operation)

    def finish_operations(self) -> None:
        """Completes every pending operation now (tests that don't want to poll); an operation that is
        held (e.g. queued for a disconnected Arc machine) stays in progress."""
        with self.lock:
            for operation in list(self._operations.values()):
                while not operation.done and not operation.held:
                    self._advance(operation)

    def pending_operations(self, resource_id: str | None = None) -> list[AsyncOperation]:
        with self.lock:
            return [o for o in self._operations.values()
                    if not o.done and (resource_id is None or o.resource_id.lower() == resource_id.lower())]

    def _advance(self, operation: AsyncOperation) -> None:
        if operation.done:
            return
        operation.observed += 1
        if operation.pending > 0:
            operation.pending -= 1
            if operation.progress is not None:
                operation.progress(operation, operation.observed)
            return
        if operation.held:  # waits (e.g. for its Arc machine to connect), then completes on the next look
            return
        operation.complete(operation)
        if operation.status == "InProgress":
            operation.status = "Succeeded"
        operation.end = utcnow()

    # log analytics -------------------------------------------------------------------------------
    def add_workspace(self, workspace: Workspace) -> None:
        with self.lock:
            self._workspaces[workspace.customer_id.lower()] = _Workspace(
                workspace.customer_id, workspace.resource_id, {t.name: _load_table(t) for t in workspace.tables})

    def workspace(self, workspace: str | None = None) -> _Workspace | None:
        """By customer id (the query API's workspace id), by ARM id or by name; None = the first."""
        with self.lock:
            if workspace is None:
                return next(iter(self._workspaces.values()), None)
            key = workspace.lower().rstrip("/")
            found = self._workspaces.get(key)
            if found is None:
                found = next((w for w in self._workspaces.values()
                              if w.resource_id.lower() == key or w.resource_id.lower().endswith("/" + key)), None)
            return found

    def log_table(self, name: str, workspace: str | None = None) -> Table | None:
        with self.lock:
            ws = self.workspace(workspace)
            if ws is None or name not in ws.tables:
                return None
            table = ws.tables[name]
            return Table(table.columns, dict(table.types), deep(table.rows))

    def log_rows(self, table: str, workspace: str | None = None) -> list[dict[str, Any]]:
        found = self.log_table(table, workspace)
        return found.rows if found else []

    def add_log_rows(self, table: str, rows: Iterable[Mapping[str, Any]], workspace: str | None = None) -> None:
        """Appends rows (datetimes as ISO text or datetime) to an existing table of the workspace."""
        with self.lock:
            ws = self.workspace(workspace)
            if ws is None or table not in ws.tables:
                raise KeyError(f"no table {table!r} in workspace {workspace!r}")
            current = ws.tables[table]
            current.rows.extend(_typed_row(r, current.types) for r in rows)

    # resource graph ------------------------------------------------------------------------------
    def graph_rows(self, table: str) -> list[dict[str, Any]]:
        with self.lock:
            return [deep(r) for r in self._graph.get(table.lower(), [])]

    def add_graph_rows(self, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
        with self.lock:
            self._graph.setdefault(table.lower(), []).extend(deep(dict(r)) for r in rows)
            self.version += 1

    def upsert_graph_row(self, table: str, row: Mapping[str, Any]) -> None:
        """Replaces the row with the same id (case-insensitive), or appends it."""
        key = str(row.get("id", "")).lower()
        with self.lock:
            rows = self._graph.setdefault(table.lower(), [])
            for index, existing in enumerate(rows):
                if str(existing.get("id", "")).lower() == key:
                    rows[index] = deep(dict(row))
                    break
            else:
                rows.append(deep(dict(row)))
            self.version += 1

    def remove_graph_rows(self, table: str, predicate: Callable[[Mapping[str, Any]], bool]) -> int:
        with self.lock:
            rows = self._graph.get(table.lower(), [])
            kept = [r for r in rows if not predicate(r)]
            removed = len(rows) - len(kept)
            self._graph[table.lower()] = kept
            self.version += 1
            return removed

    def graph_table(self, table: str) -> list[dict[str, Any]]:
        """The stored rows themselves, uncopied: for the Resource Graph route, which never mutates them."""
        with self.lock:
            return list(self._graph.get(table.lower(), []))

    def resources_view(self) -> list[dict[str, Any]]:
        """The stored resources themselves, uncopied (read-only use under the caller's care)."""
        with self.lock:
            return list(self._resources.values())

    def graph_tables(self) -> list[str]:
        with self.lock:
            return list(self._graph)

    # blobs ----------------------------------------------------------------------------------------
    @staticmethod
    def _blob_key(account: str, container: str, path: str) -> str:
        return f"{account.lower()}/{container.lower()}/{path.lstrip('/')}"

    def blob(self, account: str, container: str, path: str) -> bytes | None:
        with self.lock:
            return self._blobs.get(self._blob_key(account, container, path))

    def has_container(self, account: str, container: str) -> bool:
        prefix = f"{account.lower()}/{container.lower()}/"
        with self.lock:
            return any(key.startswith(prefix) for key in self._blobs)

    def put_blob(self, account: str, container: str, path: str, data: bytes | str) -> None:
        with self.lock:
            self._blobs[self._blob_key(account, container, path)] = data.encode() if isinstance(data, str) else data

    # image template runs ------------------------------------------------------------------------------
    def set_next_run(self, template_id: str, *outcomes: RunOutcome) -> None:
        """How the template's next runs end, in order; after them, runs succeed."""
        with self.lock:
            self._next_runs[template_id.lower()] = deque(outcomes)

    def pop_next_run(self, template_id: str) -> RunOutcome:
        with self.lock:
            queue = self._next_runs.get(template_id.lower())
            return queue.popleft() if queue else RunOutcome()
