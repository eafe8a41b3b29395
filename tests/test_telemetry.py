"""Telemetry reaches Application Insights as structured logs and metrics when configured
(sent here to a local collector standing in for the ingestion endpoint), and costs nothing
when it is not."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import ROOT

CHILD = r"""
import logging, os
from shared.core import telemetry
assert telemetry.configure()
logging.getLogger("remediator.pipeline").info(
    "apply: rerun-image-build on /subscriptions/s/t (policy)",
    extra={"event_id": "evt-42", "operation_id": "op-7", "scenario": "aib.no_artifacts",
           "remediation": "rerun-image-build", "target": "/subscriptions/s/t"})
telemetry.diagnosed("aib.no_artifacts", "eventgrid")
telemetry.remediation("rerun-image-build", "applied", "aib.no_artifacts")
from opentelemetry import metrics, _logs
_logs.get_logger_provider().force_flush()
metrics.get_meter_provider().force_flush()
"""


@pytest.fixture
def collector() -> Iterator[tuple[str, list[Any]]]:
    received: list[Any] = []

    class Ingest(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            for line in body.decode().splitlines():
                if line.strip():
                    parsed = json.loads(line)
                    received.extend(parsed if isinstance(parsed, list) else [parsed])
            answer = json.dumps({"itemsReceived": 1, "itemsAccepted": 1, "errors": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ingest)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", received
    server.shutdown()


def test_logs_and_metrics_reach_application_insights_with_their_dimensions(
        collector: tuple[str, list[Any]], tmp_path: object) -> None:
    url, received = collector
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "APPLICATIONINSIGHTS_CONNECTION_STRING":
               f"InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint={url};LiveEndpoint={url}",
           "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true", "OTEL_METRIC_EXPORT_INTERVAL": "600000"}
    done = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    logs = [i for i in received if i.get("data", {}).get("baseType") == "MessageData"]
    [message] = [m for m in logs if "rerun-image-build" in m["data"]["baseData"]["message"]]
    dims = message["data"]["baseData"]["properties"]
    assert dims["scenario"] == "aib.no_artifacts" and dims["operation_id"] == "op-7" and dims["event_id"] == "evt-42"
    metric_names = {m["name"] for i in received if i.get("data", {}).get("baseType") == "MetricData"
                    for m in i["data"]["baseData"]["metrics"]}
    assert {"remediator.diagnoses", "remediator.remediations"} <= metric_names


def test_without_a_connection_string_nothing_is_configured_or_imported() -> None:
    code = ("import sys; from shared.core import telemetry; print(telemetry.configure({})); "
            "telemetry.remediation('x', 'applied'); print('azure.monitor.opentelemetry' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=True)
    assert done.stdout.split() == ["False", "False"]


def test_the_sdks_per_request_logs_stay_quiet_unless_asked_for(store: Any, caplog: pytest.LogCaptureFixture) -> None:
    """azure-core's HttpLoggingPolicy logs every request at INFO (URL and headers): with the app's
    wiring they are kept to warnings; REMEDIATOR_SDK_HTTP_LOGS=1 brings them back."""
    import logging

    from shared.core import telemetry
    from shared.state.tables import get_row

    sdk = logging.getLogger(telemetry.SDK_HTTP_LOGGER)
    before = sdk.level
    try:
        with caplog.at_level(logging.INFO):
            assert telemetry.quiet_sdk_http_logs({})
            get_row(store.table("ledger"), "pk", "rk")
            quiet = [r for r in caplog.records if r.name == telemetry.SDK_HTTP_LOGGER]
            assert not telemetry.quiet_sdk_http_logs({"REMEDIATOR_SDK_HTTP_LOGS": "1"})
            get_row(store.table("ledger"), "pk", "rk")
            loud = [r for r in caplog.records if r.name == telemetry.SDK_HTTP_LOGGER]
    finally:
        sdk.setLevel(before)
    assert quiet == []
    assert any("Request URL" in r.getMessage() for r in loud)
