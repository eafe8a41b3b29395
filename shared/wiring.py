"""Wires the app from its settings, once per process and on first use (never at import).

Every Functions handler and the HTTP API get their collaborators from `app()`; tests
build an `App` directly with Azurite, the local Azure double and a temporary card sink.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any

from remediations.context import Context
from shared.approvals.cards import Notifier
from shared.decisions.policy import GLOBAL_SCOPE, Policy
from shared.state.approvals import Approvals
from shared.state.audit import Audit
from shared.state.counters import Counters
from shared.state.jobs import JobQueue
from shared.state.ledger import Ledger
from shared.state.locks import TargetLocks
from shared.state.operations import Operations
from shared.state.tables import StateStore

APPROVAL_TTL = timedelta(hours=24)
BUDGET_SHARDS = 8  # rows of the fleet's hourly budget (Counters: each holds a fixed share of the limit)
log = logging.getLogger("remediator.bootstrap")


class ConfigError(ValueError):
    """A setting the app cannot run with (named in the message)."""


@dataclass
class App:
    store: StateStore
    queue: JobQueue
    ctx: Context
    policy: Policy
    notifier: Notifier
    signing_keys: tuple[bytes, ...]
    public_url: str
    approvers: frozenset[str] = frozenset()
    approval_ttl: timedelta = APPROVAL_TTL
    settings: Mapping[str, str] = field(default_factory=dict)
    card_retry_seconds: float = 2.0  # between attempts to post a card (tests set 0)
    # True only where the platform vouches for the signed-in user (App Service authentication on):
    # then, and only then, X-MS-CLIENT-PRINCIPAL names who decides.
    identity_verified: bool = False

    @cached_property
    def ledger(self) -> Ledger:
        """Keys live long enough to outlast any redelivery of an event (Event Grid: 24 h)."""
        return Ledger(self.store, in_progress_ttl=timedelta(minutes=30), retention=timedelta(days=7))

    @cached_property
    def proposals(self) -> Ledger:
        """Failures awaiting a decision: held for as long as their approval can be decided."""
        return Ledger(self.store, in_progress_ttl=self.approval_ttl + timedelta(minutes=5),
                      retention=timedelta(days=7))

    @cached_property
    def locks(self) -> TargetLocks:
        return TargetLocks(self.store)

    @cached_property
    def approvals(self) -> Approvals:
        return Approvals(self.store, ttl=self.approval_ttl)

    @cached_property
    def audit(self) -> Audit:
        return Audit(self.store)

    @cached_property
    def counters(self) -> Counters:
        # every change spends the fleet's hour: spread over shards, concurrent takers rarely collide
        return Counters(self.store, shards={GLOBAL_SCOPE: BUDGET_SHARDS})

    @cached_property
    def operations(self) -> Operations:
        return Operations(self.store)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> App:
        from remediations.limits import Limits
        from remediations.vault import DirVault
        from shared.approvals.links import parse_keys
        from shared.azure.clients import Clients
        from shared.azure.endpoints import Endpoints
        from shared.state.vault import TableVault

        env = dict(os.environ if env is None else env)
        store = StateStore.from_env(env)
        try:
            keys = parse_keys(env.get("REMEDIATOR_SIGNING_KEY", ""))
        except ValueError as exc:
            raise ConfigError(f"REMEDIATOR_SIGNING_KEY: {exc} (base64, at least 16 bytes)") from None
        public_url = (env.get("REMEDIATOR_PUBLIC_URL") or "").rstrip("/")
        if not public_url:
            host = env.get("WEBSITE_HOSTNAME")
            public_url = f"https://{host}" if host else "http://localhost:7071"
        approvers = frozenset(a.strip().lower() for a in env.get("REMEDIATOR_APPROVERS", "").split(",") if a.strip())
        # App Service authentication sets WEBSITE_AUTH_ENABLED; only then is X-MS-CLIENT-PRINCIPAL the
        # platform's word (it strips the header from incoming requests). An allow-list without it
        # would trust a header anyone holding a link can send: refuse to start.
        identity_verified = env.get("WEBSITE_AUTH_ENABLED", "").strip().lower() == "true"
        if approvers and not identity_verified:
            raise ConfigError("REMEDIATOR_APPROVERS is set but App Service authentication is off "
                              "(WEBSITE_AUTH_ENABLED is not True): nothing would verify who approves. Turn on "
                              "authentication (infra: approverAuthClientId) or unset REMEDIATOR_APPROVERS")
        vault: Any = TableVault(store) if env.get("REMEDIATOR_VAULT_DIR") is None else DirVault.default()
        ctx = Context(clients=Clients(Endpoints.from_env(env)), limits=Limits.from_env(env), vault=vault,
                      workspace_id=env.get("REMEDIATOR_WORKSPACE_ID") or None)
        webhook = env.get("REMEDIATOR_TEAMS_WEBHOOK_URL") or None
        if webhook is not None and webhook.startswith("@Microsoft.KeyVault("):
            # App Service leaves a reference it cannot resolve (secret not set yet) as it is.
            log.error("REMEDIATOR_TEAMS_WEBHOOK_URL is an unresolved Key Vault reference: set the secret "
                      "teams-webhook-url; approval cards go to the local sink until then")
            webhook = None
        return cls(store=store, queue=JobQueue.from_env(env), ctx=ctx, policy=Policy.from_env(env),
                   notifier=Notifier(webhook), signing_keys=keys,
                   public_url=public_url, approvers=approvers, settings=env, identity_verified=identity_verified)


_APP: App | None = None
_LOCK = threading.Lock()


def app() -> App:
    global _APP  # noqa: PLW0603 (one wired app per process, built on first use)
    with _LOCK:
        if _APP is None:
            from shared.core import telemetry

            telemetry.configure()
            telemetry.quiet_sdk_http_logs()
            _APP = App.from_env()
        return _APP


def use(instance: App | None) -> None:
    """Tests and local runners install their own wiring."""
    global _APP  # noqa: PLW0603
    with _LOCK:
        _APP = instance
