"""Errors that carry enough to answer a caller with a clear 4xx."""

from __future__ import annotations


class PayloadError(ValueError):
    """A payload that is not valid: names the field (a dotted path) and the problem."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path or "(payload)"
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def to_dict(self) -> dict[str, str]:
        return {"error": "invalid payload", "field": self.path, "problem": self.problem}


class UnrecognisedPayload(PayloadError):
    """Valid JSON of a shape no supported source has (the CLI reads it as plain text)."""
