"""Per-target leases: at most one remediation changes a given resource at a time.

The ledger stops the same work being done twice; leases stop two different pieces of
work (say, a timeout increase and a source fix on one image template) from
interleaving their read-modify-write of the same resource. A lease is a row per
target with an owner and an expiry: taken by insert-if-absent, or — once expired — by
an ETag-conditional replace, so exactly one of concurrent takers gets it. A holder
that crashes blocks the target only until its lease expires.

A job's own record (its idempotency key: in progress, completed with its result, or failed
with the reason) lives beside its target's lease, in the target's partition: claiming the job
and the lease is one entity-group transaction, and so is finishing the job and releasing the
lease. A job whose worker died (record in progress, lease expired) is taken over by the next
delivery instead of being turned away until it is poisoned.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from shared.state.tables import (
    Clock,
    Contention,
    Row,
    StateError,
    StateStore,
    checked_now,
    delete_row,
    get_row,
    insert_row,
    pack_json,
    query_rows,
    replace_row,
    safe_key,
    transact,
    truncate_text,
    unpack_json,
    upsert_row,
    utcnow,
)

log = logging.getLogger("remediator.state.locks")

ROW = "lease"
JOB = "job|"  # + operation id: a job's record, in its target's partition
JOB_RETENTION = timedelta(days=7)  # a finished job's record outlives any redelivery of its message
ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class JobStart:
    """What `start_job` found: "new" (the caller holds the job and the target's lease), "completed"
    (done before: `result`), or "busy" (another job holds the target, or this job a live worker)."""

    state: Literal["new", "completed", "busy"]
    lease: Lease | None = None
    etag: str | None = None
    attempts: int = 0
    result: Mapping[str, Any] | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    """Proof of holding `target` until `expires_at`; `etag` is what release/renew condition on."""

    target: str
    owner: str
    etag: str
    expires_at: datetime


class LockBusy(StateError):
    """The target is leased by someone else (named, with the lease's expiry, when known)."""

    def __init__(self, target: str, holder: str | None = None, until: datetime | None = None) -> None:
        self.target = target
        self.holder = holder
        self.until = until
        detail = f" by {holder} until {until.isoformat()}" if holder and until else ""
        super().__init__(f"{target} is locked{detail}")


class LockLost(StateError):
    """A renew found the lease gone or taken over: the holder must stop changing the target."""


class TargetLocks:
    """Leases on targets (table "locks"; one partition per target)."""

    def __init__(self, store: StateStore, *, now: Clock = utcnow) -> None:
        self._store = store
        self._now = now

    @property
    def _table(self) -> Any:
        return self._store.table("locks")

    def acquire(self, target: str, owner: str, ttl: timedelta) -> Lease | None:
        """A lease on `target` for `ttl`, or None while another live lease holds it.

        Not re-entrant: the same owner asking again while its lease is live gets None
        too (two callers sharing an owner name must not both proceed).
        """
        _check(owner, ttl)
        table = self._table
        pk = safe_key(target)
        now = checked_now(self._now)
        props = _props(target, owner, now, ttl)
        etag = insert_row(table, props)
        if etag is not None:
            return Lease(target, owner, etag, props["expires_at"])
        row = get_row(table, pk, ROW)
        if row is None:  # released between our insert and read: one more try
            etag = insert_row(table, props)
            return None if etag is None else Lease(target, owner, etag, props["expires_at"])
        if row["expires_at"] > now:
            return None
        etag = replace_row(table, props, row.etag)
        if etag is None:
            return None  # another taker won
        log.warning("lock %s: took over the lease of %s that expired at %s",
                    target, row.get("owner"), row["expires_at"].isoformat())
        return Lease(target, owner, etag, props["expires_at"])

    def release(self, lease: Lease) -> bool:
        """Gives the lease back. No error when it is already gone; False when someone took it over."""
        released = delete_row(self._table, safe_key(lease.target), ROW, lease.etag)
        if not released:
            log.warning("lock %s: lease of %s was taken over before release", lease.target, lease.owner)
        return released

    def renew(self, lease: Lease, ttl: timedelta) -> Lease:
        """Extends a lease still held (by ETag); raises `LockLost` when it is not."""
        _check(lease.owner, ttl)
        now = checked_now(self._now)
        props = _props(lease.target, lease.owner, now, ttl)
        etag = replace_row(self._table, props, lease.etag)
        if etag is None:
            raise LockLost(f"{lease.target}: the lease of {lease.owner} was released or taken over")
        return Lease(lease.target, lease.owner, etag, props["expires_at"])

    def holder(self, target: str) -> Lease | None:
        """The live lease on `target`, if any (for messages and diagnostics)."""
        row = get_row(self._table, safe_key(target), ROW)
        if row is None or row["expires_at"] <= checked_now(self._now):
            return None
        return Lease(target, str(row.get("owner")), row.etag, row["expires_at"])

    def start_job(self, target: str, operation_id: str, owner: str, ttl: timedelta) -> JobStart:
        """Claims job `operation_id` and the lease on `target` together (one transaction; a second
        call only when someone was there first)."""
        _check(owner, ttl)
        table = self._table
        pk, rk = safe_key(target), JOB + operation_id
        first = True
        for _ in range(ATTEMPTS):
            now = checked_now(self._now)
            lease = _props(target, owner, now, ttl) | {"operation_id": operation_id}
            job = {"PartitionKey": pk, "RowKey": rk, "target": target, "operation_id": operation_id,
                   "state": "in_progress", "owner": owner, "attempts": 1, "created_at": now, "updated_at": now,
                   "expires_at": now + ttl}
            if first:
                first = False
                etags = transact(table, [("create", job, None), ("create", lease, None)])
                if etags is not None:
                    return JobStart("new", Lease(target, owner, etags[1], lease["expires_at"]), etags[0], 1)
            rows = {str(r["RowKey"]): r for r in query_rows(
                table, "PartitionKey eq @pk and ( RowKey eq @job or RowKey eq @lease )",
                {"pk": pk, "job": rk, "lease": ROW})}
            found, held = rows.get(rk), rows.get(ROW)
            if found is not None and found.get("state") == "completed" and found["expires_at"] > now:
                return JobStart("completed", attempts=int(found.get("attempts") or 1),
                                result=unpack_json(found.props, "result") or {})
            if held is not None and held["expires_at"] > now:
                return JobStart("busy", reason=f"{target} is leased by {held.get('owner')} for job "
                                f"{held.get('operation_id') or '?'} until {held['expires_at'].isoformat()}")
            attempts = int(found.get("attempts") or 1) + 1 if found is not None else 1
            if found is not None:
                job |= {"attempts": attempts, "created_at": found.get("created_at") or now}
                if found.get("state") == "in_progress":
                    log.warning("job %s: taking over from %s, whose lease on %s expired", operation_id,
                                found.get("owner"), target)
            etags = transact(table, [
                ("replace", job, found.etag) if found is not None else ("create", job, None),
                ("replace", lease, held.etag) if held is not None else ("create", lease, None)])
            if etags is not None:
                return JobStart("new", Lease(target, owner, etags[1], lease["expires_at"]), etags[0], attempts)
        raise Contention(f"job {operation_id} on {target}: could not start within {ATTEMPTS} attempts")

    def finish_job(self, start: JobStart, operation_id: str, *, result: Mapping[str, Any] | None = None,
                   reason: str | None = None) -> None:
        """Records the job completed (`result`) or failed (`reason`, so a redelivery may try again) and
        releases the lease, in one transaction; with a lease taken over meanwhile, the record is still
        written and the other holder's lease left alone."""
        if start.lease is None:
            raise ValueError("finish_job needs the JobStart of a started job")
        now = checked_now(self._now)
        target = start.lease.target
        props: dict[str, Any] = {
            "PartitionKey": safe_key(target), "RowKey": JOB + operation_id, "target": target,
            "operation_id": operation_id, "state": "completed" if reason is None else "failed",
            "owner": start.lease.owner, "attempts": start.attempts, "updated_at": now,
            "expires_at": now + JOB_RETENTION}
        if result is not None:
            props.update(pack_json("result", dict(result), max_chunks=2))
        if reason is not None:
            props["reason"] = truncate_text(reason, 8_000)
        lease = {"PartitionKey": safe_key(target), "RowKey": ROW}
        if start.etag and transact(self._table, [("replace", props, start.etag),
                                                 ("delete", lease, start.lease.etag)]) is not None:
            return
        upsert_row(self._table, props)
        self.release(start.lease)

    def fail_job(self, target: str, operation_id: str, reason: str) -> None:
        """Records a job failed for good (the poison path), whoever held it."""
        now = checked_now(self._now)
        current = self.job(target, operation_id)
        upsert_row(self._table, {
            "PartitionKey": safe_key(target), "RowKey": JOB + operation_id, "target": target,
            "operation_id": operation_id, "state": "failed", "reason": truncate_text(reason, 8_000),
            "attempts": int(current.get("attempts") or 1) if current is not None else 1, "updated_at": now,
            "expires_at": now + JOB_RETENTION})

    def job(self, target: str, operation_id: str) -> Row | None:
        """A job's record (state, result, the reason of its last failure), if any."""
        return get_row(self._table, safe_key(target), JOB + operation_id)

    def purge_expired(self) -> int:
        """Deletes finished job records past their retention (leases are deleted by their holders)."""
        now = checked_now(self._now)
        deleted = 0
        for row in query_rows(self._table, "expires_at lt @now", {"now": now}):
            if str(row["RowKey"]).startswith(JOB) and delete_row(
                    self._table, str(row["PartitionKey"]), str(row["RowKey"]), row.etag):
                deleted += 1
        return deleted

    @contextmanager
    def held(self, target: str, owner: str, ttl: timedelta) -> Iterator[Held]:
        """`with locks.held(target, owner, ttl) as held:` — raises `LockBusy` when not acquired.

        Renew through `held.renew(ttl)` so the release at the end uses the current ETag.
        """
        lease = self.acquire(target, owner, ttl)
        if lease is None:
            current = self.holder(target)
            raise LockBusy(target, current.owner if current else None, current.expires_at if current else None)
        holding = Held(self, lease)
        try:
            yield holding
        finally:
            self.release(holding.lease)


class Held:
    """The lease inside a `held` block; keeps track of renewals."""

    def __init__(self, locks: TargetLocks, lease: Lease) -> None:
        self._locks = locks
        self._lease = lease

    @property
    def lease(self) -> Lease:
        return self._lease

    def renew(self, ttl: timedelta) -> Lease:
        self._lease = self._locks.renew(self._lease, ttl)
        return self._lease


def _check(owner: str, ttl: timedelta) -> None:
    if not owner:
        raise ValueError("a lease owner must be named")
    if ttl <= timedelta(0):
        raise ValueError("a lease ttl must be positive")


def _props(target: str, owner: str, now: datetime, ttl: timedelta) -> dict[str, Any]:
    return {
        "PartitionKey": safe_key(target),
        "RowKey": ROW,
        "target": target,
        "owner": owner,
        "acquired_at": now,
        "expires_at": now + ttl,
    }
