"""End to end: Event Grid event in -> diagnosis -> remediation applied on the Azure double -> ledger.

The project's real parts, wired as tests/pipeline_helpers.py wires them: a real Azurite (from
./node_modules) holds the state tables and the job queue; the local Azure double answers the
unmodified Azure SDK clients from a process of its own (bench/remote_double.py; in Azure that work
is not the app's: its CPU is reported apart; --in-process-double serves it from this process);
`shared.decisions.pipeline.handle_event` decides and enqueues; `shared.decisions.pipeline.handle_job`
carries the job out.

Each scenario gets a fresh double (the sandbox estate plus N copies of the failed template
`tpl-rhel-noartifacts`: "Builds finished but no artifacts were created", so the remediation is
`rerun-image-build`), fresh tables and a fresh queue; one Event Grid ResourceActionFailure event per
copy. One warm-up event (its own template, not counted) opens connections and tables first.

Concurrency C means: C threads calling handle_event (an event that raises is delivered again,
as Event Grid would), and a host-like queue listener feeding C worker threads calling handle_job
(a job that raises is made visible again at once and, after 5 deliveries, goes to handle_poison,
as tests/pipeline_helpers.drain does). The listener polls an empty queue with a backoff from 1 ms
to 20 ms (the Functions host backs off to much longer; the host's 30 s retry delay is 0 here).

Per event: latency from handle_event's start to its job's handle_job returning (by then the job's
ledger entry `job:<operation>` is completed); throughput = events / (first start -> last
completion). At the end every event must have exactly one applied change (one POST
imageTemplates.run on its template in the double's request log), a completed `event:` ledger entry
and a completed `job:` ledger entry whose result is "applied".

Run: .venv/bin/python bench/end_to_end.py [--quick] [--concurrency 1,8,32] [--latency 0,50] [--events N]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import logging
import os
import resource
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import calls as call_count  # noqa: E402
from bench._common import OtherWork, machine, machine_line, percentile, table, write_results  # noqa: E402
from bench.remote_double import RemoteDouble  # noqa: E402
from sandbox import AzureDouble, Estate, sandbox_estate  # noqa: E402
from sandbox import server as double_server  # noqa: E402
from shared.approvals.cards import Notifier  # noqa: E402
from shared.approvals.links import new_key  # noqa: E402
from shared.decisions.pipeline import Retry, handle_event, handle_job, handle_poison  # noqa: E402
from shared.decisions.policy import Policy, PolicyMode  # noqa: E402
from shared.state.jobs import Job, JobQueue  # noqa: E402
from shared.state.tables import StateStore  # noqa: E402
from shared.wiring import App  # noqa: E402
from tests.azurite import Azurite  # noqa: E402
from tests.pipeline_helpers import MAX_DEQUEUE, arm_failure_event  # noqa: E402
from tests.sandbox import make_context  # noqa: E402

SOURCE_TEMPLATE = "tpl-rhel-noartifacts"
NO_ARTIFACTS = "Builds finished but no artifacts were created"
TABLES = ("ledger", "operations", "audit", "counters", "locks", "approvals")
POLL_MIN, POLL_MAX = 0.001, 0.02
# events per scenario, by concurrency: enough for a steady state and a p99 that is not just the max
FULL_EVENTS = {1: 100, 8: 300, 32: 600}
QUICK_EVENTS = {1: 6, 8: 16, 32: 32}
FULL_SERIAL, QUICK_SERIAL = 40, 4  # events sent one at a time (latency without queueing)
FULL_PACED, QUICK_PACED = 200, 12  # events arriving at a steady rate below capacity (latency under load)


class WarningCounter(logging.Handler):
    """Counts WARNING+ records by logger and message start, instead of printing thousands of them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: collections.Counter[str] = collections.Counter()
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().split("\n")[0][:90]
        with self._lock2:
            self.counts[f"{record.name}: {text}"] += 1

    def take(self) -> dict[str, int]:
        with self._lock2:
            out = dict(self.counts)
            self.counts.clear()
        return out


