"""Plan, then (unless dry run or nothing to do) apply and verify: one remediation, one target.

Every outcome is a value: a permanent Azure error or a refused limit becomes `failed`
with a reason a person can act on; only programming errors escape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from remediations.base import Outcome, Plan, RemediationError, Result, registry
from remediations.context import Context

log = logging.getLogger("remediator.remediations")


class UnknownRemediation(KeyError):
    """No remediation by that name (the message lists the known ones)."""


def describe_error(exc: BaseException) -> str:
    """`(Code) message [HTTP n]` for Azure errors, the message for ours."""
    from azure.core.exceptions import HttpResponseError

    if isinstance(exc, HttpResponseError):
        error = getattr(exc, "error", None)
        code = getattr(error, "code", None) or getattr(exc, "reason", None) or "Error"
        message = getattr(error, "message", None) or str(exc.message or exc)
        return f"({code}) {message} [HTTP {exc.status_code}]"
    return str(exc) or type(exc).__name__


def is_operational(exc: BaseException) -> bool:
    """Errors of the world (Azure, network, refused limits), as opposed to bugs."""
    from azure.core.exceptions import AzureError

    from shared.azure.endpoints import RedirectRefused
    from shared.azure.insights import FetchRefused
    from shared.core.errors import PayloadError

    return isinstance(exc, (RemediationError, AzureError, FetchRefused, RedirectRefused, OSError, PayloadError))


def execute(name: str, target: str, params: Mapping[str, str], ctx: Context, *, dry_run: bool = False,
            accept: Callable[[Plan], str | None] | None = None) -> Outcome:
    """`accept` sees the live plan right before it is applied and may refuse it (a reason):
    an approved job applies only the approved changes or fewer, checked where it cannot race."""
    remediation = registry().items.get(name)
    if remediation is None:
        raise UnknownRemediation(f"no remediation {name!r}; known: {', '.join(sorted(registry().items))}")
    started = time.monotonic()
    plan = None
    try:
        plan = remediation.plan(target, params, ctx)
        if plan.empty:
            return Outcome(Result.NOOP, plan, duration_ms=_ms(started))
        if dry_run:
            return Outcome(Result.DRY_RUN, plan, duration_ms=_ms(started))
        refused = accept(plan) if accept is not None else None
        if refused is not None:
            return Outcome(Result.FAILED, plan, error=refused, duration_ms=_ms(started), drifted=True)
        log.info("applying %s to %s: %s", name, target, plan.reason,
                 extra={"remediation": name, "target": target})
        remediation.apply(plan, ctx)
        verified = remediation.verify(plan, ctx)
    except Exception as exc:
        if not is_operational(exc):
            raise
        from shared.azure.retry import is_transient

        reason = describe_error(exc)
        log.warning("%s on %s failed: %s", name, target, reason, extra={"remediation": name, "target": target})
        return Outcome(Result.FAILED, plan, error=reason, duration_ms=_ms(started), transient=is_transient(exc))
    if not verified:
        return Outcome(Result.FAILED, plan, error="applied, but re-reading the resource does not show the change",
                       duration_ms=_ms(started))
    return Outcome(Result.APPLIED, plan, verified=True, duration_ms=_ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
