"""The HTTP transport every SDK client shares (shared.azure.clients.pooled_transport).

It reads the environment's proxy settings once per origin instead of on every request; a
worker behind a proxy must still send through it, and NO_PROXY hosts must still go direct
(requests' documented environment variables: HTTP_PROXY / HTTPS_PROXY / NO_PROXY)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.azure.clients import pooled_transport


class _Recorder(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    httpd.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_requests_go_through_the_proxy_the_environment_names(server: ThreadingHTTPServer,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = pooled_transport().session
    for _ in range(3):  # the first request reads the environment, the next ones reuse that answer
        assert session.get("http://storage.example.invalid/queue/messages", timeout=5).text == "ok"
    assert server.seen == ["http://storage.example.invalid/queue/messages"] * 3  # type: ignore[attr-defined]


def test_no_proxy_hosts_go_direct(server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there: a proxied request fails
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    session = pooled_transport().session
    url = f"http://127.0.0.1:{server.server_address[1]}/direct"
    assert session.get(url, timeout=5).text == "ok"
    assert session.get(url, timeout=5).text == "ok"
    assert server.seen == ["/direct", "/direct"]  # type: ignore[attr-defined]
