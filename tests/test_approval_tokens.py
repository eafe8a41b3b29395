"""Approval-link tokens: genuine ones verify; forged, altered, stale or misdirected ones do not."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.approvals.links import TokenError, new_key, parse_keys, sign, verify

KEY = b"k" * 32
OLD_KEY = b"o" * 32
NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
EXPIRES = NOW + timedelta(hours=24)
APPROVAL = "5f0c6d3e8a9b4c1d9e2f3a4b5c6d7e8f"


def code_of(token: str, *, approval_id: str = APPROVAL, decision: str = "approve", now: datetime = NOW,
            key: bytes = KEY) -> str:
    with pytest.raises(TokenError) as error:
        verify(token, approval_id=approval_id, decision=decision, key=key, now=now)
    if len(token) > 3:
        assert token not in str(error.value)  # tokens never end up in messages (or logs)
    return error.value.code


def test_approval_token_valid() -> None:
    token = sign(APPROVAL, "approve", EXPIRES, KEY)
    assert len(token) < 200 and token.isascii() and all(c.isalnum() or c in "-_" for c in token)
    claims = verify(token, approval_id=APPROVAL, decision="approve", key=KEY, now=NOW)
    assert claims.approval_id == APPROVAL and claims.decision == "approve"
    assert claims.expires_at == EXPIRES.replace(microsecond=0)
    assert claims.key_index == 0
    assert APPROVAL not in repr(TokenError("expired", "x"))


def test_approval_tokens_differ_per_signing() -> None:
    assert sign(APPROVAL, "approve", EXPIRES, KEY) != sign(APPROVAL, "approve", EXPIRES, KEY)  # random nonce


def test_approval_token_forged_signature() -> None:
    assert code_of(sign(APPROVAL, "approve", EXPIRES, b"attacker-key-0123456789")) == "bad_signature"


def test_approval_token_tampered_payload() -> None:
    token = sign(APPROVAL, "approve", EXPIRES, KEY)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    for position in (1, 8, 20, 30, len(raw) - 40, len(raw) - 1):  # expiry, nonce, decision, id, MAC
        altered = bytearray(raw)
        altered[position] ^= 0x01
        forged = base64.urlsafe_b64encode(bytes(altered)).rstrip(b"=").decode()
        assert code_of(forged) == "bad_signature"
    assert len(raw) % 3 == 1  # so the last character carries 4 unused bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = token[:-1] + alphabet[alphabet.index(token[-1]) | 1]  # same bytes, another spelling
    assert base64.urlsafe_b64decode(sibling + "==") == bytes(raw)
    assert code_of(sibling) == "malformed"
    later = bytearray(raw)
    later[1:9] = int((EXPIRES + timedelta(days=365)).timestamp()).to_bytes(8, "big")
    assert code_of(base64.urlsafe_b64encode(bytes(later)).rstrip(b"=").decode()) == "bad_signature"


def test_approval_token_expired() -> None:
    token = sign(APPROVAL, "approve", EXPIRES, KEY)
    verify(token, approval_id=APPROVAL, decision="approve", key=KEY, now=EXPIRES - timedelta(seconds=1))
    assert code_of(token, now=EXPIRES) == "expired"
    assert code_of(token, now=EXPIRES + timedelta(days=3)) == "expired"


def test_approval_token_replayed_for_the_other_decision() -> None:
    approve = sign(APPROVAL, "approve", EXPIRES, KEY)
    assert code_of(approve, decision="reject") == "wrong_decision"
    reject = sign(APPROVAL, "reject", EXPIRES, KEY)
    assert code_of(reject, decision="approve") == "wrong_decision"


def test_approval_token_for_another_approval() -> None:
    token = sign(APPROVAL, "approve", EXPIRES, KEY)
    assert code_of(token, approval_id="0" * 32) == "wrong_approval"
    assert code_of(token, approval_id=APPROVAL[:-1]) == "wrong_approval"


@pytest.mark.parametrize(
    "garbage",
    ["", "a", "abc", "hello world", "!!!!", "a" * 5, "A" * 2000, "=" * 8, "eyJhbGciOiJIUzI1NiJ9.e30.x", "\x00\x01",
     "ä" * 10, base64.urlsafe_b64encode(b"\x02" + b"\x00" * 80).decode().rstrip("=")],
)
def test_approval_token_malformed_garbage(garbage: str) -> None:
    assert code_of(garbage) == "malformed"


def test_approval_token_key_rotation() -> None:
    old = sign(APPROVAL, "approve", EXPIRES, OLD_KEY)
    new = sign(APPROVAL, "approve", EXPIRES, KEY)
    assert verify(new, approval_id=APPROVAL, decision="approve", keys=[KEY, OLD_KEY], now=NOW).key_index == 0
    assert verify(old, approval_id=APPROVAL, decision="approve", keys=[KEY, OLD_KEY], now=NOW).key_index == 1
    with pytest.raises(TokenError) as error:
        verify(old, approval_id=APPROVAL, decision="approve", keys=[KEY], now=NOW)  # old key retired
    assert error.value.code == "bad_signature"


def test_approval_token_keys_are_checked() -> None:
    with pytest.raises(ValueError):
        sign(APPROVAL, "approve", EXPIRES, b"short")
    with pytest.raises(ValueError):
        sign(APPROVAL, "approve", datetime(2030, 1, 1), KEY)  # naive
    token = sign(APPROVAL, "approve", EXPIRES, KEY)
    with pytest.raises(ValueError):
        verify(token, approval_id=APPROVAL, decision="approve", now=NOW)  # no key
    with pytest.raises(ValueError):
        verify(token, approval_id=APPROVAL, decision="approve", key=KEY, keys=[KEY], now=NOW)
    with pytest.raises(ValueError):
        verify(token, approval_id=APPROVAL, decision="approve", keys=[], now=NOW)


def test_approval_token_parse_keys() -> None:
    k1, k2 = new_key(), new_key()
    setting = f"{base64.b64encode(k1).decode()}, {base64.urlsafe_b64encode(k2).decode().rstrip('=')}"
    assert parse_keys(setting) == (k1, k2)
    for bad in ("", "not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(ValueError):
            parse_keys(bad)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=200).map(lambda b: base64.urlsafe_b64encode(b).decode()))
def test_approval_token_arbitrary_input_only_ever_fails_cleanly(text: str) -> None:
    with pytest.raises(TokenError) as error:
        verify(text, approval_id=APPROVAL, decision="approve", key=KEY, now=NOW)
    assert error.value.code in ("malformed", "bad_signature")
