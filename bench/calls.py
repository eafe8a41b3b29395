"""Counts the HTTP calls one event and its job make, by stage: every request the state store, the
job queue and the Azure SDK clients send goes through `shared.azure.clients.pooled_transport`; here
that transport's requests session gets an adapter that classifies each request before sending it.

Stages: event ledger, failure key (fix:), decision and budget, enqueue, job ledger, lock,
operation record, audit (diagnosis, decision, outcome), and ARM (plan, apply, verify). The queue
host's own receive/delete (the Functions host's work, not the app's) are counted apart.
"""

from __future__ import annotations

import collections
import json
import re
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

_TABLE = re.compile(r"^/[^/]+/(?P<table>[A-Za-z0-9]+)(?:\((?P<keys>[^)]*)\))?$")
_PK = re.compile(r"PartitionKey='(?P<pk>[^']*)'")
_BODY_PK = re.compile(r'"PartitionKey"\s*:\s*"(?P<pk>[^"]*)"')


class CallCounter:
    """Thread-safe counts by stage while `recording` is set."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()
        self.recording = False

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()

    def add(self, stage: str) -> None:
        if self.recording:
            with self.lock:
                self.counts[stage] += 1


def _ledger_stage(pk: str) -> str:
    for prefix, stage in (("event:", "event ledger"), ("job:", "job ledger"), ("budget:", "decision and budget"),
                          ("enqueue:", "enqueue"), ("fix:", "failure key")):
        if pk.startswith(prefix):
            return stage
    return "failure key" if pk.startswith("~") else "ledger (other)"


STORAGE_ACCOUNT = "/devstoreaccount1"  # Azurite's: every other request goes to the Azure double


def classify(method: str, url: str, body: Any) -> str:
    path = unquote(urlsplit(url).path)
    if not path.startswith(STORAGE_ACCOUNT):
        return "ARM (plan, apply, verify)"
    if path.endswith("/messages") or "/messages/" in path:
        return "enqueue" if method == "POST" else "queue host (receive/delete)"
    text = body.decode("utf-8", "replace") if isinstance(body, bytes | bytearray) else str(body or "")
    if path.endswith("$batch"):
        tables = set(re.findall(r"/([A-Za-z0-9]+)\(PartitionKey=", text)) | set(
            re.findall(r"POST [^ ]*/([A-Za-z0-9]+) HTTP", text))
        return "batch: " + "+".join(sorted(_table_stage(t) for t in tables))
    match = _TABLE.match(path)
    if not match:
        return f"storage (other) {method} {path[:40]}"
    table = match.group("table")
    pk_match = _PK.search(match.group("keys") or "") or _BODY_PK.search(text)
    pk = pk_match.group("pk") if pk_match else ""
    stage = _table_stage(table)
    if stage == "ledger":
        return _ledger_stage(pk)
    if method == "GET" and not match.group("keys"):
        return f"{stage} (query)"
    return stage


def _table_stage(table: str) -> str:
    low = table.lower()
    for name, stage in (("ledger", "ledger"), ("locks", "lock"), ("counters", "decision and budget"),
                        ("audit", "audit"), ("operations", "operation record"), ("approvals", "approval"),
                        ("vault", "vault")):
        if low.endswith(name):
            return stage
    return f"table {table}"


def install(counter: CallCounter) -> None:
    """Every transport built from now on counts its requests into `counter`."""
    import importlib

    from azure.core.pipeline.transport import RequestsTransport

    from shared.azure import clients

    requests = importlib.import_module("requests")
    adapters = importlib.import_module("requests.adapters")

    class Counting(adapters.HTTPAdapter):  # type: ignore[misc,name-defined]
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            counter.add(classify(request.method, request.url, request.body))
            return super().send(request, *args, **kwargs)

    def pooled_transport(pool_size: int = clients.POOL_SIZE, **timeouts: float) -> Any:
        session = requests.Session()
        adapter = Counting(pool_connections=4, pool_maxsize=pool_size)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return RequestsTransport(session=session, session_owner=True, **timeouts)

    clients.pooled_transport = pooled_transport


def table_rows(counts: dict[str, float]) -> list[list[str]]:
    return [[stage, f"{n:.1f}"] for stage, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


__all__ = ["CallCounter", "classify", "install", "json", "table_rows"]
