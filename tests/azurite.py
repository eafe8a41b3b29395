"""Pytest plugin: a real Azurite (from ./node_modules) per test session and per xdist worker.

State tests run against the Table service's actual behaviour (409 on insert, 412 on a
stale ETag, property size limits) through the real `azure-data-tables` client, not a
fake that would agree with our own assumptions. Azurite listens on free loopback ports
with its data in a temporary `--location`, so `restart()` brings the same data back on
the same ports (for "storage restarted mid-run" tests).

Load it from tests/conftest.py with `pytest_plugins = ["tests.azurite"]`.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from shared.state.tables import DEV_ACCOUNT, StateStore, dev_connection_string

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
AZURITE = ROOT / "node_modules" / ".bin" / "azurite"
SETPRIV = shutil.which("setpriv")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
SERVICES = ("Blob", "Queue", "Table")


def free_ports(n: int) -> list[int]:
    """`n` distinct free loopback ports (all held open while choosing, so none repeats)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class AzuriteError(RuntimeError):
    """Azurite did not start or stop as expected; the message carries its log's tail."""


class Azurite:
    """One Azurite process (blob, queue and table) on loopback, with its data in `location`."""

    def __init__(self, location: Path, *, ports: tuple[int, int, int] | None = None) -> None:
        self.location = location
        self.log_path = location.parent / f"{location.name}.log"
        self.blob_port, self.queue_port, self.table_port = ports or tuple(free_ports(3))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def connection_string(self) -> str:
        return dev_connection_string(
            self.host, blob_port=self.blob_port, queue_port=self.queue_port, table_port=self.table_port
        )

    @property
    def account(self) -> str:
        return DEV_ACCOUNT

    @property
    def table_endpoint(self) -> str:
        return f"http://{self.host}:{self.table_port}/{DEV_ACCOUNT}"

    @property
    def queue_endpoint(self) -> str:
        return f"http://{self.host}:{self.queue_port}/{DEV_ACCOUNT}"

    @property
    def blob_endpoint(self) -> str:
        return f"http://{self.host}:{self.blob_port}/{DEV_ACCOUNT}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        # setpriv --pdeathsig: Azurite gets SIGTERM if the test process dies without tearing down
        # (a killed worker, a CI timeout), so no orphan keeps ports and memory.
        guard = [SETPRIV, "--pdeathsig", "TERM", "--"] if SETPRIV else []
        return [
            *guard,
            str(AZURITE),
            "--blobHost", self.host, "--blobPort", str(self.blob_port),
            "--queueHost", self.host, "--queuePort", str(self.queue_port),
            "--tableHost", self.host, "--tablePort", str(self.table_port),
            "--location", str(self.location),
            "--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry",
        ]

    def start(self) -> None:
        """Starts Azurite and returns once all three services listen (raises `AzuriteError` if not)."""
        if self.running:
            raise AzuriteError("Azurite is already running")
        self.location.mkdir(parents=True, exist_ok=True)
        busy = [p for p in (self.blob_port, self.queue_port, self.table_port) if _answers(p)]
        if busy:
            raise AzuriteError(f"ports {busy} are already in use")
        log = self.log_path.open("ab")
        try:
            self._proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.location
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise AzuriteError(f"Azurite exited with {code} while starting:\n{self.log_tail()}")
            if self._listening() and all(_answers(p) for p in (self.blob_port, self.queue_port, self.table_port)):
                return
            time.sleep(0.05)
        self.stop()
        raise AzuriteError(f"Azurite did not listen within {START_TIMEOUT:.0f}s:\n{self.log_tail()}")

    def _listening(self) -> bool:
        """Our process says every service listens (a port answering could be someone else's)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return False
        start = text.rfind("Azurite Blob service is starting")
        recent = text[start:] if start >= 0 else text
        return all(f"Azurite {s} service is successfully listening" in recent for s in SERVICES)

    def stop(self) -> None:
        """Stops Azurite gracefully (SIGTERM lets it flush its data to `location`), killing it if it hangs."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(_answers(p) for p in (self.blob_port, self.queue_port, self.table_port)):
            if time.monotonic() > deadline:
                raise AzuriteError("Azurite's ports still answer after it stopped")
            time.sleep(0.05)

    def restart(self) -> None:
        """The same Azurite again: same ports, same data directory."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def start_azurite(location: Path, attempts: int = 3) -> Azurite:
    """An Azurite on free ports; picks new ports when another process grabbed one meanwhile."""
    if not AZURITE.exists():
        pytest.fail(f"Azurite is not installed ({AZURITE.relative_to(ROOT)} is missing): run ./scripts/setup.sh",
                    pytrace=False)
    if shutil.which("node") is None:
        pytest.fail("Node.js is not installed (Azurite needs `node` on PATH): run ./scripts/setup.sh", pytrace=False)
    errors: list[str] = []
    for _ in range(attempts):
        azurite = Azurite(location)
        try:
            azurite.start()
        except AzuriteError as error:
            errors.append(str(error))
            continue
        return azurite
    pytest.fail("Azurite did not start:\n" + "\n---\n".join(errors), pytrace=False)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """A running Azurite for this session (each xdist worker gets its own)."""
    base = tmp_path_factory.mktemp("azurite")
    server = start_azurite(base / "data")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def store(azurite: Azurite) -> Iterator[StateStore]:
    """A StateStore on the session's Azurite with tables of its own (a unique prefix per test)."""
    if not azurite.running:
        azurite.start()  # a test stopped it and did not restart it
    state = StateStore(azurite.connection_string, prefix="t" + uuid.uuid4().hex[:8], retries=1)
    try:
        yield state
    finally:
        try:
            state.drop_tables()
        finally:
            state.close()


class FakeClock:
    """An injectable `now` that only moves when a test says so (expiry without sleeping)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now

    def set(self, value: datetime) -> None:
        with self._lock:
            self._now = value


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def race(n: int, fn: Callable[[int], T], *, threads: int = 16) -> list[T]:
    """Runs `fn(0..n-1)` on `threads` threads released together by a barrier; results in call order."""
    barrier = threading.Barrier(min(n, threads))

    def run(i: int) -> T:
        if i < threads:
            barrier.wait(timeout=30)
        return fn(i)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(run, range(n)))