@dataclass
class Tracker:
    """What happened to each event, from its start to its job's completion (thread-safe)."""

    expected: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: dict[str, float] = field(default_factory=dict)
    decided: dict[str, float] = field(default_factory=dict)
    job_started: dict[str, float] = field(default_factory=dict)
    finished: dict[str, float] = field(default_factory=dict)
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    event_retries: int = 0
    job_retries: int = 0
    poisoned: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    tracebacks: dict[str, str] = field(default_factory=dict)  # the first one of each error
    all_done: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def finish(self, event_id: str, when: float, summary: dict[str, Any] | None) -> None:
        with self.lock:
            self.finished[event_id] = when
            if summary is not None:
                self.summaries[event_id] = summary
            else:
                self.poisoned += 1
            if len(self.finished) >= self.expected:
                self.all_done.set()
        with self.changed:
            self.changed.notify_all()

    def wait_for(self, event_id: str, deadline: float) -> bool:
        with self.changed:
            while event_id not in self.finished:
                left = deadline - time.perf_counter()
                if left <= 0:
                    return False
                self.changed.wait(min(left, 0.5))
        return True

    def error(self, where: str, exc: BaseException) -> None:
        key = f"{where}: {type(exc).__name__}: {str(exc)[:80]}"
        with self.lock:
            self.errors[key] += 1
            if key not in self.tracebacks and not isinstance(exc, Retry):
                frames = traceback.extract_tb(exc.__traceback__)
                # the project's own frames (where it happened in the pipeline), then where it was raised
                ours = [f for f in frames if f.filename.startswith(str(ROOT)) and "/.venv/" not in f.filename
                        and not f.filename.startswith(str(ROOT / "bench"))]
                self.tracebacks[key] = "".join(traceback.format_list([*ours, *frames[-2:]]))


def double_nodelay(enabled: bool) -> bool:
    """TCP_NODELAY on the double's connections (StreamRequestHandler.disable_nagle_algorithm).

    The double writes an answer's headers and body in two sends; with Nagle's algorithm on, the
    body waits for the client's delayed ACK: ~40 ms added to every request on Linux loopback, so a
    "0 ms" double would not be 0 ms. The bench turns it off in this process (no file is changed);
    --stock-double keeps the double as it is. Returns the setting now in force."""
    handler = double_server._Handler
    handler.disable_nagle_algorithm = enabled
    return bool(handler.disable_nagle_algorithm)


def bench_templates(double: AzureDouble, names: Sequence[str]) -> list[str]:
    """Copies of the failed no-artifacts template under new names; returns their ids."""
    source_id = double.refs[f"template:{SOURCE_TEMPLATE}"]
    body = double.state.get(source_id)
    if body is None:
        raise RuntimeError(f"the sandbox has no {SOURCE_TEMPLATE}")
    status = body["properties"]["lastRunStatus"]
    if status.get("runState") != "Failed" or NO_ARTIFACTS not in status.get("message", ""):
        raise RuntimeError(f"{SOURCE_TEMPLATE} is not a failed no-artifacts build: {status}")
    ids = []
    for name in names:
        new_id = source_id.rsplit("/", 1)[0] + "/" + name
        copied = copy.deepcopy(body)
        copied["id"], copied["name"] = new_id, name
        double.state.put(new_id, copied)
        ids.append(new_id)
    return ids


def new_app(azurite: Azurite, double: AzureDouble, concurrency: int, sink: Path) -> App:
    store = StateStore(azurite.connection_string, prefix="b" + uuid.uuid4().hex[:10], pool_size=2 * concurrency + 8)
    queue = JobQueue(azurite.connection_string, name="bench-" + uuid.uuid4().hex[:12])
    # no budget ceiling in the way: every event here is a distinct, legitimate change
    policy = Policy(PolicyMode.AUTO, max_changes_per_hour=1_000_000, max_changes_per_target_per_day=1_000)
    app = App(store=store, queue=queue, ctx=make_context(double), policy=policy, notifier=Notifier(None, sink=sink),
              signing_keys=(new_key(),), public_url="http://approvals.bench")
    for name in TABLES:  # created once here, not inside the timed run
        store.table(name)
    _ = queue.client
    return app


