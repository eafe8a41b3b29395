"""The double's request/response types and the ARM error every route raises.

Handlers are plain functions `(ctx, request) -> Response`; an `ArmError` anywhere becomes the
ARM error body `{"error": {"code", "message"}}` with its status, so no route hand-writes one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.state import State

JSON_TYPE = "application/json; charset=utf-8"


class ArmError(Exception):
    """An error answer: status, ARM error code and message (and optional target, details, headers)."""

    def __init__(self, status: int, code: str, message: str, *, target: str | None = None,
                 details: list[dict[str, Any]] | None = None, headers: Mapping[str, str] | None = None,
                 inner: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.details = details
        self.headers = dict(headers or {})
        self.inner = inner

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        if self.details:
            error["details"] = self.details
        if self.inner:
            error["innererror"] = self.inner
        return {"error": error}


def bad_request(field_path: str, problem: str, code: str = "InvalidRequestContent") -> ArmError:
    """A 400 naming the field, as ARM validation errors do (`target` is the field)."""
    return ArmError(400, code, f"The value of '{field_path}' is invalid: {problem}", target=field_path)


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    base_url: str
    params: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body as JSON, or ARM's InvalidRequestContent."""
        if not self.body.strip():
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be "
                           "deserialized: 'The request body is empty.'")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be "
                           f"deserialized: '{exc}'.") from None

    def json_object(self) -> dict[str, Any]:
        value = self.json()
        if not isinstance(value, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be "
                           "deserialized: 'a JSON object was expected'.")
        return value

    def param(self, name: str) -> str:
        return self.params[name]


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, value: Any, headers: Mapping[str, str] | None = None) -> Response:
        data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        return cls(status, data, {"Content-Type": JSON_TYPE, **(headers or {})})

    @classmethod
    def empty(cls, status: int, headers: Mapping[str, str] | None = None) -> Response:
        return cls(status, b"", dict(headers or {}))


@dataclass(frozen=True, slots=True)
class Context:
    """What a handler may use: the store and the double's timing knobs."""

    state: State
    poll_after: int
    lro_retry_after: int
