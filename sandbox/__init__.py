"""A local HTTP double of Azure Resource Manager, Log Analytics and a blob endpoint.

The unmodified Azure SDK clients talk to it (ARM clients with `base_url=d.arm_url`, LogsQueryClient
with `endpoint=d.logs_url`) and it answers as the official REST specs say: status codes, headers,
long-running operations, paging, ARM error bodies. It needs no Azure SDK itself.

    from sandbox import AzureDouble, sandbox_estate
    with AzureDouble(estate=sandbox_estate(), poll_after=2) as d:
        clients = Clients(Endpoints(arm=d.arm_url, logs=d.logs_url))
        ...
        assert len(d.requests_for("softwareUpdateConfigurations.put")) == 1

Python API beyond the constructor (see `server.py` for the operation names, `estate.py` for the
sandbox and its `refs`):
- `d.url` / `d.arm_url`, `d.logs_url` (`url + "/v1"`), `d.blob_endpoint`, `d.blob_url(account, container, path)`
- `d.requests`, `d.requests_for(operation, method=None)`, `d.clear_requests()`: `RequestRecord(method,
  path, query, operation, status, time, body)`; status 0 = connection dropped by a fault
- `d.faults`: `fail_next(op, count, status=500, retry_after=None)`, `drop_next(op, count)`,
  `set_rate(op, rate, status=429, retry_after=1)`, `drop_rate(op, rate)`, `latency_ms`,
  `set_latency(op, ms)`, `clear()`; op may be "*"; the RNG is seeded (`AzureDouble(seed=...)`)
- `d.state`: `get(id)`, `put(id, body)`, `delete(id)` (ids case-insensitive; a put creates the
  resource group); `set_provider_state(ns, state)`; `set_next_run(template_id, *RunOutcome)`;
  `finish_operations()` (complete every pending LRO now); `log_rows(table)`, `add_log_rows(table,
  rows)`; `graph_rows(table)`, `add_graph_rows(table, rows)`; `blob(...)`, `put_blob(...)`
- Log Analytics rows: `d.heartbeat` (Heartbeat rows) and `d.tables()` (every table of the default
  workspace), as dicts with `TimeGenerated` as an aware datetime
- `poll_after`: an LRO answers InProgress to that many polls (or GETs of its resource) and completes
  on the next; a provider registration shows Registering to that many GETs, Registered on the next.
  `lro_retry_after` (default 0 when poll_after <= 5) is the Retry-After sent with LRO answers.
  `enforce_registration=True` makes writes to a namespace that isn't Registered fail with 409
  MissingSubscriptionRegistration, as ARM does (off by default: the sandbox's Automation provider
  is NotRegistered while its accounts exist).
- Update Manager: `d.state.instance_view(id)` / `set_instance_view(id, view)` (Compute VMs),
  `set_next_patch_outcome(machine_id, *PatchOutcome)` (how the next assessPatches / installPatches end);
  an Arc machine's operations wait while its `properties.status` isn't Connected. `fleet_estate(n)` is a
  large estate for benchmarks.
"""

from sandbox.estate import BLOB_ENDPOINT, Column, Estate, LogTable, RunOutcome, Workspace, fleet_estate, sandbox_estate
from sandbox.patching import PatchOutcome
from sandbox.server import AzureDouble
from sandbox.state import AsyncOperation, Faults, RequestRecord, State

__all__ = [
    "BLOB_ENDPOINT",
    "AsyncOperation",
    "AzureDouble",
    "Column",
    "Estate",
    "Faults",
    "LogTable",
    "PatchOutcome",
    "RequestRecord",
    "RunOutcome",
    "State",
    "Workspace",
    "fleet_estate",
    "sandbox_estate",
]
