"""When a maintenance configuration runs next, and the deadlines a change made before a run must meet.

- A schedule edited too close to its next run does not take effect for it; with a pre-event an edit needs
  at least 40 minutes before the start, "otherwise it will lead to auto-cancellation of the current scheduled
  run" (learn.microsoft.com/azure/update-manager/pre-post-scripts-overview, "Timeline of schedules for pre and
  post events"). Without pre-events the margin is EDIT_MARGIN (15 minutes, the design's rule): `edit_refusal`.
- A run can be cancelled until 10 minutes before its start (manage-pre-post-events, "Cancel a schedule run
  before it begins to run"): a decision on a change proposed before a run is taken before that cut-off.
- Machines must be on at least 15 minutes before the scheduled update (troubleshoot, "Unable to apply patches
  for the shutdown machines"): START_LEAD.

`maintenanceWindow.recurEvery` follows the Maintenance REST spec (2023-04-01, MaintenanceWindow.recurEvery):
`[n]Day(s)`, `[n]Week(s) [Monday,...]`, `[n]Month(s) [dayN,...]` or `[n]Month(s) First|Second|Third|Fourth|Last
<Weekday> [Offset<-6..6>]`, and `[n]Hour(s)`; `startDateTime` is "yyyy-MM-dd HH:mm" in `timeZone` (a Windows
time zone id, or an IANA name).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from remediations.base import RemediationError

EDIT_MARGIN = timedelta(minutes=15)
EDIT_MARGIN_WITH_PRE_EVENTS = timedelta(minutes=40)
CANCEL_BEFORE = timedelta(minutes=10)
START_LEAD = timedelta(minutes=15)
HORIZON_DAYS = 400

# Windows time zone ids (TimeZoneInfo.Id, what the portal writes) -> IANA, for the common ones.
WINDOWS_ZONES: Mapping[str, str] = {
    "utc": "UTC", "coordinated universal time": "UTC", "gmt standard time": "Europe/London",
    "greenwich standard time": "Atlantic/Reykjavik", "w. europe standard time": "Europe/Berlin",
    "central europe standard time": "Europe/Budapest", "romance standard time": "Europe/Paris",
    "central european standard time": "Europe/Warsaw", "e. europe standard time": "Europe/Chisinau",
    "fle standard time": "Europe/Kiev", "gtb standard time": "Europe/Bucharest",
    "russian standard time": "Europe/Moscow", "turkey standard time": "Europe/Istanbul",
    "israel standard time": "Asia/Jerusalem", "south africa standard time": "Africa/Johannesburg",
    "arabian standard time": "Asia/Dubai", "india standard time": "Asia/Kolkata",
    "singapore standard time": "Asia/Singapore", "china standard time": "Asia/Shanghai",
    "tokyo standard time": "Asia/Tokyo", "korea standard time": "Asia/Seoul",
    "aus eastern standard time": "Australia/Sydney", "e. australia standard time": "Australia/Brisbane",
    "w. australia standard time": "Australia/Perth", "new zealand standard time": "Pacific/Auckland",
    "eastern standard time": "America/New_York", "central standard time": "America/Chicago",
    "mountain standard time": "America/Denver", "us mountain standard time": "America/Phoenix",
    "pacific standard time": "America/Los_Angeles", "alaskan standard time": "America/Anchorage",
    "hawaiian standard time": "Pacific/Honolulu", "atlantic standard time": "America/Halifax",
    "canada central standard time": "America/Regina", "e. south america standard time": "America/Sao_Paulo",
    "sa pacific standard time": "America/Bogota", "argentina standard time": "America/Buenos_Aires",
}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NTH = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
_RECUR = re.compile(r"^\s*(?P<n>\d*)\s*(?P<unit>hours?|days?|weeks?|months?)\b\s*(?P<rest>.*)$", re.IGNORECASE)


class UnknownSchedule(RemediationError):
    """The next occurrence of a schedule cannot be told (its reason names the field)."""


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime  # first occurrence, aware
    zone: tzinfo
    unit: str  # hour | day | week | month
    every: int
    rest: str
    expires: datetime | None
    duration: timedelta


def zone_of(name: str) -> tzinfo:
    text = (name or "UTC").strip()
    if text.lower() in WINDOWS_ZONES:
        return ZoneInfo(WINDOWS_ZONES[text.lower()])
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownSchedule(f"maintenanceWindow.timeZone {text!r} is not a time zone this app knows: it cannot "
                              "tell when the next run starts") from None


def _local(value: Any, field: str, zone: tzinfo) -> datetime:
    try:
        return datetime.strptime(str(value).strip()[:16], "%Y-%m-%d %H:%M").replace(tzinfo=zone)
    except ValueError:
        raise UnknownSchedule(f"maintenanceWindow.{field} {value!r} is not 'yyyy-MM-dd HH:mm'") from None


def window_of(configuration: Mapping[str, Any]) -> Window:
    window = (configuration.get("properties") or {}).get("maintenanceWindow") or {}
    zone = zone_of(str(window.get("timeZone") or "UTC"))
    start = _local(window.get("startDateTime"), "startDateTime", zone)
    expires_raw = str(window.get("expirationDateTime") or "")
    expires = None if not expires_raw or expires_raw.startswith("9999") else _local(expires_raw, "expirationDateTime",
                                                                                    zone)
    recur = str(window.get("recurEvery") or "Day")
    match = _RECUR.match(recur)
    if not match:
        raise UnknownSchedule(f"maintenanceWindow.recurEvery {recur!r} is not a recurrence this app can read")
    hours, _, minutes = str(window.get("duration") or "00:00").partition(":")
    duration = timedelta(hours=int(hours or 0), minutes=int(minutes or 0)) if hours.isdigit() and minutes.isdigit() \
        else timedelta(0)
    unit = match["unit"].lower().rstrip("s")
    return Window(start, zone, unit, int(match["n"] or 1), match["rest"].strip(), expires, duration)


def _month_index(d: date) -> int:
    return d.year * 12 + d.month - 1


def _nth_weekday(year: int, month: int, weekday: int, nth: int) -> date | None:
    first = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    days = [first + timedelta(days=i) for i in range((following - first).days)]
    matching = [d for d in days if d.weekday() == weekday]
    if nth == -1:
        return matching[-1]
    return matching[nth - 1] if nth <= len(matching) else None


def _month_dates(w: Window, year: int, month: int) -> list[date]:
    words = [p for p in re.split(r"[\s,]+", w.rest) if p]
    if not words:
        return [date(year, month, w.start.day)] if w.start.day <= _days_in(year, month) else []
    days = [int(p[3:]) for p in words if p.lower().startswith("day") and p[3:].isdigit()]
    if days:
        return [date(year, month, d) for d in days if d <= _days_in(year, month)]
    nth = next((_NTH[p.lower()] for p in words if p.lower() in _NTH), None)
    weekday = next((_WEEKDAYS.index(p.lower()) for p in words if p.lower() in _WEEKDAYS), None)
    offset = next((int(p[6:]) for p in words if p.lower().startswith("offset") and re.fullmatch(r"-?\d+", p[6:])), 0)
    if nth is None or weekday is None:
        raise UnknownSchedule(f"maintenanceWindow.recurEvery 'Month {w.rest}' is not a recurrence this app can read")
    found = _nth_weekday(year, month, weekday, nth)
    return [found + timedelta(days=offset)] if found else []


def _days_in(year: int, month: int) -> int:
    return (date(year + (month == 12), month % 12 + 1, 1) - date(year, month, 1)).days


def _candidates(w: Window, around: datetime) -> Iterator[datetime]:
    """Occurrence starts (aware, local) from a day before `around` on, in order."""
    clock = w.start.timetz()
    if w.unit == "hour":
        step = timedelta(hours=w.every)
        skipped = max(0, int((around - w.start) / step) - 1)
        value = w.start + step * skipped
        for _ in range(HORIZON_DAYS * 24):
            yield value
            value += step
        return
    first = max(w.start.date(), (around - timedelta(days=1)).astimezone(w.zone).date())
    if w.unit == "month":
        months: list[date] = []
        index = _month_index(first)
        for k in range(HORIZON_DAYS // 28 + 2):
            m = index + k
            if (m - _month_index(w.start.date())) % w.every:
                continue
            months.extend(_month_dates(w, m // 12, m % 12 + 1))
        for d in sorted(months):
            if d >= first:
                yield datetime.combine(d, clock)
        return
    weekdays = [_WEEKDAYS.index(p.lower()) for p in re.split(r"[\s,]+", w.rest) if p.lower() in _WEEKDAYS]
    start_week = w.start.date() - timedelta(days=w.start.weekday())
    for i in range(HORIZON_DAYS):
        d = first + timedelta(days=i)
        if w.unit == "day" and (d - w.start.date()).days % w.every == 0:
            yield datetime.combine(d, clock)
        elif w.unit == "week":
            week = ((d - timedelta(days=d.weekday())) - start_week).days // 7
            if week % w.every == 0 and d.weekday() in (weekdays or [w.start.weekday()]):
                yield datetime.combine(d, clock)


def next_occurrence(configuration: Mapping[str, Any], now: datetime) -> datetime | None:
    """The start (UTC) of the schedule's next run at or after `now`; None when it has expired."""
    w = window_of(configuration)
    for local in _candidates(w, now):
        if local < w.start:
            continue
        if w.expires is not None and local > w.expires:
            return None
        when = local.astimezone(UTC)
        if when >= now:
            return when
    return None


