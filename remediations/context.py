"""Everything a remediation needs from outside, wired once (cosmicpython's bootstrap).

Nothing is created at import time; SDK clients are built on first use inside the adapters.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

from remediations.limits import Limits
from remediations.vault import DirVault, TemplateVault
from shared.azure.automation import Automation
from shared.azure.clients import Clients
from shared.azure.compute import Compute
from shared.azure.imagebuilder import ImageBuilder
from shared.azure.insights import Insights
from shared.azure.maintenance import Maintenance
from shared.azure.patching import Patching
from shared.azure.providers import Providers, Resources
from shared.azure.resourcegraph import ResourceGraph
from shared.azure.retry import RetryPolicy


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    clients: Clients = field(default_factory=Clients)
    limits: Limits = field(default_factory=Limits.from_env)
    vault: TemplateVault = field(default_factory=DirVault.default)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    workspace_id: str | None = field(default_factory=lambda: os.environ.get("REMEDIATOR_WORKSPACE_ID") or None)
    now: Callable[[], datetime] = _now
    sleep: Callable[[float], None] = time.sleep

    @cached_property
    def providers(self) -> Providers:
        return Providers(self.clients, self.retry)

    @cached_property
    def resources(self) -> Resources:
        return Resources(self.clients, self.retry)

    @cached_property
    def automation(self) -> Automation:
        return Automation(self.clients, self.retry)

    @cached_property
    def maintenance(self) -> Maintenance:
        return Maintenance(self.clients, self.retry)

    @cached_property
    def images(self) -> ImageBuilder:
        return ImageBuilder(self.clients, self.retry)

    @cached_property
    def insights(self) -> Insights:
        return Insights(self.clients, self.retry)

    @cached_property
    def compute(self) -> Compute:
        """Azure VMs and Arc machines, read one at a time (instance view, extensions)."""
        return Compute(self.clients, self.retry)

    @cached_property
    def graph(self) -> ResourceGraph:
        return ResourceGraph(self.clients, self.retry)

    @cached_property
    def patching(self) -> Patching:
        """Guest patching's write side: patch settings, extensions, assess/install, start/restart, assignments."""
        return Patching(self.clients, self.retry)
