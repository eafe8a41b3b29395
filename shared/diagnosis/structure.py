"""What a failure text says by its structure, before any wording is matched.

Read from the classifier's folded text (unescaped, lower-cased, whitespace-folded), once:
- the error `code`s at any depth: ARM `error.code` / `details[].code` of nested or string-escaped
  JSON (the classifier unescapes twice), Go autorest `Code="..."`, PowerShell `Code=...;`, az
  `(Code) message` and `Code: ...`, Packer `ERROR: -> Code :`, storage XML `<Code>`, portal
  `Error code X`; in order of appearance, the innermost (decisive) one last among its siblings;
- the HTTP statuses (`StatusCode=403`, `unexpected status 404`, `(CODE: 404)`, ...);
- whether the text reports a failure at all: a listing or configuration of succeeded resources
  with no failure word is no failure;
- the OS a patch run or machine speaks of.

Every reader is gated by a literal `in` test, so a text without the structure pays nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Codes that wrap the real one: they say only that something below failed.
WRAPPER_CODES = frozenset({
    "deploymentfailed", "resourcedeploymentfailure", "conflict", "badrequest", "failed", "failure",
    "internalservererror", "invalidtemplatedeployment", "preflightvalidationcheckfailed",
    "multipleerrorsoccurred", "operationfailed", "error", "unknown", "internaloperationerror",
    "deploymentactiveandwaiting", "longrunningoperationfailed", "invalidrequestformat", "badgateway",
    "none", "null", "ok", "accepted", "canceled", "cancelled", "requestfailed", "validationerror",
    "notfound", "forbidden", "unauthorized", "invalidjson", "resourceoperationfailure", "string",
})

# The shapes a code takes after the word `code` (found with str.find, then matched there): JSON
# `"code": "X"` / `"errorCode": "X"`, autorest `Code="X"`, PowerShell `Code=X;`, `Code: X`, portal
# `Error code X`, storage XML `<Code>X</Code>`.
_AT_CODE = re.compile(
    r'code"\s*:\s*"([a-z][a-z0-9_.]{2,80})"|code\s*=\s*\\?"?([a-z][a-z0-9_]{2,80})|code\s*:\s*([a-z][a-z0-9]{5,80})\b|'
    # with no colon: a code only after the words a code follows (_CODE_LEADS, checked by `codes`)
    r"code\s+([a-z][a-z0-9]{5,80})\b|"
    r"code>([a-z][a-z0-9]{3,80})</code>"
)
_BARE = 4  # the group of the no-colon form
# "error code SkuNotAvailable", "npm ERR! code ERESOLVE"; in prose ("that code actually means ...") none. Every
# shape of _AT_CODE starts with "code" (the engine scans for it in C): what precedes it is checked here.
_CODE_LEADS = ("error ", "error", "err! ", "response ", "failure ", "result ", "reason ", "status ")  # errorCode X
_ERROR_TYPE = re.compile(r"error type\s*:?\s+([a-z][a-z0-9]{5,80})\b")
_PACKER_CODE = re.compile(r"error: ->\s+([a-z][a-z0-9]{3,80})\s*:")  # Packer: ERROR: -> Code : message
_AZ_CODE = re.compile(r"\(([a-z][a-z0-9]{5,80})\) ")  # az: (Code) message, at the start or after ": "
# Words `code` is followed by that are no error code.
_NOT_CODES = frozenset({
    "returned", "ended", "exited", "error", "errors", "value", "values", "which", "there", "their", "should",
    "cannot", "because", "before", "during", "while", "without", "message", "status", "number", "snippet",
    "version", "execution", "available", "provided", "string", "failure", "failed", "generic", "server",
    "internal", "expected", "details", "detail", "request", "response", "within", "exceeded", "notfound",
    "signal", "source", "sample", "editor", "change", "changes", "review", "blocks", "check", "written",
    "output", "runner", "analysis", "quality", "coverage", "section", "unavailable", "telemetry",
})

# What stands before an HTTP status (`StatusCode=403`, `Status=404`, `unexpected status 404`, `status code:
# 403`, `(CODE: 404)`, `HTTP 403`, `Error 403:`, `RESPONSE 400:`) or after it (`403 Forbidden`, `404 Not Found`).
_HTTP_BEFORE = re.compile(r"(?:status ?code\W{0,3}|status\s*=\s*|unexpected status |status code: |\(code: |"
                          r"http(?:/1\.1)? |error |response )$")
_HTTP_AFTER = re.compile(r" (?:forbidden|not found|unauthorized|bad request|conflict)\b")
# Statuses looked at, from the end of the text (a long log's decisive ones are near its end).
_HTTP_LOOK = 32

_SUCCESS = ('"succeeded"', ": succeeded", "= succeeded", "'succeeded'")
# In a body that reports success, only these say something failed.
_STRONG_FAILURE_WORDS = ("fail", "error", "exception", "errored", "denied", "timed out", "cancel", "not found",
                         "unable", "cannot", "could not", "exceeded", "0x8", "although", "but ", "never", "not ",
                         "n't", "missing", "stuck", "restarted", "rebooted", "instead")
_BENIGN = ("onvalidationerror", "oncustomizererror", "errorhandling", '"error": null', '"error": {}',
           '"errors": []', '"error": ""', '"failed": 0', "continueonerror", "erroraction", "timeoutinminutes")

WINDOWS_WORDS = ("windows", "windowspatchextension", "windowsosupdateextension", " kb", "wuauserv", "wsus")
LINUX_WORDS = ("linux", "apt", "yum", "zypper", "dpkg", "rpm", "ubuntu", "rhel", "centos", "suse", "debian",
               "linuxpatchextension", "linuxosupdateextension", "red hat", "tdnf", "oracle linux", "sles")
# The same words as whole words ("apt" is no word of "adapter", "rpm" none of "rpmdb"'s neighbours):
# the literal tuples above only gate the regexes.
_WINDOWS_RE = re.compile(r"\b(?:windows\w*|kb\d{6,8}|wuauserv|wsus|win(?:10|11|2k\d*|20\d\d))\b")
_LINUX_RE = re.compile(r"\b(?:linux\w*|apt|apt-get|yum|zypper|dpkg|rpm|ubuntu|rhel|centos|suse|debian|red hat|tdnf|"
                       r"sles|dnf|almalinux|rocky)\b")
_OS_TYPE = re.compile(r'"?os ?type"?\W{0,4}(windows|linux)')


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    start: int


def _at(flat: str, literal: str, pattern: re.Pattern[str], found: list[tuple[int, str]], shift: int = 0) -> None:
    pos = flat.find(literal)
    while pos >= 0:
        m = pattern.match(flat, pos + shift)
        if m is not None:
            found.append((pos, m.group(m.lastindex or 1)))
        pos = flat.find(literal, pos + 1)


def codes(flat: str) -> tuple[Code, ...]:
    """The error codes of the text, in order of appearance."""
    found: list[tuple[int, str]] = []
    if "code" in flat:
        for m in _AT_CODE.finditer(flat):  # every shape starts with "code": the engine scans for it in C
            pos = m.start()
            if m.lastindex == _BARE and not flat.endswith(_CODE_LEADS, 0, pos):
                continue
            if not pos or not flat[pos - 1].isalpha() or flat.startswith("error", pos - 5):
                found.append((pos, m.group(m.lastindex or 1)))
    if "error type" in flat:
        _at(flat, "error type", _ERROR_TYPE, found)
    if "error: ->" in flat:
        _at(flat, "error: ->", _PACKER_CODE, found)
    if flat[:1] == "(":
        az = _AZ_CODE.match(flat)
        if az is not None:
            found.append((0, az.group(1)))
    if ": (" in flat:
        _at(flat, ": (", _AZ_CODE, found, 2)
    if not found:
        return ()
    found.sort()
    out: list[Code] = []
    for start, raw in found:
        value = raw.rstrip(".")
        if value in _NOT_CODES or value.isdigit() or len(value) < 4:
            continue
        out.append(Code(value, start))
    return tuple(out)


def decisive_code(found: tuple[Code, ...]) -> Code | None:
    """The code that says what failed: the last one that is no wrapper (inner details come after
    their wrappers in every serialisation; Packer and az print the innermost last)."""
    for c in reversed(found):
        if c.code not in WRAPPER_CODES:
            return c
    return None


def http_status(flat: str, status: str) -> int:
    """Where the text reports HTTP `status` (e.g. "403") as a status, the last place; -1 if nowhere.
    Only the status's own occurrences are looked at, so a 1 MB log costs a few `rfind`s."""
    end = len(flat)
    for _ in range(_HTTP_LOOK):
        pos = flat.rfind(status, 0, end)
        if pos < 0:
            return -1
        after = pos + len(status)
        if not (pos and flat[pos - 1].isalnum()) and not (after < len(flat) and flat[after].isalnum()) and (
                _HTTP_BEFORE.search(flat, max(0, pos - 24), pos) or _HTTP_AFTER.match(flat, after)):
            return pos
        end = pos
    return -1


def reports_failure(flat: str) -> bool:
    """False for a structured body (JSON) that reports success and names no failure or complaint: a
    listing or configuration of succeeded resources (its error-handling settings and empty error
    fields are no failure). Plain text always may report one."""
    if flat[:1] not in ("{", "[") or not any(s in flat for s in _SUCCESS):
        return True
    probe = flat
    for benign in _BENIGN:
        if benign in probe:
            probe = probe.replace(benign, "")
    return any(w in probe for w in _STRONG_FAILURE_WORDS)


def os_of(flat: str) -> str | None:
    """`windows` or `linux` when the text says which OS the machine or run has (an `osType` wins),
    None when it says neither or both."""
    if "type" in flat:
        m = _OS_TYPE.search(flat)
        if m:
            return m.group(1)
    win = any(w in flat for w in WINDOWS_WORDS) and _WINDOWS_RE.search(flat) is not None
    lin = any(w in flat for w in LINUX_WORDS) and _LINUX_RE.search(flat) is not None
    if win == lin:
        return None
    return "windows" if win else "linux"
