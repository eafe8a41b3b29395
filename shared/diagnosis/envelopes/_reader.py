"""A small path-tracking reader so every validation error names its field."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from shared.core.errors import PayloadError

MAX_ID_CHARS = 1024


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def describe(value: Any) -> str:
    """Names a JSON type the way a payload author thinks of it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def parse_time(value: Any, path: str) -> datetime:
    if not isinstance(value, str):
        raise PayloadError(path, f"expected an ISO 8601 timestamp string, got {describe(value)}")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise PayloadError(path, f"not an ISO 8601 timestamp: {value[:40]!r}") from None


class Reader:
    """Typed access to one JSON object, with case-insensitive key fallback.

    Azure payloads are not consistent about key casing (Update Manager events, ARM
    event data), so an exact key is tried first, then a case-insensitive match.
    """

    __slots__ = ("_lower", "obj", "path")

    def __init__(self, obj: Any, path: str = "") -> None:
        if not isinstance(obj, Mapping):
            raise PayloadError(path, f"expected an object, got {describe(obj)}")
        self.obj: Mapping[str, Any] = obj
        self.path = path
        self._lower: dict[str, str] | None = None

    def get(self, key: str) -> Any:
        if key in self.obj:
            return self.obj[key]
        if self._lower is None:
            self._lower = {str(k).lower(): k for k in self.obj}
        real = self._lower.get(key.lower())
        return None if real is None else self.obj[real]

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def at(self, key: str) -> str:
        return join(self.path, key)

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self.get(key)
        if value is None:
            if required:
                raise PayloadError(self.at(key), "required field is missing")
            return None
        if not isinstance(value, str):
            raise PayloadError(self.at(key), f"expected a string, got {describe(value)}")
        if required and not value.strip():
            raise PayloadError(self.at(key), "must not be empty")
        return value

    def ident(self, key: str, *, required: bool = False) -> str | None:
        """An id (event id, alert id, resource id): a string of at most MAX_ID_CHARS.

        Ids end up in keys, queries, stored properties and queue messages; a megabyte
        "id" is refused here with its field named, not by the storage service later.
        """
        value = self.text(key, required=required)
        if value is not None and len(value) > MAX_ID_CHARS:
            raise PayloadError(self.at(key), f"{len(value)} characters; an id has at most {MAX_ID_CHARS}")
        return value

    def req(self, key: str) -> str:
        value = self.text(key, required=True)
        assert value is not None
        return value

    def present(self, key: str) -> str:
        """A string that must be there but may be empty (Event Grid's validation subject)."""
        value = self.text(key)
        if value is None:
            raise PayloadError(self.at(key), "required field is missing")
        return value

    def child(self, key: str, *, required: bool = False) -> Reader | None:
        value = self.get(key)
        if value is None:
            if required:
                raise PayloadError(self.at(key), "required object is missing")
            return None
        return Reader(value, self.at(key))

    def req_child(self, key: str) -> Reader:
        child = self.child(key, required=True)
        assert child is not None
        return child

    def items(self, key: str, *, required: bool = False) -> list[Any]:
        value = self.get(key)
        if value is None:
            if required:
                raise PayloadError(self.at(key), "required array is missing")
            return []
        if not isinstance(value, list):
            raise PayloadError(self.at(key), f"expected an array, got {describe(value)}")
        return value

    def children(self, key: str) -> Iterator[Reader]:
        path = self.at(key)
        for i, item in enumerate(self.items(key)):
            yield Reader(item, join(path, i))

    def time(self, key: str, *, required: bool = False) -> datetime | None:
        value = self.get(key)
        if value is None or value == "":
            if required:
                raise PayloadError(self.at(key), "required timestamp is missing")
            return None
        return parse_time(value, self.at(key))

    def number(self, key: str) -> float | None:
        value = self.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PayloadError(self.at(key), f"expected a number, got {describe(value)}")
        return float(value)
