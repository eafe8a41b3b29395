"""Idempotency ledger: whoever `begin`s a key first owns it; everyone else is told why not.

Event Grid, Service Bus and the Functions host all deliver at least once, and the same
failure can arrive through several sources. Before acting, a caller begins a key —
`event:<event id>` for "this delivery", `fix:<remediation>|<target>|<fingerprint>` for
"this change" — and acts only on "new". The record then moves IN_PROGRESS →
COMPLETED (result kept) or FAILED (reason kept).

A caller that dies mid-way leaves IN_PROGRESS; after `in_progress_ttl` the next `begin`
takes the key over. Every transition is an insert-if-absent or an ETag-conditional
replace, so of any number of concurrent callers exactly one gets "new".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from shared.state.tables import (
    Clock,
    Contention,
    Row,
    StateStore,
    checked_now,
    delete_row,
    get_row,
    insert_row,
    pack_json,
    query_rows,
    replace_row,
    safe_key,
    truncate_text,
    unpack_json,
    utcnow,
)

log = logging.getLogger("remediator.state.ledger")

LedgerState = Literal["in_progress", "completed", "failed"]
BeginState = Literal["new", "in_progress", "completed", "failed"]

ROW = "ledger"
RESULT_CHUNKS = 2  # ≈ 64k characters of result JSON, then truncated with a marker
REASON_UNITS = 8_000
ATTEMPTS = 8  # read/write rounds before giving up; each lost round means another writer progressed


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """One key's state as stored. `result` is the completed JSON (possibly a truncation marker)."""

    key: str
    state: LedgerState
    fingerprint: str
    result: Mapping[str, Any] | None
    reason: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Begin:
    """The answer to `begin`: act only when `state == "new"` (`owned`)."""

    state: BeginState
    record: LedgerRecord
    # The key was begun before with another non-empty fingerprint (same id, different payload).
    fingerprint_mismatch: bool = False
    etag: str | None = None  # the owner's row version: `complete(..., begun=...)` writes without reading

    @property
    def owned(self) -> bool:
        return self.state == "new"


