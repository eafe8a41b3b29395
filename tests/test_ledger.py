"""Idempotency ledger against a real Azurite: begin/complete/fail, expiry, takeover, races."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.state import Ledger, StateConfigError, StateStore, safe_key
from shared.state.tables import PROPERTY_UNITS, is_truncated
from tests.azurite import Azurite, FakeClock, race

TTL = timedelta(minutes=30)


def ledger(store: StateStore, clock: FakeClock) -> Ledger:
    return Ledger(store, in_progress_ttl=TTL, retention=timedelta(days=7), now=clock)


def test_ledger_begin_new_then_in_progress(store: StateStore, clock: FakeClock) -> None:
    led = ledger(store, clock)
    first = led.begin("event:e1", fingerprint="f1")
    assert first.state == "new" and first.owned
    assert first.record.state == "in_progress"
    assert first.record.expires_at == clock() + TTL
    again = led.begin("event:e1", fingerprint="f1")
    assert again.state == "in_progress" and not again.owned
    assert not again.fingerprint_mismatch


def test_ledger_complete_returns_stored_result(store: StateStore, clock: FakeClock) -> None:
    led = ledger(store, clock)
    assert led.begin("event:e2").owned
    clock.advance(timedelta(seconds=5))
    done = led.complete("event:e2", {"changed": ["timeout"], "minutes": 240})
    assert done.state == "completed"
    assert done.expires_at == clock() + timedelta(days=7)
    later = led.begin("event:e2")
    assert later.state == "completed"
    assert later.record.result == {"changed": ["timeout"], "minutes": 240}
    assert later.record.attempts == 1


def test_ledger_fail_then_retry_failed_is_conditional(store: StateStore, clock: FakeClock) -> None:
    led = ledger(store, clock)
    assert led.begin("fix:r|t|fp").owned
    led.fail("fix:r|t|fp", "ARM answered 409")
    failed = led.begin("fix:r|t|fp")
    assert failed.state == "failed"
    assert failed.record.reason == "ARM answered 409"
    retried = led.begin("fix:r|t|fp", retry_failed=True)
    assert retried.state == "new"
    assert retried.record.attempts == 2
    assert led.begin("fix:r|t|fp", retry_failed=True).state == "in_progress"


def test_ledger_fail_never_overwrites_completed(store: StateStore, clock: FakeClock) -> None:
    led = ledger(store, clock)
    led.begin("event:e3")
    led.complete("event:e3", {"ok": True})
    kept = led.fail("event:e3", "late duplicate failed")
    assert kept.state == "completed"
    assert led.begin("event:e3").state == "completed"


def test_ledger_expired_in_progress_is_taken_over(store: StateStore, clock: FakeClock) -> None:
    led = ledger(store, clock)
    assert led.begin("event:crashed").owned
    clock.advance(TTL - timedelta(seconds=1))
    assert led.begin("event:crashed").state == "in_progress"
    clock.advance(timedelta(seconds=2))
    took = led.begin("event:crashed")
    assert took.state == "new"
    assert took.record.attempts == 2
    assert took.record.expires_at == clock() + TTL


def test_ledger_expired_takeover_by_exactly_one_of_many(store: StateStore, clock: FakeClock) -> None:
    led = ledger(store, clock)
    assert led.begin("event:stale").owned
    clock.advance(TTL + timedelta(minutes=1))
    states = race(16, lambda _: led.begin("event:stale").state)
    assert states.count("new") == 1
    assert states.count("in_progress") == 15


def test_ledger_record_past_retention_counts_as_absent(store: StateStore, clock: FakeClock) -> None:
    led = ledger(store, clock)
    led.begin("event:old")
    led.complete("event:old", {"n": 1})
    clock.advance(timedelta(days=7, seconds=1))
    again = led.begin("event:old")
    assert again.state == "new"
    assert again.record.attempts == 1


def test_ledger_same_event_begun_100_times_sequentially_one_new(store: StateStore, clock: FakeClock) -> None:
    led = ledger(store, clock)
    states = [led.begin("event:dup-seq").state for _ in range(100)]
    assert states.count("new") == 1
    assert states[0] == "new"


def test_ledger_same_event_begun_100_times_from_16_threads_one_new(store: StateStore, clock: FakeClock) -> None:
    led = ledger(store, clock)
    states = race(100, lambda _: led.begin("event:dup-threads").state, threads=16)
    assert states.count("new") == 1
    assert set(states) == {"new", "in_progress"}


def test_ledger_begin_after_complete_from_threads_all_completed(store: StateStore, clock: FakeClock) -> None:
    led = ledger(store, clock)
    led.begin("event:done")
    led.complete("event:done", {"ok": True})
    results = race(32, lambda _: led.begin("event:done"))
    assert {r.state for r in results} == {"completed"}
    assert all(r.record.result == {"ok": True} for r in results)


def test_ledger_fingerprint_mismatch_is_reported(store: StateStore, clock: FakeClock) -> None:
    led = ledger(store, clock)
    led.begin("event:same-id", fingerprint="payload-a")
    other = led.begin("event:same-id", fingerprint="payload-b")
    assert other.state == "in_progress"
    assert other.fingerprint_mismatch


def test_ledger_unsafe_and_long_keys_stay_distinct_and_readable(store: StateStore, clock: FakeClock) -> None:
    led = ledger(store, clock)
    target = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm#1?x"
    keys = [f"fix:timeout|{target}|fp", f"fix:timeout|{target}|fp2", "event:" + "x" * 2000, "~plain", "a'b%c"]
    for key in keys:
        assert led.begin(key).owned
    for key in keys:
        record = led.get(key)
        assert record is not None and record.key == key
        assert led.begin(key).state == "in_progress"


def test_ledger_large_result_is_kept_with_a_marker(store: StateStore, clock: FakeClock) -> None:
    led = ledger(store, clock)
    led.begin("event:big")
    medium = {"log": "é" * 40_000}  # beyond one property, within the result's chunks
    assert led.complete("event:big", medium).result == medium
    assert led.begin("event:big").record.result == medium
    huge = {"log": "x" * (PROPERTY_UNITS * 3)}
    stored = led.complete("event:big", huge).result
    assert stored is not None and is_truncated(stored)
    read = led.get("event:big")
    assert read is not None and read.result == stored
    assert str(stored["_head"]).startswith('{"log":"xxx')


def test_ledger_purge_expired_deletes_only_old_records(store: StateStore, clock: FakeClock) -> None:
    led = ledger(store, clock)
    led.begin("event:purge-old")
    led.complete("event:purge-old", {})
    clock.advance(timedelta(days=6))
    led.begin("event:purge-new")
    clock.advance(timedelta(days=1, minutes=1))
    assert led.purge_expired() == 2  # the completed one past retention, the abandoned in-progress one
    assert led.get("event:purge-old") is None
    assert led.get("event:purge-new") is None
    led.begin("event:purge-live")
    assert led.purge_expired() == 0
    assert led.get("event:purge-live") is not None


def test_ledger_record_survives_azurite_restart(azurite: Azurite, store: StateStore, clock: FakeClock) -> None:
    led = ledger(store, clock)
    led.begin("event:restart")
    led.complete("event:restart", {"ok": True})
    azurite.restart()
    assert led.begin("event:restart").state == "completed"


def test_ledger_rejects_empty_keys_and_naive_clocks(store: StateStore) -> None:
    from datetime import datetime

    with pytest.raises(ValueError):
        Ledger(store).begin("")
    with pytest.raises(ValueError, match="naive"):
        Ledger(store, now=lambda: datetime(2030, 1, 1)).begin("event:naive")


def test_ledger_safe_key_hashes_only_what_it_must() -> None:
    assert safe_key("event:0a1b-2c3d") == "event:0a1b-2c3d"
    for raw in ("a/b", "a\\b", "a#b", "a?b", "a\x01b", "x" * 201, "~x", "é"):
        hashed = safe_key(raw)
        assert hashed.startswith("~") and len(hashed) == 65
    assert safe_key("a/b") != safe_key("a/c")


def test_ledger_store_from_env_settings() -> None:
    dev = StateStore.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert "127.0.0.1:10002" in str(dev._connection_string)
    mine = StateStore.from_env({"REMEDIATOR_STORAGE": "UseDevelopmentStorage=true", "REMEDIATOR_TABLE_PREFIX": "abc"})
    assert mine.table_name("ledger") == "abcLedger"
    assert mine.table_name("vault") == "abcVault"  # state kept beside ours gets a table the same way
    with pytest.raises(ValueError):
        mine.table_name("no-such/table")
    identity = StateStore.from_env({"AzureWebJobsStorage__accountName": "mystorage"}, credential=object())
    assert identity._endpoint == "https://mystorage.table.core.windows.net"
    with pytest.raises(StateConfigError, match="REMEDIATOR_STORAGE"):
        StateStore.from_env({})
    with pytest.raises(StateConfigError, match="loopback"):
        StateStore.from_env({"AzureWebJobsStorage__tableServiceUri": "http://10.0.0.1/"}, credential=object())
    with pytest.raises(StateConfigError, match="prefix"):
        StateStore("UseDevelopmentStorage=true", prefix="bad-prefix")
    remote_http = StateStore("DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;EndpointSuffix=example.com")
    with pytest.raises(StateConfigError, match="loopback"):
        remote_http.table("ledger")
