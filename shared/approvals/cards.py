"""Approval and outcome cards for Microsoft Teams, posted to a Workflows webhook.

Office 365 connectors are retired: a Teams Workflows webhook takes
`{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
"content": <card>}]}`, at most about 28 KB. `Action.Submit` does not work there, so the
buttons are `Action.OpenUrl` links to a signed, expiring, single-use confirmation page.
With no webhook configured, cards go to a local folder (the sink) a person can open.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from shared.azure.endpoints import is_loopback, no_redirect_opener

MAX_CARD_BYTES = 28 * 1024
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.5"
# Workflows webhooks live on Logic Apps and Power Platform hosts; nothing else is posted to.
WEBHOOK_SUFFIXES = (".logic.azure.com", ".api.powerplatform.com")


class WebhookRefused(ValueError):
    """A webhook URL the product will not post to (named in the message)."""


@dataclass(frozen=True, slots=True)
class CardLinks:
    approve: str
    reject: str


def portal_link(resource_id: str) -> str:
    return "https://portal.azure.com/#@/resource" + quote(resource_id, safe="/")


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+!<>~|])")
_LINE_START = re.compile(r"(?m)^(\s*)([-=]|\d+(?=[.)]))")


def plain(text: str) -> str:
    """Text from outside (failure text, resource names, reasons) shown as it is: TextBlocks and
    FactSets render Markdown, so a failure message holding `[Approve](https://...)` would put a
    live link above the real buttons. Every Markdown character is escaped with a backslash."""
    return _LINE_START.sub(r"\1\\\2", _MARKDOWN.sub(r"\\\1", text))


def _text(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **extra}


def _facts(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {"type": "FactSet", "facts": [{"title": plain(k), "value": plain(v)} for k, v in pairs]}


def _field(change: Mapping[str, Any]) -> str:
    """`properties.vmProfile.vmSize` reads as `vmProfile.vmSize` on a narrow card."""
    return str(change["field"]).removeprefix("properties.")


def _fmt(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 300 else text[:297] + "..."


def approval_card(*, title: str, scenario: str, remediation: str, target: str, reason: str,
                  evidence: Sequence[str], changes: Sequence[Mapping[str, Any]], limits: Mapping[str, str],
                  expires_at: str, links: CardLinks) -> dict[str, Any]:
    """The card: what failed and why, the exact change before -> after, the limits, two links."""

    def build(evidence_lines: Sequence[str], change_rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        body: list[dict[str, Any]] = [
            _text(f"Approval needed: {plain(remediation)}", size="Large", weight="Bolder"),
            _text(plain(f"{title} ({scenario})"), isSubtle=True),
            _facts([("Resource", target.rsplit("/", 1)[-1]), ("Why", reason), ("Link expires", expires_at)]),
            _text("Evidence", weight="Bolder", spacing="Medium"),
            *[_text(plain(line[:400]), fontType="Monospace", size="Small") for line in evidence_lines],
            _text("Change", weight="Bolder", spacing="Medium"),
            _facts([(_field(c), f"{_fmt(c['before'])} → {_fmt(c['after'])}") for c in change_rows]),
        ]
        if limits:
            body += [_text("Limits", weight="Bolder", spacing="Medium"), _facts(list(limits.items()))]
        return {
            "type": "AdaptiveCard", "$schema": CARD_SCHEMA, "version": CARD_VERSION, "body": body,
            "actions": [
                {"type": "Action.OpenUrl", "title": "Approve", "url": links.approve, "style": "positive"},
                {"type": "Action.OpenUrl", "title": "Reject", "url": links.reject, "style": "destructive"},
                {"type": "Action.OpenUrl", "title": "Open in portal", "url": portal_link(target)},
            ],
        }

    evidence_lines, change_rows = list(evidence[:8]), list(changes[:20])
    card = build(evidence_lines, change_rows)
    while len(json.dumps(message(card)).encode()) > MAX_CARD_BYTES:  # shed detail, never the decision
        if evidence_lines:
            evidence_lines.pop()
        elif len(change_rows) > 1:
            change_rows.pop()
        else:
            raise ValueError("an approval card cannot be made small enough for Teams")
        card = build(evidence_lines, change_rows)
    return card


def outcome_card(*, remediation: str, target: str, result: str, detail: str,
                 changes: Sequence[Mapping[str, Any]], decided_by: str | None) -> dict[str, Any]:
    body = [
        _text(plain(f"{remediation}: {result}"), size="Large", weight="Bolder",
              color="Good" if result in ("applied", "noop") else "Attention"),
        _facts([("Resource", target.rsplit("/", 1)[-1]), ("Decided by", decided_by or "policy"), ("Detail", detail)]),
        _facts([(_field(c), f"{_fmt(c['before'])} → {_fmt(c['after'])}") for c in changes[:20]]),
    ]
    return {"type": "AdaptiveCard", "$schema": CARD_SCHEMA, "version": CARD_VERSION, "body": body,
            "actions": [{"type": "Action.OpenUrl", "title": "Open in portal", "url": portal_link(target)}]}


def message(card: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}


def check_webhook(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host.endswith(WEBHOOK_SUFFIXES) and not parts.username:
        return url
    if parts.scheme == "http" and is_loopback(url):
        return url  # a local receiver in tests
    raise WebhookRefused("REMEDIATOR_TEAMS_WEBHOOK_URL must be a Teams Workflows webhook "
                         f"(https on {' or '.join('*' + s for s in WEBHOOK_SUFFIXES)})")


class Notifier:
    """Posts cards to the webhook, or writes them to the sink folder when there is none."""

    def __init__(self, webhook_url: str | None = None, sink: Path | None = None, timeout: float = 10.0) -> None:
        self.webhook_url = check_webhook(webhook_url) if webhook_url else None
        self.sink = sink or Path(os.environ.get("REMEDIATOR_CARD_SINK") or ".cards")
        self.timeout = timeout

    @classmethod
    def from_env(cls) -> Notifier:
        return cls(os.environ.get("REMEDIATOR_TEAMS_WEBHOOK_URL") or None)

    def send(self, card: Mapping[str, Any], name: str) -> str:
        """Returns where the card went: the webhook's host, or the sink file."""
        body = json.dumps(message(card)).encode()
        if self.webhook_url is None:
            self.sink.mkdir(parents=True, exist_ok=True)
            path = self.sink / f"{time.strftime('%Y%m%dT%H%M%S')}-{name}.json"
            path.write_bytes(body)
            return str(path)
        request = urllib.request.Request(self.webhook_url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with no_redirect_opener().open(request, timeout=self.timeout) as response:
            response.read()
        return urlsplit(self.webhook_url).hostname or "webhook"


@dataclass(frozen=True, slots=True)
class MachineRow:
    """One machine of a multi-machine card (a coming run's gate): what was done or is asked, and why; `links`
    when a person decides (each machine its own approval: its own signed links)."""

    machine: str
    what: str
    why: str
    links: CardLinks | None = None


def machine_rows(rows: Sequence[MachineRow]) -> list[dict[str, Any]]:
    """Card body elements listing machines, each with its own Approve / Reject links where a decision is asked."""
    out: list[dict[str, Any]] = []
    for row in rows:
        items: list[dict[str, Any]] = [_text(plain(row.machine), weight="Bolder"),
                                       _text(plain(f"{row.what}: {row.why}"[:400]), isSubtle=True, spacing="None")]
        if row.links is not None:
            items.append({"type": "ActionSet", "actions": [
                {"type": "Action.OpenUrl", "title": "Approve", "url": row.links.approve, "style": "positive"},
                {"type": "Action.OpenUrl", "title": "Reject", "url": row.links.reject, "style": "destructive"}]})
        out.append({"type": "Container", "separator": True, "items": items})
    return out
