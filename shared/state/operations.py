"""Operations: the status of one requested remediation run, for callers that poll.

An HTTP caller that asks for a remediation gets an operation id at once; the work
happens later (queue, approval) and updates the operation. Updates are
read-modify-write with an ETag, so two workers cannot lose each other's update, and
a finished operation cannot be moved back to running by a late duplicate.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, get_args

from shared.state.tables import (
    Clock,
    Contention,
    Row,
    StateError,
    StateStore,
    checked_now,
    get_row,
    insert_row,
    pack_json,
    replace_row,
    to_json,
    truncate_text,
    unpack_json,
    utcnow,
)

log = logging.getLogger("remediator.state.operations")

OperationStatus = Literal["queued", "running", "succeeded", "failed", "noop", "dry-run", "awaiting-approval"]
STATUSES: frozenset[str] = frozenset(get_args(OperationStatus))
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "noop", "dry-run"})
ROW = "operation"
RESULT_CHUNKS = 4
ERROR_UNITS = 16_000
ATTEMPTS = 8
_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class Operation:
    """One remediation run as a caller sees it."""

    id: str
    kind: str
    remediation: str
    target: str
    params: Mapping[str, str]
    dry_run: bool
    status: OperationStatus
    result: Mapping[str, Any]
    error: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


class OperationError(StateError):
    """An operation that does not exist, or an update a finished operation refuses."""


class Operations:
    """Operations (table "operations"; one partition per operation id)."""

    def __init__(self, store: StateStore, *, now: Clock = utcnow) -> None:
        self._store = store
        self._now = now

    @property
    def _table(self) -> Any:
        return self._store.table("operations")

    def create(
        self,
        *,
        kind: str,
        remediation: str,
        target: str,
        params: Mapping[str, str] | None = None,
        dry_run: bool = False,
        status: OperationStatus = "queued",
        operation_id: str | None = None,
    ) -> Operation:
        """A new operation. With `operation_id` (derived from what it carries out, e.g. an approval)
        creating it again returns the one stored: a retried decision queues one operation."""
        _check_status(status)
        now = checked_now(self._now)
        if operation_id is not None and not _ID.fullmatch(operation_id):
            raise ValueError(f"an operation id is 32 hex characters, not {operation_id!r}")
        op = Operation(
            id=operation_id or uuid.uuid4().hex, kind=kind, remediation=remediation, target=target,
            params={str(k): str(v) for k, v in (params or {}).items()}, dry_run=dry_run, status=status,
            result={}, error=None, created_at=now, updated_at=now,
        )
        if insert_row(self._table, _props(op)) is None:
            existing = self.get(op.id) if operation_id is not None else None
            if existing is None:
                raise StateError(f"operation id {op.id} already exists")  # a uuid4 collision: not expected
            return existing
        return op

    def get(self, operation_id: str) -> Operation | None:
        row = self._row(operation_id)
        return None if row is None else _operation(row)

    def update(
        self,
        operation_id: str,
        *,
        status: OperationStatus | None = None,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> Operation:
        """Sets the given fields (others kept). A finished operation refuses a new status."""
        if status is not None:
            _check_status(status)
        for _ in range(ATTEMPTS):
            row = self._row(operation_id)
            if row is None:
                raise OperationError(f"no operation {operation_id}")
            current = _operation(row)
            if status is not None and current.finished and status != current.status:
                raise OperationError(f"operation {operation_id} is {current.status}: cannot become {status}")
            updated = replace(
                current,
                status=status or current.status,
                result=dict(result) if result is not None else current.result,
                error=error if error is not None else current.error,
                updated_at=checked_now(self._now),
            )
            if replace_row(self._table, _props(updated), row.etag) is not None:
                return _operation_from(_props(updated))
        raise Contention(f"operation {operation_id}: no update within {ATTEMPTS} attempts")

    def finish(self, operation_id: str, *, status: OperationStatus, result: Mapping[str, Any],
               error: str | None = None) -> None:
        """The one write of an operation's end (no read): only the job that holds the operation's
        record and its target's lease writes it."""
        from azure.data.tables import UpdateMode

        from shared.state.tables import entity_values

        _check_status(status)
        props: dict[str, Any] = {"PartitionKey": operation_id, "RowKey": ROW, "status": status,
                                 "updated_at": checked_now(self._now),
                                 "error": truncate_text(error, ERROR_UNITS) if error is not None else None}
        props.update(pack_json("result", dict(result), max_chunks=RESULT_CHUNKS))
        self._table.update_entity(entity=entity_values(props), mode=UpdateMode.MERGE)

    def _row(self, operation_id: str) -> Row | None:
        if not _ID.fullmatch(operation_id):
            return None  # ids are uuid4 hex; anything else cannot name an operation
        return get_row(self._table, operation_id, ROW)


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"operation status {status!r} is not one of {', '.join(sorted(STATUSES))}")


def _props(op: Operation) -> dict[str, Any]:
    props: dict[str, Any] = {
        "PartitionKey": op.id,
        "RowKey": ROW,
        "id": op.id,
        "kind": op.kind,
        "remediation": op.remediation,
        "target": op.target,
        "params": to_json(dict(op.params)),
        "dry_run": op.dry_run,
        "status": op.status,
        "error": truncate_text(op.error, ERROR_UNITS) if op.error is not None else None,
        "created_at": op.created_at,
        "updated_at": op.updated_at,
    }
    props.update(pack_json("result", dict(op.result), max_chunks=RESULT_CHUNKS))
    return props


def _operation_from(props: Mapping[str, Any]) -> Operation:
    status = props.get("status")
    if status not in STATUSES:
        raise ValueError(f"operation row {props.get('id')!r} has an unknown status {status!r}")
    result = unpack_json(props, "result")
    params = json.loads(props.get("params") or "{}")
    return Operation(
        id=str(props["id"]),
        kind=str(props.get("kind") or ""),
        remediation=str(props.get("remediation") or ""),
        target=str(props.get("target") or ""),
        params={str(k): str(v) for k, v in params.items()},
        dry_run=bool(props.get("dry_run")),
        status=status,
        result=result if isinstance(result, Mapping) else {},
        error=props.get("error"),
        created_at=props["created_at"],
        updated_at=props["updated_at"],
    )


def _operation(row: Row) -> Operation:
    return _operation_from(row.props)


def operation_to_dict(op: Operation) -> dict[str, Any]:
    """A JSON-able view (for the HTTP API)."""
    return {
        "id": op.id,
        "kind": op.kind,
        "remediation": op.remediation,
        "target": op.target,
        "params": dict(op.params),
        "dry_run": op.dry_run,
        "status": op.status,
        "result": dict(op.result),
        "error": op.error,
        "created_at": op.created_at.isoformat(),
        "updated_at": op.updated_at.isoformat(),
    }