def deliver_event(app: App, event: dict[str, Any], tracker: Tracker, attempts: int = 5,
                  arrived: float | None = None) -> None:
    """One Event Grid delivery, redelivered (at once) while the handler raises. `arrived`: when the event
    arrived (paced runs: before it waited for a free producer thread); default now."""
    event_id = str(event["id"])
    with tracker.lock:
        tracker.started[event_id] = arrived if arrived is not None else time.perf_counter()
    for attempt in range(attempts):
        try:
            handle_event(event, app)
            break
        except Exception as exc:
            tracker.error("handle_event", exc)
            if attempt == attempts - 1:
                raise
            with tracker.lock:
                tracker.event_retries += 1
    with tracker.lock:
        tracker.decided[event_id] = time.perf_counter()


def run_job(app: App, message: Any, tracker: Tracker) -> None:
    client = app.queue.client
    body = bytes(message.content)
    job = Job.from_json(body)
    event_id = job.event_id or job.operation_id
    began = time.perf_counter()
    with tracker.lock:
        tracker.job_started.setdefault(event_id, began)
    try:
        summary = handle_job(body, app, dequeue_count=message.dequeue_count)
    except Exception as exc:
        tracker.error("handle_job", exc)
        with tracker.lock:
            tracker.job_retries += 1
        if message.dequeue_count >= MAX_DEQUEUE:
            handle_poison(body, app)
            client.delete_message(message)
            tracker.finish(event_id, time.perf_counter(), None)
        else:
            client.update_message(message, visibility_timeout=0)
        return
    tracker.finish(event_id, time.perf_counter(), summary)
    client.delete_message(message)


def listen(app: App, concurrency: int, tracker: Tracker, deadline: float) -> None:
    """A queue listener like the Functions host's: receives batches while fewer than C jobs run."""
    client = app.queue.client
    running = 0
    cond = threading.Condition()
    poll = POLL_MIN

    def work(message: Any) -> None:
        nonlocal running
        try:
            run_job(app, message, tracker)
        except Exception as exc:  # a failure of the listener's own calls (delete/update): keep serving
            tracker.error("listener", exc)
        finally:
            with cond:
                running -= 1
                cond.notify()

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="job") as pool:
        while not tracker.all_done.is_set() and time.perf_counter() < deadline:
            with cond:
                while running >= concurrency and not tracker.all_done.is_set():
                    cond.wait(0.05)
                free = concurrency - running
            if free <= 0:
                continue
            try:
                messages = list(client.receive_messages(max_messages=min(32, free), visibility_timeout=60))
            except Exception as exc:
                tracker.error("receive", exc)
                messages = []
            if not messages:
                time.sleep(poll)
                poll = min(POLL_MAX, poll * 2)
                continue
            poll = POLL_MIN
            with cond:
                running += len(messages)
            for message in messages:
                pool.submit(work, message)


