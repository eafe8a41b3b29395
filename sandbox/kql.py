"""A strict subset of KQL for the double's Log Analytics and Resource Graph answers.

Enough for the troubleshooting guides' queries (`Heartbeat | where TimeGenerated > ago(30d) |
distinct SourceComputerId, Computer, ComputerIP`, `Operation | where ... | sort by ...`,
`Update | where ... | summarize max(TimeGenerated) by ...`) and Update Manager's Resource Graph
samples (`patchinstallationresources | where type !has "softwarepatches" | extend prop =
parse_json(properties) | ...`). Anything outside the subset is a `KqlError` (the routes answer 400),
never a silent guess: a double that quietly ignores a filter would let a wrong query pass a test.

Operators: where/filter, extend, project, project-away, project-rename, order/sort by, take/limit,
top, distinct, summarize (count, countif, dcount, sum, avg, min, max, make_set, make_list,
take_any, arg_max, arg_min), count. Scalars: comparisons (==, !=, =~, !~, <, <=, >, >=), has,
contains, startswith, endswith (and their `!` and `_cs` forms), in / in~ / !in / !in~, and/or/not,
+ - * /, member access (`a.b`, `a['b']`, `a[0]`), literals (strings, numbers, bool, timespans like
`30d`, `datetime(...)`, `dynamic(...)`) and the functions in `_FUNCTIONS`.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sandbox.util import iso, parse_datetime

Row = dict[str, Any]
Scalar = Callable[[Row], Any]


class KqlError(ValueError):
    """A query outside the supported subset, or a semantic error (unknown table or column)."""

    def __init__(self, message: str, kind: str = "SyntaxError") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Table:
    """Rows with an ordered, typed schema (types as Log Analytics names them)."""

    columns: tuple[str, ...]
    types: Mapping[str, str]
    rows: list[Row]


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # str | num | timespan | datetime | dynamic | ident | op | eof
    value: Any
    pos: int


_TOKEN = re.compile(r"""
 (?P<ws>\s+|//[^\n]*)
|(?P<str>@?'(?:[^'\\]|\\.)*'|@?"(?:[^"\\]|\\.)*")
|(?P<datetime>datetime\(\s*[0-9][^)]*\))
|(?P<timespan>\d+(?:\.\d+)?(?:ms|d|h|m|s)(?![A-Za-z0-9_]))
|(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
|(?P<op>==|!=|=~|!~|<=|>=|<>|[|(),.\[\]<>=+\-*/%:~!;])
""", re.VERBOSE)

_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def _unquote(raw: str) -> str:
    verbatim = raw.startswith("@")
    body = raw[2:-1] if verbatim else raw[1:-1]
    if verbatim:
        return body
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), body)


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise KqlError(f"Query could not be parsed at '{text[pos:pos + 20]}' (position {pos})")
        kind = match.lastgroup or ""
        raw = match.group()
        if kind == "str":
            out.append(_Tok("str", _unquote(raw), pos))
        elif kind == "datetime":
            inner = raw[raw.index("(") + 1:-1].strip()
            try:
                out.append(_Tok("datetime", parse_datetime(inner), pos))
            except ValueError:
                raise KqlError(f"Invalid datetime literal '{raw}'") from None
        elif kind == "timespan":
            unit = "ms" if raw.endswith("ms") else raw[-1]
            number = raw[: -len(unit)]
            out.append(_Tok("timespan", timedelta(seconds=float(number) * _UNITS[unit]), pos))
        elif kind == "num":
            out.append(_Tok("num", float(raw) if any(c in raw for c in ".eE") else int(raw), pos))
        elif kind in ("ident", "op"):
            out.append(_Tok(kind, raw, pos))
        pos = match.end()
    out.append(_Tok("eof", None, len(text)))
    return out


# ---------------------------------------------------------------------------------------------
# value semantics


def to_string(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, timedelta):
        return format_timespan(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def format_timespan(value: timedelta) -> str:
    total = value.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(int(total), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    frac = total - int(total)
    clock = f"{hours:02d}:{minutes:02d}:{seconds:02d}" + (f"{frac:.7f}"[1:] if frac else "")
    return f"{sign}{days}.{clock}" if days else f"{sign}{clock}"


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return parse_datetime(value)
        except ValueError:
            return None
    return None


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, int | float):
        return bool(value)
    return None


def _coerce_pair(left: Any, right: Any) -> tuple[Any, Any] | None:
    """Brings two values to one comparable type, as Kusto's implicit conversions do; None if they can't be."""
    if left is None or right is None:
        return None
    if isinstance(left, datetime) or isinstance(right, datetime):
        a, b = _as_datetime(left), _as_datetime(right)
        return None if a is None or b is None else (a, b)
    if isinstance(left, timedelta) or isinstance(right, timedelta):
        if isinstance(left, timedelta) and isinstance(right, timedelta):
            return left, right
        return None
    if isinstance(left, bool) or isinstance(right, bool):
        a2, b2 = _as_bool(left), _as_bool(right)
        return None if a2 is None or b2 is None else (a2, b2)
    if isinstance(left, int | float) or isinstance(right, int | float):
        a3, b3 = _as_number(left), _as_number(right)
        return None if a3 is None or b3 is None else (a3, b3)
    if isinstance(left, dict | list) or isinstance(right, dict | list):
        return to_string(left), to_string(right)
    return str(left), str(right)


def _equal(left: Any, right: Any) -> bool:
    pair = _coerce_pair(left, right)
    return pair is not None and pair[0] == pair[1]


def _order(left: Any, right: Any) -> int | None:
    pair = _coerce_pair(left, right)
    if pair is None:
        return None
    a, b = pair
    try:
        return int(a > b) - int(a < b)
    except TypeError:
        return None


def _has(haystack: Any, term: Any, case: bool = False) -> bool:
    text, needle = to_string(haystack), to_string(term)
    if not case:
        text, needle = text.lower(), needle.lower()
    if not needle:
        return True
    start = 0
    while True:
        at = text.find(needle, start)
        if at < 0:
            return False
        before = text[at - 1] if at else " "
        after = text[at + len(needle)] if at + len(needle) < len(text) else " "
        starts = not before.isalnum() or not needle[0].isalnum()
        ends = not after.isalnum() or not needle[-1].isalnum()
        if starts and ends:
            return True
        start = at + 1


def _string_op(name: str) -> Callable[[Any, Any], bool]:
    def contains(a: Any, b: Any) -> bool:
        return to_string(b).lower() in to_string(a).lower()

    def contains_cs(a: Any, b: Any) -> bool:
        return to_string(b) in to_string(a)

    def startswith(a: Any, b: Any) -> bool:
        return to_string(a).lower().startswith(to_string(b).lower())

    def endswith(a: Any, b: Any) -> bool:
        return to_string(a).lower().endswith(to_string(b).lower())

    def startswith_cs(a: Any, b: Any) -> bool:
        return to_string(a).startswith(to_string(b))

    def endswith_cs(a: Any, b: Any) -> bool:
        return to_string(a).endswith(to_string(b))

    def has_cs(a: Any, b: Any) -> bool:
        return _has(a, b, case=True)

    table: dict[str, Callable[[Any, Any], bool]] = {
        "has": _has, "has_cs": has_cs, "contains": contains, "contains_cs": contains_cs,
        "startswith": startswith, "startswith_cs": startswith_cs, "endswith": endswith,
        "endswith_cs": endswith_cs,
    }
    return table[name]


_STRING_OPS = ("has", "has_cs", "contains", "contains_cs", "startswith", "startswith_cs", "endswith", "endswith_cs")


def _member(base: Any, key: Any) -> Any:
    if isinstance(base, str) and base[:1] in ("{", "["):
        try:
            base = json.loads(base)
        except ValueError:
            return None
    if isinstance(base, dict):
        return base.get(key) if isinstance(key, str) else None
    if isinstance(base, list) and isinstance(key, int | float) and not isinstance(key, bool):
        index = int(key)
        return base[index] if -len(base) <= index < len(base) else None
    return None


# ---------------------------------------------------------------------------------------------
# scalar functions


def _fn_tostring(v: Any) -> str:
    return to_string(v)


def _fn_todatetime(v: Any) -> datetime | None:
    return _as_datetime(v)


def _fn_tolong(v: Any) -> int | None:
    n = _as_number(v)
    return None if n is None or math.isnan(n) else int(n)


def _fn_toreal(v: Any) -> float | None:
    return _as_number(v)


def _fn_tobool(v: Any) -> bool | None:
    return _as_bool(v)


def _fn_parse_json(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def _fn_isempty(v: Any) -> bool:
    return v is None or v == ""


def _fn_split(v: Any, delimiter: Any, index: Any = None) -> Any:
    parts = to_string(v).split(to_string(delimiter))
    if index is None:
        return parts
    i = _fn_tolong(index)
    # Kusto's split(s, d, i) returns a one-element array, not the element itself
    return [parts[i]] if i is not None and -len(parts) <= i < len(parts) else []


def _fn_bin(v: Any, size: Any) -> Any:
    if isinstance(v, datetime) and isinstance(size, timedelta):
        epoch = datetime(1970, 1, 1, tzinfo=v.tzinfo)
        step = size.total_seconds()
        return epoch + timedelta(seconds=math.floor((v - epoch).total_seconds() / step) * step)
    a, b = _as_number(v), _as_number(size)
    if a is None or not b:
        return None
    return math.floor(a / b) * b


def _fn_strcat(*values: Any) -> str:
    return "".join(to_string(v) for v in values)


def _fn_iff(cond: Any, a: Any, b: Any) -> Any:
    return a if _as_bool(cond) else b


def _fn_coalesce(*values: Any) -> Any:
    return next((v for v in values if v is not None and v != ""), None)


def _fn_array_length(v: Any) -> int | None:
    return len(v) if isinstance(v, list) else None


def _fn_extract(pattern: Any, group: Any, text: Any) -> str | None:
    match = re.search(to_string(pattern), to_string(text))
    index = _fn_tolong(group) or 0
    return match.group(index) if match else None


def _fn_tolower(v: Any) -> str:
    return to_string(v).lower()


def _fn_toupper(v: Any) -> str:
    return to_string(v).upper()


def _fn_isnotempty(v: Any) -> bool:
    return not _fn_isempty(v)


def _fn_isnull(v: Any) -> bool:
    return v is None


def _fn_isnotnull(v: Any) -> bool:
    return v is not None


def _fn_strlen(v: Any) -> int:
    return len(to_string(v))


def _fn_not(v: Any) -> bool:
    return not _as_bool(v)


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "tostring": _fn_tostring, "todatetime": _fn_todatetime, "toint": _fn_tolong, "tolong": _fn_tolong,
    "toreal": _fn_toreal, "todouble": _fn_toreal, "tobool": _fn_tobool, "toboolean": _fn_tobool,
    "tolower": _fn_tolower, "toupper": _fn_toupper,
    "parse_json": _fn_parse_json, "todynamic": _fn_parse_json, "isempty": _fn_isempty,
    "isnotempty": _fn_isnotempty, "isnull": _fn_isnull, "isnotnull": _fn_isnotnull,
    "strlen": _fn_strlen, "split": _fn_split, "bin": _fn_bin,
    "strcat": _fn_strcat, "iff": _fn_iff, "iif": _fn_iff, "coalesce": _fn_coalesce,
    "array_length": _fn_array_length, "extract": _fn_extract, "not": _fn_not,
}
_AGGREGATES = ("count", "countif", "dcount", "sum", "avg", "min", "max", "make_set", "make_list",
               "take_any", "any", "arg_max", "arg_min")


# ---------------------------------------------------------------------------------------------
# compiled expressions (closures over a row)


def _constant(value: Any) -> Scalar:
    return lambda r: value


def _either(a: Scalar, b: Scalar) -> Scalar:
    return lambda r: bool(_as_bool(a(r))) or bool(_as_bool(b(r)))


def _both(a: Scalar, b: Scalar) -> Scalar:
    return lambda r: bool(_as_bool(a(r))) and bool(_as_bool(b(r)))


def _arith_of(op: str, a: Scalar, b: Scalar) -> Scalar:
    return lambda r: _arith(op, a(r), b(r))


def _member_of(base: Scalar, key: Scalar) -> Scalar:
    return lambda r: _member(base(r), key(r))


def _now_plus(now: datetime, offset: Scalar) -> Scalar:
    return lambda r: _arith("+", now, offset(r))


def _ago(now: datetime, span: Scalar) -> Scalar:
    def value(r: Row) -> Any:
        got = span(r)
        return now - got if isinstance(got, timedelta) else None
    return value


def _call(fn: Callable[..., Any], args: list[Scalar]) -> Scalar:
    return lambda r: fn(*(a(r) for a in args))


# ---------------------------------------------------------------------------------------------
# parser


class _Parser:
    def __init__(self, tokens: list[_Tok], columns: Sequence[str], now: datetime) -> None:
        self.toks = tokens
        self.i = 0
        self.columns = set(columns)
        self.now = now
        self.named: list[str] = []

    # token helpers
    def peek(self, offset: int = 0) -> _Tok:
        return self.toks[min(self.i + offset, len(self.toks) - 1)]

    def next(self) -> _Tok:
        tok = self.peek()
        self.i += 1
        return tok

    def at(self, kind: str, value: Any = None, offset: int = 0) -> bool:
        tok = self.peek(offset)
        if tok.kind != kind:
            return False
        if value is None:
            return True
        if kind == "ident":
            return bool(str(tok.value).lower() == str(value).lower())
        return bool(tok.value == value)

    def expect(self, kind: str, value: Any = None) -> _Tok:
        if not self.at(kind, value):
            tok = self.peek()
            wanted = value if value is not None else kind
            raise KqlError(f"Expected '{wanted}' at position {tok.pos}, found '{tok.value}'")
        return self.next()

    def accept(self, kind: str, value: Any = None) -> bool:
        if self.at(kind, value):
            self.i += 1
            return True
        return False

    # expressions
    def expr(self) -> Scalar:
        return self.or_expr()

    def or_expr(self) -> Scalar:
        left = self.and_expr()
        while self.accept("ident", "or"):
            right = self.and_expr()
            left = _either(left, right)
        return left

    def and_expr(self) -> Scalar:
        left = self.comparison()
        while self.accept("ident", "and"):
            right = self.comparison()
            left = _both(left, right)
        return left

    def _comparison_op(self) -> str | None:
        tok = self.peek()
        if tok.kind == "op" and tok.value in ("==", "!=", "=~", "!~", "<", "<=", ">", ">=", "<>"):
            self.next()
            return "!=" if tok.value == "<>" else str(tok.value)
        negate = ""
        offset = 0
        if tok.kind == "op" and tok.value == "!" and self.peek(1).kind == "ident":
            negate, offset = "!", 1
        word = self.peek(offset)
        if word.kind == "ident" and str(word.value).lower() in (*_STRING_OPS, "in", "between"):
            name = str(word.value).lower()
            self.i += offset + 1
            if name == "in" and self.accept("op", "~"):
                name = "in~"
            return negate + name
        return None

    def comparison(self) -> Scalar:
        left = self.additive()
        op = self._comparison_op()
        if op is None:
            return left
        if op.lstrip("!") in ("in", "in~"):
            items = self.paren_list()
            return self._in(left, items, negate=op.startswith("!"), insensitive=op.endswith("~"))
        if op.lstrip("!") == "between":
            raise KqlError("'between' is not supported by this double")
        right = self.additive()
        return self._compare(op, left, right)

    @staticmethod
    def _compare(op: str, left: Scalar, right: Scalar) -> Scalar:
        if op == "==":
            return lambda r: _equal(left(r), right(r))
        if op == "!=":
            return lambda r: left(r) is not None and right(r) is not None and not _equal(left(r), right(r))
        if op == "=~":
            return lambda r: left(r) is not None and to_string(left(r)).lower() == to_string(right(r)).lower()
        if op == "!~":
            return lambda r: left(r) is not None and to_string(left(r)).lower() != to_string(right(r)).lower()
        if op in ("<", "<=", ">", ">="):
            def ordered(r: Row) -> bool:
                result = _order(left(r), right(r))
                if result is None:
                    return False
                return {"<": result < 0, "<=": result <= 0, ">": result > 0, ">=": result >= 0}[op]
            return ordered
        negate = op.startswith("!")
        fn = _string_op(op.lstrip("!"))
        if negate:
            return lambda r: not fn(left(r), right(r))
        return lambda r: fn(left(r), right(r))

    @staticmethod
    def _in(left: Scalar, items: list[Scalar], *, negate: bool, insensitive: bool) -> Scalar:
        def check(r: Row) -> bool:
            value = left(r)
            candidates: list[Any] = []
            for item in items:
                got = item(r)
                candidates.extend(got if isinstance(got, list) else [got])
            if insensitive:
                found = any(to_string(value).lower() == to_string(c).lower() for c in candidates)
            else:
                found = any(_equal(value, c) for c in candidates)
            return not found if negate else found
        return check

    def paren_list(self) -> list[Scalar]:
        self.expect("op", "(")
        items: list[Scalar] = []
        if not self.at("op", ")"):
            items.append(self.argument())
            while self.accept("op", ","):
                items.append(self.argument())
        self.expect("op", ")")
        return items

    def argument(self) -> Scalar:
        """An argument; `name = expr` inside a call names the column it produces (as in Microsoft's
        Update Manager sample `tostring(rgName = split(id, "/", 4))`)."""
        if self.at("ident") and self.at("op", "=", 1):
            self.named.append(str(self.next().value))
            self.next()
        return self.expr()

    def additive(self) -> Scalar:
        left = self.multiplicative()
        while self.at("op", "+") or self.at("op", "-"):
            op = self.next().value
            right = self.multiplicative()
            left = _arith_of(str(op), left, right)
        return left

    def multiplicative(self) -> Scalar:
        left = self.unary()
        while self.at("op", "*") or self.at("op", "/") or self.at("op", "%"):
            op = self.next().value
            right = self.unary()
            left = _arith_of(str(op), left, right)
        return left

    def unary(self) -> Scalar:
        if self.accept("op", "-"):
            inner = self.unary()
            return lambda r: _arith("-", 0, inner(r)) if not isinstance(inner(r), timedelta) else -inner(r)
        return self.postfix()

    def postfix(self) -> Scalar:
        value = self.primary()
        while True:
            if self.at("op", ".") and self.peek(1).kind == "ident":
                self.next()
                name = str(self.next().value)
                value = _member_of(value, _constant(name))
            elif self.at("op", "["):
                self.next()
                key = self.expr()
                self.expect("op", "]")
                value = _member_of(value, key)
            else:
                return value

    def primary(self) -> Scalar:
        tok = self.next()
        if tok.kind in ("str", "num", "timespan", "datetime"):
            return _constant(tok.value)
        if tok.kind == "op" and tok.value == "(":
            inner = self.expr()
            self.expect("op", ")")
            return inner
        if tok.kind == "op" and tok.value == "[":
            # ['column name'] at the top level is a column reference
            name_tok = self.expect("str")
            self.expect("op", "]")
            return self.column(str(name_tok.value))
        if tok.kind != "ident":
            raise KqlError(f"Unexpected '{tok.value}' at position {tok.pos}")
        name = str(tok.value)
        lower = name.lower()
        if lower in ("true", "false"):
            return _constant(lower == "true")
        if lower == "null":
            return _constant(None)
        if self.at("op", "("):
            return self.call(lower, tok)
        return self.column(name)

    def column(self, name: str) -> Scalar:
        if name not in self.columns:
            raise KqlError(f"Failed to resolve scalar expression named '{name}'", kind="SemanticError")
        return lambda r: r.get(name)

    def call(self, name: str, tok: _Tok) -> Scalar:
        if name == "dynamic":
            return self.dynamic_literal()
        if name in ("ago", "now"):
            args = self.paren_list()
            now = self.now
            if name == "now":
                return _now_plus(now, args[0] if args else _constant(timedelta(0)))
            if len(args) != 1:
                raise KqlError("ago() expects one timespan argument")
            return _ago(now, args[0])
        if name in _AGGREGATES:
            raise KqlError(f"'{name}' is an aggregation function and may only be used in summarize",
                           kind="SemanticError")
        fn = _FUNCTIONS.get(name)
        if fn is None:
            raise KqlError(f"Unknown function: '{tok.value}'", kind="SemanticError")
        args = self.paren_list()
        return _call(fn, args)

    def dynamic_literal(self) -> Scalar:
        start_tok = self.expect("op", "(")
        depth = 1
        parts: list[str] = []
        while depth:
            tok = self.next()
            if tok.kind == "eof":
                raise KqlError(f"Unterminated dynamic() at position {start_tok.pos}")
            if tok.kind == "op" and tok.value == "(":
                depth += 1
            elif tok.kind == "op" and tok.value == ")":
                depth -= 1
                if not depth:
                    break
            parts.append(json.dumps(tok.value) if tok.kind == "str" else str(tok.value))
        try:
            value = json.loads("".join(parts)) if parts else None
        except ValueError:
            raise KqlError("Unsupported dynamic() literal") from None
        return lambda r: value

    def name_or_expr(self, default_index: int) -> tuple[str, Scalar, str | None]:
        """`name = expr` or a bare expression, named as Kusto names it: after its column, its member
        path (`properties.status` -> `properties_status`), or the path inside a conversion function."""
        if self.at("ident") and self.at("op", "=", 1):
            name = str(self.next().value)
            self.next()
            return name, self.expr(), None
        start = self.i
        self.named = []
        value = self.expr()
        toks = self.toks[start:self.i]
        if len(toks) == 1 and toks[0].kind == "ident":
            return str(toks[0].value), value, str(toks[0].value)
        if len(toks) == 3 and toks[0].kind == "op" and toks[0].value == "[" and toks[1].kind == "str":
            return str(toks[1].value), value, str(toks[1].value)
        if len(self.named) == 1:
            return self.named[0], value, None
        path = _path_name(toks)
        if path is None and len(toks) > 3 and toks[0].kind == "ident" and toks[1].value == "(" \
                and toks[-1].value == ")":
            path = _path_name(toks[2:-1])
        return path or f"Column{default_index}", value, None


def _path_name(toks: list[_Tok]) -> str | None:
    if toks and toks[0].kind == "ident" and all(t.kind == "ident" or (t.kind == "op" and t.value == ".")
                                                for t in toks):
        return "_".join(str(t.value) for t in toks if t.kind == "ident")
    return None


def _arith(op: str, a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if isinstance(a, datetime) and isinstance(b, timedelta):
        return a + b if op == "+" else a - b if op == "-" else None
    if isinstance(a, datetime) and isinstance(b, datetime) and op == "-":
        return a - b
    if isinstance(a, timedelta) and isinstance(b, timedelta) and op in "+-":
        return a + b if op == "+" else a - b
    x, y = _as_number(a), _as_number(b)
    if x is None or y is None:
        return None
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if not y:
        return None
    return x / y if op == "/" else x % y


# ---------------------------------------------------------------------------------------------
# tabular operators


def infer_type(values: Iterable[Any]) -> str:
    for value in values:
        if value is None:
            continue
        if isinstance(value, bool):
            return "bool"
        if isinstance(value, int):
            return "long"
        if isinstance(value, float):
            return "real"
        if isinstance(value, datetime):
            return "datetime"
        if isinstance(value, timedelta):
            return "timespan"
        if isinstance(value, dict | list):
            return "dynamic"
        return "string"
    return "string"


def _compare_values(a: Any, b: Any) -> int:
    if a is None and b is None:
        return 0
    if a is None:
        return -1
    if b is None:
        return 1
    result = _order(a, b)
    if result is None:
        return (to_string(a) > to_string(b)) - (to_string(a) < to_string(b))
    return result


def _split_pipes(tokens: list[_Tok]) -> list[list[_Tok]]:
    segments: list[list[_Tok]] = [[]]
    depth = 0
    for tok in tokens:
        if tok.kind == "op" and tok.value in ("(", "["):
            depth += 1
        elif tok.kind == "op" and tok.value in (")", "]"):
            depth -= 1
        if tok.kind == "op" and tok.value == "|" and depth == 0:
            segments.append([])
            continue
        if tok.kind == "eof":
            continue
        segments[-1].append(tok)
    return segments


class _Engine:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def parser(self, toks: list[_Tok], table: Table) -> _Parser:
        end = toks[-1].pos + 1 if toks else 0
        return _Parser([*toks, _Tok("eof", None, end)], table.columns, self.now)

    def apply(self, toks: list[_Tok], table: Table) -> Table:
        if not toks or toks[0].kind != "ident":
            raise KqlError("A tabular operator was expected after '|'")
        name = str(toks[0].value).lower()
        rest = toks[1:]
        if name in ("project", "order", "mv") and len(toks) >= 3 and toks[1].kind == "op" and toks[1].value == "-":
            name = f"{name}-{str(toks[2].value).lower()}"
            rest = toks[3:]
        handler = {
            "where": self.where, "filter": self.where, "extend": self.extend, "project": self.project,
            "project-away": self.project_away, "project-rename": self.project_rename,
            "order": self.order, "sort": self.order, "take": self.take, "limit": self.take, "top": self.top,
            "distinct": self.distinct, "summarize": self.summarize, "count": self.count,
        }.get(name)
        if handler is None:
            raise KqlError(f"The tabular operator '{toks[0].value}' is not supported by this double")
        return handler(rest, table)

    def where(self, toks: list[_Tok], table: Table) -> Table:
        p = self.parser(toks, table)
        predicate = p.expr()
        p.expect("eof")
        rows = [r for r in table.rows if _as_bool(predicate(r)) is True]
        return Table(table.columns, table.types, rows)

    def _assignments(self, toks: list[_Tok], table: Table) -> list[tuple[str, Scalar, str | None]]:
        p = self.parser(toks, table)
        items = [p.name_or_expr(1)]
        while p.accept("op", ","):
            items.append(p.name_or_expr(len(items) + 1))
        p.expect("eof")
        return items

    def extend(self, toks: list[_Tok], table: Table) -> Table:
        items = self._assignments(toks, table)
        rows = []
        for row in table.rows:
            new = dict(row)
            for name, fn, _src in items:
                new[name] = fn(row)
            rows.append(new)
        columns = list(table.columns)
        types = dict(table.types)
        for name, _fn, src in items:
            if name not in columns:
                columns.append(name)
            types[name] = table.types[src] if src and src in table.types else infer_type(r[name] for r in rows)
        return Table(tuple(columns), types, rows)

    def project(self, toks: list[_Tok], table: Table) -> Table:
        items = self._assignments(toks, table)
        rows = [{name: fn(row) for name, fn, _src in items} for row in table.rows]
        types = {name: (table.types[src] if src and src in table.types else infer_type(r[name] for r in rows))
                 for name, _fn, src in items}
        return Table(tuple(name for name, _fn, _src in items), types, rows)

    def _names(self, toks: list[_Tok]) -> list[str]:
        names = [str(t.value) for t in toks if t.kind in ("ident", "str")]
        if any(t.kind not in ("ident", "str") and not (t.kind == "op" and t.value in (",", "[", "]")) for t in toks):
            raise KqlError("A list of column names was expected")
        return names

    def project_away(self, toks: list[_Tok], table: Table) -> Table:
        drop = set(self._names(toks))
        unknown = drop - set(table.columns)
        if unknown:
            raise KqlError(f"Failed to resolve column named '{sorted(unknown)[0]}'", kind="SemanticError")
        columns = tuple(c for c in table.columns if c not in drop)
        rows = [{c: r.get(c) for c in columns} for r in table.rows]
        return Table(columns, {c: table.types[c] for c in columns}, rows)

    def project_rename(self, toks: list[_Tok], table: Table) -> Table:
        p = self.parser(toks, table)
        renames: dict[str, str] = {}
        while True:
            new = str(p.expect("ident").value)
            p.expect("op", "=")
            old = str(p.expect("ident").value)
            if old not in table.columns:
                raise KqlError(f"Failed to resolve column named '{old}'", kind="SemanticError")
            renames[old] = new
            if not p.accept("op", ","):
                break
        p.expect("eof")
        columns = tuple(renames.get(c, c) for c in table.columns)
        types = {renames.get(c, c): t for c, t in table.types.items()}
        rows = [{renames.get(k, k): v for k, v in r.items()} for r in table.rows]
        return Table(columns, types, rows)

    def _sort_spec(self, p: _Parser) -> list[tuple[Scalar, bool]]:
        keys: list[tuple[Scalar, bool]] = []
        while True:
            key = p.expr()
            descending = True  # Kusto sorts descending unless told otherwise
            if p.accept("ident", "asc"):
                descending = False
            else:
                p.accept("ident", "desc")
            if p.accept("ident", "nulls") and not (p.accept("ident", "first") or p.accept("ident", "last")):
                raise KqlError("'nulls' must be followed by 'first' or 'last'")
            keys.append((key, descending))
            if not p.accept("op", ","):
                return keys

    @staticmethod
    def _sorted(rows: list[Row], keys: list[tuple[Scalar, bool]]) -> list[Row]:
        def cmp(a: Row, b: Row) -> int:
            for key, descending in keys:
                result = _compare_values(key(a), key(b))
                if result:
                    return -result if descending else result
            return 0
        return sorted(rows, key=functools.cmp_to_key(cmp))

    def order(self, toks: list[_Tok], table: Table) -> Table:
        p = self.parser(toks, table)
        p.expect("ident", "by")
        keys = self._sort_spec(p)
        p.expect("eof")
        return Table(table.columns, table.types, self._sorted(table.rows, keys))

    def _count_arg(self, p: _Parser) -> int:
        tok = p.expect("num")
        if not isinstance(tok.value, int) or tok.value < 0:
            raise KqlError("A non-negative integer was expected")
        return tok.value

    def take(self, toks: list[_Tok], table: Table) -> Table:
        p = self.parser(toks, table)
        n = self._count_arg(p)
        p.expect("eof")
        return Table(table.columns, table.types, table.rows[:n])

    def top(self, toks: list[_Tok], table: Table) -> Table:
        p = self.parser(toks, table)
        n = self._count_arg(p)
        p.expect("ident", "by")
        keys = self._sort_spec(p)
        p.expect("eof")
        return Table(table.columns, table.types, self._sorted(table.rows, keys)[:n])

    def distinct(self, toks: list[_Tok], table: Table) -> Table:
        if len(toks) == 1 and toks[0].kind == "op" and toks[0].value == "*":
            names = list(table.columns)
        else:
            items = self._assignments(toks, table)
            return self._group(table, items, [])
        seen: dict[str, Row] = {}
        for row in table.rows:
            key = json.dumps([to_string(row.get(c)) for c in names])
            seen.setdefault(key, row)
        return Table(table.columns, table.types, list(seen.values()))

    def count(self, toks: list[_Tok], table: Table) -> Table:
        if toks:
            raise KqlError("'count' takes no arguments")
        return Table(("Count",), {"Count": "long"}, [{"Count": len(table.rows)}])

    def summarize(self, toks: list[_Tok], table: Table) -> Table:
        by_at = next((i for i, t in enumerate(toks) if t.kind == "ident" and str(t.value).lower() == "by"
                      and _depth_at(toks, i) == 0), None)
        agg_toks = toks[:by_at] if by_at is not None else toks
        key_toks = toks[by_at + 1:] if by_at is not None else []
        keys = self._assignments(key_toks, table) if key_toks else []
        aggs = self._aggregates(agg_toks, table) if agg_toks else []
        return self._group(table, keys, aggs)

    def _aggregates(self, toks: list[_Tok], table: Table) -> list[_Agg]:
        p = self.parser(toks, table)
        aggs: list[_Agg] = []
        while True:
            name: str | None = None
            if p.at("ident") and p.at("op", "=", 1):
                name = str(p.next().value)
                p.next()
            fn_tok = p.expect("ident")
            fn = str(fn_tok.value).lower()
            if fn not in _AGGREGATES:
                raise KqlError(f"'{fn_tok.value}' is not an aggregation function supported by this double")
            p.expect("op", "(")
            args: list[Scalar] = []
            arg_names: list[str | None] = []
            star = False
            while not p.at("op", ")"):
                if p.accept("op", "*"):
                    star = True
                else:
                    start = p.i
                    args.append(p.expr())
                    span = p.toks[start:p.i]
                    arg_names.append(str(span[0].value) if len(span) == 1 and span[0].kind == "ident" else None)
                if not p.accept("op", ","):
                    break
            p.expect("op", ")")
            aggs.append(_Agg(fn, name, args, arg_names, star))
            if not p.accept("op", ","):
                break
        p.expect("eof")
        return aggs

    def _group(self, table: Table, keys: list[tuple[str, Scalar, str | None]], aggs: list[_Agg]) -> Table:
        groups: dict[str, tuple[Row, list[Row]]] = {}
        for row in table.rows:
            key_row = {name: fn(row) for name, fn, _src in keys}
            key = json.dumps([to_string(v) for v in key_row.values()])
            if key not in groups:
                groups[key] = (key_row, [])
            groups[key][1].append(row)
        if not keys and not groups and aggs:
            groups[""] = ({}, [])
        columns: list[str] = [name for name, _fn, _src in keys]
        types: dict[str, str] = {}
        out: list[Row] = []
        for key_row, members in groups.values():
            result = dict(key_row)
            for agg in aggs:
                result.update(agg.evaluate(members, table))
            out.append(result)
        for agg in aggs:
            for column in agg.columns(table):
                if column not in columns:
                    columns.append(column)
        for name, _fn, src in keys:
            types[name] = table.types[src] if src and src in table.types else infer_type(r.get(name) for r in out)
        for agg in aggs:
            types.update(agg.types(table, out))
        return Table(tuple(columns), types, out)


def _depth_at(toks: list[_Tok], index: int) -> int:
    depth = 0
    for tok in toks[:index]:
        if tok.kind == "op" and tok.value in ("(", "["):
            depth += 1
        elif tok.kind == "op" and tok.value in (")", "]"):
            depth -= 1
    return depth


@dataclass
class _Agg:
    fn: str
    name: str | None
    args: list[Scalar]
    arg_names: list[str | None]
    star: bool

    def _default_name(self) -> str:
        if self.fn == "count":
            return "count_"
        if self.fn == "countif":
            return "countif_"
        source = self.arg_names[0] if self.arg_names and self.arg_names[0] else ""
        prefix = "any" if self.fn == "take_any" else self.fn
        return f"{prefix}_{source}" if source else f"{prefix}_"

    def columns(self, table: Table) -> list[str]:
        if self.fn in ("arg_max", "arg_min"):
            first = self.arg_names[0] or "Column1"
            extra = list(table.columns) if self.star else [n or "" for n in self.arg_names[1:]]
            return [first, *[c for c in extra if c and c != first]]
        return [self.name or self._default_name()]

    def types(self, table: Table, rows: list[Row]) -> dict[str, str]:
        if self.fn in ("arg_max", "arg_min"):
            return {c: table.types.get(c) or infer_type(r.get(c) for r in rows) for c in self.columns(table)}
        column = self.columns(table)[0]
        if self.fn in ("count", "countif", "dcount"):
            return {column: "long"}
        if self.fn in ("make_set", "make_list"):
            return {column: "dynamic"}
        if self.fn in ("min", "max", "take_any", "any") and self.arg_names and self.arg_names[0] in table.types:
            return {column: table.types[self.arg_names[0] or ""]}
        return {column: infer_type(r.get(column) for r in rows)}

    def evaluate(self, members: list[Row], table: Table) -> Row:
        fn = self.fn
        if fn == "count":
            return {self.columns(table)[0]: len(members)}
        if not self.args:
            raise KqlError(f"{fn}() expects an argument")
        values = [self.args[0](r) for r in members]
        present = [v for v in values if v is not None]
        column = self.columns(table)[0]
        if fn == "countif":
            return {column: sum(1 for v in values if _as_bool(v))}
        if fn == "dcount":
            return {column: len({to_string(v) for v in present})}
        if fn in ("sum", "avg"):
            numbers = [n for n in (_as_number(v) for v in present) if n is not None]
            if fn == "sum":
                return {column: sum(numbers) if numbers else None}
            return {column: sum(numbers) / len(numbers) if numbers else None}
        if fn in ("min", "max"):
            if not present:
                return {column: None}
            best = present[0]
            for v in present[1:]:
                order = _compare_values(v, best)
                if (fn == "max" and order > 0) or (fn == "min" and order < 0):
                    best = v
            return {column: best}
        if fn in ("make_set", "make_list"):
            if fn == "make_list":
                return {column: present}
            seen: dict[str, Any] = {}
            for v in present:
                seen.setdefault(to_string(v), v)
            return {column: list(seen.values())}
        if fn in ("take_any", "any"):
            return {column: present[0] if present else None}
        # arg_max / arg_min
        best_row: Row | None = None
        best_value: Any = None
        for row, value in zip(members, values, strict=True):
            if value is None:
                continue
            order = _compare_values(value, best_value) if best_row is not None else 1
            if best_row is None or (fn == "arg_max" and order > 0) or (fn == "arg_min" and order < 0):
                best_row, best_value = row, value
        names = self.columns(table)
        if best_row is None:
            return dict.fromkeys(names)
        result = {names[0]: best_value}
        if self.star:
            result.update({c: best_row.get(c) for c in table.columns if c != names[0]})
        else:
            for arg, arg_name in zip(self.args[1:], self.arg_names[1:], strict=True):
                if arg_name:
                    result[arg_name] = arg(best_row)
        return result


def run(query: str, resolve: Callable[[str], Table], now: datetime) -> Table:
    """Runs `query`; `resolve(name)` returns the source table or raises KqlError for an unknown one."""
    tokens = _tokens(query)
    segments = _split_pipes(tokens)
    first = segments[0]
    while first and first[-1].kind == "op" and first[-1].value == ";":
        first = first[:-1]
    if not first or (first[0].kind == "ident" and str(first[0].value).lower() == "let"):
        raise KqlError("A table name was expected at the start of the query ('let' is not supported)")
    if len(first) != 1 or first[0].kind != "ident":
        raise KqlError("A table name was expected at the start of the query")
    table = resolve(str(first[0].value))
    engine = _Engine(now)
    for segment in segments[1:]:
        if not segment:
            raise KqlError("A tabular operator was expected after '|'")
        table = engine.apply(segment, table)
    return table