class Ledger:
    """The idempotency ledger (table "ledger"; one partition per key)."""

    def __init__(
        self,
        store: StateStore,
        *,
        in_progress_ttl: timedelta = timedelta(minutes=30),
        retention: timedelta = timedelta(days=7),
        now: Clock = utcnow,
    ) -> None:
        if in_progress_ttl <= timedelta(0) or retention <= timedelta(0):
            raise ValueError("in_progress_ttl and retention must be positive")
        self._store = store
        self.in_progress_ttl = in_progress_ttl
        self.retention = retention
        self._now = now

    @property
    def _table(self) -> Any:
        return self._store.table("ledger")

    def get(self, key: str) -> LedgerRecord | None:
        row = get_row(self._table, safe_key(key), ROW)
        return None if row is None else _record(row)

    def begin(self, key: str, *, fingerprint: str = "", retry_failed: bool = False,
              take_over: bool = False) -> Begin:
        """Claims `key` unless someone holds it, finished it, or (without `retry_failed`) failed it.

        "new": the caller owns the key (IN_PROGRESS until `in_progress_ttl`) and must call
        `complete` or `fail`. "in_progress": someone else owns it now. "completed": done
        before — `record.result` is the answer, do not act again. "failed": failed before —
        `record.reason` says why; `retry_failed=True` claims it again instead.
        Completed/failed records past their retention count as absent. `take_over=True` also
        claims a live IN_PROGRESS key: for a caller that knows its owner died (its target lock
        expired), so a redelivery resumes instead of waiting out the record's lifetime.
        """
        pk = safe_key(key)
        table = self._table
        first = True
        for _ in range(ATTEMPTS):
            now = checked_now(self._now)
            if first:  # most keys are new: insert first, read only when someone was there before
                first = False
                props = self._props(key, "in_progress", fingerprint=fingerprint, attempts=1, created_at=now, now=now)
                etag = insert_row(table, props)
                if etag is not None:
                    return Begin("new", _from_props(props), etag=etag)
            row = get_row(table, pk, ROW)
            if row is None:
                props = self._props(key, "in_progress", fingerprint=fingerprint, attempts=1, created_at=now, now=now)
                etag = insert_row(table, props)
                if etag is not None:
                    return Begin("new", _from_props(props), etag=etag)
                continue  # someone inserted first: read what they wrote
            current = _record(row)
            mismatch = bool(fingerprint and current.fingerprint and fingerprint != current.fingerprint)
            live = current.expires_at > now
            if live and current.state == "in_progress" and not take_over:
                return Begin("in_progress", current, mismatch)
            if live and current.state == "completed":
                return Begin("completed", current, mismatch)
            if live and current.state == "failed" and not retry_failed:
                return Begin("failed", current, mismatch)
            # Take over: an abandoned IN_PROGRESS, a record past retention, or a failure to retry.
            attempts = current.attempts + 1 if live or current.state == "in_progress" else 1
            created = current.created_at if attempts > 1 else now
            props = self._props(key, "in_progress", fingerprint=fingerprint or current.fingerprint,
                                attempts=attempts, created_at=created, now=now)
            etag = replace_row(table, props, row.etag)
            if etag is not None:
                if current.state == "in_progress":
                    log.warning("ledger %s: took over an IN_PROGRESS record that expired at %s",
                                key, current.expires_at.isoformat())
                return Begin("new", _from_props(props), mismatch, etag=etag)
            # Lost the race to another taker (or a purge): the next round reads the winner's record.
        raise Contention(f"ledger {key}: could not begin within {ATTEMPTS} attempts")

    def complete(self, key: str, result: Mapping[str, Any], *, begun: Begin | None = None) -> LedgerRecord:
        """Marks `key` COMPLETED with `result` (JSON; an oversized one keeps a marked head).

        A later `complete` replaces the result. With the owner's `begun`, one conditional write
        (no read) when the row is still as the owner left it.
        """
        if begun is not None and begun.etag is not None:
            record = begun.record
            props = self._props(key, "completed", fingerprint=record.fingerprint, result=dict(result),
                                attempts=record.attempts, created_at=record.created_at, now=checked_now(self._now))
            if replace_row(self._table, props, begun.etag) is not None:
                return _from_props(props)
        return self._finish(key, "completed", dict(result), None)

    def claim(self, key: str, result: Mapping[str, Any]) -> Begin:
        """Claims `key` as done in one step (insert as COMPLETED): for a decision whose outcome is
        known when it is taken (a job queued). A failed or expired record is claimed again;
        a live one (in progress or completed) is not ("in_progress" / "completed")."""
        table = self._table
        for _ in range(ATTEMPTS):
            now = checked_now(self._now)
            props = self._props(key, "completed", result=dict(result), attempts=1, created_at=now, now=now)
            etag = insert_row(table, props)
            if etag is not None:
                return Begin("new", _from_props(props), etag=etag)
            row = get_row(table, safe_key(key), ROW)
            if row is None:
                continue
            current = _record(row)
            if current.expires_at > now and current.state in ("in_progress", "completed"):
                return Begin(current.state, current)
            props = self._props(key, "completed", fingerprint=current.fingerprint, result=dict(result),
                                attempts=current.attempts + 1, created_at=current.created_at, now=now)
            etag = replace_row(table, props, row.etag)
            if etag is not None:
                return Begin("new", _from_props(props), etag=etag)
        raise Contention(f"ledger {key}: could not claim within {ATTEMPTS} attempts")

    def fail(self, key: str, reason: str) -> LedgerRecord:
        """Marks `key` FAILED with `reason`; a record already COMPLETED is left as it is."""
        return self._finish(key, "failed", None, reason)

    def release(self, key: str, reason: str) -> LedgerRecord:
        """Marks `key` FAILED even when it was claimed as done: the work it stood for did not happen
        (a queued job that failed for good), so the failure may be acted on again."""
        return self._finish(key, "failed", None, reason, force=True)

    def _finish(
        self, key: str, state: LedgerState, result: Mapping[str, Any] | None, reason: str | None, *,
        force: bool = False,
    ) -> LedgerRecord:
        pk = safe_key(key)
        table = self._table
        for _ in range(ATTEMPTS):
            now = checked_now(self._now)
            row = get_row(table, pk, ROW)
            if row is None:
                log.warning("ledger %s: marking %s a key that was never begun (or was purged)", key, state)
                props = self._props(key, state, result=result, reason=reason, attempts=1, created_at=now, now=now)
                if insert_row(table, props) is not None:
                    return _from_props(props)
                continue
            current = _record(row)
            if state == "failed" and current.state == "completed" and current.expires_at > now and not force:
                log.warning("ledger %s: not marking failed (%s): already completed", key, reason)
                return current
            props = self._props(key, state, fingerprint=current.fingerprint, result=result, reason=reason,
                                attempts=current.attempts, created_at=current.created_at, now=now)
            if replace_row(table, props, row.etag) is not None:
                return _from_props(props)
        raise Contention(f"ledger {key}: could not mark {state} within {ATTEMPTS} attempts")

    def purge_expired(self) -> int:
        """Deletes records past their expiry (ETag-conditional: a record just renewed stays)."""
        now = checked_now(self._now)
        table = self._table
        deleted = 0
        for row in query_rows(table, "expires_at lt @now", {"now": now}):
            if delete_row(table, str(row["PartitionKey"]), str(row["RowKey"]), row.etag):
                deleted += 1
        if deleted:
            log.info("ledger: purged %d expired records", deleted)
        return deleted

    def _props(
        self,
        key: str,
        state: LedgerState,
        *,
        fingerprint: str = "",
        result: Mapping[str, Any] | None = None,
        reason: str | None = None,
        attempts: int,
        created_at: datetime,
        now: datetime,
    ) -> dict[str, Any]:
        expires = now + (self.in_progress_ttl if state == "in_progress" else self.retention)
        props: dict[str, Any] = {
            "PartitionKey": safe_key(key),
            "RowKey": ROW,
            "key": key,
            "state": state,
            "fingerprint": fingerprint,
            "attempts": attempts,
            "created_at": created_at,
            "updated_at": now,
            "expires_at": expires,
        }
        if result is not None:
            props.update(pack_json("result", result, max_chunks=RESULT_CHUNKS))
        if reason is not None:
            props["reason"] = truncate_text(reason, REASON_UNITS)
        return props


def _from_props(props: Mapping[str, Any]) -> LedgerRecord:
    result = unpack_json(props, "result")
    return LedgerRecord(
        key=str(props["key"]),
        state=props["state"],
        fingerprint=str(props.get("fingerprint") or ""),
        result=result if isinstance(result, Mapping) else None,
        reason=props.get("reason"),
        attempts=int(props.get("attempts") or 1),
        created_at=props["created_at"],
        updated_at=props["updated_at"],
        expires_at=props["expires_at"],
    )


def _record(row: Row) -> LedgerRecord:
    state = row.get("state")
    if state not in ("in_progress", "completed", "failed"):
        raise ValueError(f"ledger row {row.get('key')!r} has an unknown state {state!r}")
    return _from_props(row.props)
