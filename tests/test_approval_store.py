"""Approval store against a real Azurite: one decision per approval, however many try."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.state import Approval, ApprovalError, Approvals, StateStore
from shared.state.approvals import approval_to_dict
from tests.azurite import FakeClock, race

TARGET = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.VirtualMachineImages/imageTemplates/it"
PLAN = {"resource_id": TARGET, "field": "properties.buildTimeoutInMinutes", "before": 60, "after": 240}


def create(approvals: Approvals, *, alert_id: str | None = "alert-1", ttl: timedelta | None = None) -> Approval:
    return approvals.create(
        remediation="increase-image-build-timeout", target=TARGET, scenario="aib.build_timeout", plan=PLAN,
        evidence=("Timeout waiting for microservice to complete",), params={"minutes": "240"},
        alert_id=alert_id, event_id="evt-1", ttl=ttl,
    )


def test_approval_create_and_get(store: StateStore, clock: FakeClock) -> None:
    approvals = Approvals(store, now=clock)
    made = create(approvals)
    assert made.state == "pending" and len(made.id) == 32
    assert made.expires_at == clock() + timedelta(hours=24)
    assert approvals.get(made.id) == made
    assert approvals.get("0" * 32) is None
    assert approvals.get("../etc/passwd") is None
    assert approval_to_dict(made)["plan"] == PLAN


def test_approval_approve_then_second_decision_is_already_decided(store: StateStore, clock: FakeClock) -> None:
    approvals = Approvals(store, now=clock)
    made = create(approvals)
    clock.advance(timedelta(minutes=3))
    approved = approvals.decide(made.id, "approve", "alice@example.com")
    assert approved.state == "approved"
    assert approved.decided_by == "alice@example.com" and approved.decided_at == clock()
    assert approvals.get(made.id) == approved
    for decision in ("approve", "reject"):
        with pytest.raises(ApprovalError) as error:
            approvals.decide(made.id, decision, "mallory@example.com")
        assert error.value.code == "already_decided"
        assert error.value.state == "approved"
        assert "approved" in error.value.message


def test_approval_reject(store: StateStore, clock: FakeClock) -> None:
    approvals = Approvals(store, now=clock)
    made = create(approvals)
    rejected = approvals.decide(made.id, "reject", "bob@example.com")
    assert rejected.state == "rejected"
    with pytest.raises(ApprovalError) as error:
        approvals.decide(made.id, "approve", "bob@example.com")
    assert error.value.code == "already_decided" and error.value.state == "rejected"


def test_approval_concurrent_decide_from_16_threads_has_one_winner(store: StateStore, clock: FakeClock) -> None:
    approvals = Approvals(store, now=clock)
    made = create(approvals)

    def decide(i: int) -> str:
        try:
            return approvals.decide(made.id, "approve" if i % 2 else "reject", f"user{i}").state
        except ApprovalError as error:
            return error.code

    outcomes = race(16, decide)
    winners = [o for o in outcomes if o in ("approved", "rejected")]
    assert len(winners) == 1
    assert outcomes.count("already_decided") == 15
    final = approvals.get(made.id)
    assert final is not None and final.state == winners[0]


def test_approval_expired_cannot_be_decided(store: StateStore, clock: FakeClock) -> None:
    approvals = Approvals(store, ttl=timedelta(hours=1), now=clock)
    made = create(approvals)
    clock.advance(timedelta(hours=1))
    with pytest.raises(ApprovalError) as error:
        approvals.decide(made.id, "approve", "alice@example.com")
    assert error.value.code == "expired"
    stored = approvals.get(made.id)
    assert stored is not None and stored.state == "expired"
    with pytest.raises(ApprovalError) as again:
        approvals.decide(made.id, "reject", "alice@example.com")
    assert again.value.code == "expired"


def test_approval_not_found_and_bad_input(store: StateStore, clock: FakeClock) -> None:
    approvals = Approvals(store, now=clock)
    with pytest.raises(ApprovalError) as error:
        approvals.decide("f" * 32, "approve", "alice")
    assert error.value.code == "not_found"
    made = create(approvals)
    with pytest.raises(ValueError):
        approvals.decide(made.id, "maybe", "alice")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        approvals.decide(made.id, "approve", "")


def test_approval_withdraw_for_alert(store: StateStore, clock: FakeClock) -> None:
    approvals = Approvals(store, now=clock)
    a1, a2 = create(approvals, alert_id="alert-9"), create(approvals, alert_id="alert-9")
    decided = create(approvals, alert_id="alert-9")
    approvals.decide(decided.id, "approve", "alice")
    other = create(approvals, alert_id="alert-10")
    withdrawn = approvals.withdraw_for_alert("alert-9", "the alert resolved")
    assert sorted(w.id for w in withdrawn) == sorted([a1.id, a2.id])
    assert all(w.state == "withdrawn" and w.reason == "the alert resolved" for w in withdrawn)
    with pytest.raises(ApprovalError) as error:
        approvals.decide(a1.id, "approve", "alice")
    assert error.value.code == "withdrawn"
    assert "the alert resolved" in error.value.message
    assert approvals.get(decided.id).state == "approved"  # type: ignore[union-attr]
    assert approvals.get(other.id).state == "pending"  # type: ignore[union-attr]
    assert approvals.withdraw_for_alert("alert-9", "again") == []


def test_approval_expire_stale_and_pending(store: StateStore, clock: FakeClock) -> None:
    approvals = Approvals(store, now=clock)
    short = create(approvals, ttl=timedelta(minutes=10))
    clock.advance(timedelta(minutes=1))
    long = create(approvals, ttl=timedelta(hours=2))
    assert [a.id for a in approvals.pending()] == [short.id, long.id]
    clock.advance(timedelta(minutes=10))
    assert [a.id for a in approvals.pending()] == [long.id]  # past expiry is not open, even unmarked
    expired = approvals.expire_stale()
    assert [a.id for a in expired] == [short.id]
    assert expired[0].state == "expired"
    assert approvals.expire_stale() == []
    assert approvals.get(long.id).state == "pending"  # type: ignore[union-attr]


def test_approval_plan_is_never_cut_and_evidence_is(store: StateStore, clock: FakeClock) -> None:
    approvals = Approvals(store, now=clock)
    plan = {"before": "a" * 60_000, "after": "b" * 60_000}
    made = approvals.create(remediation="r", target=TARGET, scenario="s", plan=plan,
                            evidence=["line " * 2_000, "short"])
    stored = approvals.get(made.id)
    assert stored is not None and stored.plan == plan
    assert stored.evidence[1] == "short" and "truncated" in stored.evidence[0]
    with pytest.raises(ValueError, match="too large"):
        approvals.create(remediation="r", target=TARGET, scenario="s", plan={"x": "y" * 200_000})
