"""Where the intent of a multi-step change waits until the change is complete.

The service cannot update an image template in place, so a few remediations delete it and
submit it again; re-adding machines to a deployment takes two PUTs. Between the steps, what
the resource was and what it becomes exist only here: kept before the first step and dropped
only after the last, so a failed step, a process killed midway or a poisoned job is resumed
(or rolled back) by the next attempt, the poison handler or the sweep. `remediation` names
who kept it (None: any image template remediation may finish it).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Protocol


class TemplateVault(Protocol):
    def keep(self, template_id: str, original: dict[str, Any], intended: dict[str, Any],
             remediation: str | None = None) -> None: ...

    def get(self, template_id: str) -> dict[str, Any] | None: ...

    def pending(self) -> list[dict[str, Any]]: ...

    def drop(self, template_id: str) -> None: ...


def _entry(template_id: str, original: dict[str, Any], intended: dict[str, Any],
           remediation: str | None) -> dict[str, Any]:
    from datetime import UTC, datetime

    return {"template_id": template_id, "original": original, "intended": intended, "remediation": remediation,
            "kept_at": datetime.now(UTC).isoformat()}


class DirVault:
    """One JSON file per template, written atomically (write, fsync, rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def default(cls) -> DirVault:
        base = os.environ.get("REMEDIATOR_VAULT_DIR") or os.path.join(
            os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "remediator", "vault")
        return cls(Path(base))

    def _path(self, template_id: str) -> Path:
        return self.root / (hashlib.sha256(template_id.lower().encode()).hexdigest()[:32] + ".json")

    def keep(self, template_id: str, original: dict[str, Any], intended: dict[str, Any],
             remediation: str | None = None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._path(template_id)
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(_entry(template_id, original, intended, remediation), fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)

    def get(self, template_id: str) -> dict[str, Any] | None:
        path = self._path(template_id)
        if not path.exists():
            return None
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    def pending(self) -> list[dict[str, Any]]:
        if not self.root.exists():
            return []
        return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(self.root.glob("*.json"))]

    def drop(self, template_id: str) -> None:
        self._path(template_id).unlink(missing_ok=True)


class MemoryVault:
    """For tests that do not exercise persistence across processes."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def keep(self, template_id: str, original: dict[str, Any], intended: dict[str, Any],
             remediation: str | None = None) -> None:
        self.items[template_id.lower()] = _entry(template_id, original, intended, remediation)

    def get(self, template_id: str) -> dict[str, Any] | None:
        return self.items.get(template_id.lower())

    def pending(self) -> list[dict[str, Any]]:
        return list(self.items.values())

    def drop(self, template_id: str) -> None:
        self.items.pop(template_id.lower(), None)
