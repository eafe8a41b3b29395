"""Audit trail: what the remediator saw, decided and changed, and who approved it.

Rows are partitioned by UTC day, with the day and the time both inverted in the keys,
so the Table service's natural (PartitionKey, RowKey) order is newest first across the
whole table and a time range is a key range. Values are stored as JSON; a field too
large for its properties keeps its head and a marker saying how much was cut — the
record is always written.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from shared.state.tables import (
    PROPERTY_UNITS,
    Clock,
    Row,
    StateStore,
    as_utc,
    checked_now,
    insert_row,
    pack_json,
    pack_text,
    query_rows,
    to_json,
    transact,
    truncate_text,
    unpack_json,
    unpack_text,
    utcnow,
    utf16_units,
)

log = logging.getLogger("remediator.state.audit")

AuditKind = Literal["diagnosis", "decision", "plan", "apply", "verify", "approval", "poison", "error"]
KINDS: frozenset[str] = frozenset(get_args(AuditKind))

CHANGES_CHUNKS = 4  # ≈ 128k characters each for changes and result, 64k for error
RESULT_CHUNKS = 4
ERROR_CHUNKS = 2
REASON_UNITS = PROPERTY_UNITS
SHORT_UNITS = 4_000  # ids, names, actor, decision
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INVERT = 10**16 - 1  # epoch microseconds stay below this until the year 2286
_SHORT_FIELDS = ("event_id", "operation_id", "target", "scenario", "remediation", "decision", "actor")


@dataclass(frozen=True, slots=True)
class Change:
    """One field changed on one resource."""

    resource_id: str
    field: str
    before: Any = None
    after: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"resource_id": self.resource_id, "field": self.field, "before": self.before, "after": self.after}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Change:
        return cls(str(data.get("resource_id", "")), str(data.get("field", "")), data.get("before"), data.get("after"))


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord:
    """One audit entry. `at` defaults to the audit clock's time when recorded."""

    kind: AuditKind
    id: str = field(default_factory=_new_id)
    at: datetime | None = None
    event_id: str | None = None
    operation_id: str | None = None
    target: str | None = None
    scenario: str | None = None
    remediation: str | None = None
    decision: str | None = None
    reason: str | None = None
    actor: str | None = None
    changes: tuple[Change, ...] = ()
    result: Mapping[str, Any] | None = None
    duration_ms: int | None = None
    error: str | None = None
    # Names of fields stored cut (set on records read back; ignored when recording).
    truncated: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"audit kind {self.kind!r} is not one of {', '.join(sorted(KINDS))}")
        if self.at is not None and self.at.tzinfo is None:
            raise ValueError("audit times must be timezone-aware (UTC)")
        if not self.id or not self.id.isascii() or not self.id.replace("-", "").isalnum():
            raise ValueError(f"audit id {self.id!r}: letters, digits and dashes only")


def day_key(at: datetime) -> str:
    """The PartitionKey of `at`'s UTC day, inverted so newer days sort first."""
    return f"{99_999_999 - int(at.astimezone(UTC).strftime('%Y%m%d')):08d}"


def _inverted(at: datetime) -> int:
    delta = at.astimezone(UTC) - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return _INVERT - micros


def row_key(at: datetime, record_id: str) -> str:
    """Inverted microseconds then the id: newest first within a day, unique per record."""
    return f"{_inverted(at):016d}_{record_id}"


BATCH = 100  # rows per entity-group transaction (the service's limit)


