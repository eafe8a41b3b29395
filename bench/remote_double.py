"""The Azure double in a process of its own, for the end-to-end benchmark.

In process, the double's HTTP serving shares the app's interpreter lock and its CPU counts as
the app's; in Azure that work happens elsewhere. Here it runs in a child process (spawned, so
no lock or thread of the parent is inherited): the benchmark reports the app's own CPU and the
double's apart. The parent sees what `bench/end_to_end.py` uses of a double: its endpoints, its
refs, and its request log (over a pipe).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class LoggedRequest:
    operation: str
    method: str
    path: str
    status: int


def _serve(conn: Any, names: Sequence[str], latency_ms: int, nodelay: bool) -> None:
    """The child: a double with the sandbox estate plus copies of the failed template, answering the pipe."""
    from bench.end_to_end import bench_templates, double_nodelay
    from sandbox import AzureDouble, sandbox_estate

    double_nodelay(nodelay)
    with AzureDouble(estate=sandbox_estate(), poll_after=1) as double:
        ids = bench_templates(double, names)
        double.faults.set_latency("*", latency_ms)
        conn.send((double.arm_url, double.logs_url, dict(double.refs), ids))
        while True:
            command = conn.recv()
            if command == "stop":
                break
            if command == "clear":
                double.clear_requests()
                conn.send(None)
            elif command == "log":
                conn.send([LoggedRequest(r.operation, r.method, r.path, r.status) for r in double.requests])


class RemoteDouble:
    """A spawned double; `ids` are the template copies, in the order of `names`."""

    def __init__(self, names: Sequence[str], latency_ms: int, *, nodelay: bool = True) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, list(names), latency_ms, nodelay),
                                        name="azure-double", daemon=True)
        self._process.start()
        if not self._conn.poll(60):
            self._process.kill()
            raise RuntimeError("the double process did not start within 60 s")
        self.arm_url, self.logs_url, self.refs, self.ids = self._conn.recv()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def requests(self) -> list[LoggedRequest]:
        self._conn.send("log")
        return list(self._conn.recv())

    def requests_for(self, operation: str, method: str | None = None) -> list[LoggedRequest]:
        return [r for r in self.requests if r.operation == operation and (method is None or r.method == method)]

    def clear_requests(self) -> None:
        self._conn.send("clear")
        self._conn.recv()

    def close(self) -> None:
        if self._process.is_alive():
            self._conn.send("stop")
            self._process.join(10)
        if self._process.is_alive():
            self._process.kill()

    def __enter__(self) -> RemoteDouble:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
