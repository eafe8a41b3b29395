"""Approval requests for changes that a person must OK before they are made.

An approval freezes the exact change (`plan`: before → after) and the evidence that
led to it, so the approver decides on what will actually run. It moves once, from
`pending` to `approved`, `rejected`, `expired` or `withdrawn`; every move is an
ETag-conditional replace, so of concurrent deciders exactly one wins and the others
get `already_decided`. That single transition is also what makes approval-link tokens
single-use (see `shared.approvals.links`).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from shared.state.tables import (
    PROPERTY_UNITS,
    Clock,
    Contention,
    Row,
    StateError,
    StateStore,
    checked_now,
    get_row,
    insert_row,
    pack_text,
    query_rows,
    replace_row,
    to_json,
    truncate_text,
    unpack_text,
    utcnow,
    utf16_units,
)

log = logging.getLogger("remediator.state.approvals")

ApprovalState = Literal["pending", "approved", "rejected", "expired", "withdrawn"]
Decision = Literal["approve", "reject"]
ErrorCode = Literal["not_found", "expired", "already_decided", "withdrawn"]

ROW = "approval"
STATES: frozenset[str] = frozenset({"pending", "approved", "rejected", "expired", "withdrawn"})
PLAN_CHUNKS = 4  # ≈ 128k characters of plan JSON; a larger plan is refused, never cut
EVIDENCE_CHUNKS = 2
EVIDENCE_ITEM_UNITS = 4_000
ATTEMPTS = 8
_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class Approval:
    """One approval request and, once decided, who decided what and when."""

    id: str
    remediation: str
    target: str
    scenario: str
    plan: Mapping[str, Any]
    evidence: tuple[str, ...]
    params: Mapping[str, str]
    alert_id: str | None
    event_id: str | None
    created_at: datetime
    expires_at: datetime
    state: ApprovalState = "pending"
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    # When its card reached Teams (or the sink); None: not yet, the sweep sends it again.
    card_sent_at: datetime | None = None

    def is_open(self, now: datetime) -> bool:
        """Still waiting for a decision (pending and not past its expiry)."""
        return self.state == "pending" and now < self.expires_at


class ApprovalError(StateError):
    """A decision that cannot be taken; `code` says why, `state` is the approval's state if known."""

    def __init__(self, code: ErrorCode, message: str, *, approval: Approval | None = None) -> None:
        self.code = code
        self.message = message
        self.approval = approval
        self.state: ApprovalState | None = approval.state if approval else None
        super().__init__(f"{code}: {message}")


