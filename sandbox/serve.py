"""`remediator serve`: the whole Function App on this machine, run the way the Functions host runs it.

- **Storage**: an Azurite of its own (`./node_modules/.bin/azurite`, installed by scripts/setup.sh) on
  free loopback ports, its data in a temporary folder (or `--data DIR`), stopped with the command.
- **HTTP**: every route `function_app.py` declares, with function-key auth (`sandbox.devserver`).
- **Queue triggers**: every queue `function_app.py` binds (`remediations` and `remediations-poison`) is
  polled as the host polls it, with host.json's `extensions.queues`: up to `batchSize` messages at a
  time, each handed to its function as an `azure.functions` QueueMessage carrying its `dequeue_count`;
  a message whose function raised becomes visible again after `visibilityTimeout`, and once it has been
  delivered `maxDequeueCount` times it moves to `<queue>-poison`. While a function runs its message stays
  invisible for `functionTimeout` (the host renews a shorter lease instead): a stopped run's messages come
  back then.
- **Timer**: on its NCRONTAB schedule (the binding's `%SETTING%` from the environment, UTC), unless
  `--no-timer`.
- **Azure**: the configured endpoints, or with `--sandbox` an embedded local double serving the
  sandbox estate.

The app reads its settings from the environment, as in Azure; this command fills in what only it can
know (the storage connection string, the approval links' base URL, with `--sandbox` the endpoints) and
an ephemeral signing key when none is set. The first stdout line is JSON saying where everything is;
SIGTERM or Ctrl-C stops it all, the HTTP server first and Azurite last.
"""

from __future__ import annotations

import base64
import calendar
import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
AZURITE = ROOT / "node_modules" / ".bin" / "azurite"
HOST_JSON = ROOT / "host.json"
DEFAULT_SWEEP_SCHEDULE = "0 */15 * * * *"  # infra/ sets this for the app
MIN_POLL = 0.1  # seconds between polls of an idle queue, doubling up to MAX_POLL
MAX_POLL = 2.0  # the host backs off to maxPollingInterval (1 min by default); a local run answers sooner
DRAIN_SECONDS = 30.0  # how long a stop waits for running functions
EXIT_OK, EXIT_BAD_INPUT = 0, 2
log = logging.getLogger("remediator.serve")


class ServeError(RuntimeError):
    """Something the command cannot run without (named in the message)."""


# --- host.json -----------------------------------------------------------------------------------


def timespan(value: str) -> float:
    """A .NET TimeSpan as host.json writes it ("00:00:30", "1.02:00:00") in seconds."""
    match = re.fullmatch(r"(?:(\d+)\.)?(\d+):(\d+):(\d+(?:\.\d+)?)", value.strip())
    if match is None:
        raise ValueError(f"not a TimeSpan (hh:mm:ss): {value!r}")
    days, hours, minutes, seconds = match.groups()
    return ((int(days or 0) * 24 + int(hours)) * 60 + int(minutes)) * 60 + float(seconds)


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """host.json `extensions.queues` (defaults: the Functions host's) and `functionTimeout`."""

    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    batch_size: int = 16
    function_timeout: float = 30 * 60.0

    @classmethod
    def from_host_json(cls, path: Path = HOST_JSON) -> QueueSettings:
        host = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        queues = host.get("extensions", {}).get("queues", {})
        defaults = cls()
        return cls(max_dequeue_count=int(queues.get("maxDequeueCount", defaults.max_dequeue_count)),
                   visibility_timeout=timespan(queues["visibilityTimeout"]) if "visibilityTimeout" in queues
                   else defaults.visibility_timeout,
                   batch_size=int(queues.get("batchSize", defaults.batch_size)),
                   function_timeout=timespan(host["functionTimeout"]) if "functionTimeout" in host
                   else defaults.function_timeout)


# --- NCRONTAB ------------------------------------------------------------------------------------

