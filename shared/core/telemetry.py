"""Telemetry: OpenTelemetry to Application Insights when it is configured, and the
product's own metrics (diagnoses by scenario; remediations applied, failed, proposed).

Nothing here runs at import. `configure()` is called once, by the bootstrap, on first
use: only then, and only when APPLICATIONINSIGHTS_CONNECTION_STRING is set, is the Azure
Monitor distro imported (it is heavy; cold start must not pay for it). Without it the
counters are OpenTelemetry's no-op instruments, and logs go wherever Python logging goes.

Logs are structured: handlers pass `extra={"event_id", "operation_id", "scenario",
"remediation", "target"}`, which the exporter turns into custom dimensions.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

LOGGER = "remediator"
_LOCK = threading.Lock()
_CONFIGURED = False
_INSTRUMENTS: dict[str, Any] = {}


def configure(env: Mapping[str, str] | None = None) -> bool:
    """Sends logs, traces and metrics to Application Insights if a connection string is set.
    Returns whether it did. Identity-based ingestion (APPLICATIONINSIGHTS_AUTHENTICATION_STRING
    `Authorization=AAD;ClientId=...`) uses the managed identity."""
    global _CONFIGURED  # noqa: PLW0603 (the exporter is process-wide)
    env = os.environ if env is None else env
    with _LOCK:
        if _CONFIGURED:
            return True
        connection = env.get("APPLICATIONINSIGHTS_CONNECTION_STRING")
        if not connection:
            return False
        from azure.monitor.opentelemetry import configure_azure_monitor

        kwargs: dict[str, Any] = {"connection_string": connection, "logger_name": LOGGER,
                                  "enable_live_metrics": False}
        auth = env.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "")
        if "authorization=aad" in auth.lower():
            from azure.identity import ManagedIdentityCredential

            client_id = dict(p.split("=", 1) for p in auth.split(";") if "=" in p).get("ClientId")
            kwargs["credential"] = ManagedIdentityCredential(client_id=client_id)
        configure_azure_monitor(**kwargs)
        logging.getLogger(LOGGER).setLevel(logging.INFO)
        _INSTRUMENTS.clear()  # re-created on the configured meter provider
        _CONFIGURED = True
        return True


# azure-core's HttpLoggingPolicy logs every request and response (URL, headers) at INFO: ~17 records per
# event here, ~5 ms of CPU each event (10% of the app's), and as many traces billed in Application Insights.
SDK_HTTP_LOGGER = "azure.core.pipeline.policies.http_logging_policy"


def quiet_sdk_http_logs(env: Mapping[str, str] | None = None) -> bool:
    """Keeps the SDKs' per-request logs to warnings, unless REMEDIATOR_SDK_HTTP_LOGS=1 asks for them
    (debugging a call). Returns whether they are kept quiet."""
    env = os.environ if env is None else env
    wanted = env.get("REMEDIATOR_SDK_HTTP_LOGS", "").strip().lower() in ("1", "true", "yes")
    logging.getLogger(SDK_HTTP_LOGGER).setLevel(logging.NOTSET if wanted else logging.WARNING)
    return not wanted


def _counter(name: str, description: str) -> Any:
    counter = _INSTRUMENTS.get(name)
    if counter is None:
        from opentelemetry import metrics

        counter = metrics.get_meter(LOGGER).create_counter(name, unit="1", description=description)
        _INSTRUMENTS[name] = counter
    return counter


def diagnosed(scenario: str, source: str) -> None:
    _counter("remediator.diagnoses", "failures diagnosed, by scenario").add(1, {"scenario": scenario,
                                                                              "source": source})


def remediation(name: str, outcome: str, scenario: str | None = None) -> None:
    """outcome: queued | proposed | applied | noop | failed | observed | denied | duplicate | dry-run"""
    _counter("remediator.remediations", "remediation decisions and results").add(
        1, {"remediation": name, "outcome": outcome, "scenario": scenario or "manual"})
