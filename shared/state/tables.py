"""Table Storage plumbing for all state: one `StateStore`, safe keys, conditional writes.

Every guarantee the state package gives (one owner per ledger key, one lease per
target, one decider per approval) rests on two primitives of the Table service:
insert-if-absent (`create_entity` answers 409 when the row exists) and
replace-if-unchanged (`update_entity` with the row's ETag answers 412 when someone
else wrote first). The helpers here turn those answers into return values, so
callers branch on `None`/`False` instead of on HTTP status codes.

Nothing from the Azure SDK is imported at module import time (Functions cold start).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.azure.endpoints import EndpointError, check, is_loopback

log = logging.getLogger("remediator.state")

Clock = Callable[[], datetime]

# Azurite's well-known development account. Microsoft documents this key publicly; it
# only ever opens the local emulator.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

DEFAULT_PREFIX = "remediator"
# Logical table name -> suffix of the real table name (prefix + suffix). Other logical
# names are allowed too (suffix: the name capitalised), for state kept beside these.
TABLES: Mapping[str, str] = {
    "ledger": "Ledger",
    "locks": "Locks",
    "counters": "Counters",
    "approvals": "Approvals",
    "audit": "Audit",
    "operations": "Operations",
}

# A string property may hold 64 KiB of UTF-16 (32,768 units); keep headroom. Text of up to
# PROPERTY_UNITS * n units always fits in n chunks of `pack_text`.
PROPERTY_UNITS = 32_000
# Keys are limited to 1 KiB; readable keys much shorter than that keep URLs and logs sane.
MAX_PLAIN_KEY = 200
HASHED_KEY_MARK = "~"

_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,39}$")
_LOGICAL = re.compile(r"^[a-z][a-z0-9]{0,22}$")
# Anything outside printable ASCII, plus the characters the service forbids in keys
# (/ \ # ?) and those that URL/OData handling gets wrong in practice (' %).
_UNSAFE_KEY = re.compile(r"[^\x20-\x7e]|[/\\#?'%]")


class StateError(Exception):
    """Base of every error raised by the state package."""


class StateConfigError(StateError):
    """Storage settings are missing or not allowed (the message names the setting)."""


class Contention(StateError):
    """A conditional write kept losing to other writers within the bounded attempts."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def checked_now(clock: Clock) -> datetime:
    """The clock's time, refusing naive values: every stored time is UTC."""
    value = clock()
    if value.tzinfo is None:
        raise ValueError("the clock returned a naive datetime; state times must be timezone-aware (UTC)")
    return value.astimezone(UTC)


def as_utc(value: Any) -> datetime:
    """A stored time as a plain aware UTC datetime (the SDK returns a datetime subclass)."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    v = value.astimezone(UTC)
    return datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, tzinfo=UTC)


def safe_key(raw: str) -> str:
    """A PartitionKey/RowKey for `raw`: itself when short and safe, else `~` + sha256 hex.

    Hashed keys start with `~`, which a plain key never does (a raw key starting with
    `~` is hashed too), so the two forms cannot collide. Callers keep `raw` in a
    property so the row stays readable.
    """
    if not isinstance(raw, str) or not raw:
        raise ValueError("a state key must be a non-empty string")
    if len(raw) <= MAX_PLAIN_KEY and not raw.startswith(HASHED_KEY_MARK) and not _UNSAFE_KEY.search(raw):
        return raw
    return HASHED_KEY_MARK + hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def dev_connection_string(
    host: str = "127.0.0.1", *, blob_port: int = 10000, queue_port: int = 10001, table_port: int = 10002
) -> str:
    """The connection string of an Azurite on `host` (UseDevelopmentStorage=true uses the defaults)."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint=http://{host}:{blob_port}/{DEV_ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue_port}/{DEV_ACCOUNT};"
        f"TableEndpoint=http://{host}:{table_port}/{DEV_ACCOUNT};"
    )


