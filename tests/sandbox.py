"""Pytest plugin: the local Azure double with the sandbox estate, and a remediation Context
wired to it through the real SDK clients (no sleeping: retries and polls are instant)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from remediations.context import Context
from remediations.limits import Limits
from remediations.vault import MemoryVault
from sandbox import AzureDouble, sandbox_estate
from shared.azure.clients import Clients
from shared.azure.endpoints import Endpoints
from shared.azure.retry import RetryPolicy


class Sleeps:
    """An injected sleep that records what it was asked to wait."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def double() -> Iterator[AzureDouble]:
    with AzureDouble(estate=sandbox_estate(), poll_after=1) as d:
        yield d


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_context(double: AzureDouble, sleeps: Sleeps | None = None, limits: Limits | None = None) -> Context:
    sleep = sleeps or Sleeps()
    return Context(
        clients=Clients(Endpoints(arm=double.arm_url, logs=double.logs_url), polling_interval=0),
        limits=limits or Limits(),
        vault=MemoryVault(),
        retry=RetryPolicy(attempts=5, sleep=sleep, jitter=lambda: 0.0),
        workspace_id=double.refs["workspace_id"],
        sleep=sleep,
    )


@pytest.fixture
def ctx(double: AzureDouble, sleeps: Sleeps) -> Context:
    return make_context(double, sleeps)
