"""Small helpers the double shares: ARM timestamps, ISO 8601 durations, stable GUIDs.

Kept free of any Azure SDK: the double must run (and be typed) without it.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


@functools.lru_cache(maxsize=8192)
def iso(value: datetime, digits: int = 7) -> str:
    """ARM's timestamp shape: UTC, 'Z', up to 7 fractional digits (trailing zeros kept off)."""
    value = value.astimezone(UTC)
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond and digits:
        frac = f"{value.microsecond:06d}0"[:digits].rstrip("0")
        return f"{base}.{frac}Z"
    return f"{base}Z"


def iso_offset(value: datetime) -> str:
    """Automation's timestamp shape: '+00:00' offset and 7 fractional digits."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0" + "+00:00"


def parse_datetime(text: str) -> datetime:
    """Parses ISO 8601 timestamps as ARM and Log Analytics write them (7-9 digits, 'Z', offsets); naive is UTC."""
    raw = text.strip()
    if not re.match(r"^\d{4}-\d{2}-\d{2}", raw):
        raise ValueError(f"{text!r} is not an ISO 8601 timestamp")
    value = datetime.fromisoformat(raw)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_duration(text: str) -> timedelta:
    """ISO 8601 duration without years or months (which have no fixed length): 'PT2H30M', 'P1D', 'PT86400.0S'."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not an ISO 8601 duration")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return timedelta(weeks=parts.get("weeks", 0), days=parts.get("days", 0), hours=parts.get("hours", 0),
                     minutes=parts.get("minutes", 0), seconds=parts.get("seconds", 0))


def format_duration(value: timedelta) -> str:
    """The canonical form Automation returns: 'PT2H', 'PT1H30M', 'P1DT2H'."""
    total = int(value.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    date = f"{days}D" if days else ""
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    if not date and not time:
        return "PT0S"
    return "P" + date + ("T" + time if time else "")


def stable_guid(*parts: str) -> str:
    """A v4-shaped GUID derived from text, so the same input always names the same thing."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()[:16]
    return str(uuid.UUID(bytes=digest, version=4))


def guid_stream(seed: int) -> random.Random:
    return random.Random(seed)


def next_guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


_ATOMS = (str, int, float, bool, type(None))


def deep(value: Any) -> Any:
    """A deep copy: the store never hands out, nor keeps, a caller's mutable object.

    JSON-shaped values (dicts, lists, strings, numbers) are copied by a direct walk, several times
    faster than `copy.deepcopy` (a 5,000-VM estate is copied on every load and read); anything else
    goes through `copy.deepcopy`."""
    kind = type(value)
    if kind is dict:
        return {k: deep(v) for k, v in value.items()}
    if kind is list:
        return [deep(v) for v in value]
    if kind in _ATOMS:
        return value
    return copy.deepcopy(value)


def deep_replace(value: Any, old: str, new: str) -> Any:
    """`deep` and `replace_text` in one walk (loading a large estate)."""
    kind = type(value)
    if kind is str:
        return value.replace(old, new) if old in value else value
    if kind is dict:
        return {k: deep_replace(v, old, new) for k, v in value.items()}
    if kind is list:
        return [deep_replace(v, old, new) for v in value]
    if kind in _ATOMS:
        return value
    return replace_text(copy.deepcopy(value), old, new)


def replace_text(value: Any, old: str, new: str) -> Any:
    """`str.replace` through a JSON-like value (for the estate's blob endpoint placeholder)."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {k: replace_text(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [replace_text(v, old, new) for v in value]
    if isinstance(value, tuple):
        return tuple(replace_text(v, old, new) for v in value)
    return value


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return deep(patch)
    result = deep(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