def _parse_connection_string(conn: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for part in conn.split(";"):
        item = part.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep:
            raise StateConfigError("storage connection string: every part must be Name=Value")
        parts[name.strip().lower()] = value.strip()
    return parts


def normalise_connection_string(conn: str) -> str:
    """Expands `UseDevelopmentStorage=true` (any case, optional proxy URI) to Azurite's string."""
    parts = _parse_connection_string(conn)
    if parts.get("usedevelopmentstorage", "").lower() == "true":
        proxy = parts.get("developmentstorageproxyuri")
        if proxy:
            host = proxy.split("://", 1)[-1].rstrip("/").split(":")[0]
            return dev_connection_string(host)
        return dev_connection_string()
    return conn


# ---------------------------------------------------------------------------------------------
# Long text in string properties
# ---------------------------------------------------------------------------------------------


def utf16_units(text: str) -> int:
    """Length as the Table service counts it (UTF-16 code units)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _split_units(text: str, limit: int) -> list[str]:
    """Maximal chunks of at most `limit` UTF-16 units (each ends at a code point boundary)."""
    chunks: list[str] = []
    i = 0
    while i < len(text):
        lo, hi = i + 1, min(len(text), i + limit)
        if utf16_units(text[i:hi]) <= limit:
            lo = hi
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if utf16_units(text[i:mid]) <= limit:
                lo = mid
            else:
                hi = mid - 1
        chunks.append(text[i:lo])
        i = lo
    return chunks


def truncate_text(text: str, max_units: int) -> str:
    """`text` itself when it fits, else its head plus a marker that says how much was cut."""
    if utf16_units(text) <= max_units:
        return text
    total = len(text)
    marker = f"…[truncated: {total} chars, sha256 {hashlib.sha256(text.encode('utf-8', 'replace')).hexdigest()[:16]}]"
    budget = max(0, max_units - utf16_units(marker))
    head = text[:budget]
    while utf16_units(head) > budget:
        head = head[: max(0, len(head) - max(1, (utf16_units(head) - budget)))]
    return head + marker


def pack_text(name: str, text: str, *, max_chunks: int = 1) -> dict[str, str]:
    """Properties holding `text` in up to `max_chunks` string properties (`name`, `name_1`, ...).

    Text longer than all chunks together is truncated with a marker (never dropped):
    the write still succeeds, and a reader sees that and how much was cut.
    """
    text = truncate_text(text, PROPERTY_UNITS * max_chunks)
    # Chunks of up to PROPERTY_UNITS + 1 units are at least PROPERTY_UNITS long (a chunk ends at
    # most one unit short, before a 2-unit character), so max_chunks always suffice.
    chunks = _split_units(text, PROPERTY_UNITS + 1) or [""]
    props = {name: chunks[0]}
    for n, chunk in enumerate(chunks[1:], start=1):
        props[f"{name}_{n}"] = chunk
    return props


def unpack_text(entity: Mapping[str, Any], name: str) -> str | None:
    """The text `pack_text` stored under `name`, or None when the property is absent."""
    first = entity.get(name)
    if first is None:
        return None
    parts = [str(first)]
    n = 1
    while (more := entity.get(f"{name}_{n}")) is not None:
        parts.append(str(more))
        n += 1
    return "".join(parts)


def to_json(value: Any) -> str:
    """Compact JSON; values JSON cannot express are kept as their `str()` rather than lost."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def pack_json(name: str, value: Any, *, max_chunks: int = 1) -> dict[str, str]:
    """`value` as JSON in string properties; too large → a JSON marker object with the head.

    The marker `{"_truncated": true, "_chars": N, "_head": "..."}` is itself valid JSON,
    so readers always get a decodable value and can tell that it was cut.
    """
    text = to_json(value)
    budget = PROPERTY_UNITS * max_chunks
    if utf16_units(text) > budget:
        head_budget = budget - 200
        marker = {"_truncated": True, "_chars": len(text), "_head": ""}
        head = text[:head_budget]
        while True:
            marker["_head"] = head
            encoded = to_json(marker)
            if utf16_units(encoded) <= budget:
                text = encoded
                break
            head = head[: int(len(head) * 0.9)]
    return pack_text(name, text, max_chunks=max_chunks)


def unpack_json(entity: Mapping[str, Any], name: str) -> Any:
    text = unpack_text(entity, name)
    if text is None or text == "":
        return None
    return json.loads(text)


def is_truncated(value: Any) -> bool:
    """True for the marker object `pack_json` stores in place of an oversized value."""
    return isinstance(value, dict) and value.get("_truncated") is True and "_head" in value


# ---------------------------------------------------------------------------------------------
# Rows and conditional writes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One entity as read: its properties (times as aware UTC, Int64 as int) and its ETag."""

    props: Mapping[str, Any]
    etag: str

    def __getitem__(self, name: str) -> Any:
        return self.props[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.props.get(name, default)


def _plain(value: Any) -> Any:
    from azure.data.tables import EntityProperty

    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, EntityProperty):
        return value.value
    return value


def _to_row(entity: Any) -> Row:
    props = {k: _plain(v) for k, v in entity.items()}
    return Row(props=props, etag=str(entity.metadata["etag"]))


def _status(error: BaseException) -> int | None:
    status = getattr(error, "status_code", None)
    return status if isinstance(status, int) else None


def entity_values(props: Mapping[str, Any]) -> dict[str, Any]:
    """Props ready for the SDK: ints beyond Int32 tagged Int64, None values left out."""
    from azure.data.tables import EdmType, EntityProperty

    out: dict[str, Any] = {}
    for name, value in props.items():
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**31) <= value < 2**31:
            out[name] = EntityProperty(value, EdmType.INT64)
        else:
            out[name] = value
    return out


