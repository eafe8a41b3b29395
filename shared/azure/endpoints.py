"""Where the Azure APIs are: the public clouds' hosts, or a local double on loopback.

`REMEDIATOR_ARM_ENDPOINT` / `REMEDIATOR_LOGS_ENDPOINT` point every command at another
endpoint; plain http is accepted only on loopback, so a token never crosses a network
in clear text.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

ARM_DEFAULT = "https://management.azure.com"
LOGS_DEFAULT = "https://api.loganalytics.io/v1"
ARM_SCOPE = "https://management.azure.com/.default"
LOGS_SCOPE = "https://api.loganalytics.io/.default"


class EndpointError(ValueError):
    """An endpoint setting that is not allowed (named in the message)."""


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url.rstrip("/")
    if parts.scheme == "http" and is_loopback(url):
        return url.rstrip("/")
    raise EndpointError(f"{name}={url!r}: use https, or plain http on a loopback address only")


@dataclass(frozen=True, slots=True)
class Endpoints:
    arm: str = ARM_DEFAULT
    logs: str = LOGS_DEFAULT

    @property
    def local(self) -> bool:
        """True when both APIs are a local double (plain http allowed, static token)."""
        return is_loopback(self.arm) and is_loopback(self.logs)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Endpoints:
        env = os.environ if env is None else env
        arm = check("REMEDIATOR_ARM_ENDPOINT", env.get("REMEDIATOR_ARM_ENDPOINT") or ARM_DEFAULT)
        logs = env.get("REMEDIATOR_LOGS_ENDPOINT")
        if logs:
            logs = check("REMEDIATOR_LOGS_ENDPOINT", logs)
        elif arm != ARM_DEFAULT:
            logs = f"{arm}/v1"  # a local double serves both APIs
        else:
            logs = LOGS_DEFAULT
        return cls(arm=arm, logs=logs)


class RedirectRefused(ValueError):
    """An outbound request answered with a redirect: never followed, it could lead anywhere."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        raise RedirectRefused(f"redirect to {args[-1]!r} not followed")


@functools.cache
def no_redirect_opener() -> urllib.request.OpenerDirector:
    """For outbound fetches whose host was checked: a redirect would skip that check. Built once
    (its handlers keep no per-request state): building one costs more than a loopback fetch."""
    return urllib.request.build_opener(_NoRedirect)
