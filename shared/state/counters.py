"""Rate limits on changes: "at most N per target per day", "at most M in total per hour".

A bug or an event storm must not turn the remediator into a change storm. Each scope
has one counter row per window bucket (UTC hour or day), or a few (shards) for a scope every
change spends; `take_all` increments the rows of one change in one ETag-conditional transaction,
retrying with a short jittered backoff when another taker got there first, and refuses — without
incrementing — once a limit is reached. So no count exceeds its limit however many instances race.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shared.state.tables import (
    Clock,
    Contention,
    Row,
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


@dataclass(frozen=True)
class _Key:
    """One budget's row for this change: its RowKey, what it counts, and the share of the limit it holds."""

    row_key: str
    scope: str
    window: Window
    start: datetime
    end: datetime
    limit: int  # the row's own allotment (the whole limit when the scope is not sharded)
    shard: int | None = None


def allotment(limit: int, shards: int, shard: int) -> int:
    """The part of `limit` that shard `shard` of `shards` may count: the parts add up to `limit`
    exactly, so however the takers spread, the shards together never exceed it."""
    return max(0, limit) // shards + (1 if shard < max(0, limit) % shards else 0)


def _rows(table: Any, keys: Sequence[_Key]) -> dict[str, Row]:
    """The existing rows of `keys` (all in the budgets partition), by RowKey, in one query."""
    flt = " or ".join(f"RowKey eq @k{i}" for i in range(len(keys)))
    params: dict[str, Any] = {f"k{i}": k.row_key for i, k in enumerate(keys)} | {"pk": PARTITION}
    return {str(r["RowKey"]): r for r in query_rows(table, f"PartitionKey eq @pk and ( {flt} )", params)}


