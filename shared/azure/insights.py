"""Read-only enrichment: Log Analytics queries and the tail of an Image Builder customization.log.

Outbound fetches go only where they are meant to: build logs only from Azure blob
storage (`https://<account>.blob.core.windows.net`) or the configured local double, no
redirects followed, and never more than a bounded number of bytes.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from shared.azure.base import Adapter
from shared.azure.endpoints import is_loopback, no_redirect_opener
from shared.azure.permissions import requires

STORAGE_SCOPE = "https://storage.azure.com/.default"
BLOB_SUFFIX = ".blob.core.windows.net"
MAX_LOG_BYTES = 1024 * 1024
# Each SourceComputerId per computer, with when it was first and last seen: a clone or an agent
# reinstall shows as a new id (the seeds' Heartbeat query, with times).
Q_SOURCE_IDS = ("Heartbeat | where TimeGenerated > ago({days}d) | summarize FirstSeen = min(TimeGenerated), "
                "LastSeen = max(TimeGenerated) by Computer, SourceComputerId")


class FetchRefused(ValueError):
    """A URL the product will not fetch (named in the message)."""


@dataclass(frozen=True, slots=True)
class SourceIdSighting:
    computer: str
    source_computer_id: str
    first_seen: datetime
    last_seen: datetime


def _rows(result: Any) -> list[dict[str, Any]]:
    partial_error = getattr(result, "partial_error", None)
    if partial_error is not None:
        raise RuntimeError(f"Log Analytics returned a partial result: {partial_error}")
    rows: list[dict[str, Any]] = []
    for table in result.tables:
        names = list(table.columns)
        rows.extend(dict(zip(names, row, strict=False)) for row in table.rows)
    return rows


def _when(value: Any) -> datetime | None:
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if isinstance(value, datetime) else None


# How far back a query looks: a duration ending now, or a (start, end) window.
Timespan = timedelta | tuple[datetime, datetime]


class Insights(Adapter):
    @requires("Microsoft.OperationalInsights/workspaces/query/read")
    def query(self, workspace_id: str, kql: str, timespan: Timespan = timedelta(days=30)) -> list[dict[str, Any]]:
        """Rows as dicts; a partial result is an error, not a silent half answer."""
        client = self.clients.logs()
        return _rows(self.retry.call(client.query_workspace, workspace_id, kql, timespan=timespan))

    @requires("Microsoft.OperationalInsights/workspaces/query/read")
    def query_resource(self, resource_id: str, kql: str, timespan: Timespan) -> list[dict[str, Any]]:
        """The same, against the workspace (or resource) a log alert rule queries, by its ARM id."""
        client = self.clients.logs()
        return _rows(self.retry.call(client.query_resource, resource_id, kql, timespan=timespan))

    def source_id_sightings(self, workspace_id: str, days: int = 30) -> list[SourceIdSighting]:
        rows = self.query(workspace_id, Q_SOURCE_IDS.format(days=days), timedelta(days=days))
        out = []
        for row in rows:
            first, last = _when(row.get("FirstSeen")), _when(row.get("LastSeen"))
            if first is not None and last is not None:
                out.append(SourceIdSighting(str(row["Computer"]), str(row["SourceComputerId"]), first, last))
        return out

    def check_log_url(self, url: str) -> str:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        double = urlsplit(self.clients.endpoints.arm)
        if parts.scheme == "https" and host.endswith(BLOB_SUFFIX) and host.count(".") == 4 and not parts.username:
            return url
        if (self.clients.endpoints.local and is_loopback(url) and parts.scheme == "http"
                and (host, parts.port) == ((double.hostname or "").lower(), double.port)):
            return url
        raise FetchRefused(f"{url!r}: build logs are fetched only from https://<account>{BLOB_SUFFIX}")

    @requires(data=("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",))
    def build_log_tail(self, url: str, max_bytes: int = MAX_LOG_BYTES) -> str:
        """The last `max_bytes` of a customization.log: Packer's decisive lines are at the end."""
        self.check_log_url(url)
        token = self.clients.credential.get_token(STORAGE_SCOPE).token
        headers = {"Authorization": f"Bearer {token}", "x-ms-version": "2023-11-03"}
        opener = no_redirect_opener()

        def send(method: str, extra: dict[str, str], limit: int) -> tuple[Any, bytes]:
            request = urllib.request.Request(url, headers=headers | extra, method=method)
            with opener.open(request, timeout=30) as response:
                return response.headers, bytes(response.read(limit)) if method == "GET" else b""

        # Blob storage takes `bytes=start-` ranges, not suffix ranges: ask the size first.
        head, _ = self.retry.call(send, "HEAD", {}, 0)
        size = int(head.get("Content-Length") or 0)
        start = max(0, size - max_bytes)
        _, body = self.retry.call(send, "GET", {"Range": f"bytes={start}-"}, max_bytes)
        return body.decode("utf-8", errors="replace")


def kql_string(value: str) -> str:
    """`value` as a KQL double-quoted string literal: quotes, backslashes and line breaks escaped,
    so a name from a payload can never end the literal and add query text."""
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
               .replace("\t", "\\t"))
    return f'"{escaped}"'
