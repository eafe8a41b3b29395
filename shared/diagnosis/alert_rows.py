"""Following a log search alert to its rows.

A Log Alerts V2 rule that counts rows without splitting by dimensions (as the deployment's own
rules in infra/modules/alerts.bicep do: failed Automation update runs, failed Update Manager
patch operations) fires with no row in its payload: no machine, no run, nothing to diagnose. Its
alertContext still carries the rule's query and the window it evaluated, so the query is run again
through Log Analytics, for that window only and for at most `MAX_ROWS` rows, against the resource
the rule queries (the alert's target), and every row becomes a failure of its own (a failed run,
machine or operation) that is diagnosed like any other.

Read-only and bounded; a transient Azure error raises `RowsUnavailable` (the alert is answered
503, and the action group sends it again); any other error is recorded on the alert's failure.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from datetime import datetime, timedelta

from remediations.context import Context
from shared.core.domain import Failure, SourceKind
from shared.diagnosis.envelopes.alerts import MAX_ROWS, from_rows

log = logging.getLogger("remediator.enrich")
MAX_WINDOW = timedelta(days=1)  # the longest window read again (a rule's window is 5 min to 2 days)
DEFAULT_WINDOW = timedelta(minutes=15)
_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", re.IGNORECASE)


class RowsUnavailable(RuntimeError):
    """Log Analytics could not answer for now (throttled, a server error): try the alert again later."""


def alert_failures(failures: list[Failure], ctx: Context) -> list[Failure]:
    """Each failure as it is, except a log search alert without rows: its rows, read again."""
    out: list[Failure] = []
    for failure in failures:
        out.extend(follow(failure, ctx))
    return out


def needs_rows(failure: Failure) -> bool:
    """A fired log search alert that names no row (no dimension, no search results), of a rule about
    patching or image builds (its query, target or name says so): another rule's rows are not read."""
    return (failure.failed and failure.source is SourceKind.ALERT and failure.family is not None
            and failure.fact("search_query") is not None
            and failure.fact("dimensions") == "0" and failure.fact("target_computer") is None
            and (failure.fact("query_scope") or failure.fact("workspace_customer_id")) is not None)


def window_of(failure: Failure, now: datetime) -> tuple[datetime, datetime]:
    """The window the rule evaluated (windowStartTime/windowEndTime), at most MAX_WINDOW long; from
    the rule's windowSize when the payload's window is empty (Test Action sends start == end)."""
    end = _time(failure.fact("window_end")) or failure.started_at or now
    start = _time(failure.fact("window_start"))
    try:
        if start is None or start >= end:
            start = end - min(_duration(failure.fact("window_size")) or DEFAULT_WINDOW, MAX_WINDOW)
        return max(start, end - MAX_WINDOW), end
    except (OverflowError, TypeError):  # a window at the edge of time, or naive beside aware
        return now - DEFAULT_WINDOW, now


def follow(failure: Failure, ctx: Context) -> list[Failure]:
    if not needs_rows(failure):
        return [failure]
    from remediations.runner import describe_error, is_operational
    from shared.azure.retry import is_transient

    query = str(failure.fact("search_query")).rstrip().rstrip(";")
    bounded = f"{query}\n| take {MAX_ROWS}"
    window = window_of(failure, ctx.now())
    scope = failure.fact("query_scope")
    try:
        if scope:
            rows = ctx.insights.query_resource(scope, bounded, window)
        else:
            rows = ctx.insights.query(str(failure.fact("workspace_customer_id")), bounded, window)
    except Exception as exc:
        if not is_operational(exc):
            raise
        reason = describe_error(exc)
        if is_transient(exc):
            raise RowsUnavailable(f"reading the rows of alert {failure.event_id or '-'}: {reason}") from exc
        log.warning("rows of alert %s not read: %s", failure.event_id, reason)
        return [dataclasses.replace(failure, facts=(*failure.facts, ("enrichment_error", reason)))]
    stamp = ("alert_rows", f"{len(rows)} rows of {scope or failure.fact('workspace_customer_id')} from "
                           f"{window[0].isoformat()} to {window[1].isoformat()}")
    if not rows:
        return [dataclasses.replace(failure, facts=(*failure.facts, stamp))]
    return [dataclasses.replace(f, facts=(*f.facts, stamp)) for f in from_rows(failure, rows[:MAX_ROWS])]


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _duration(value: str | None) -> timedelta | None:
    """An ISO 8601 duration as alert rules write windows (PT15M, PT1H, P1D); None if it is none."""
    match = _DURATION.fullmatch(value or "")
    if match is None or not any(match.groups()):
        return None
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    try:
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        return None
