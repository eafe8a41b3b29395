"""One reading per decision: a resource the same step reads twice is fetched once.

Deciding on an event reads an image template twice within milliseconds: enrichment (its run
status and log) and the remediation's plan. Inside `one_reading()` the second read is served
from the first. Jobs never open one: they plan, apply and verify against live state.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")
_READS: ContextVar[dict[tuple[str, str], Any] | None] = ContextVar("remediator_reads", default=None)


@contextmanager
def one_reading() -> Iterator[None]:
    token = _READS.set({})
    try:
        yield
    finally:
        _READS.reset(token)


def read_once(kind: str, key: str, read: Callable[[], T]) -> T:
    """`read()`, or a copy of what it returned earlier in this reading (a failed read is not kept)."""
    reads = _READS.get()
    if reads is None:
        return read()
    slot = (kind, key.lower())
    if slot not in reads:
        reads[slot] = read()
    return copy.deepcopy(reads[slot])  # type: ignore[no-any-return]