def edit_refusal(configuration: Mapping[str, Any], now: datetime, *, pre_events: bool) -> str | None:
    """Why the schedule may not be edited now (too close to its next run), or None."""
    margin = EDIT_MARGIN_WITH_PRE_EVENTS if pre_events else EDIT_MARGIN
    upcoming = next_occurrence(configuration, now)
    if upcoming is None or upcoming - now >= margin:
        return None
    minutes = int((upcoming - now).total_seconds() // 60)
    why = ("with pre-events, an edit needs 40 minutes before the start or the run is cancelled" if pre_events
           else "an edit within 15 minutes of a run does not take effect for it")
    return (f"the next run starts at {upcoming.strftime('%Y-%m-%d %H:%M UTC')} (in {minutes} min): {why}; "
            "retry after that run")


def parse_deadline(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RemediationError(f"before={value!r} is not an ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def check_deadline(params: Mapping[str, str], now: datetime, what: str) -> None:
    """Refuses a change asked for before a run (param `before`) once that time has passed."""
    deadline = parse_deadline(params.get("before"))
    if deadline is not None and now >= deadline:
        raise RemediationError(f"{what} had to happen before {deadline.strftime('%Y-%m-%d %H:%M UTC')} (the coming "
                               "run's cut-off): it is too late for that run, nothing was changed")


DEADLINE_PATTERN = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2})?"
