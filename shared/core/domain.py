"""Domain values shared by every layer: frozen, hashable, free of Azure SDK types.

Envelopes turn raw payloads into these once; nothing past them touches a raw dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class SourceKind(StrEnum):
    """Where a signal came from; decides which envelope parsed it."""

    EVENTGRID = "eventgrid"
    CLOUDEVENT = "cloudevent"
    ALERT = "alert"
    MAINTENANCE = "maintenance"
    IMAGE_TEMPLATE = "image_template"
    AUTOMATION_RUN = "automation_run"
    AUTOMATION_MACHINE_RUN = "automation_machine_run"
    TEXT = "text"


class Family(StrEnum):
    """The troubleshooting guide a failure belongs to."""

    AIB = "aib"
    UPDATE = "update"


class Mode(StrEnum):
    """How a remediation may be carried out (scenarios.md)."""

    AUTO = "auto"
    APPROVAL = "approval"
    ADVICE = "advice"


@dataclass(frozen=True, slots=True)
class Failure:
    """One failure signal, whatever its source.

    `failed` is False for signals that say something succeeded or is still running:
    they are parsed (so callers can log them) but yield the scenario "none".
    """

    source: SourceKind
    failed: bool
    texts: tuple[str, ...] = ()
    family: Family | None = None
    resource_id: str | None = None
    subscription_id: str | None = None
    operation: str | None = None
    status: str | None = None
    event_id: str | None = None
    event_type: str | None = None
    correlation_ids: tuple[str, ...] = ()
    started_at: datetime | None = None
    ended_at: datetime | None = None
    facts: tuple[tuple[str, str], ...] = ()

    def fact(self, name: str) -> str | None:
        """A named fact (e.g. `build_log_url`, `target_computer`), or None."""
        for key, value in self.facts:
            if key == name:
                return value
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.value,
            "failed": self.failed,
            "family": self.family.value if self.family else None,
            "resource_id": self.resource_id,
            "subscription_id": self.subscription_id,
            "operation": self.operation,
            "status": self.status,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "correlation_ids": list(self.correlation_ids),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "facts": dict(self.facts),
        }


@dataclass(frozen=True, slots=True)
class RemediationRef:
    """A remediation a diagnosis proposes, by catalog name, with its default mode."""

    name: str
    mode: Mode

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "mode": self.mode.value}


@dataclass(frozen=True, slots=True)
class QueryResult:
    """A diagnostic query of the guide, run against the failure's workspace: its rows (a
    few, JSON-safe) or why it could not run."""

    query: str
    rows: tuple[dict[str, Any], ...] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "rows": list(self.rows), "error": self.error}


@dataclass(frozen=True, slots=True)
class Alternative:
    """A scenario the classifier weighed beside (or instead of) the one it chose: its score and why
    (the signatures it matched, with their weights, and what lowered it)."""

    scenario: str
    score: float
    matched: tuple[tuple[str, float], ...] = ()
    note: str = ""

    @property
    def reason(self) -> str:
        best = sorted(self.matched, key=lambda m: -m[1])[:3]
        said = "matched " + ", ".join(f"'{anchor}' ({weight:g})" for anchor, weight in best) if best else ""
        return "; ".join(part for part in (said, self.note) if part)

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "score": round(self.score, 2), "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """What went wrong, in the guide's words, and what can be done about it."""

    scenario: str
    confidence: float
    title: str
    evidence: tuple[str, ...] = ()
    remediations: tuple[RemediationRef, ...] = ()
    doc: str | None = None
    anchor: str | None = None
    advice: tuple[str, ...] = ()
    queries: tuple[str, ...] = ()
    family: Family | None = None
    details: tuple[tuple[str, str], ...] = ()
    failure: Failure | None = field(default=None, compare=False)
    query_results: tuple[QueryResult, ...] = field(default=(), compare=False)
    # The runners-up (for `unknown`: the weak matches), best first, each with its score and reason.
    alternatives: tuple[Alternative, ...] = field(default=(), compare=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "scenario": self.scenario,
            "confidence": round(self.confidence, 3),
            "title": self.title,
            "evidence": list(self.evidence),
            "remediations": [r.to_dict() for r in self.remediations],
            "doc": self.doc,
            "anchor": self.anchor,
            "advice": list(self.advice),
            "queries": list(self.queries),
            "family": self.family.value if self.family else None,
            "details": dict(self.details),
            "alternatives": [a.to_dict() for a in self.alternatives],
        }
        if self.failure is not None:
            out["failure"] = self.failure.to_dict()
        if self.query_results:
            out["query_results"] = [q.to_dict() for q in self.query_results]
        return out