class Counters:
    """Windowed counters (table "counters"): every bucket in one partition, one row per scope and
    bucket, so the budgets of one change (its target's day, the global hour) are read in one query
    and spent in one entity-group transaction.

    A scope every change spends (the fleet's hour) would be one row every taker races for: with
    `shards`, its bucket is split into that many rows, each holding a fixed share of the limit
    (`allotment`). A thread keeps to its own shard, so concurrent takers rarely meet; when its shard
    is spent the rows are read and another with room is taken; the change is refused only when the
    rows together reached the limit. The sum never exceeds the limit (a limit lowered within a window
    may still count up to the old one there: shards filled before the change keep their counts)."""

    def __init__(self, store: StateStore, *, now: Clock = utcnow, attempts: int = ATTEMPTS,
                 shards: Mapping[str, int] | None = None) -> None:
        self._store = store
        self._now = now
        self._attempts = attempts
        self._shards = {scope: n for scope, n in (shards or {}).items() if n > 1}
        self._known: dict[str, tuple[int, str]] = {}  # RowKey -> (count, ETag) as this instance last wrote it
        self._lock = threading.Lock()
        self._local = threading.local()  # this thread's shard, per scope
        self._next_shard = random.randrange(1 << 16)  # threads of one instance start on distinct shards

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
        if self._optimistic(table, budgets):
            return None
        for attempt in range(self._attempts):
            now = checked_now(self._now)
            keys = [self._all_keys(budget, now) for budget in budgets]
            rows = _rows(table, [key for per_budget in keys for key in per_budget])
            refused: int | None = None
            operations: list[tuple[str, Mapping[str, Any], str | None]] = []
            for i, candidates in enumerate(keys):
                counts = [(key, 0 if rows.get(key.row_key) is None else int(rows[key.row_key].get("count") or 0))
                          for key in candidates]
                room = [(key, count) for key, count in counts if count < key.limit]
                if budgets[i][2] <= 0 or sum(count for _, count in counts) >= budgets[i][2] or not room:
                    refused = i
                    break
                key, count = self._pick(room)
                row = rows.get(key.row_key)
                operations.append(self._take(key, count, None if row is None else row.etag))
            if not operations:
                return refused
            etags = transact(table, operations)
            if etags is not None:
                self._remember(operations, etags)
                return refused
            time.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))
        raise Contention(f"counters {[b[0] for b in budgets]}: no increment within {self._attempts} attempts")

    def _shard_of_thread(self, scope: str, shards: int) -> int:
        mine: dict[str, int] | None = getattr(self._local, "shards", None)
        if mine is None:
            mine = self._local.shards = {}
        if scope not in mine:
            with self._lock:
                self._next_shard += 1
                mine[scope] = self._next_shard % shards
        return mine[scope]

    def _pick(self, room: Sequence[tuple[_Key, int]]) -> tuple[_Key, int]:
        """This thread's shard when it has room, else one with room at random (takers that read the same
        rows at once then spread instead of racing for one), then kept by the thread."""
        key, count = next(((k, c) for k, c in room if k.shard is None or
                           k.shard == self._shard_of_thread(k.scope, self._shards[k.scope])),
                          None) or random.choice(room)
        if key.shard is not None:
            self._local.shards[key.scope] = key.shard
        return key, count

    def _key(self, budget: tuple[str, Window, int], now: datetime, shard: int | None) -> _Key:
        scope, window, limit = budget
        bucket_id, start, end = bucket(window, now)
        if shard is None:
            return _Key(safe_key(f"{scope}|{window}:{bucket_id}"), scope, window, start, end, limit)
        return _Key(safe_key(f"{scope}|{window}:{bucket_id}|{shard}"), scope, window, start, end,
                    allotment(limit, self._shards[scope], shard), shard)

    def _all_keys(self, budget: tuple[str, Window, int], now: datetime) -> list[_Key]:
        """Every row of a budget's bucket: one, or one per shard."""
        shards = self._shards.get(budget[0])
        if shards is None:
            return [self._key(budget, now, None)]
        return [self._key(budget, now, shard) for shard in range(shards)]

    @staticmethod
    def _take(key: _Key, count: int, etag: str | None) -> tuple[str, Mapping[str, Any], str | None]:
        props: dict[str, Any] = {"PartitionKey": PARTITION, "RowKey": key.row_key, "scope": key.scope,
                                 "window": key.window, "count": count + 1, "window_start": key.start,
                                 "expires_at": key.end + KEEP}
        if key.shard is not None:
            props["shard"] = key.shard
        return ("create", props, None) if etag is None else ("replace", props, etag)

    def _optimistic(self, table: Any, budgets: Sequence[tuple[str, Window, int]]) -> bool:
        """All budgets taken in one conditional transaction from what this instance knows (on this
        thread's shard of a sharded scope), or False (nothing written): the caller then reads the
        rows. Never refuses on its own."""
        now = checked_now(self._now)
        keys = []
        for budget in budgets:
            shards = self._shards.get(budget[0])
            keys.append(self._key(budget, now, None if shards is None else self._shard_of_thread(budget[0], shards)))
        with self._lock:
            known = [self._known.get(key.row_key, (0, None)) for key in keys]
        operations = []
        for key, (count, etag), budget in zip(keys, known, budgets, strict=True):
            if budget[2] <= 0 or count >= key.limit:
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
        """How many were taken in the current bucket (all its shards)."""
        keys = self._all_keys((scope, window, 0), checked_now(self._now))
        if len(keys) == 1:
            row = get_row(self._table, PARTITION, keys[0].row_key)
            return 0 if row is None else int(row.get("count") or 0)
        return sum(int(r.get("count") or 0) for r in _rows(self._table, keys).values())

    def purge_expired(self) -> int:
        """Deletes buckets whose window ended more than two days ago."""
        table = self._table
        deleted = 0
        for row in query_rows(table, "expires_at lt @now", {"now": checked_now(self._now)}):
            if delete_row(table, str(row["PartitionKey"]), str(row["RowKey"]), row.etag):
                deleted += 1
        return deleted
