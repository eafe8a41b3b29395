"""The OData `$filter` subset Azure Automation's list operations take.

The spec's own examples: `properties/status eq 'Failed'`, `properties/correlationId eq <guid>`
(an unquoted GUID), `properties/updateConfiguration/azureVirtualMachines/any(m: m eq '<vm id>')`;
plus `properties/osType`, `properties/startTime ge <datetime>`, `properties/softwareUpdateConfiguration/name`.
Supported: eq, ne, gt, ge, lt, le, and, or, not, parentheses, `path/any(x: x eq ...)`, literals
'string', numbers, true/false/null, GUIDs, ISO timestamps, `datetime'...'`. String equality is
case-insensitive (ids and names are, in ARM). Anything else is a FilterError (answered 400).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sandbox.util import parse_datetime

Predicate = Callable[[Any], bool]

_TOKEN = re.compile(r"""
 (?P<ws>\s+)
|(?P<str>'(?:[^']|'')*')
|(?P<dtq>datetime'[^']*')
|(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-]))
|(?P<datetime>\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)
|(?P<num>-?\d+(?:\.\d+)?)
|(?P<path>[A-Za-z_$][\w$]*(?:/[A-Za-z_$][\w$]*)*)
|(?P<op>[():,/])
""", re.VERBOSE)

_COMPARE = ("eq", "ne", "gt", "ge", "lt", "le")


class FilterError(ValueError):
    """A `$filter` the double can't evaluate exactly."""


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise FilterError(f"Syntax error at position {pos} in '{text}'")
        kind = match.lastgroup or ""
        raw = match.group()
        pos = match.end()
        if kind == "ws":
            continue
        if kind == "str":
            out.append(("lit", raw[1:-1].replace("''", "'")))
        elif kind == "dtq":
            out.append(("lit", parse_datetime(raw[9:-1])))
        elif kind == "guid":
            out.append(("lit", raw))
        elif kind == "datetime":
            out.append(("lit", parse_datetime(raw)))
        elif kind == "num":
            out.append(("lit", float(raw) if "." in raw else int(raw)))
        elif kind == "path":
            lower = raw.lower()
            if lower in ("true", "false"):
                out.append(("lit", lower == "true"))
            elif lower == "null":
                out.append(("lit", None))
            else:
                out.append(("path", raw))
        else:
            out.append(("op", raw))
    out.append(("eof", None))
    return out


def _resolve(item: Any, path: list[str]) -> Any:
    value = item
    for part in path:
        if isinstance(value, dict):
            match = next((k for k in value if k.lower() == part.lower()), None)
            value = value.get(match) if match is not None else None
        else:
            return None
    return value


def _compare(op: str, left: Any, right: Any) -> bool:
    if op in ("eq", "ne"):
        if isinstance(left, str) and isinstance(right, str):
            equal = left.lower() == right.lower()
        elif isinstance(right, datetime) and isinstance(left, str):
            try:
                equal = parse_datetime(left) == right
            except ValueError:
                equal = False
        else:
            equal = left == right
        return equal if op == "eq" else not equal
    if left is None or right is None:
        return False
    if isinstance(right, datetime) and isinstance(left, str):
        try:
            left = parse_datetime(left)
        except ValueError:
            return False
    try:
        if op == "gt":
            return bool(left > right)
        if op == "ge":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


def _either(a: Predicate, b: Predicate) -> Predicate:
    return lambda x: a(x) or b(x)


def _both(a: Predicate, b: Predicate) -> Predicate:
    return lambda x: a(x) and b(x)


class _Parser:
    def __init__(self, tokens: list[tuple[str, Any]]) -> None:
        self.toks = tokens
        self.i = 0

    def peek(self) -> tuple[str, Any]:
        return self.toks[self.i]

    def take(self) -> tuple[str, Any]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def word(self, *words: str) -> str | None:
        kind, value = self.peek()
        if kind == "path" and value.lower() in words:
            self.i += 1
            return str(value).lower()
        return None

    def expect_op(self, op: str) -> None:
        kind, value = self.take()
        if kind != "op" or value != op:
            raise FilterError(f"'{op}' expected, found '{value}'")

    def parse(self) -> Predicate:
        pred = self.or_expr({})
        if self.peek()[0] != "eof":
            raise FilterError(f"Unexpected '{self.peek()[1]}'")
        return pred

    def or_expr(self, scope: dict[str, bool]) -> Predicate:
        left = self.and_expr(scope)
        while self.word("or"):
            right = self.and_expr(scope)
            left = _either(left, right)
        return left

    def and_expr(self, scope: dict[str, bool]) -> Predicate:
        left = self.unary(scope)
        while self.word("and"):
            right = self.unary(scope)
            left = _both(left, right)
        return left

    def unary(self, scope: dict[str, bool]) -> Predicate:
        if self.word("not"):
            inner = self.unary(scope)
            return lambda x: not inner(x)
        kind, value = self.peek()
        if kind == "op" and value == "(":
            self.take()
            inner = self.or_expr(scope)
            self.expect_op(")")
            return inner
        return self.comparison(scope)

    def comparison(self, scope: dict[str, bool]) -> Predicate:
        kind, value = self.take()
        if kind != "path":
            raise FilterError(f"A property path was expected, found '{value}'")
        parts = str(value).split("/")
        if parts[-1].lower() == "any" and self.peek() == ("op", "("):
            return self.any_expr(parts[:-1], scope)
        op = self.word(*_COMPARE)
        if op is None:
            raise FilterError(f"A comparison operator (eq, ne, gt, ge, lt, le) was expected after '{value}'")
        lit_kind, literal = self.take()
        if lit_kind != "lit":
            raise FilterError(f"A literal was expected after '{value} {op}'")
        if parts[0] in scope:
            rest = parts[1:]
            return lambda x: _compare(op, _resolve(x, rest) if rest else x, literal)
        return lambda x: _compare(op, _resolve(x, parts), literal)

    def any_expr(self, path: list[str], scope: dict[str, bool]) -> Predicate:
        self.expect_op("(")
        kind, var = self.take()
        if kind != "path":
            raise FilterError("A lambda variable was expected in any()")
        self.expect_op(":")
        inner = self.or_expr({**scope, str(var): True})
        self.expect_op(")")

        def check(item: Any) -> bool:
            values = _resolve(item, path)
            return isinstance(values, list) and any(inner(v) for v in values)
        return check


def compile_filter(text: str) -> Predicate:
    """Compiles a `$filter`; tolerates the spec example's doubled `$filter=` prefix."""
    raw = text.strip()
    while raw.lower().startswith("$filter="):
        raw = raw[len("$filter="):].strip()
    if not raw:
        return lambda x: True
    return _Parser(_tokens(raw)).parse()
