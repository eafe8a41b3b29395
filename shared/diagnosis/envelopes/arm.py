"""ARM resources as returned by GET: image templates and Automation update runs.

These are what the sweep and enrichment read, and what people paste from `az ... show`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from shared.core.domain import Failure, Family, SourceKind
from shared.core.errors import PayloadError
from shared.diagnosis.envelopes._common import ARM_ID, family_of, is_failure_status, resource_id, subscription_of
from shared.diagnosis.envelopes._reader import Reader

# Where the build log is (checked against the allowed hosts only when fetched):
# https?://<host>/[<path>/]packerlogs/<...>customization.log, within one word of the text.
_WORD = re.compile(r"[^\s\"']+")
_URL_START = re.compile(r"https?://[A-Za-z0-9.:-]+/")
_LOGS_DIR = "/packerlogs/"
_LOG_NAME = "customization.log"
_ARM_NAME = re.compile(r"[^/\s\x00-\x1f\x7f](?:[^/\x00-\x1f\x7f]{0,258}[^/\s\x00-\x1f\x7f])?")
_OPERATION_ID = re.compile(r"OperationId:\s*([0-9A-Za-z-]+)")
_TEMPLATE_RUN_FAILED = frozenset({"failed", "partiallysucceeded", "canceled", "cancelled"})
# applyUpdates statuses that are no failure besides success and progress: nothing to install, or
# a run someone cancelled (the Cancellation API).
_APPLY_NOT_FAILED = frozenset({"noupdatespending", "cancel", "cancelled", "canceled"})


def kind_of(obj: dict[str, Any]) -> SourceKind | None:
    """Which ARM resource this GET body is, by its type or id."""
    rtype = str(obj.get("type") or "").lower()
    rid = str(obj.get("id") or "").lower()
    props = obj.get("properties")
    pkeys = {k.lower() for k in props} if isinstance(props, dict) else set()
    if rtype.endswith("/imagetemplates") or "/imagetemplates/" in rid or "lastrunstatus" in pkeys:
        return SourceKind.IMAGE_TEMPLATE
    if "/softwareupdateconfigurationmachineruns/" in rid or "targetcomputer" in pkeys:
        return SourceKind.AUTOMATION_MACHINE_RUN
    if "/softwareupdateconfigurationruns/" in rid or "computercount" in pkeys:
        return SourceKind.AUTOMATION_RUN
    if rtype.endswith("/applyupdates") or "/providers/microsoft.maintenance/applyupdates/" in rid:
        return SourceKind.MAINTENANCE
    return None


def parse_image_template(r: Reader) -> Failure:
    rid = resource_id(r.ident("id"), r.at("id"))
    props = r.req_child("properties")
    state = props.text("provisioningState")
    texts: list[str] = []
    failed = False
    status = state
    perr = props.child("provisioningError")
    if state is not None and state.lower() == "failed":
        failed = True
        if perr is not None:
            code = perr.text("provisioningErrorCode")
            texts.append(f"provisioningError {code or ''}: {perr.text('message') or ''}".strip())
        else:
            texts.append("provisioningState Failed")
    last = props.child("lastRunStatus")
    started = ended = None
    if last is not None:
        run_state = last.text("runState")
        started, ended = last.time("startTime"), last.time("endTime")
        if run_state is not None:
            status = run_state if not failed else status
            if run_state.lower() in _TEMPLATE_RUN_FAILED:
                failed = True
                status = run_state
                sub = last.text("runSubState")
                state_text = f"{run_state} ({sub})" if sub else run_state
                texts.append(f"lastRunStatus {state_text}: {last.text('message') or ''}")
    facts: list[tuple[str, str]] = []
    vm = props.child("vmProfile")
    if vm is not None and vm.text("vmSize"):
        facts.append(("vm_size", vm.text("vmSize") or ""))
    timeout = props.number("buildTimeoutInMinutes")
    if timeout is not None:
        facts.append(("build_timeout_minutes", str(int(timeout))))
    joined = "\n".join(texts)
    if (url := log_url(joined)) is not None:
        facts.append(("build_log_url", url))
    if (op := _OPERATION_ID.search(joined)) is not None:
        facts.append(("operation_id", op.group(1)))
    return Failure(
        source=SourceKind.IMAGE_TEMPLATE,
        failed=failed,
        texts=tuple(texts),
        family=Family.AIB,
        resource_id=rid,
        subscription_id=subscription_of(rid),
        operation="Microsoft.VirtualMachineImages/imageTemplates/run/action",
        status=status,
        started_at=started,
        ended_at=ended,
        facts=tuple(facts),
    )


def log_url(text: str) -> str | None:
    """The first build-log URL in `text`, or None; in time linear in the text's length.

    (A single regex with nested quantifiers took seconds per 100 KB of crafted text.) A URL
    whose port is not a port is no URL: it is left out rather than failing a fetch later.
    """
    if _LOGS_DIR not in text or _LOG_NAME not in text:
        return None
    for word in _WORD.finditer(text):
        token = word.group(0)
        last = token.rfind(_LOG_NAME)
        if last < 0 or _LOGS_DIR not in token:
            continue
        for start in _URL_START.finditer(token):
            # The last packerlogs directory with a log name after it, as the regex's greedy path did.
            at = token.rfind(_LOGS_DIR, start.end() - 1, last - 1) if last - 1 > start.end() else -1
            if at < 0 or at == start.end():  # none, or `host//packerlogs/` (an empty path segment)
                break  # a later start in this word has no more after it than this one
            end = token.find(_LOG_NAME, at + len(_LOGS_DIR) + 1)
            url = token[start.start():end + len(_LOG_NAME)]
            try:
                urlsplit(url).port  # noqa: B018 (raises ValueError for a port out of range)
            except ValueError:
                break
            return url
    return None


def parse_update_run(r: Reader, kind: SourceKind) -> Failure:
    """A software update configuration run or machine run: status, error, counts."""
    rid = resource_id(r.ident("id"), r.at("id"))
    props = r.req_child("properties")
    status = props.req("status")
    what = "update run" if kind is SourceKind.AUTOMATION_RUN else "update machine run"
    texts = [f"{what} status: {status}"]
    err = props.child("error")
    if err is not None and (err.text("message") or err.text("code")):
        texts.append(f"error {err.text('code') or ''}: {err.text('message') or ''}".strip())
    facts: list[tuple[str, str]] = []
    suc = props.child("softwareUpdateConfiguration")
    if suc is not None and (name := suc.text("name")):
        if not _ARM_NAME.fullmatch(name):  # it names the deployment a remediation acts on
            raise PayloadError(suc.at("name"), f"expected a resource name (no '/', no surrounding spaces, at most "
                                               f"260 characters), got {name[:80]!r}")
        facts.append(("software_update_configuration", name))
    for key, fact in (
        ("targetComputer", "target_computer"), ("sourceComputerId", "source_computer_id"),
        ("configuredDuration", "configured_duration"), ("osType", "os_type"),
        ("targetComputerType", "target_computer_type"),
    ):
        value = props.text(key)
        if value:
            facts.append((fact, value))
    for key, fact in (("computerCount", "computer_count"), ("failedCount", "failed_count")):
        number = props.number(key)
        if number is not None:
            facts.append((fact, str(int(number))))
    correlation = props.text("correlationId")
    return Failure(
        source=kind,
        failed=is_failure_status(status),
        texts=tuple(texts),
        family=Family.UPDATE,
        resource_id=rid,
        subscription_id=subscription_of(rid),
        operation=kind.value,
        status=status,
        correlation_ids=(correlation,) if correlation else (),
        started_at=props.time("startTime"),
        ended_at=props.time("endTime"),
        facts=tuple(facts),
    )


def parse_apply_update(r: Reader) -> Failure:
    """An Update Manager `Microsoft.Maintenance/applyUpdates` as ARM GET returns it: the status of one
    update run on one resource (Completed; Pending / InProgress; RetryNow / RetryLater when the
    installation failed), the resource it ran on, and the maintenance configuration where newer
    API versions name it."""
    rid = resource_id(r.ident("id"), r.at("id"))
    props = r.req_child("properties")
    status = props.req("status")
    target = resource_id(props.ident("resourceId"), props.at("resourceId"))
    config = resource_id(props.ident("maintenanceConfigurationId"), props.at("maintenanceConfigurationId"))
    low = status.strip().lower()
    failed = low not in _APPLY_NOT_FAILED and is_failure_status(status)
    texts = [f"Update Manager apply updates status: {status}"]
    for key in ("errorMessage", "error"):
        value = props.get(key)
        if isinstance(value, str) and value.strip():
            texts.append(value)
        elif isinstance(value, dict):
            err = Reader(value, props.at(key))
            _error_lines(err, texts, 0)
    facts: list[tuple[str, str]] = [("apply_update_id", rid or "")]
    if config:
        facts.append(("maintenance_configuration_id", config))
    resource = target or rid
    return Failure(
        source=SourceKind.MAINTENANCE,
        failed=failed,
        texts=tuple(texts),
        family=Family.UPDATE,
        resource_id=resource,
        subscription_id=subscription_of(resource),
        operation="Microsoft.Maintenance/applyUpdates",
        status=status,
        correlation_ids=(rid,) if rid else (),
        started_at=props.time("startDateTime") or props.time("lastUpdateTime"),
        ended_at=props.time("endDateTime"),
        facts=tuple(facts),
    )


def parse_error_body(r: Reader, family: Family | None) -> Failure:
    """`{"error": {"code", "message", "details"}}` as pasted from `az rest` or an SDK."""
    err = r.req_child("error")
    texts: list[str] = []
    _error_lines(err, texts, 0)
    if not texts:
        raise PayloadError(err.path, "an ARM error body needs a code or a message")
    target = err.ident("target")
    return Failure(
        source=SourceKind.TEXT,
        failed=True,
        texts=tuple(texts),
        family=family or family_of(*texts),
        resource_id=target if target and ARM_ID.fullmatch(target) else None,
        status=err.text("code"),
    )


def _error_lines(err: Reader, out: list[str], depth: int) -> None:
    code, message = err.text("code"), err.text("message")
    if code or message:
        out.append(f"{code or ''}: {message or ''}".strip(": "))
    if depth < 8:
        for detail in err.children("details"):
            _error_lines(detail, out, depth + 1)
