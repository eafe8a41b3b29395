"""Window lengths in the two notations the services use: ISO 8601 (Automation) and HH:mm
(Update Manager)."""

from __future__ import annotations

import re
from datetime import timedelta

_ISO = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$", re.IGNORECASE)
_HHMM = re.compile(r"^(?P<h>\d{1,2}):(?P<m>[0-5]\d)$")


def parse_iso(value: str) -> timedelta:
    match = _ISO.match(value.strip())
    if not match or value.strip().upper() in ("P", "PT"):
        raise ValueError(f"not an ISO 8601 duration: {value!r}")
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    return timedelta(days=parts.get("d", 0), hours=parts.get("h", 0), minutes=parts.get("m", 0),
                     seconds=parts.get("s", 0))


def format_iso(value: timedelta) -> str:
    minutes = int(value.total_seconds()) // 60
    hours, minutes = divmod(minutes, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes or not hours else "")


def parse_hhmm(value: str) -> timedelta:
    match = _HHMM.match(value.strip())
    if not match:
        raise ValueError(f"not an HH:mm duration: {value!r}")
    return timedelta(hours=int(match["h"]), minutes=int(match["m"]))


def format_hhmm(value: timedelta) -> str:
    minutes = int(value.total_seconds()) // 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_any(value: str) -> timedelta:
    """A duration as a person types it: PT4H, 04:00 or a number of minutes."""
    text = value.strip()
    if text.isdigit():
        return timedelta(minutes=int(text))
    return parse_hhmm(text) if ":" in text else parse_iso(text)