def get_row(table: Any, pk: str, rk: str) -> Row | None:
    """The row, or None when it does not exist."""
    from azure.core.exceptions import HttpResponseError

    try:
        entity = table.get_entity(partition_key=pk, row_key=rk)
    except HttpResponseError as error:
        if _status(error) == 404:
            return None
        raise
    return _to_row(entity)


def insert_row(table: Any, props: Mapping[str, Any]) -> str | None:
    """Insert-if-absent: the new ETag, or None when the row already exists (409)."""
    from azure.core.exceptions import HttpResponseError

    try:
        meta = table.create_entity(entity=entity_values(props))
    except HttpResponseError as error:
        if _status(error) == 409:
            return None
        raise
    return str(meta["etag"])


def replace_row(table: Any, props: Mapping[str, Any], etag: str) -> str | None:
    """Replace-if-unchanged: the new ETag, or None when the row changed (412) or vanished (404)."""
    from azure.core import MatchConditions
    from azure.core.exceptions import HttpResponseError
    from azure.data.tables import UpdateMode

    try:
        meta = table.update_entity(
            entity=entity_values(props), mode=UpdateMode.REPLACE, etag=etag,
            match_condition=MatchConditions.IfNotModified,
        )
    except HttpResponseError as error:
        if _status(error) in (404, 412):
            return None
        raise
    return str(meta["etag"])


def upsert_row(table: Any, props: Mapping[str, Any]) -> str:
    """Unconditional insert-or-replace (for rows only one writer ever touches)."""
    from azure.data.tables import UpdateMode

    meta = table.upsert_entity(entity=entity_values(props), mode=UpdateMode.REPLACE)
    return str(meta["etag"])


def delete_row(table: Any, pk: str, rk: str, etag: str) -> bool:
    """Delete-if-unchanged: False when the row changed since `etag` was read (412).

    A row that is already gone counts as deleted (the SDK reports 404 on delete as
    success): either way no row with this ETag remains.
    """
    from azure.core import MatchConditions
    from azure.core.exceptions import HttpResponseError

    try:
        table.delete_entity(partition_key=pk, row_key=rk, etag=etag, match_condition=MatchConditions.IfNotModified)
    except HttpResponseError as error:
        if _status(error) in (404, 412):
            return _status(error) == 404
        raise
    return True


