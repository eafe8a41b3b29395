"""Where an image template's definition waits while the template is deleted and recreated.

The service cannot update a template in place, so a few remediations delete it and
submit it again. Between the two, the definition exists only here: it is kept before the
delete and dropped only after the recreate succeeded, so a failed recreate or a process
killed midway is restored by the next attempt.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Protocol


class TemplateVault(Protocol):
    def keep(self, template_id: str, original: dict[str, Any], intended: dict[str, Any]) -> None: ...

    def get(self, template_id: str) -> dict[str, Any] | None: ...

    def drop(self, template_id: str) -> None: ...


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

    def keep(self, template_id: str, original: dict[str, Any], intended: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._path(template_id)
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump({"template_id": template_id, "original": original, "intended": intended}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)

    def get(self, template_id: str) -> dict[str, Any] | None:
        path = self._path(template_id)
        if not path.exists():
            return None
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    def drop(self, template_id: str) -> None:
        self._path(template_id).unlink(missing_ok=True)


class MemoryVault:
    """For tests that do not exercise persistence across processes."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def keep(self, template_id: str, original: dict[str, Any], intended: dict[str, Any]) -> None:
        self.items[template_id.lower()] = {"template_id": template_id, "original": original, "intended": intended}

    def get(self, template_id: str) -> dict[str, Any] | None:
        return self.items.get(template_id.lower())

    def drop(self, template_id: str) -> None:
        self.items.pop(template_id.lower(), None)
