"""Audit trail against a real Azurite: filters, time ranges across days, newest first, big fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.state import Audit, AuditRecord, Change, StateStore
from shared.state.audit import audit_to_dict, day_key, row_key
from shared.state.tables import PROPERTY_UNITS, is_truncated
from tests.azurite import FakeClock

VM1 = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
VM2 = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm2"
START = datetime(2030, 1, 1, 22, 0, tzinfo=UTC)


def fill(audit: Audit, clock: FakeClock) -> list[AuditRecord]:
    """Eight records, three hours apart (so across two UTC days), alternating targets and scenarios."""
    stored = []
    clock.set(START)
    for n in range(8):
        stored.append(audit.record(AuditRecord(
            kind="apply" if n % 2 else "diagnosis", target=VM1 if n % 2 else VM2,
            scenario="update.reboot_pending" if n < 4 else "update.disk_full", event_id=f"evt-{n}", actor="remediator",
            changes=(Change(VM1, "properties.x", n, n + 1),), result={"n": n}, duration_ms=n * 100,
        )))
        clock.advance(timedelta(hours=3))
    return stored


def test_audit_ledger_record_and_query_newest_first(store: StateStore, clock: FakeClock) -> None:
    audit = Audit(store, now=clock)
    stored = fill(audit, clock)
    everything = audit.query()
    assert [r.id for r in everything] == [r.id for r in reversed(stored)]
    assert everything[0] == stored[-1]
    assert everything[-1].changes == (Change(VM1, "properties.x", 0, 1),)
    assert everything[-1].result == {"n": 0} and everything[-1].duration_ms == 0
    assert audit_to_dict(everything[0])["changes"] == [
        {"resource_id": VM1, "field": "properties.x", "before": 7, "after": 8}
    ]


def test_audit_ledger_query_by_target_and_scenario(store: StateStore, clock: FakeClock) -> None:
    audit = Audit(store, now=clock)
    stored = fill(audit, clock)
    by_target = audit.query(target=VM1)
    assert [r.event_id for r in by_target] == ["evt-7", "evt-5", "evt-3", "evt-1"]
    by_scenario = audit.query(scenario="update.reboot_pending")
    assert [r.event_id for r in by_scenario] == ["evt-3", "evt-2", "evt-1", "evt-0"]
    both = audit.query(target=VM2, scenario="update.disk_full", kind="diagnosis")
    assert [r.event_id for r in both] == ["evt-6", "evt-4"]
    assert audit.query(target=VM1, limit=2) == [stored[7], stored[5]]
    assert audit.query(event_id="evt-2") == [stored[2]]
    assert audit.query(target="/nothing") == []


def test_audit_ledger_query_by_time_range_across_days(store: StateStore, clock: FakeClock) -> None:
    audit = Audit(store, now=clock)
    stored = fill(audit, clock)  # at 22:00, 01:00(+1d), 04:00, ... 19:00(+1d)
    assert {r.at.date() for r in stored if r.at} == {START.date(), START.date() + timedelta(days=1)}
    window = audit.query(since=START + timedelta(hours=3), until=START + timedelta(hours=12))
    assert [r.event_id for r in window] == ["evt-3", "evt-2", "evt-1"]  # since inclusive, until exclusive
    assert [r.event_id for r in audit.query(since=START + timedelta(hours=18))] == ["evt-7", "evt-6"]
    assert [r.event_id for r in audit.query(until=START + timedelta(hours=3))] == ["evt-0"]
    just_after = START + timedelta(hours=3, microseconds=1)
    assert [r.event_id for r in audit.query(since=just_after, until=START + timedelta(hours=9))] == ["evt-2"]
    assert audit.query(since=START + timedelta(days=5)) == []


def test_audit_ledger_same_instant_records_are_all_kept(store: StateStore, clock: FakeClock) -> None:
    audit = Audit(store, now=clock)
    ids = {audit.record(AuditRecord(kind="decision", target=VM1, decision="skip")).id for _ in range(5)}
    assert {r.id for r in audit.query(target=VM1)} == ids


def test_audit_ledger_large_field_truncated_not_lost(store: StateStore, clock: FakeClock) -> None:
    audit = Audit(store, now=clock)
    log_tail = "é" * 50_000  # beyond one property: kept whole across chunks
    whole = audit.record(AuditRecord(kind="error", target=VM1, error=log_tail, reason="r" * 10))
    assert whole.error == log_tail and whole.truncated == ()
    huge = "x" * (PROPERTY_UNITS * 6)
    cut = audit.record(AuditRecord(
        kind="apply", target=VM2, error=huge, reason=huge, result={"output": huge}, actor="a" * 10_000,
        changes=(Change(VM2, "properties.script", huge, "fixed"), Change(VM2, "properties.size", 1, 2)),
    ))
    assert set(cut.truncated) == {"error", "reason", "result", "changes", "actor"}
    [read] = audit.query(target=VM2)
    assert read == cut
    assert read.error is not None and read.error.startswith("xxxx") and "truncated" in read.error
    assert read.result is not None and is_truncated(read.result)
    assert read.changes[1] == Change(VM2, "properties.size", 1, 2)
    assert read.changes[0].after == "fixed" and "truncated" in str(read.changes[0].before)


def test_audit_ledger_many_changes_keep_a_marker(store: StateStore, clock: FakeClock) -> None:
    audit = Audit(store, now=clock)
    changes = tuple(Change(f"{VM1}/disk{i}", "sku", "x" * 500, "y" * 500) for i in range(1_000))
    stored = audit.record(AuditRecord(kind="plan", target=VM1, changes=changes))
    [read] = audit.query(target=VM1)
    assert read == stored and "changes" in read.truncated
    assert read.changes[0].resource_id == f"{VM1}/disk0"
    assert "more changes not stored" in str(read.changes[-1].after)


def test_audit_ledger_record_validation() -> None:
    with pytest.raises(ValueError, match="kind"):
        AuditRecord(kind="oops")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone"):
        AuditRecord(kind="apply", at=datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="id"):
        AuditRecord(kind="apply", id="a/b")


def test_audit_ledger_keys_sort_newest_first() -> None:
    earlier, later = datetime(2030, 1, 1, 23, 59, tzinfo=UTC), datetime(2030, 1, 2, 0, 1, tzinfo=UTC)
    assert day_key(later) < day_key(earlier)
    assert row_key(later, "b") < row_key(earlier, "a")
    eastern = timezone(timedelta(hours=-5))
    assert day_key(datetime(2030, 1, 1, 20, tzinfo=eastern)) == day_key(datetime(2030, 1, 2, 1, tzinfo=UTC))