def transact(table: Any, operations: Sequence[tuple[str, Mapping[str, Any], str | None]]) -> list[str] | None:
    """One entity-group transaction (rows of one partition, all or nothing): `operations` are
    (`create` | `replace` | `delete` | `upsert`, props, etag for replace/delete). The new ETags, or
    None when any row was not as expected (409 exists, 412 changed, 404 gone): nothing was written."""
    from azure.core import MatchConditions
    from azure.core.exceptions import HttpResponseError
    from azure.data.tables import UpdateMode

    batch: list[Any] = []
    for kind, props, etag in operations:
        entity = entity_values(props)
        if kind == "create":
            batch.append(("create", entity))
        elif kind == "upsert":
            batch.append(("upsert", entity, {"mode": UpdateMode.REPLACE}))
        elif kind == "replace":
            batch.append(("update", entity, {"mode": UpdateMode.REPLACE, "etag": etag,
                                             "match_condition": MatchConditions.IfNotModified}))
        elif kind == "delete":
            batch.append(("delete", entity, {"etag": etag, "match_condition": MatchConditions.IfNotModified}))
        else:
            raise ValueError(f"unknown transaction operation {kind!r}")
    try:
        results = table.submit_transaction(batch)
    except HttpResponseError as error:
        if _status(error) in (404, 409, 412):
            return None
        raise
    return [str(r.get("etag", "")) for r in results]


def query_rows(
    table: Any, flt: str, parameters: Mapping[str, Any] | None = None, *, page_size: int | None = None
) -> Iterator[Row]:
    """Rows matching an OData filter (all rows when empty), values bound as parameters, never formatted in."""
    if not flt:
        pages = table.list_entities(results_per_page=page_size)
    else:
        pages = table.query_entities(query_filter=flt, parameters=dict(parameters or {}), results_per_page=page_size)
    for entity in pages:
        yield _to_row(entity)


# ---------------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------------


