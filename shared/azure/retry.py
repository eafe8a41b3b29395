"""Retries for Azure calls: one policy, owned here.

How this stacks with azure-core: every client is built with azure-core's own retry
policy switched off (`retry_total=0`), so an SDK call makes exactly one HTTP attempt and
tenacity alone decides. Stacking both would multiply attempts (3 x 5) and hide the real
number of changes tried; one owner keeps the bound explicit and the sleep injectable.

Transient: 408, 429 (honouring `Retry-After`), 5xx, and connection errors. Anything
else (4xx) is permanent and raised at once, to be recorded with its reason.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    max_seconds: float = 120.0
    base_delay: float = 0.5
    max_delay: float = 20.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    jitter: Callable[[], float] = field(default=random.random, compare=False)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_after_delay

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts) | stop_after_delay(self.max_seconds),
            wait=self._wait,
            retry=retry_if_exception(is_transient),
            sleep=self.sleep,
            reraise=True,
        )
        return retrying(fn, *args, **kwargs)

    def _wait(self, state: Any) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        hinted = retry_after(exc)
        if hinted is not None:
            return min(hinted, MAX_RETRY_AFTER)
        attempt = int(state.attempt_number)
        exp = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return float(exp / 2 + self.jitter() * exp / 2)  # "equal jitter": never zero, never over the cap


def status_of(exc: BaseException | None) -> int | None:
    status = getattr(exc, "status_code", None)
    if status is None:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def is_transient(exc: BaseException) -> bool:
    from urllib.error import HTTPError, URLError

    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    if isinstance(exc, HTTPError):  # plain HTTP fetches (blob logs)
        return exc.code in TRANSIENT_STATUS
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, ConnectionError, TimeoutError, URLError)):
        return True
    if isinstance(exc, HttpResponseError):
        return status_of(exc) in TRANSIENT_STATUS
    return False


def retry_after(exc: BaseException | None) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or getattr(exc, "headers", None)
    if not headers:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