class Approvals:
    """Approval requests (table "approvals"; one partition per approval id)."""

    def __init__(self, store: StateStore, *, ttl: timedelta = timedelta(hours=24), now: Clock = utcnow) -> None:
        if ttl <= timedelta(0):
            raise ValueError("an approval ttl must be positive")
        self._store = store
        self.ttl = ttl
        self._now = now

    @property
    def _table(self) -> Any:
        return self._store.table("approvals")

    def create(
        self,
        *,
        remediation: str,
        target: str,
        scenario: str,
        plan: Mapping[str, Any],
        evidence: Sequence[str] = (),
        params: Mapping[str, str] | None = None,
        alert_id: str | None = None,
        event_id: str | None = None,
        ttl: timedelta | None = None,
    ) -> Approval:
        """A new pending approval. Raises ValueError when the plan is too large to store whole.

        Evidence items are display text: an oversized item is cut with a marker.
        """
        now = checked_now(self._now)
        approval = Approval(
            id=uuid.uuid4().hex,
            remediation=remediation,
            target=target,
            scenario=scenario,
            plan=json.loads(to_json(dict(plan))),  # exactly what a later `get` returns
            evidence=_fit_evidence(evidence),
            params={str(k): str(v) for k, v in (params or {}).items()},
            alert_id=alert_id or None,
            event_id=event_id or None,
            created_at=now,
            expires_at=now + (ttl or self.ttl),
        )
        plan_json = to_json(approval.plan)
        if utf16_units(plan_json) > PROPERTY_UNITS * PLAN_CHUNKS:
            raise ValueError(f"approval plan of {len(plan_json)} characters is too large to store whole")
        if insert_row(self._table, _props(approval)) is None:
            raise StateError(f"approval id {approval.id} already exists")  # a uuid4 collision: not expected
        log.info("approval %s created for %s on %s", approval.id, remediation, target)
        return approval

    def get(self, approval_id: str) -> Approval | None:
        row = self._row(approval_id)
        return None if row is None else _approval(row)

    def decide(self, approval_id: str, decision: Decision, approver: str) -> Approval:
        """Approves or rejects a pending, unexpired approval; exactly one concurrent decider wins.

        Raises `ApprovalError`: `not_found`, `expired`, `withdrawn`, or `already_decided`
        (its `state` and `approval` tell what the winner decided).
        """
        if decision not in ("approve", "reject"):
            raise ValueError(f"decision must be 'approve' or 'reject', not {decision!r}")
        if not approver:
            raise ValueError("an approver must be named")
        new_state: ApprovalState = "approved" if decision == "approve" else "rejected"
        for _ in range(ATTEMPTS):
            now = checked_now(self._now)
            row = self._row(approval_id)
            if row is None:
                raise ApprovalError("not_found", f"no approval {approval_id}")
            current = _approval(row)
            _refuse_unless_pending(current)
            if now >= current.expires_at:
                expired = self._transition(row, current, "expired", now, by=None, reason="expired before a decision")
                if expired is None:
                    continue  # changed meanwhile: re-read and answer from the new state
                raise ApprovalError("expired", f"approval {approval_id} expired at {current.expires_at.isoformat()}",
                                    approval=expired)
            decided = self._transition(row, current, new_state, now, by=approver, reason=None)
            if decided is not None:
                log.info("approval %s %s by %s", approval_id, new_state, approver)
                return decided
        raise Contention(f"approval {approval_id}: no decision within {ATTEMPTS} attempts")

    def card_sent(self, approval_id: str) -> Approval | None:
        """Records that the approval's card went out (whatever its state now)."""
        for _ in range(ATTEMPTS):
            row = self._row(approval_id)
            if row is None:
                return None
            current = _approval(row)
            props = _props(replace(current, card_sent_at=checked_now(self._now)))
            etag = replace_row(self._table, props, row.etag)
            if etag is not None:
                return _approval(Row(props=props, etag=etag))
        raise Contention(f"approval {approval_id}: could not record its card within {ATTEMPTS} attempts")

    def withdraw(self, approval_id: str, reason: str) -> Approval | None:
        """Withdraws one pending approval (the failure resolved itself, the plan went stale).

        Returns it withdrawn, or None when it was no longer pending.
        """
        for _ in range(ATTEMPTS):
            row = self._row(approval_id)
            if row is None:
                return None
            current = _approval(row)
            if current.state != "pending":
                return None
            done = self._transition(row, current, "withdrawn", checked_now(self._now), by=None, reason=reason)
            if done is not None:
                log.info("approval %s withdrawn: %s", approval_id, reason)
                return done
        raise Contention(f"approval {approval_id}: could not withdraw within {ATTEMPTS} attempts")

    def withdraw_for_alert(self, alert_id: str, reason: str) -> list[Approval]:
        """Withdraws every pending approval raised for `alert_id` (e.g. the alert resolved)."""
        rows = query_rows(self._table, "alert_id eq @alert and state eq 'pending'", {"alert": alert_id})
        withdrawn = []
        for row in list(rows):
            done = self.withdraw(_approval(row).id, reason)
            if done is not None:
                withdrawn.append(done)
        return withdrawn

    def expire_stale(self) -> list[Approval]:
        """Marks pending approvals past their expiry as expired; returns those it marked."""
        now = checked_now(self._now)
        rows = query_rows(self._table, "state eq 'pending' and expires_at le @now", {"now": now})
        expired = []
        for row in list(rows):
            current = _approval(row)
            done = self._transition(row, current, "expired", now, by=None, reason="expired before a decision")
            if done is not None:
                expired.append(done)
            else:
                log.info("approval %s changed while expiring it; left as it now is", current.id)
        return expired

    def pending(self) -> list[Approval]:
        """Open approvals (pending, not expired), oldest first."""
        now = checked_now(self._now)
        rows = query_rows(self._table, "state eq 'pending' and expires_at gt @now", {"now": now})
        return sorted((_approval(r) for r in rows), key=lambda a: (a.created_at, a.id))

    def _row(self, approval_id: str) -> Row | None:
        if not _ID.fullmatch(approval_id):
            return None  # ids are uuid4 hex; anything else cannot name an approval
        return get_row(self._table, approval_id, ROW)

    def _transition(
        self, row: Row, current: Approval, state: ApprovalState, now: datetime, *, by: str | None, reason: str | None
    ) -> Approval | None:
        props = _props(replace(current, state=state, decided_by=by, decided_at=now, reason=reason))
        etag = replace_row(self._table, props, row.etag)
        return None if etag is None else _approval(Row(props=props, etag=etag))  # as stored