class Audit:
    """The audit trail (table "audit")."""

    def __init__(self, store: StateStore, *, now: Clock = utcnow) -> None:
        self._store = store
        self._now = now

    @property
    def _table(self) -> Any:
        return self._store.table("audit")

    def record(self, rec: AuditRecord) -> AuditRecord:
        """Writes `rec` and returns it as stored (time filled in, oversized fields cut and named).

        A failed write is logged with the record's JSON before the error propagates, so
        what happened survives in the logs even when the table does not take it.
        """
        at = rec.at.astimezone(UTC) if rec.at is not None else checked_now(self._now)
        props = _props(rec, at)
        try:
            if insert_row(self._table, props) is None:
                raise ValueError(f"audit record {rec.id} at {at.isoformat()} is already recorded")
        except Exception:
            log.error("audit record not stored: %s", to_json({k: v for k, v in props.items() if k != "truncated"}))
            raise
        stored = _from_props(props)
        if stored.truncated:
            log.warning("audit record %s: stored cut: %s", rec.id, ", ".join(stored.truncated))
        return stored

    def record_many(self, records: list[AuditRecord]) -> list[AuditRecord]:
        """Writes records of one step together: one entity-group transaction per day partition
        (usually one), at most 100 rows each; logged like `record` when the write fails."""
        at = checked_now(self._now)
        by_day: dict[str, list[dict[str, Any]]] = {}
        for rec in records:
            props = _props(rec, rec.at.astimezone(UTC) if rec.at is not None else at)
            by_day.setdefault(str(props["PartitionKey"]), []).append(props)
        stored: list[AuditRecord] = []
        for rows in by_day.values():
            for start in range(0, len(rows), BATCH):
                chunk = rows[start:start + BATCH]
                try:
                    if transact(self._table, [("create", props, None) for props in chunk]) is None:
                        raise ValueError("an audit record of the batch is already recorded")
                except Exception:
                    for props in chunk:
                        log.error("audit record not stored: %s",
                                  to_json({k: v for k, v in props.items() if k != "truncated"}))
                    raise
                stored.extend(_from_props(props) for props in chunk)
        return stored

    def query(
        self,
        *,
        target: str | None = None,
        scenario: str | None = None,
        kind: AuditKind | None = None,
        event_id: str | None = None,
        operation_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 200,
    ) -> list[AuditRecord]:
        """Records matching every given filter, newest first; `since` inclusive, `until` exclusive.
        A target is matched in its canonical spelling, as every record keeps it."""
        if limit <= 0:
            return []
        target = _target_key(target) if target is not None else None
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if since is not None:
            _aware(since)
            clauses += ["PartitionKey le @pk_since", "RowKey lt @rk_since"]
            params |= {"pk_since": day_key(since), "rk_since": f"{_inverted(since) + 1:016d}"}
        if until is not None:
            _aware(until)
            clauses += ["PartitionKey ge @pk_until", "RowKey ge @rk_until"]
            last = until - timedelta(microseconds=1)
            params |= {"pk_until": day_key(last), "rk_until": f"{_inverted(until) + 1:016d}"}
        for name, value in (("target_key", target), ("scenario", scenario), ("kind", kind), ("event_id", event_id),
                            ("operation_id", operation_id)):
            if value is not None:
                clauses.append(f"{name} eq @{name}")
                params[name] = value
        flt = " and ".join(clauses)
        found: list[AuditRecord] = []
        for row in query_rows(self._table, flt, params, page_size=min(limit, 1000)):
            found.append(_record(row))
            if len(found) >= limit:
                break
        return found


def _aware(value: datetime) -> None:
    if value.tzinfo is None:
        raise ValueError("audit query times must be timezone-aware (UTC)")


def _target_key(target: str) -> str:
    from shared.azure.ids import canonical

    return canonical(target) if target.startswith("/") else target