class StateStore:
    """Holds the TableServiceClient and hands out TableClients by logical name.

    Tables are created on first use (idempotently: "already exists" is the outcome we
    want). The real table name is `prefix` + a fixed suffix, so tests and several
    deployments can share an account without colliding.
    """

    def __init__(
        self,
        connection_string: str | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        endpoint: str | None = None,
        credential: Any = None,
        timeout: float = 20.0,
        retries: int = 3,
        pool_size: int = 32,
    ) -> None:
        if not _PREFIX.match(prefix):
            raise StateConfigError(f"table prefix {prefix!r}: a letter then letters/digits, at most 40")
        if (connection_string is None) == (endpoint is None):
            raise StateConfigError("give either a storage connection string or a table endpoint (with a credential)")
        self.prefix = prefix
        self._connection_string = normalise_connection_string(connection_string) if connection_string else None
        self._endpoint = endpoint
        self._credential = credential
        self._options: dict[str, Any] = {
            "retry_total": retries,
            "retry_backoff_factor": 0.4,
            "connection_timeout": min(10.0, timeout),
            "read_timeout": timeout,
        }
        self._pool_size = pool_size
        self._service: Any = None
        self._tables: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, prefix: str | None = None, credential: Any = None
    ) -> StateStore:
        """The store the app's settings describe.

        `REMEDIATOR_STORAGE` or `AzureWebJobsStorage` (a connection string, including
        `UseDevelopmentStorage=true`), else identity-based storage as the Functions host
        configures it: `AzureWebJobsStorage__accountName` or `__tableServiceUri`, with
        `DefaultAzureCredential` (user-assigned identity from `AzureWebJobsStorage__clientId`
        or `AZURE_CLIENT_ID`). `REMEDIATOR_TABLE_PREFIX` overrides the table prefix.
        """
        env = os.environ if env is None else env
        prefix = prefix or env.get("REMEDIATOR_TABLE_PREFIX") or DEFAULT_PREFIX
        conn = env.get("REMEDIATOR_STORAGE") or env.get("AzureWebJobsStorage")
        if conn:
            return cls(conn, prefix=prefix)
        uri = env.get("AzureWebJobsStorage__tableServiceUri")
        account = env.get("AzureWebJobsStorage__accountName")
        if not uri and not account:
            raise StateConfigError(
                "no state storage configured: set REMEDIATOR_STORAGE or AzureWebJobsStorage (a connection string), "
                "or AzureWebJobsStorage__accountName for identity-based storage"
            )
        if uri:
            try:
                endpoint = check("AzureWebJobsStorage__tableServiceUri", uri)
            except EndpointError as error:
                raise StateConfigError(str(error)) from error
        else:
            if not re.fullmatch(r"[a-z0-9]{3,24}", account or ""):
                raise StateConfigError(f"AzureWebJobsStorage__accountName={account!r} is not a storage account name")
            endpoint = f"https://{account}.table.core.windows.net"
        if credential is None:
            credential = _default_credential(env.get("AzureWebJobsStorage__clientId") or env.get("AZURE_CLIENT_ID"))
        return cls(endpoint=endpoint, credential=credential, prefix=prefix)

    @property
    def service(self) -> Any:
        """The TableServiceClient, built on first use."""
        with self._lock:
            if self._service is None:
                self._service = self._build_service()
            return self._service

    def _build_service(self) -> Any:
        from azure.data.tables import TableServiceClient

        from shared.azure.clients import pooled_transport

        options = dict(self._options, transport=pooled_transport(self._pool_size))
        if self._connection_string is not None:
            service = TableServiceClient.from_connection_string(self._connection_string, **options)
        else:
            service = TableServiceClient(endpoint=str(self._endpoint), credential=self._credential, **options)
        url = str(service.url)
        if url.startswith("http://") and not is_loopback(url):
            service.close()
            raise StateConfigError(
                f"table endpoint {url.split('?', maxsplit=1)[0]!r}: plain http is allowed on a loopback address only"
            )
        return service

    def table_name(self, logical: str) -> str:
        """prefix + suffix: the known tables' suffixes, else the capitalised logical name."""
        if not _LOGICAL.match(logical):
            raise ValueError(f"state table name {logical!r}: lower-case letters and digits, starting with a letter")
        name = self.prefix + TABLES.get(logical, logical.capitalize())
        if not _TABLE_NAME.match(name):
            raise StateConfigError(f"table name {name!r} is not valid for Table Storage")
        return name

    def table(self, logical: str) -> Any:
        """The TableClient for a logical table ("ledger", "locks", ...), creating the table once."""
        name = self.table_name(logical)
        client = self._tables.get(name)
        if client is not None:
            return client
        service = self.service
        with self._lock:
            client = self._tables.get(name)
            if client is None:
                _create_table(service, name)
                client = service.get_table_client(name)
                self._tables[name] = client
            return client

    def drop_tables(self) -> None:
        """Deletes this prefix's tables (tests clean up with it; never called by the app)."""
        service = self.service
        with self._lock:
            names = {self.table_name(logical) for logical in TABLES} | set(self._tables)
            for name in sorted(names):
                service.delete_table(name)  # no error when the table does not exist
                client = self._tables.pop(name, None)
                if client is not None:
                    client.close()

    def close(self) -> None:
        with self._lock:
            for client in self._tables.values():
                client.close()
            self._tables.clear()
            if self._service is not None:
                self._service.close()
                self._service = None

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _create_table(service: Any, name: str) -> None:
    from azure.core.exceptions import ResourceExistsError

    try:
        service.create_table(name)
        log.info("created table %s", name)
    except ResourceExistsError:
        log.debug("table %s already exists", name)  # the outcome we wanted


def _default_credential(client_id: str | None) -> Any:
    from azure.identity import DefaultAzureCredential

    if client_id:
        return DefaultAzureCredential(managed_identity_client_id=client_id)
    return DefaultAzureCredential()
