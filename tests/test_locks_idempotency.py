"""Target leases, change counters and operations against a real Azurite, under contention."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.state import (
    Counters,
    LockBusy,
    LockLost,
    OperationError,
    Operations,
    StateStore,
    TargetLocks,
)
from shared.state.counters import bucket
from tests.azurite import FakeClock, race

TARGET = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.VirtualMachineImages/imageTemplates/it"
TTL = timedelta(minutes=5)


def test_lock_32_threads_one_lease(store: StateStore, clock: FakeClock) -> None:
    locks = TargetLocks(store, now=clock)
    leases = race(32, lambda i: locks.acquire(TARGET, f"worker-{i}", TTL), threads=32)
    won = [lease for lease in leases if lease is not None]
    assert len(won) == 1
    holder = locks.holder(TARGET)
    assert holder is not None and holder.owner == won[0].owner


def test_lock_release_lets_the_next_owner_in(store: StateStore, clock: FakeClock) -> None:
    locks = TargetLocks(store, now=clock)
    first = locks.acquire(TARGET, "a", TTL)
    assert first is not None
    assert locks.acquire(TARGET, "b", TTL) is None
    assert locks.acquire(TARGET, "a", TTL) is None  # not re-entrant
    assert locks.release(first)
    assert locks.release(first)  # already gone: no error
    second = locks.acquire(TARGET, "b", TTL)
    assert second is not None and second.owner == "b"


def test_lock_expired_lease_taken_over_by_exactly_one(store: StateStore, clock: FakeClock) -> None:
    locks = TargetLocks(store, now=clock)
    crashed = locks.acquire(TARGET, "crashed", TTL)
    assert crashed is not None
    clock.advance(TTL + timedelta(seconds=1))
    leases = race(16, lambda i: locks.acquire(TARGET, f"taker-{i}", TTL))
    won = [lease for lease in leases if lease is not None]
    assert len(won) == 1
    assert not locks.release(crashed)  # the old holder cannot release the new lease
    with pytest.raises(LockLost):
        locks.renew(crashed, TTL)
    holder = locks.holder(TARGET)
    assert holder is not None and holder.owner == won[0].owner


def test_lock_renew_extends_and_keeps_it(store: StateStore, clock: FakeClock) -> None:
    locks = TargetLocks(store, now=clock)
    lease = locks.acquire(TARGET, "a", TTL)
    assert lease is not None
    clock.advance(TTL - timedelta(seconds=10))
    renewed = locks.renew(lease, TTL)
    assert renewed.expires_at == clock() + TTL
    clock.advance(timedelta(seconds=20))
    assert locks.acquire(TARGET, "b", TTL) is None
    with pytest.raises(LockLost):
        locks.renew(lease, TTL)  # the pre-renewal ETag is stale
    assert locks.release(renewed)


def test_lock_held_context_raises_busy_and_releases(store: StateStore, clock: FakeClock) -> None:
    locks = TargetLocks(store, now=clock)
    with locks.held(TARGET, "a", TTL) as held:
        with pytest.raises(LockBusy) as busy, locks.held(TARGET, "b", TTL):
            pass
        assert busy.value.holder == "a"
        held.renew(TTL)
    assert locks.holder(TARGET) is None
    with pytest.raises(RuntimeError), locks.held(TARGET, "c", TTL):
        raise RuntimeError("the remediation failed")
    assert locks.holder(TARGET) is None  # released on error too


def test_idempotency_counters_16_concurrent_takers_never_exceed_limit(store: StateStore, clock: FakeClock) -> None:
    counters = Counters(store, now=clock)
    taken = race(40, lambda _: counters.take("target:vm1", "day", 10))
    assert taken.count(True) == 10
    assert counters.count("target:vm1", "day") == 10
    assert not counters.take("target:vm1", "day", 10)
    assert counters.count("target:vm1", "day") == 10


def test_idempotency_counters_of_several_instances_share_one_limit(store: StateStore, clock: FakeClock) -> None:
    """Each instance tries the count and ETag it last wrote first; another instance's spend since
    (412) or a row it never saw (409) sends it back to reading the rows: the limit is the fleet's."""
    workers = [Counters(store, now=clock) for _ in range(3)]
    taken = race(30, lambda i: workers[i % 3].take_all([(f"target:vm{i % 2}", "day", 100), ("global", "hour", 7)]))
    assert sum(t is None for t in taken) == 7
    assert workers[0].count("global", "hour") == 7
    # alternating instances, one at a time: each one's view is stale on every turn after the first
    assert [w.take("global", "hour", 10) for w in workers] == [True, True, True]
    assert [w.take("global", "hour", 10) for w in workers] == [False, False, False]
    assert workers[2].count("global", "hour") == 10