@dataclass
class Scenario:
    concurrency: int
    latency_ms: int
    events: int
    serial: bool = False  # one event at a time: the next starts once the previous one's job completed
    pace: float = 0.0  # > 0: events arrive at this fraction of the best burst throughput (set as `rate`)
    rate: float = 0.0  # events/s for a paced scenario, fixed once the burst rows of its latency ran

    @property
    def label(self) -> str:
        if self.serial:
            return f"{self.concurrency} (serial)"
        if self.pace:
            return f"{self.concurrency} (paced {self.rate:.1f}/s)"
        return str(self.concurrency)


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a process (and its waited-for children) from /proc/<pid>/stat."""
    if pid is None:
        return float("nan")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Rig:
    """What every scenario shares: the sandbox estate, one Azurite, a work folder, the warnings counter."""

    estate: Estate
    azurite: Azurite
    workdir: Path
    timeout: float
    warnings: WarningCounter
    remote: bool = True  # the double in a process of its own (bench/remote_double.py)
    nodelay: bool = True


def warm_up(app: App, double: AzureDouble, template_id: str, rig: Rig) -> None:
    """One event through the whole pipeline (connections, tables, first imports), then a clean request log."""
    warm = Tracker(expected=1)
    deliver_event(app, arm_failure_event(template_id, correlation=str(uuid.uuid4())), warm)
    listen(app, 1, warm, time.perf_counter() + 60)
    if not warm.all_done.is_set():
        raise RuntimeError(f"the warm-up event did not complete: {dict(warm.errors)}")
    double.clear_requests()
    rig.warnings.take()


def drive(app: App, events: list[dict[str, Any]], scenario: Scenario, tracker: Tracker, deadline: float) -> float:
    """Delivers the events (serially, or from C producer threads) while the listener runs; returns when all
    were delivered (the time of that)."""
    if scenario.serial:
        for event in events:
            try:
                deliver_event(app, event, tracker)
            except Exception as exc:
                tracker.error("event gave up", exc)
                continue
            if not tracker.wait_for(str(event["id"]), deadline):
                break
        return time.perf_counter()
    with ThreadPoolExecutor(max_workers=scenario.concurrency, thread_name_prefix="event") as producers:
        futures = []
        if scenario.rate > 0:  # open loop: one arrival every 1/rate s, whether or not the last is done
            start = time.perf_counter()
            for i, event in enumerate(events):
                arrival = start + i / scenario.rate
                time.sleep(max(0.0, arrival - time.perf_counter()))
                futures.append(producers.submit(deliver_event, app, event, tracker, 5, arrival))
        else:
            futures = [producers.submit(deliver_event, app, e, tracker) for e in events]
        for future in futures:
            try:
                future.result()
            except Exception as exc:
                tracker.error("event gave up", exc)
    return time.perf_counter()


def verify(app: App, double: AzureDouble, by_event: dict[str, str], tracker: Tracker) -> dict[str, Any]:
    """One applied change per event (one 2xx POST imageTemplates.run on its template, none elsewhere),
    a completed `event:` ledger entry, and a completed `job:` entry whose result is "applied"."""
    n = len(by_event)
    posts = double.requests_for("imageTemplates.run", "POST")
    runs = [r for r in posts if 200 <= r.status < 300]
    run_counts = collections.Counter(r.path.split("?")[0].rstrip("/").rsplit("/", 2)[-2].lower() for r in runs)
    exactly_one = sum(1 for t in by_event.values() if run_counts.get(t.rsplit("/", 1)[-1].lower(), 0) == 1)
    event_ledger = job_ledger = applied = 0
    from shared.azure.ids import canonical

    for event_id, template in by_event.items():
        record = app.ledger.get(f"event:{event_id}")
        event_ledger += record is not None and record.state == "completed"
        summary = tracker.summaries.get(event_id)
        if summary is not None:
            job = app.locks.job(canonical(template), summary["operation_id"])
            job_ledger += job is not None and job.get("state") == "completed"
            applied += summary.get("result") == "applied"
    ok = exactly_one == n and event_ledger == n and job_ledger == n and applied == n and len(runs) == n
    return {"applied_runs": len(runs), "failed_run_requests": len(posts) - len(runs),
            "templates_with_exactly_one_run": exactly_one, "event_ledger_completed": event_ledger,
            "job_ledger_completed": job_ledger, "jobs_applied": applied, "ok": ok}


COUNTER = call_count.CallCounter()
CALL_TARGET = 12  # storage calls per event and its job (issue: fewer round trips)


def count_calls(rig: Rig, events: int) -> dict[str, Any]:
    """The HTTP calls of one event and its job, by stage, averaged over `events` events sent one at a time
    (after a warm-up): handle_event, then the queue trigger's handle_job, as in the serial scenario."""
    tag = uuid.uuid4().hex[:6]
    with AzureDouble(estate=rig.estate, poll_after=1) as double:
        ids = bench_templates(double, [f"tpl-calls-{tag}-warmup", *(f"tpl-calls-{tag}-{i:03d}" for i in range(events))])
        app = new_app(rig.azurite, double, 1, rig.workdir / f"cards-{tag}")
        warm_up(app, double, ids[0], rig)
        totals: collections.Counter[str] = collections.Counter()
        results = []
        for template in ids[1:]:
            COUNTER.reset()
            COUNTER.recording = True
            handle_event(arm_failure_event(template, event_id=str(uuid.uuid4()), correlation=str(uuid.uuid4())), app)
            [message] = list(app.queue.client.receive_messages(max_messages=1, visibility_timeout=30))
            results.append(handle_job(bytes(message.content), app, dequeue_count=message.dequeue_count)["result"])
            app.queue.client.delete_message(message)
            COUNTER.recording = False
            totals.update(COUNTER.counts)
        app.queue.client.delete_queue()
        app.store.drop_tables()
        app.store.close()
    per_event = {stage: n / events for stage, n in totals.items()}
    storage = sum(n for stage, n in per_event.items() if not stage.startswith(("ARM", "queue host")))
    return {"events": events, "per_stage": per_event, "storage_per_event": round(storage, 1),
            "arm_per_event": round(per_event.get("ARM (plan, apply, verify)", 0.0), 1),
            "results": collections.Counter(results), "target": CALL_TARGET}


