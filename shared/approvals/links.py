"""Approval-link tokens: a signed "approve (or reject) approval X until T" for a one-click link.

A token is URL-safe base64 (no padding) of

    version (1 byte) | expiry, epoch seconds (8, big-endian) | nonce (16) |
    len(decision) (1) | decision (UTF-8) | approval id (UTF-8) | HMAC-SHA256 (32)

with the MAC over a domain-separation label plus everything before it. The MAC is
checked (constant-time, against every key given) before any field is read, so an
altered token is reported as `bad_signature`, never parsed.

Key rotation: sign with the newest key, verify with `keys=[newest, previous, ...]`;
`TokenClaims.key_index` tells which key matched, so old keys can be retired once no
live token uses them.

Single use is NOT a property of the token: a token stays valid until it expires. It is
enforced by the approval itself — `Approvals.decide` moves an approval out of
`pending` exactly once, so replaying a used link gets `already_decided`.

Tokens are bearer secrets: never log them. Nothing here puts a token (or any part of
one) into an error message or a repr.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

TokenErrorCode = Literal["malformed", "bad_signature", "expired", "wrong_approval", "wrong_decision"]

VERSION = 1
MIN_KEY_BYTES = 16
MAX_TOKEN_CHARS = 1024
_LABEL = b"azure-remediator/approval-token/v1\x00"
_HEAD = struct.Struct(">BQ16sB")  # version, expiry, nonce, len(decision)
_MAC_BYTES = 32
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


class TokenError(ValueError):
    """A token that does not authorise the request; `code` says why (the token is not included)."""

    def __init__(self, code: TokenErrorCode, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a valid token says. `key_index` is the position of the key that verified it."""

    approval_id: str
    decision: str
    expires_at: datetime
    nonce: str
    key_index: int


def sign(approval_id: str, decision: str, expires_at: datetime, key: bytes) -> str:
    """A token allowing `decision` on `approval_id` until `expires_at` (aware datetime)."""
    _check_key(key)
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    decision_bytes = decision.encode("utf-8")
    id_bytes = approval_id.encode("utf-8")
    if not 0 < len(decision_bytes) < 64:
        raise ValueError("decision must be 1 to 63 bytes")
    if not 0 < len(id_bytes) <= 256:
        raise ValueError("approval id must be 1 to 256 bytes")
    expiry = int(expires_at.timestamp())
    if expiry <= 0:
        raise ValueError("expires_at must be after 1970")
    payload = _HEAD.pack(VERSION, expiry, secrets.token_bytes(16), len(decision_bytes)) + decision_bytes + id_bytes
    return _b64encode(payload + _mac(key, payload))


def verify(
    token: str,
    *,
    approval_id: str,
    decision: str,
    now: datetime,
    key: bytes | None = None,
    keys: Sequence[bytes] | None = None,
) -> TokenClaims:
    """The token's claims if it is genuine, unexpired, and for exactly this approval and decision.

    Give `key`, or `keys` (newest first) during a rotation. Raises `TokenError` with code
    `malformed`, `bad_signature`, `wrong_approval`, `wrong_decision` or `expired`.
    """
    candidates = _keys(key, keys)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    raw = _decode(token)
    payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    if payload[0] != VERSION:
        raise TokenError("malformed", f"unknown token version {payload[0]}")
    matched = -1
    for index, candidate in enumerate(candidates):
        # Compare against every key (no early exit), so timing does not tell which one matched.
        if hmac.compare_digest(_mac(candidate, payload), mac) and matched < 0:
            matched = index
    if matched < 0:
        raise TokenError("bad_signature", "the token's signature does not match")
    claims = _claims(payload, matched)
    if not hmac.compare_digest(claims.approval_id.encode("utf-8"), approval_id.encode("utf-8")):
        raise TokenError("wrong_approval", "the token is for another approval")
    if not hmac.compare_digest(claims.decision.encode("utf-8"), decision.encode("utf-8")):
        raise TokenError("wrong_decision", f"the token is for {claims.decision!r}, not {decision!r}")
    if now >= claims.expires_at:
        raise TokenError("expired", f"the token expired at {claims.expires_at.isoformat()}")
    return claims


def parse_keys(value: str) -> tuple[bytes, ...]:
    """Keys from a setting: base64 (standard or URL-safe) values separated by commas or spaces, newest first."""
    keys: list[bytes] = []
    for n, item in enumerate(re.split(r"[,\s]+", value.strip())):
        if not item:
            continue
        padded = item.replace("-", "+").replace("_", "/") + "=" * (-len(item) % 4)
        try:
            decoded = base64.b64decode(padded, validate=True)
        except binascii.Error as error:
            raise ValueError(f"approval key #{n + 1} is not base64") from error
        _check_key(decoded)
        keys.append(decoded)
    if not keys:
        raise ValueError("no approval keys given")
    return tuple(keys)


def new_key() -> bytes:
    """A fresh 32-byte key (store it base64-encoded, e.g. in Key Vault)."""
    return secrets.token_bytes(32)


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"an approval key must be at least {MIN_KEY_BYTES} bytes")


def _keys(key: bytes | None, keys: Sequence[bytes] | None) -> tuple[bytes, ...]:
    if (key is None) == (keys is None):
        raise ValueError("give exactly one of key or keys")
    found = (key,) if key is not None else tuple(keys or ())
    if not found:
        raise ValueError("no keys to verify with")
    for k in found:
        _check_key(k)
    return found


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, _LABEL + payload, hashlib.sha256).digest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(token: str) -> bytes:
    if not isinstance(token, str) or not token:
        raise TokenError("malformed", "no token")
    if len(token) > MAX_TOKEN_CHARS or not _B64URL.fullmatch(token) or len(token) % 4 == 1:
        raise TokenError("malformed", "not a token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as error:
        raise TokenError("malformed", "not a token") from error
    if _b64encode(raw) != token:
        raise TokenError("malformed", "not in canonical form")  # one token, one spelling
    if len(raw) < _HEAD.size + 2 + _MAC_BYTES:
        raise TokenError("malformed", "too short to be a token")
    return raw


def _claims(payload: bytes, key_index: int) -> TokenClaims:
    """Fields of an authenticated payload (only ever called after the MAC matched)."""
    _, expiry, nonce, decision_len = _HEAD.unpack_from(payload)
    rest = payload[_HEAD.size:]
    if not 0 < decision_len < len(rest):
        raise TokenError("malformed", "inconsistent token fields")
    try:
        decision = rest[:decision_len].decode("utf-8")
        approval_id = rest[decision_len:].decode("utf-8")
        expires_at = datetime.fromtimestamp(expiry, UTC)
    except (UnicodeDecodeError, OverflowError, OSError, ValueError) as error:
        raise TokenError("malformed", "inconsistent token fields") from error
    return TokenClaims(approval_id, decision, expires_at, nonce.hex(), key_index)


_PAGE_LABEL = b"azure-remediator/confirmation-page/v1\x00"


def page_token(token: str, key: bytes) -> str:
    """A value only the confirmation page carries: bound to the link's token, so a form posted
    from another site (which never saw the page) cannot decide."""
    mac = hmac.new(key, _PAGE_LABEL + token.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def check_page_token(value: str | None, token: str, keys: tuple[bytes, ...]) -> bool:
    if not value:
        return False
    return any(hmac.compare_digest(page_token(token, key), value) for key in keys)
