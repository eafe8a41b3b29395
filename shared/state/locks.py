"""Per-target leases: at most one remediation changes a given resource at a time.

The ledger stops the same work being done twice; leases stop two different pieces of
work (say, a timeout increase and a source fix on one image template) from
interleaving their read-modify-write of the same resource. A lease is a row per
target with an owner and an expiry: taken by insert-if-absent, or — once expired — by
an ETag-conditional replace, so exactly one of concurrent takers gets it. A holder
that crashes blocks the target only until its lease expires.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.state.tables import (
    Clock,
    StateError,
    StateStore,
    checked_now,
    delete_row,
    get_row,
    insert_row,
    replace_row,
    safe_key,
    utcnow,
)

log = logging.getLogger("remediator.state.locks")

ROW = "lease"


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