def _refuse_unless_pending(current: Approval) -> None:
    if current.state == "pending":
        return
    if current.state == "withdrawn":
        raise ApprovalError("withdrawn", f"approval {current.id} was withdrawn: {current.reason or ''}".rstrip(": "),
                            approval=current)
    if current.state == "expired":
        raise ApprovalError("expired", f"approval {current.id} expired at {current.expires_at.isoformat()}",
                            approval=current)
    raise ApprovalError(
        "already_decided", f"approval {current.id} is already {current.state} by {current.decided_by}",
        approval=current,
    )


def _fit_evidence(evidence: Sequence[str]) -> tuple[str, ...]:
    if isinstance(evidence, str):
        raise TypeError("evidence is a sequence of strings, not one string")
    items = [truncate_text(str(e), EVIDENCE_ITEM_UNITS) for e in evidence]
    budget = PROPERTY_UNITS * EVIDENCE_CHUNKS - 1_000
    kept: list[str] = []
    used = 2
    for n, item in enumerate(items):
        cost = utf16_units(to_json(item)) + 1
        if used + cost > budget:
            kept.append(f"…[{len(items) - n} more evidence items not stored]")
            break
        kept.append(item)
        used += cost
    return tuple(kept)


def _props(a: Approval) -> dict[str, Any]:
    props: dict[str, Any] = {
        "PartitionKey": a.id,
        "RowKey": ROW,
        "id": a.id,
        "remediation": a.remediation,
        "target": a.target,
        "scenario": a.scenario,
        "params": to_json(dict(a.params)),
        "alert_id": a.alert_id,
        "event_id": a.event_id,
        "created_at": a.created_at,
        "expires_at": a.expires_at,
        "state": a.state,
        "decided_by": a.decided_by,
        "decided_at": a.decided_at,
        "reason": truncate_text(a.reason, 8_000) if a.reason else None,
        "card_sent_at": a.card_sent_at,
    }
    props.update(pack_text("plan", to_json(dict(a.plan)), max_chunks=PLAN_CHUNKS))
    props.update(pack_text("evidence", to_json(list(a.evidence)), max_chunks=EVIDENCE_CHUNKS))
    return props


def _approval(row: Row) -> Approval:
    state = row.get("state")
    if state not in STATES:
        raise ValueError(f"approval row {row.get('id')!r} has an unknown state {state!r}")
    plan = json.loads(unpack_text(row.props, "plan") or "{}")
    evidence = json.loads(unpack_text(row.props, "evidence") or "[]")
    params = json.loads(row.get("params") or "{}")
    return Approval(
        id=str(row["id"]),
        remediation=str(row.get("remediation") or ""),
        target=str(row.get("target") or ""),
        scenario=str(row.get("scenario") or ""),
        plan=plan,
        evidence=tuple(str(e) for e in evidence),
        params={str(k): str(v) for k, v in params.items()},
        alert_id=row.get("alert_id"),
        event_id=row.get("event_id"),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        state=state,
        decided_by=row.get("decided_by"),
        decided_at=row.get("decided_at"),
        reason=row.get("reason"),
        card_sent_at=row.get("card_sent_at"),
    )


def approval_to_dict(a: Approval) -> dict[str, Any]:
    """A JSON-able view (for the HTTP API and notifications)."""
    return {
        "id": a.id,
        "remediation": a.remediation,
        "target": a.target,
        "scenario": a.scenario,
        "plan": dict(a.plan),
        "evidence": list(a.evidence),
        "params": dict(a.params),
        "alert_id": a.alert_id,
        "event_id": a.event_id,
        "created_at": a.created_at.isoformat(),
        "expires_at": a.expires_at.isoformat(),
        "state": a.state,
        "decided_by": a.decided_by,
        "decided_at": a.decided_at.isoformat() if a.decided_at else None,
        "reason": a.reason,
        "card_sent_at": a.card_sent_at.isoformat() if a.card_sent_at else None,
    }