_FIELDS = (("second", 0, 59, ()), ("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day", 1, 31, ()),
           ("month", 1, 12, tuple(calendar.month_name[1:])),
           ("day of week", 0, 6, ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")))


class Ncrontab:
    """A Functions timer schedule: `{second} {minute} {hour} {day} {month} {day-of-week}` with `*`, `a-b`,
    `*/n`, `a-b/n`, `a/n`, lists, and month and day names (or their prefixes), as NCrontab reads it.
    As in NCrontab, a day must match both the day field and the day-of-week field (0 = Sunday)."""

    def __init__(self, expression: str) -> None:
        parts = expression.split()
        if len(parts) != len(_FIELDS):
            raise ValueError(f"{expression!r}: an NCRONTAB schedule has 6 fields "
                             "({second} {minute} {hour} {day} {month} {day-of-week})")
        self.expression = expression
        self.seconds, self.minutes, self.hours, self.days, self.months, self.weekdays = (
            self._field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True))

    @staticmethod
    def _field(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> tuple[int, ...]:
        def value(token: str) -> int:
            if token.isdigit():
                number = int(token)
            else:
                found = [i for i, n in enumerate(names) if token and n.lower().startswith(token.lower())]
                if not found:
                    raise ValueError(f"{name} field {text!r}: {token!r} is neither a number nor a name")
                number = found[0] + low
            if not low <= number <= high:
                raise ValueError(f"{name} field {text!r}: {number} is outside {low}-{high}")
            return number

        chosen: set[int] = set()
        for item in text.split(","):
            span, _, step_text = item.partition("/")
            step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
            if step_text and step is None:
                raise ValueError(f"{name} field {text!r}: bad step {step_text!r}")
            if span == "*":
                first, last = low, high
            elif "-" in span:
                a, _, b = span.partition("-")
                first, last = value(a), value(b)
            else:
                first = value(span)
                last = high if step else first
            chosen.update(range(first, last + 1, step or 1))
        if not chosen:
            raise ValueError(f"{name} field {text!r} selects nothing")
        return tuple(sorted(chosen))

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment` (an aware datetime; the schedule is in UTC)."""
        start = moment.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        first_day = start.date()
        for offset in range(366 * 29):  # every day pattern recurs within 28 years
            day = first_day + timedelta(days=offset)
            if not self._on(day):
                continue
            earliest = (start.hour, start.minute, start.second) if offset == 0 else (0, 0, 0)
            for hour in self.hours:
                if hour < earliest[0]:
                    continue
                for minute in self.minutes:
                    if (hour, minute) < earliest[:2]:
                        continue
                    for second in self.seconds:
                        if (hour, minute, second) >= earliest:
                            return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)
        raise ValueError(f"{self.expression!r} never fires")

    def _on(self, day: date) -> bool:
        return (day.month in self.months and day.day in self.days
                and (day.weekday() + 1) % 7 in self.weekdays)


# --- Azurite -------------------------------------------------------------------------------------


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


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Azurite:
    """An Azurite (blob, queue, table) of this command's own, on free loopback ports."""

    START_TIMEOUT = 30.0
    STOP_TIMEOUT = 10.0

    def __init__(self, location: Path, binary: Path = AZURITE) -> None:
        self.location = location
        self.binary = binary
        self.blob_port, self.queue_port, self.table_port = free_ports(3)
        self.log_path = location / "azurite.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ports(self) -> tuple[int, int, int]:
        return self.blob_port, self.queue_port, self.table_port

    @property
    def connection_string(self) -> str:
        from shared.state.tables import dev_connection_string

        return dev_connection_string(blob_port=self.blob_port, queue_port=self.queue_port,
                                     table_port=self.table_port)

    def start(self) -> None:
        if not self.binary.exists():
            raise ServeError(f"Azurite is not installed ({self.binary} is missing): run ./scripts/setup.sh")
        if shutil.which("node") is None:
            raise ServeError("Node.js is not on PATH (Azurite needs it): run ./scripts/setup.sh")
        (self.location / "data").mkdir(parents=True, exist_ok=True)
        # setpriv --pdeathsig: Azurite gets SIGTERM if this process dies without stopping it (kill -9).
        setpriv = shutil.which("setpriv")
        guard = [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []
        command = [*guard, str(self.binary), "--blobHost", "127.0.0.1", "--blobPort", str(self.blob_port),
                   "--queueHost", "127.0.0.1", "--queuePort", str(self.queue_port),
                   "--tableHost", "127.0.0.1", "--tablePort", str(self.table_port),
                   "--location", str(self.location / "data"),
                   "--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry"]
        with self.log_path.open("ab") as out:
            # Its own session: Ctrl-C in the terminal reaches this command, which stops Azurite last.
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.location, start_new_session=True)
        deadline = time.monotonic() + self.START_TIMEOUT
        while not all(answers(p) for p in self.ports):
            if self.proc.poll() is not None:
                raise ServeError(f"Azurite exited with {self.proc.returncode} while starting:\n{self._tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServeError(f"Azurite did not listen within {self.START_TIMEOUT:.0f}s:\n{self._tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM (Azurite flushes its data), then SIGKILL if it hangs; returns once its ports are closed."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=self.STOP_TIMEOUT)
        deadline = time.monotonic() + self.STOP_TIMEOUT
        while any(answers(p) for p in self.ports) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


# --- the triggers --------------------------------------------------------------------------------


def setting(name: str, env: Mapping[str, str]) -> str:
    """A binding's `%NAME%` (or a connection's setting name) resolved from the app settings."""
    key = name[1:-1] if name.startswith("%") and name.endswith("%") else name
    value = env.get(key)
    if not value:
        raise ServeError(f"the app setting {key} is not set (a binding of function_app.py needs it)")
    return value


def _queue_client(connection_string: str, name: str) -> Any:
    """A queue client that moves message text as it is (the host's base64 is decoded per message)."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.queue import QueueClient

    from shared.state.tables import normalise_connection_string

    client = QueueClient.from_connection_string(normalise_connection_string(connection_string), name)
    with contextlib.suppress(ResourceExistsError):  # already there: what we want
        client.create_queue()
    return client


class QueueTrigger:
    """One queue-triggered function, fed as the Functions host feeds it (see the module docstring)."""

    def __init__(self, function: str, queue: str, handler: Callable[[Any], Any], connection_string: str,
                 settings: QueueSettings) -> None:
        self.function = function
        self.queue = queue
        self.handler = handler
        self.settings = settings
        self.client = _queue_client(connection_string, queue)
        self._poison: Any = None
        self._connection_string = connection_string
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"queue-{queue}", daemon=True)
        self._pool = ThreadPoolExecutor(max_workers=settings.batch_size, thread_name_prefix=f"fn-{function}")

    @property
    def poison_queue(self) -> str:
        return f"{self.queue}-poison"

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = DRAIN_SECONDS) -> None:
        """No more polling; waits (up to `timeout`) for the functions running now."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        idle = MIN_POLL
        while not self._stop.is_set():
            try:
                messages = self.poll_once()
            except Exception:  # storage gone or restarting: the host logs it and polls again
                log.exception("polling queue %s failed", self.queue)
                messages = 0
            if messages:
                idle = MIN_POLL
                continue
            self._stop.wait(idle)
            idle = min(idle * 2, MAX_POLL)

    def poll_once(self) -> int:
        """Receives one batch and runs it to the end; returns how many messages it held."""
        lease = max(1, int(self.settings.function_timeout))
        batch = list(self.client.receive_messages(max_messages=self.settings.batch_size, visibility_timeout=lease))
        for future in [self._pool.submit(self.process, m) for m in batch]:
            future.result()
        return len(batch)

    def process(self, message: Any) -> None:
        from azure.functions.queue import QueueMessage

        make: Any = QueueMessage  # the worker's own type (azure.functions leaves it untyped)
        count = int(message.dequeue_count)
        if count > self.settings.max_dequeue_count:  # delivered before, never finished (a crash, a stop)
            self._to_poison(message, f"dequeue count {count} is over maxDequeueCount")
            return
        invocation = uuid.uuid4()
        log.info("Executing 'Functions.%s' (Reason='New queue message detected on '%s'.', Id=%s, dequeue count %d)",
                 self.function, self.queue, invocation, count)
        started = time.monotonic()
        try:
            body = base64.b64decode(str(message.content), validate=True)
            self.handler(make(id=message.id, body=body, dequeue_count=count, expiration_time=message.expires_on,
                              insertion_time=message.inserted_on, time_next_visible=message.next_visible_on,
                              pop_receipt=message.pop_receipt))
        except Exception as exc:
            log.warning("Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms): %s", self.function, invocation,
                        (time.monotonic() - started) * 1000, exc, exc_info=not _expected(exc))
            if count >= self.settings.max_dequeue_count:
                self._to_poison(message, f"failed on delivery {count} of {self.settings.max_dequeue_count}")
            else:  # visible again after visibilityTimeout, for the next delivery
                self.client.update_message(message, visibility_timeout=int(self.settings.visibility_timeout))
            return
        log.info("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)", self.function, invocation,
                 (time.monotonic() - started) * 1000)
        self.client.delete_message(message)

    def _to_poison(self, message: Any, why: str) -> None:
        if self._poison is None:
            self._poison = _queue_client(self._connection_string, self.poison_queue)
        log.warning("Message %s moved to queue '%s': %s", message.id, self.poison_queue, why)
        self._poison.send_message(message.content)  # the text as it was, as the host copies it
        self.client.delete_message(message)


def _expected(exc: BaseException) -> bool:
    """A redelivery the app asked for (the target is locked, Azure failed transiently): no traceback."""
    from shared.decisions.pipeline import Retry

    return isinstance(exc, Retry)


class TimerTrigger:
    """One timer-triggered function on its NCRONTAB schedule; one invocation at a time, as the host runs it."""

    def __init__(self, function: str, schedule: Ncrontab, handler: Callable[[Any], Any], *,
                 run_on_startup: bool = False, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.function = function
        self.schedule = schedule
        self.handler = handler
        self.run_on_startup = run_on_startup
        self.clock = clock
        self.next = schedule.next_after(clock())
        self.last: datetime | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"timer-{function}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = DRAIN_SECONDS) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        if self.run_on_startup:
            self.fire(past_due=False)
        while not self._stop.wait(max(0.0, (self.next - self.clock()).total_seconds())):
            self.fire(past_due=self.clock() - self.next > timedelta(seconds=1))

    def fire(self, *, past_due: bool) -> None:
        import azure.functions.timer as ft

        due, now = self.next, self.clock()
        self.next = self.schedule.next_after(max(now, due))
        status = {"Last": (self.last or due).isoformat(), "Next": self.next.isoformat(), "LastUpdated": now.isoformat()}
        invocation = uuid.uuid4()
        log.info("Executing 'Functions.%s' (Reason='Timer fired at %s', Id=%s)", self.function, now.isoformat(),
                 invocation)
        started = time.monotonic()
        try:
            self.handler(ft.TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True}))
        except Exception:
            log.exception("Executed 'Functions.%s' (Failed, Id=%s)", self.function, invocation)
        else:
            log.info("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)", self.function, invocation,
                     (time.monotonic() - started) * 1000)
        self.last = due


def triggers(env: Mapping[str, str], settings: QueueSettings, *, timer: bool) -> list[QueueTrigger | TimerTrigger]:
    """The queue and timer triggers function_app.py declares, read from its bindings."""
    from sandbox.devserver import functions

    found: list[QueueTrigger | TimerTrigger] = []
    for fn in functions():
        for binding in fn.get_bindings():
            bound: Any = binding
            if binding.type == "queueTrigger":
                found.append(QueueTrigger(fn.get_function_name(), bound.queue_name, fn.get_user_function(),
                                          setting(bound.connection, env), settings))
            elif binding.type == "timerTrigger" and timer:
                found.append(TimerTrigger(fn.get_function_name(), Ncrontab(setting(bound.schedule, env)),
                                          fn.get_user_function(), run_on_startup=bool(bound.run_on_startup)))
    return found


# --- the command ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    sandbox: bool = False
    port: int = 0
    timer: bool = True
    function_key: str | None = None
    data: Path | None = None


def _configure_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)  # the SDKs log every request at INFO


@dataclass
class Running:
    """What `start` brought up, for `run` to report and stop."""

    stack: ExitStack
    summary: dict[str, Any]
    triggers: list[QueueTrigger | TimerTrigger]


def start(options: Options, env: dict[str, str]) -> Running:
    """Brings everything up (Azurite, the double, the wiring, the HTTP server, the triggers), filling in
    `env` (the app's settings) as it goes; raises ServeError naming what is missing."""
    from sandbox.devserver import DevServer

    stack = ExitStack()
    try:
        if options.data is not None:
            options.data.mkdir(parents=True, exist_ok=True)
            location = options.data
        else:
            location = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="remediator-serve-")))
        azurite = Azurite(location)
        stack.callback(azurite.stop)  # registered first, so it runs last
        azurite.start()
        env["AzureWebJobsStorage"] = env["REMEDIATOR_STORAGE"] = azurite.connection_string
        sandbox_info = _sandbox(stack, env) if options.sandbox else None
        if not env.get("REMEDIATOR_SIGNING_KEY"):
            env["REMEDIATOR_SIGNING_KEY"] = base64.b64encode(secrets.token_bytes(32)).decode()
            log.warning("REMEDIATOR_SIGNING_KEY is not set: approval links are signed with a key for this run only")
        if options.timer and not env.get("REMEDIATOR_SWEEP_SCHEDULE"):
            env["REMEDIATOR_SWEEP_SCHEDULE"] = DEFAULT_SWEEP_SCHEDULE
        key = options.function_key or secrets.token_urlsafe(24)
        try:
            server = DevServer(port=options.port, function_key=key)
        except OSError as exc:
            raise ServeError(f"cannot listen on 127.0.0.1:{options.port}: {exc.strerror or exc}") from None
        # Stopped in reverse: the HTTP server first (nothing new comes in), then the triggers (running
        # functions finish), the double, Azurite.
        found: list[QueueTrigger | TimerTrigger] = []
        stack.callback(lambda: [t.stop() for t in found])
        stack.callback(server.stop)
        env.setdefault("REMEDIATOR_PUBLIC_URL", server.url)
        os.environ.update(env)
        wired = _wire()
        found += triggers(os.environ, QueueSettings.from_host_json(), timer=options.timer)
        for trigger in found:
            trigger.start()
        server.start()
    except BaseException:
        stack.close()
        raise
    timers = [t for t in found if isinstance(t, TimerTrigger)]
    summary = {
        "url": server.url, "function_key": key, "storage": azurite.connection_string,
        "arm_url": wired.ctx.clients.endpoints.arm, "logs_url": wired.ctx.clients.endpoints.logs,
        "queues": [t.queue for t in found if isinstance(t, QueueTrigger)],
        "timer": {"function": timers[0].function, "schedule": timers[0].schedule.expression,
                  "next": timers[0].next.isoformat()} if timers else None,
        "cards": None if wired.notifier.webhook_url else str(Path(wired.notifier.sink).resolve()),
        "azurite": {"pid": azurite.proc.pid if azurite.proc else None, "blob_port": azurite.blob_port,
                    "queue_port": azurite.queue_port, "table_port": azurite.table_port, "data": str(location)},
        "sandbox": sandbox_info,
    }
    return Running(stack, summary, found)


def _sandbox(stack: ExitStack, env: dict[str, str]) -> dict[str, Any]:
    from sandbox import AzureDouble, sandbox_estate

    estate = sandbox_estate()
    # Retry-After 1: the SDKs' pollers would otherwise wait their default 30 s between polls.
    double = AzureDouble(estate=estate, lro_retry_after=1)
    double.start()
    stack.callback(double.stop)
    workspace = estate.workspaces[0].customer_id if estate.workspaces else None
    env["REMEDIATOR_ARM_ENDPOINT"], env["REMEDIATOR_LOGS_ENDPOINT"] = double.arm_url, double.logs_url
    if workspace:
        env["REMEDIATOR_WORKSPACE_ID"] = workspace
    env.setdefault("REMEDIATOR_ALLOWED_SCOPES", f"/subscriptions/{estate.subscription_id}")
    return {"subscription": estate.subscription_id, "workspace_id": workspace, "resources": dict(double.refs)}


def _wire() -> Any:
    """The app's wiring, built now so a bad setting stops the command before anything is served."""
    from shared.wiring import ConfigError, app

    try:
        return app()
    except (ConfigError, ValueError) as exc:
        raise ServeError(str(exc)) from None


def run(options: Options, out: TextIO | None = None, env: Mapping[str, str] | None = None) -> int:
    """Serves until SIGTERM or Ctrl-C. Exit 0 after a clean stop, 2 when it cannot start."""
    out = out or sys.stdout
    _configure_logging()
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            running = start(options, dict(os.environ if env is None else env))
        except ServeError as exc:
            print(f"remediator serve: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        with running.stack:
            out.write(json.dumps(running.summary) + "\n")
            out.flush()
            log.info("serving %s (function key in the first stdout line); Ctrl-C stops", running.summary["url"])
            while not stop.wait(0.5):
                pass
            log.info("stopping: HTTP, triggers (waiting for running functions), the double, Azurite")
        return EXIT_OK
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__ = ["Azurite", "Ncrontab", "Options", "QueueSettings", "QueueTrigger", "ServeError", "TimerTrigger", "run",
           "start", "timespan", "triggers"]

