"""Rate limits on changes: "at most N per target per day", "at most M in total per hour".

A bug or an event storm must not turn the remediator into a change storm. Each scope
has one counter row per window bucket (UTC hour or day); `take` increments it with an
ETag-conditional replace, retrying with a short jittered backoff when another taker got
there first, and refuses — without incrementing — once the limit is reached. So the
count never exceeds the limit however many instances race.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shared.state.tables import (
    Clock,
    Contention,
    StateStore,
    checked_now,
    delete_row,
    get_row,
    insert_row,
    query_rows,
    replace_row,
    safe_key,
    utcnow,
)

log = logging.getLogger("remediator.state.counters")

Window = Literal["hour", "day"]
ATTEMPTS = 64
BACKOFF_BASE = 0.002  # seconds; doubles per lost round, capped
BACKOFF_CAP = 0.05
KEEP = timedelta(days=2)  # a bucket row is purgeable this long after its window ended


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
    """Windowed counters (table "counters"; one partition per scope, one row per bucket)."""

    def __init__(self, store: StateStore, *, now: Clock = utcnow, attempts: int = ATTEMPTS) -> None:
        self._store = store
        self._now = now
        self._attempts = attempts

    @property
    def _table(self) -> Any:
        return self._store.table("counters")

    def take(self, scope: str, window: Window, limit: int) -> bool:
        """Counts one more in the current bucket if that stays within `limit`; False (and no count) if not.

        Raises `Contention` when the conditional increment kept losing for all attempts:
        the caller cannot know whether it is within the limit and must not go ahead.
        """
        if limit <= 0:
            return False
        table = self._table
        pk = safe_key(scope)
        for attempt in range(self._attempts):
            now = checked_now(self._now)
            bucket_id, start, end = bucket(window, now)
            rk = f"{window}:{bucket_id}"
            row = get_row(table, pk, rk)
            count = 0 if row is None else int(row.get("count") or 0)
            if count >= limit:
                return False
            props = {
                "PartitionKey": pk, "RowKey": rk, "scope": scope, "window": window,
                "count": count + 1, "window_start": start, "expires_at": end + KEEP,
            }
            written = insert_row(table, props) if row is None else replace_row(table, props, row.etag)
            if written is not None:
                return True
            time.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))
        raise Contention(f"counter {scope}/{window}: no increment within {self._attempts} attempts")

    def count(self, scope: str, window: Window) -> int:
        """How many were taken in the current bucket."""
        bucket_id, _, _ = bucket(window, checked_now(self._now))
        row = get_row(self._table, safe_key(scope), f"{window}:{bucket_id}")
        return 0 if row is None else int(row.get("count") or 0)

    def purge_expired(self) -> int:
        """Deletes buckets whose window ended more than two days ago."""
        table = self._table
        deleted = 0
        for row in query_rows(table, "expires_at lt @now", {"now": checked_now(self._now)}):
            if delete_row(table, str(row["PartitionKey"]), str(row["RowKey"]), row.etag):
                deleted += 1
        return deleted
