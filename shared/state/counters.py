"""Rate limits on changes: "at most N per target per day", "at most M in total per hour".

A bug or an event storm must not turn the remediator into a change storm. Each scope
has one counter row per window bucket (UTC hour or day); `take_all` increments the rows of
one change in one ETag-conditional transaction, retrying with a short jittered backoff when
another taker got there first, and refuses — without incrementing — once a limit is
reached. So no count exceeds its limit however many instances race.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shared.state.tables import (
    Clock,
    Contention,
    StateStore,
    checked_now,
    delete_row,
    get_row,
    query_rows,
    safe_key,
    transact,
    utcnow,
)

log = logging.getLogger("remediator.state.counters")

Window = Literal["hour", "day"]
ATTEMPTS = 64
BACKOFF_BASE = 0.002  # seconds; doubles per lost round, capped
BACKOFF_CAP = 0.05
KEEP = timedelta(days=2)  # a bucket row is purgeable this long after its window ended
PARTITION = "budgets"
KNOWN_ROWS = 4096  # rows whose last written count and ETag an instance keeps


def bucket(window: Window, now: datetime) -> tuple[str, datetime, datetime]:
    """The bucket id of `now` in `window`, with the window's start and end (UTC)."""
    now = now.astimezone(UTC)
    if window == "hour":
        start = now.replace(minute=0, second=0, microsecond=0)
        return start.strftime("%Y-%m-%dT%H"), start, start + timedelta(hours=1)
    if window == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.strftime("%Y-%m-%d"), start, start + timedelta(days=1)
    raise ValueError(f"unknown counter window {window!r} (hour or day)")


class Counters:
    """Windowed counters (table "counters"): every bucket in one partition, one row per scope and
    bucket, so the budgets of one change (its target's day, the global hour) are read in one query
    and spent in one entity-group transaction."""

    def __init__(self, store: StateStore, *, now: Clock = utcnow, attempts: int = ATTEMPTS) -> None:
        self._store = store
        self._now = now
        self._attempts = attempts
        self._known: dict[str, tuple[int, str]] = {}  # RowKey -> (count, ETag) as this instance last wrote it
        self._lock = threading.Lock()

    @property
    def _table(self) -> Any:
        return self._store.table("counters")

    def take(self, scope: str, window: Window, limit: int) -> bool:
        """Counts one more in the current bucket if that stays within `limit`; False (and no count) if not.

        Raises `Contention` when the conditional increment kept losing for all attempts:
        the caller cannot know whether it is within the limit and must not go ahead.
        """
        return self.take_all([(scope, window, limit)]) is None

    def take_all(self, budgets: Sequence[tuple[str, Window, int]]) -> int | None:
        """Takes one of each budget, in order, as one transaction: the index of the first budget that
        is spent (those before it are still counted: budgets err on the side of fewer changes), or
        None when all were within their limits.

        Usually one call: the counts and ETags this instance last wrote are tried as they are (a
        row never seen is created); when another instance moved a row since (412, or 409 on a
        create), or a limit looks reached, the rows are queried and the transaction built from them."""
        table = self._table
        first = self._optimistic(table, budgets)
        if first:
            return None
        for attempt in range(self._attempts):
            now = checked_now(self._now)
            keys = self._keys(budgets, now)
            flt = " or ".join(f"RowKey eq @k{i}" for i in range(len(keys)))
            params: dict[str, Any] = {f"k{i}": k[0] for i, k in enumerate(keys)} | {"pk": PARTITION}
            rows = {str(r["RowKey"]): r for r in query_rows(table, f"PartitionKey eq @pk and ( {flt} )", params)}
            refused: int | None = None
            operations: list[tuple[str, Mapping[str, Any], str | None]] = []
            for i, ((rk, scope, window, start, end), (_, _, limit)) in enumerate(zip(keys, budgets, strict=True)):
                row = rows.get(rk)
                count = 0 if row is None else int(row.get("count") or 0)
                if limit <= 0 or count >= limit:
                    refused = i
                    break
                operations.append(self._take((rk, scope, window, start, end), count,
                                             None if row is None else row.etag))
            if not operations:
                return refused
            etags = transact(table, operations)
            if etags is not None:
                self._remember(operations, etags)
                return refused
            time.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))
        raise Contention(f"counters {[b[0] for b in budgets]}: no increment within {self._attempts} attempts")

    @staticmethod
    def _keys(budgets: Sequence[tuple[str, Window, int]],
              now: datetime) -> list[tuple[str, str, Window, datetime, datetime]]:
        keys = []
        for scope, window, _ in budgets:
            bucket_id, start, end = bucket(window, now)
            keys.append((safe_key(f"{scope}|{window}:{bucket_id}"), scope, window, start, end))
        return keys

    @staticmethod
    def _take(key: tuple[str, str, Window, datetime, datetime], count: int,
              etag: str | None) -> tuple[str, Mapping[str, Any], str | None]:
        rk, scope, window, start, end = key
        props = {"PartitionKey": PARTITION, "RowKey": rk, "scope": scope, "window": window,
                 "count": count + 1, "window_start": start, "expires_at": end + KEEP}
        return ("create", props, None) if etag is None else ("replace", props, etag)

    def _optimistic(self, table: Any, budgets: Sequence[tuple[str, Window, int]]) -> bool:
        """All budgets taken in one conditional transaction from what this instance knows, or False
        (nothing written): the caller then reads the rows. Never refuses on its own."""
        operations = []
        with self._lock:
            for key, (_, _, limit) in zip(self._keys(budgets, checked_now(self._now)), budgets, strict=True):
                count, etag = self._known.get(key[0], (0, None))
                if limit <= 0 or count >= limit:
                    return False
                operations.append(self._take(key, count, etag))
        etags = transact(table, operations)
        if etags is None:
            with self._lock:
                for _, props, _ in operations:
                    self._known.pop(str(props["RowKey"]), None)
            return False
        self._remember(operations, etags)
        return True

    def _remember(self, operations: Sequence[tuple[str, Mapping[str, Any], str | None]], etags: Sequence[str]) -> None:
        with self._lock:
            if len(self._known) > KNOWN_ROWS:  # old buckets and targets: start again
                self._known.clear()
            for (_, props, _), etag in zip(operations, etags, strict=True):
                if etag:
                    self._known[str(props["RowKey"])] = (int(props["count"]), etag)

    def count(self, scope: str, window: Window) -> int:
        """How many were taken in the current bucket."""
        bucket_id, _, _ = bucket(window, checked_now(self._now))
        row = get_row(self._table, PARTITION, safe_key(f"{scope}|{window}:{bucket_id}"))
        return 0 if row is None else int(row.get("count") or 0)

    def purge_expired(self) -> int:
        """Deletes buckets whose window ended more than two days ago."""
        table = self._table
        deleted = 0
        for row in query_rows(table, "expires_at lt @now", {"now": checked_now(self._now)}):
            if delete_row(table, str(row["PartitionKey"]), str(row["RowKey"]), row.etag):
                deleted += 1
        return deleted