def report_calls(calls: dict[str, Any]) -> None:
    print(f"\ncalls per event and its job (mean of {calls['events']} events sent one at a time)")
    print(table(["stage", "calls"], call_count.table_rows(calls["per_stage"]), align="lr"))
    print(f"storage calls per event and job: {calls['storage_per_event']} (target <= {calls['target']}); "
          f"ARM: {calls['arm_per_event']}; the queue host's receive/delete are the Functions host's, not counted")


@contextlib.contextmanager
def open_double(rig: Rig, names: Sequence[str], latency_ms: int) -> Iterator[tuple[Any, list[str]]]:
    """A fresh double with copies of the failed template named `names`: in a process of its own
    (the app's CPU is then its own), or in this one (--in-process-double)."""
    if rig.remote:
        with RemoteDouble(names, latency_ms, nodelay=rig.nodelay) as remote:
            yield remote, list(remote.ids)
        return
    with AzureDouble(estate=rig.estate, poll_after=1) as double:
        ids = bench_templates(double, names)
        double.faults.set_latency("*", latency_ms)
        yield double, ids


def run_scenario(rig: Rig, scenario: Scenario) -> dict[str, Any]:
    c, n = scenario.concurrency, scenario.events
    tag = uuid.uuid4().hex[:6]
    names = [f"tpl-bench-{tag}-warmup", *(f"tpl-bench-{tag}-{i:04d}" for i in range(n))]
    with open_double(rig, names, scenario.latency_ms) as (double, ids):
        app = new_app(rig.azurite, double, c, rig.workdir / f"cards-{tag}")
        warm_up(app, double, ids[0], rig)

        events = [arm_failure_event(t, event_id=str(uuid.uuid4()), correlation=str(uuid.uuid4())) for t in ids[1:]]
        by_event = {str(e["id"]): t for e, t in zip(events, ids[1:], strict=True)}
        tracker = Tracker(expected=n)
        deadline = time.perf_counter() + rig.timeout
        listener = threading.Thread(target=listen, args=(app, c, tracker, deadline), name="listener", daemon=True)
        double_pid = getattr(double, "pid", None)
        cpu_py, cpu_azurite, cpu_double = own_cpu_seconds(), cpu_seconds(rig.azurite.pid), cpu_seconds(double_pid)
        others = OtherWork([p for p in (rig.azurite.pid, double_pid) if p])
        begin = time.perf_counter()
        listener.start()
        produced = drive(app, events, scenario, tracker, deadline)
        tracker.all_done.wait(max(0.0, deadline - time.perf_counter()))
        listener.join(timeout=30)
        end = max(tracker.finished.values(), default=time.perf_counter())
        cpu_py, cpu_azurite = own_cpu_seconds() - cpu_py, cpu_seconds(rig.azurite.pid) - cpu_azurite
        cpu_double = cpu_seconds(double_pid) - cpu_double if double_pid else 0.0
        other_pct = others.percent()
        requests = len(double.requests)
        checked = verify(app, double, by_event, tracker)
        app.queue.client.delete_queue()
        app.store.drop_tables()
        app.store.close()

    done = [e for e in by_event if e in tracker.finished and e in tracker.summaries]
    latencies = [tracker.finished[e] - tracker.started[e] for e in done]
    decide = [tracker.decided[e] - tracker.started[e] for e in by_event if e in tracker.decided]
    # the job is queued before handle_event returns, so a fast listener can start it "before": 0 then
    waits = [max(0.0, tracker.job_started[e] - tracker.decided[e]) for e in done if e in tracker.job_started
             and e in tracker.decided]
    service = [tracker.finished[e] - tracker.job_started[e] for e in done if e in tracker.job_started]
    wall = end - begin
    return {
        "concurrency": c, "serial": scenario.serial, "paced": bool(scenario.pace), "rate": round(scenario.rate, 2),
        "label": scenario.label, "latency_ms": scenario.latency_ms,
        "events": n, "completed": len(latencies), "seconds": round(wall, 3),
        "events_per_s": round(len(latencies) / wall, 2), "producers_done_s": round(produced - begin, 3),
        "latency_ms_p50": round(percentile(latencies, 50) * 1e3, 1),
        "latency_ms_p90": round(percentile(latencies, 90) * 1e3, 1),
        "latency_ms_p99": round(percentile(latencies, 99) * 1e3, 1),
        "latency_ms_max": round(max(latencies, default=float("nan")) * 1e3, 1),
        "handle_event_ms_p50": round(percentile(decide, 50) * 1e3, 1),
        "handle_event_ms_p99": round(percentile(decide, 99) * 1e3, 1),
        "queue_wait_ms_p50": round(percentile(waits, 50) * 1e3, 1),
        "queue_wait_ms_p99": round(percentile(waits, 99) * 1e3, 1),
        "handle_job_ms_p50": round(percentile(service, 50) * 1e3, 1),
        "handle_job_ms_p99": round(percentile(service, 99) * 1e3, 1),
        "double_requests_per_event": round(requests / n, 1),
        "cpu_ms_per_event_python": round(cpu_py / n * 1e3, 1),
        "cpu_ms_per_event_azurite": round(cpu_azurite / n * 1e3, 1),
        "cpu_ms_per_event_double": round(cpu_double / n * 1e3, 1) if rig.remote else None,
        "cpu_cores_busy": round((cpu_py + cpu_azurite + cpu_double) / wall, 2),
        "other_work_pct": round(other_pct, 1),
        "verify": checked,
        "event_redeliveries": tracker.event_retries, "job_redeliveries": tracker.job_retries,
        "poisoned": tracker.poisoned, "errors": dict(tracker.errors), "tracebacks": tracker.tracebacks,
        "warnings": rig.warnings.take(),
    }


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, list[Scenario]]:
    parser = argparse.ArgumentParser(description="end-to-end pipeline latency and throughput")
    parser.add_argument("--quick", action="store_true", help="smoke run (< 60 s)")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated (default 1,8,32)")
    parser.add_argument("--latency", default="0,50", help="double latency per request in ms, comma-separated")
    parser.add_argument("--events", type=int, default=None, help="events per scenario (default: by concurrency)")
    parser.add_argument("--serial-events", type=int, default=None,
                        help="events sent one at a time before the loaded runs (default 40, quick 4; 0: none)")
    parser.add_argument("--pace", type=float, default=0.7,
                        help="per latency, a paced run at this fraction of the best burst events/s (0: none)")
    parser.add_argument("--paced-concurrency", type=int, default=8, help="producer/worker threads of the paced run")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per scenario before giving up")
    parser.add_argument("--call-events", type=int, default=None,
                        help="events whose calls are counted by stage (default 10, quick 3)")
    parser.add_argument("--in-process-double", action="store_true",
                        help="serve the double from this process (its CPU then counts as the app's)")
    parser.add_argument("--stock-double", action="store_true",
                        help="leave Nagle's algorithm on in the double (adds ~40 ms per request; see double_nodelay)")
    args = parser.parse_args(argv)
    sizes = QUICK_EVENTS if args.quick else FULL_EVENTS
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    serial = args.serial_events if args.serial_events is not None else (QUICK_SERIAL if args.quick else FULL_SERIAL)
    scenarios: list[Scenario] = []
    for lat in (int(x) for x in args.latency.split(",") if x.strip()):
        if serial > 0:
            scenarios.append(Scenario(1, lat, serial, serial=True))
        scenarios += [Scenario(c, lat, args.events or sizes.get(c, max(8 * c, 40))) for c in levels]
        if args.pace > 0:
            paced = args.events or (QUICK_PACED if args.quick else FULL_PACED)
            scenarios.append(Scenario(args.paced_concurrency, lat, paced, pace=args.pace))
    return args, scenarios


