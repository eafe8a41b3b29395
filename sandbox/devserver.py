"""A local HTTP host for the app's HTTP functions: the HTTP side of `remediator serve`
(sandbox/serve.py), which the browser tests use too.

It serves exactly the routes `function_app.py` declares (read from the bindings, not
repeated here) and calls the same Python functions with real `azure.functions`
request objects, so what a browser sees here is what the Functions host would serve.
Function-level routes require `code=` or `x-functions-key` equal to the configured key,
as the Functions host does; anonymous routes (approval links) do not. A function that
raises is answered 500, as the host does, and logged by path only: query strings carry
keys and approval tokens, so no request line is ever logged. Loopback only.
"""

from __future__ import annotations

import functools
import hmac
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

MAX_BODY = 8 * 1024 * 1024
_LENGTH = re.compile(r"[0-9]{1,18}")
log = logging.getLogger("remediator.devserver")


@dataclass(frozen=True, slots=True)
class Route:
    pattern: re.Pattern[str]
    methods: frozenset[str]
    anonymous: bool
    handler: Callable[[Any], Any]


@functools.cache
def functions() -> tuple[Any, ...]:
    """function_app.py's functions with their bindings. Read once: the Functions SDK builds the list
    from the decorators only once (a second `get_functions()` finds every name taken)."""
    import function_app

    return tuple(function_app.app.get_functions())


@functools.cache
def routes() -> tuple[Route, ...]:
    found: list[Route] = []
    for fn in functions():
        for binding in fn.get_bindings():
            if binding.type != "httpTrigger":
                continue
            http: Any = binding  # an HttpTrigger binding: route, methods, auth_level
            regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(http.route))
            found.append(Route(re.compile(f"^/api/{regex}$"), frozenset(str(m.value) for m in http.methods),
                               str(http.auth_level.value).lower() == "anonymous", fn.get_user_function()))
    return tuple(found)


class DevServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, function_key: str = "") -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the development server listens on loopback only")
        self.routes = routes()
        self.function_key = function_key
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return  # requests are logged by the app; tokens in query strings must not reach stderr

            def _serve(self) -> None:
                length = self._length()
                if isinstance(length, tuple):  # refused before reading a body that cannot be framed
                    status, body = length
                    headers = {"Content-Type": "text/plain"}
                    self.close_connection = True
                else:
                    body_in = self.rfile.read(length) if length else b""
                    try:
                        status, headers, body = server.handle(self.command, self.path, dict(self.headers.items()),
                                                              body_in)
                    except Exception:  # the Functions host answers 500 for a function that raised
                        # The path without its query: links carry tokens and keys (code=...).
                        log.exception("%s %s raised", self.command, urlsplit(self.path).path)
                        status, headers, body = 500, {"Content-Type": "text/plain"}, b"internal error"
                log.info("%s %s %d", self.command, urlsplit(self.path).path, status)  # the path only: no keys
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _length(self) -> int | tuple[int, bytes]:
                raw = self.headers.get("Content-Length")
                if self.headers.get("Transfer-Encoding"):
                    return 411, b"send a Content-Length (chunked bodies are not supported here)"
                if raw is None:
                    return 0
                if not _LENGTH.fullmatch(raw.strip()):
                    return 400, b"bad Content-Length"
                length = int(raw.strip())
                return (413, b"body too large") if length > MAX_BODY else length

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://{host}:{self._httpd.server_address[1]}"
        self._thread: threading.Thread | None = None

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        import azure.functions as func

        parts = urlsplit(path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        if len(body) > MAX_BODY:
            return 413, {"Content-Type": "text/plain"}, b"body too large"
        for route in self.routes:
            match = route.pattern.match(parts.path)
            if match is None:
                continue
            if method not in route.methods:
                continue
            if not route.anonymous and self.function_key:
                given = params.get("code") or {k.lower(): v for k, v in headers.items()}.get("x-functions-key", "")
                if not hmac.compare_digest(given.encode(), self.function_key.encode()):
                    return 401, {"Content-Type": "text/plain"}, b"function key required"
            # Route parameters arrive decoded, as the Functions host passes them.
            route_params = {k: unquote(v) for k, v in match.groupdict().items()}
            request = func.HttpRequest(method=method, url=path, headers=headers, params=params,
                                       route_params=route_params, body=body)
            response = route.handler(request)
            out = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
            out["Content-Type"] = f"{response.mimetype}; charset={response.charset}"
            return int(response.status_code), out, response.get_body()
        known = any(r.pattern.match(parts.path) for r in self.routes)
        return (405 if known else 404), {"Content-Type": "text/plain"}, b"no such route"

    def start(self) -> str:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True, name="devserver")
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for serve_forever, which only start() runs
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> DevServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