def _props(rec: AuditRecord, at: datetime) -> dict[str, Any]:
    truncated: list[str] = []
    props: dict[str, Any] = {
        "PartitionKey": day_key(at),
        "RowKey": row_key(at, rec.id),
        "id": rec.id,
        "at": at,
        "day": at.strftime("%Y-%m-%d"),
        "kind": rec.kind,
        "duration_ms": rec.duration_ms,
    }
    for name in _SHORT_FIELDS:
        value = getattr(rec, name)
        if value is not None:
            props[name] = _cut(name, str(value), SHORT_UNITS, truncated)
    if rec.target is not None:  # what a target filter matches: ids in their one spelling
        props["target_key"] = _cut("target_key", _target_key(rec.target), SHORT_UNITS, truncated)
    if rec.reason is not None:
        props["reason"] = _cut("reason", rec.reason, REASON_UNITS, truncated)
    if rec.error is not None:
        props.update(pack_text("error", _cut("error", rec.error, PROPERTY_UNITS * ERROR_CHUNKS, truncated),
                               max_chunks=ERROR_CHUNKS))
    if rec.changes:
        text, cut = _fit_changes(rec.changes, PROPERTY_UNITS * CHANGES_CHUNKS)
        if cut:
            truncated.append("changes")
        props.update(pack_text("changes", text, max_chunks=CHANGES_CHUNKS))
    if rec.result is not None:
        packed = pack_json("result", dict(rec.result), max_chunks=RESULT_CHUNKS)
        if utf16_units(to_json(dict(rec.result))) > PROPERTY_UNITS * RESULT_CHUNKS:
            truncated.append("result")
        props.update(packed)
    if truncated:
        props["truncated"] = ",".join(truncated)
    return props


def _cut(name: str, text: str, units: int, truncated: list[str]) -> str:
    cut = truncate_text(text, units)
    if cut != text:
        truncated.append(name)
    return cut


def _shrink(value: Any, units: int) -> Any:
    text = to_json(value)
    return value if utf16_units(text) <= units else truncate_text(text, units)


def _fit_changes(changes: tuple[Change, ...], budget: int) -> tuple[str, bool]:
    """The changes as JSON within `budget`: large before/after values cut first, then trailing changes."""
    full = to_json([c.to_dict() for c in changes])
    if utf16_units(full) <= budget:
        return full, False
    per_value = max(256, budget // (2 * len(changes)) - 64)
    items = [
        Change(truncate_text(c.resource_id, 2_000), truncate_text(c.field, 500),
               _shrink(c.before, per_value), _shrink(c.after, per_value)).to_dict()
        for c in changes
    ]
    kept: list[dict[str, Any]] = []
    used = 2 + 300  # brackets and the marker item
    for item in items:
        cost = utf16_units(to_json(item)) + 1
        if used + cost > budget:
            break
        kept.append(item)
        used += cost
    if len(kept) < len(items):
        kept.append(Change("…", "…", None, f"[{len(items) - len(kept)} more changes not stored]").to_dict())
    return to_json(kept), True


def _from_props(props: Mapping[str, Any]) -> AuditRecord:
    changes = unpack_json(props, "changes") or []
    result = unpack_json(props, "result")
    duration = props.get("duration_ms")
    truncated = str(props.get("truncated") or "")
    return AuditRecord(
        kind=props["kind"],
        id=str(props["id"]),
        at=as_utc(props["at"]),
        event_id=props.get("event_id"),
        operation_id=props.get("operation_id"),
        target=props.get("target"),
        scenario=props.get("scenario"),
        remediation=props.get("remediation"),
        decision=props.get("decision"),
        reason=props.get("reason"),
        actor=props.get("actor"),
        changes=tuple(Change.from_dict(c) for c in changes if isinstance(c, Mapping)),
        result=result if isinstance(result, Mapping) else None,
        duration_ms=int(duration) if duration is not None else None,
        error=unpack_text(props, "error"),
        truncated=tuple(t for t in truncated.split(",") if t),
    )


def _record(row: Row) -> AuditRecord:
    return _from_props(row.props)


def audit_to_dict(rec: AuditRecord) -> dict[str, Any]:
    """A JSON-able view (for the HTTP API)."""
    return {
        "id": rec.id,
        "at": rec.at.isoformat() if rec.at else None,
        "kind": rec.kind,
        "event_id": rec.event_id,
        "operation_id": rec.operation_id,
        "target": rec.target,
        "scenario": rec.scenario,
        "remediation": rec.remediation,
        "decision": rec.decision,
        "reason": rec.reason,
        "actor": rec.actor,
        "changes": [c.to_dict() for c in rec.changes],
        "result": dict(rec.result) if rec.result is not None else None,
        "duration_ms": rec.duration_ms,
        "error": rec.error,
        "truncated": list(rec.truncated),
    }