def report(results: list[dict[str, Any]], title: str) -> None:
    print(f"\n{title}")
    print(table(["double latency", "conc.", "events", "events/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
                 "handle_event p50/p99", "queue wait p50/p99", "handle_job p50/p99", "CPU ms/event app+azurite+double",
                 "cores busy", "others %"],
                [[f"{r['latency_ms']} ms", r["label"], r["events"], f"{r['events_per_s']:.1f}",
                  f"{r['latency_ms_p50']:.0f}", f"{r['latency_ms_p90']:.0f}", f"{r['latency_ms_p99']:.0f}",
                  f"{r['latency_ms_max']:.0f}", f"{r['handle_event_ms_p50']:.0f} / {r['handle_event_ms_p99']:.0f}",
                  f"{r['queue_wait_ms_p50']:.0f} / {r['queue_wait_ms_p99']:.0f}",
                  f"{r['handle_job_ms_p50']:.0f} / {r['handle_job_ms_p99']:.0f}",
                  f"{r['cpu_ms_per_event_python']:.0f} + {r['cpu_ms_per_event_azurite']:.0f} + "
                  + (f"{r['cpu_ms_per_event_double']:.0f}" if r["cpu_ms_per_event_double"] is not None else "(in app)"),
                  f"{r['cpu_cores_busy']:.2f}", f"{r['other_work_pct']:.0f}"] for r in results],
                align="lrrrrrrrrrrrrr"))
    print("latency = handle_event + queue wait + handle_job (from the event's arrival). Burst rows deliver all events "
          "as fast as C\nproducers can, so their latency is mostly queueing behind the backlog; the serial row is one "
          "event alone; the\npaced row is events arriving steadily below capacity (latency under load). "
          "cores busy: this process + Azurite + the double;\nothers %: CPU used by other processes meanwhile "
          "meanwhile "
          "(over ~15%, the row is skewed).")
    print("\nverification (per scenario: every event exactly one applied change and completed ledger entries)")
    print(table(["double latency", "conc.", "events", "POST run 2xx", "templates run once", "event: completed",
                 "job: completed", "applied", "redeliveries ev/job", "poisoned", "ok"],
                [[f"{r['latency_ms']} ms", r["label"], r["events"], r["verify"]["applied_runs"],
                  r["verify"]["templates_with_exactly_one_run"], r["verify"]["event_ledger_completed"],
                  r["verify"]["job_ledger_completed"], r["verify"]["jobs_applied"],
                  f"{r['event_redeliveries']}/{r['job_redeliveries']}", r["poisoned"],
                  "yes" if r["verify"]["ok"] else "NO"] for r in results], align="lrrrrrrrrrl"))
    for r in results:
        for kind in ("errors", "warnings"):
            if r[kind]:
                print(f"  {kind} at concurrency {r['label']}, {r['latency_ms']} ms:")
                for text, count in sorted(r[kind].items(), key=lambda kv: -kv[1])[:6]:
                    print(f"    {count:>5} x {text}")
        for text, where in r["tracebacks"].items():
            print(f"  first {text}\n" + "\n".join("      " + line for line in where.rstrip().splitlines()
                                                    if not line.strip().startswith("^")))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args, scenarios = parse(argv)
    warnings = WarningCounter()
    logging.getLogger().addHandler(warnings)
    logging.getLogger().setLevel(logging.WARNING)
    logging.lastResort = None  # the counter reports warnings; nothing is printed per record

    nodelay = double_nodelay(not args.stock_double)
    call_count.install(COUNTER)
    info = machine()
    print(machine_line(info))
    print("double: TCP_NODELAY " + ("on (bench setting)" if nodelay else
                                    "off (stock double: ~40 ms Nagle stall per request)"))
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        azurite = Azurite(Path(tmp) / "azurite")
        azurite.start()
        rig = Rig(sandbox_estate(), azurite, Path(tmp), args.timeout or (40.0 if args.quick else 240.0), warnings,
                  remote=not args.in_process_double, nodelay=nodelay)
        try:
            calls = count_calls(rig, args.call_events or (3 if args.quick else 10))
            for scenario in scenarios:
                if scenario.pace:
                    bursts = [r["events_per_s"] for r in results
                              if r["latency_ms"] == scenario.latency_ms and not r["serial"] and not r["paced"]]
                    scenario.rate = scenario.pace * max(bursts, default=5.0)
                print(f"  concurrency {scenario.label:>10}, double latency {scenario.latency_ms:>2} ms, "
                      f"{scenario.events} events ...", end="", flush=True)
                r = run_scenario(rig, scenario)
                results.append(r)
                print(f" {r['events_per_s']:.1f} events/s, p50 {r['latency_ms_p50']:.0f} ms, "
                      f"p99 {r['latency_ms_p99']:.0f} ms, verified {'ok' if r['verify']['ok'] else 'FAILED'}; "
                      f"other work {r['other_work_pct']:.0f}%",
                      flush=True)
        finally:
            azurite.stop()
    elapsed = time.perf_counter() - started
    report(results, f"end to end: event -> diagnosis -> rerun-image-build applied on the double -> ledger "
                    f"({'quick' if args.quick else 'full'}, {elapsed:.0f} s)")
    report_calls(calls)

    verified = all(r["verify"]["ok"] for r in results)
    out: dict[str, Any] = {
        "name": "end_to_end", "mode": "quick" if args.quick else "full", "machine": info,
        "seconds": round(elapsed, 1), "double_tcp_nodelay": nodelay, "scenarios": results, "verified": verified,
        "calls": calls,
        "verdicts": {"every event applied exactly once": "PASS" if verified else "MISS",
                     f"storage calls per event and job <= {CALL_TARGET}":
                         "PASS" if calls["storage_per_event"] <= CALL_TARGET else "MISS"},
    }
    # run_all reads end_to_end.json: a run of the stock double goes beside it, not over it
    path = write_results("end_to_end" if nodelay else "end_to_end_stock_double", out)
    best = max(results, key=lambda r: r["events_per_s"]) if results else None
    if best is not None:
        print(f"\nbest throughput: {best['events_per_s']:.1f} events/s (concurrency {best['label']}, "
              f"double latency {best['latency_ms']} ms); verified: {'all scenarios' if verified else 'NOT ALL'}")
    print(f"results: {path.relative_to(ROOT)}")
    if not verified:
        sys.exit(1)
    return out


if __name__ == "__main__":
    main()