def test_idempotency_sharded_budget_of_several_instances_never_exceeds_its_limit(store: StateStore,
                                                                              clock: FakeClock) -> None:
    """The fleet's hour split over 4 rows (Counters' shards): 3 instances and 40 racing changes
    still take exactly the limit, and a change is refused only once all shards are spent."""
    workers = [Counters(store, now=clock, shards={"global": 4}) for _ in range(3)]
    taken = race(40, lambda i: workers[i % 3].take_all([(f"target:vm{i}", "day", 5), ("global", "hour", 10)]))
    assert sum(t is None for t in taken) == 10
    assert all(t in (None, 1) for t in taken)  # refused by the fleet's budget, never by a target's
    assert [w.count("global", "hour") for w in workers] == [10, 10, 10]
    assert not workers[0].take("global", "hour", 10)
    # one instance alone spends every shard before it refuses: no share of the limit is stranded
    lone = Counters(store, now=clock, shards={"global": 4})
    assert [lone.take("global", "day", 6) for _ in range(7)] == [True] * 6 + [False]
    assert lone.count("global", "day") == 6


def test_idempotency_sharded_budget_smaller_than_its_shards(store: StateStore, clock: FakeClock) -> None:
    """A limit under the shard count leaves some shards no share: the limit still holds exactly."""
    counters = Counters(store, now=clock, shards={"global": 8})
    taken = race(12, lambda _: counters.take("global", "hour", 3))
    assert taken.count(True) == 3
    assert counters.count("global", "hour") == 3
    assert not counters.take("global", "hour", 0)


def test_idempotency_counters_count_exactly_below_limit(store: StateStore, clock: FakeClock) -> None:
    counters = Counters(store, now=clock)
    taken = race(24, lambda _: counters.take("global", "hour", 1000))
    assert all(taken)
    assert counters.count("global", "hour") == 24


def test_idempotency_counters_windows_roll_over(store: StateStore, clock: FakeClock) -> None:
    counters = Counters(store, now=clock)
    assert [counters.take("global", "hour", 2) for _ in range(3)] == [True, True, False]
    clock.advance(timedelta(hours=1))
    assert counters.count("global", "hour") == 0
    assert counters.take("global", "hour", 2)
    assert counters.count("global", "day") == 0  # windows are separate counters
    assert not counters.take("global", "day", 0)
    clock.advance(timedelta(days=4))
    assert counters.purge_expired() == 2


def test_idempotency_counter_buckets_are_utc() -> None:
    from datetime import datetime, timezone

    eastern = timezone(timedelta(hours=-5))
    assert bucket("day", datetime(2030, 1, 1, 22, 0, tzinfo=eastern))[0] == "2030-01-02"
    assert bucket("hour", datetime(2030, 1, 1, 22, 30, tzinfo=eastern))[0] == "2030-01-02T03"
    with pytest.raises(ValueError):
        bucket("week", datetime(2030, 1, 1, tzinfo=eastern))  # type: ignore[arg-type]


def test_idempotency_operations_lifecycle(store: StateStore, clock: FakeClock) -> None:
    ops = Operations(store, now=clock)
    op = ops.create(kind="remediate", remediation="increase-image-build-timeout", target=TARGET,
                    params={"minutes": "240"}, dry_run=True)
    assert op.status == "queued" and op.result == {}
    assert ops.get(op.id) == op
    clock.advance(timedelta(seconds=3))
    running = ops.update(op.id, status="running")
    assert running.updated_at == clock() and running.created_at == op.created_at
    done = ops.update(op.id, status="dry-run", result={"would_change": {"buildTimeoutInMinutes": [60, 240]}})
    assert ops.get(op.id) == done
    assert done.finished
    with pytest.raises(OperationError, match="cannot become"):
        ops.update(op.id, status="running")
    assert ops.update(op.id, error="note added later").error == "note added later"
    assert ops.get("not-an-id") is None
    with pytest.raises(OperationError):
        ops.update("0" * 32, status="running")


def test_idempotency_concurrent_operation_updates_lose_nothing(store: StateStore, clock: FakeClock) -> None:
    ops = Operations(store, now=clock)
    op = ops.create(kind="remediate", remediation="r", target=TARGET)
    race(8, lambda i: ops.update(op.id, status="running") if i % 2 else ops.update(op.id, error=f"e{i}"))
    final = ops.get(op.id)
    assert final is not None and final.status == "running" and final.error is not None
