"""The `remediator` commands that act on Azure: remediations, run, sweep, sandbox, serve.

Kept apart from the diagnosis commands so `remediator diagnose` never imports an adapter.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def add_parsers(sub: Any) -> None:
    cat = sub.add_parser("remediations", help="list the remediations (name, fixes, mode, limits)")
    cat.add_argument("--json", action="store_true")
    cat.set_defaults(handler=_catalog)

    run = sub.add_parser("run", help="run one named remediation on one target",
                         description="Plans against live state, then applies and verifies (unless --dry-run). "
                         "Result: applied, noop (already done), dry-run or failed.")
    run.add_argument("name")
    run.add_argument("--target", required=True, help="the resource id (or /subscriptions/<id>)")
    run.add_argument("--param", action="append", default=[], metavar="K=V")
    run.add_argument("--dry-run", action="store_true")
    run.add_argument("--json", action="store_true")
    run.add_argument("--override", metavar="REASON",
                     help="operators only: run although the allowed scopes, the mode or a budget refuse it; "
                     "the reason is recorded in the local audit log")
    run.set_defaults(handler=_run)

    sw = sub.add_parser("sweep", help="find failures, diagnose them, apply what policy allows, propose the rest")
    where = sw.add_mutually_exclusive_group(required=True)
    where.add_argument("--subscription", action="append", metavar="ID", help="repeatable")
    where.add_argument("--sandbox", action="store_true", help="sweep the embedded local Azure double")
    sw.add_argument("--dry-run", action="store_true", help="plan everything, change nothing")
    sw.add_argument("--mode", choices=["observe", "suggest", "auto"], help="override REMEDIATOR_MODE")
    sw.add_argument("--approve-all", action="store_true",
                    help="treat approval-mode remediations as approved (sandboxes, break-glass)")
    sw.add_argument("--json", action="store_true")
    sw.set_defaults(handler=_sweep)

    box = sub.add_parser("sandbox", help="serve the local Azure double with a realistic failed estate")
    box.add_argument("--port", type=int, default=0)
    box.set_defaults(handler=_sandbox)

    serve = sub.add_parser("serve", help="run the whole app locally as Functions would (HTTP, queue, timer, Azurite)",
                           description="Starts Azurite, serves every HTTP route with function-key auth, runs the "
                           "queue triggers (host.json's maxDequeueCount, poison queue) and the timer; first stdout "
                           "line: JSON {url, function_key, storage, arm_url, ...}. SIGTERM or Ctrl-C stops it all.")
    serve.add_argument("--sandbox", action="store_true", help="against an embedded local Azure double (else Azure)")
    serve.add_argument("--port", type=int, default=0, help="HTTP port on 127.0.0.1 (default: a free one)")
    serve.add_argument("--no-timer", dest="timer", action="store_false", help="do not run the timer sweep")
    serve.add_argument("--function-key", help="the key function-level routes require (default: a new one)")
    serve.add_argument("--data", metavar="DIR", help="keep Azurite's data here (default: a temporary folder)")
    serve.set_defaults(handler=_serve)


def _settings_error(exc: Exception) -> int:
    print(f"remediator: {exc}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _catalog(args: argparse.Namespace) -> int:
    from remediations.base import registry
    from remediations.limits import Limits

    try:
        limits = Limits.from_env().describe()
    except ValueError as exc:
        return _settings_error(exc)
    rows: list[dict[str, Any]] = [{"name": r.name, "fixes": list(r.fixes), "mode": r.mode.value, "summary": r.summary,
             "target": r.target_kind, "params": dict(r.params),
             "limits": {n: limits[n] for n in r.limit_names}}
            for r in sorted(registry().items.values(), key=lambda r: r.name)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for row in rows:
        print(f"{row['name']}  [{row['mode']}]  fixes {', '.join(row['fixes'])}")
        print(f"    {row['summary']}")
        print(f"    target: {row['target']}")
        for key, meaning in row["params"].items():
            print(f"    --param {key}=...  {meaning}")
        for key, value in row["limits"].items():
            print(f"    limit {key}: {value}")
    return EXIT_OK


def _context() -> Any:
    from remediations.context import Context
    from remediations.limits import Limits
    from shared.azure.clients import Clients
    from shared.azure.endpoints import Endpoints

    return Context(clients=Clients(Endpoints.from_env()), limits=Limits.from_env())


def _state_dir() -> Path:
    """The CLI's local state (budgets, audit of overrides): beside its vault."""
    vault = os.environ.get("REMEDIATOR_VAULT_DIR")
    if vault:
        return Path(vault).parent
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "remediator"


class FileBudget:
    """The change budgets of `remediator run` on this machine, kept across runs in a JSON file
    (one count per scope and window bucket), so the CLI honours them as the app does."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def take(self, scope: str, window: Any, limit: int) -> bool:
        import fcntl
        from datetime import UTC, datetime

        from shared.state.counters import bucket

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.seek(0)
            counts: dict[str, int] = json.loads(fh.read() or "{}")
            key = f"{scope}|{bucket(window, datetime.now(UTC))[0]}"
            if counts.get(key, 0) >= limit:
                return False
            counts[key] = counts.get(key, 0) + 1
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps(counts))
        return True


def _audit_override(name: str, target: str, reason: str, refusal: str) -> None:
    from datetime import UTC, datetime

    line = {"at": datetime.now(UTC).isoformat(), "kind": "override", "remediation": name, "target": target,
            "actor": os.environ.get("USER") or "operator", "reason": reason, "overrode": refusal}
    path = _state_dir() / "audit.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")
    print(f"remediator: override recorded in {path}: {refusal}", file=sys.stderr)


def _refusal(args: argparse.Namespace, target: str, why: str) -> int | None:
    """None to go on; an exit code where policy refuses and no --override was given."""
    if not args.override:
        print(f"remediator: refused: {why} (an operator may pass --override REASON)", file=sys.stderr)
        return EXIT_FAILED
    _audit_override(args.name, target, args.override, why)
    return None


def _run(args: argparse.Namespace) -> int:
    from remediations.base import Result, check_request, registry
    from remediations.runner import execute
    from shared.core.errors import PayloadError
    from shared.decisions.policy import Action, Policy

    params: dict[str, str] = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            return _settings_error(ValueError(f"--param {item!r}: expected K=V"))
        params[key.strip()] = value.strip()
    remediation = registry().items.get(args.name)
    if remediation is None:
        known = ", ".join(sorted(registry().items))
        return _settings_error(ValueError(f"no remediation {args.name!r}; known: {known}"))
    try:
        policy = Policy.from_env()
        ctx = _context()  # the endpoints are checked first: a bad setting is named before a bad target
        target = check_request(remediation, args.target, params)
        planned = execute(args.name, target, params, ctx, dry_run=True)
    except PayloadError as exc:
        return _settings_error(ValueError(f"{exc.path}: {exc.problem}"))
    except ValueError as exc:
        return _settings_error(exc)
    outcome = planned
    if planned.result is Result.DRY_RUN and planned.plan is not None and not args.dry_run:
        outside = sorted({c.resource_id for c in planned.plan.changes if not policy.in_scope(c.resource_id)})
        # The operator typing the command is the approval; observe (global, per remediation) still stops it.
        decision = policy.decide(args.name, remediation.mode, target, approved=True)
        refusal = (f"{', '.join(outside[:3])} is outside REMEDIATOR_ALLOWED_SCOPES" if outside
                   else None if decision.action is Action.APPLY or planned.plan.resume
                   else f"{decision.reason} (REMEDIATOR_MODE / REMEDIATOR_REMEDIATION_MODES)")
        if refusal is None and not planned.plan.resume:
            denied = policy.spend(FileBudget(_state_dir() / "budgets.json"), target)
            refusal = f"{denied.reason} (budget)" if denied else None
        if refusal is not None and (code := _refusal(args, target, refusal)) is not None:
            return code
        outcome = execute(args.name, target, params, ctx)
    if args.json:
        print(json.dumps({"remediation": args.name, "target": target, **outcome.to_dict()}, indent=2))
    else:
        print(f"{args.name} on {target}: {outcome.result.value}"
              + (f" ({outcome.plan.reason})" if outcome.plan and outcome.plan.reason else ""))
        for change in outcome.changes:
            print(f"  {change.action} {change.field}: {change.before!r} -> {change.after!r}")
        if outcome.error:
            print(f"  error: {outcome.error}")
    return EXIT_FAILED if outcome.result is Result.FAILED else EXIT_OK


def _sandbox_commands() -> Any:
    """The sandbox's commands, found by entry point: the deployed package never imports the sandbox.

    The repository installs it (`scripts/setup.sh`, entry point group `remediator.sandbox`); a
    deployment has no such entry point, and `--sandbox` then says so instead of failing on import.
    """
    from importlib.metadata import entry_points

    for point in entry_points(group="remediator.sandbox"):
        return point.load()
    raise SandboxMissing("the sandbox is a development tool of the repository (install it with "
                         "./scripts/setup.sh); it is not part of the deployed app")


class SandboxMissing(RuntimeError):
    """`--sandbox` asked for where the sandbox is not installed."""


def _sweep(args: argparse.Namespace) -> int:
    from shared.decisions.policy import Policy, PolicyMode
    from shared.decisions.sweep import sweep

    try:
        policy = Policy.from_env()
        if args.mode:
            policy = Policy(PolicyMode(args.mode), policy.per_remediation, policy.allowed_scopes,
                            policy.max_changes_per_hour, policy.max_changes_per_target_per_day)
    except ValueError as exc:
        return _settings_error(exc)

    def progress(message: str) -> None:
        if not args.json or sys.stderr.isatty():
            print(f"... {message}", file=sys.stderr, flush=True)

    if args.sandbox:
        try:
            commands = _sandbox_commands()
        except SandboxMissing as exc:
            return _settings_error(exc)
        with commands.context() as (ctx, subscriptions):
            findings = sweep(ctx, subscriptions, policy=policy, dry_run=args.dry_run,
                             approve_all=args.approve_all, progress=progress)
    else:
        try:
            ctx = _context()
        except ValueError as exc:
            return _settings_error(exc)
        findings = sweep(ctx, args.subscription, policy=policy, dry_run=args.dry_run,
                         approve_all=args.approve_all, progress=progress)
    if args.json:
        print(json.dumps({"findings": [f.to_dict() for f in findings]}, indent=2))
    else:
        print(table(findings))
    return EXIT_FAILED if any(f.decision == "failed" or f.result == "failed" for f in findings) else EXIT_OK


def table(findings: list[Any]) -> str:
    """A readable table: one line per finding, the changes under it."""
    if not findings:
        return "no failures found"
    rows = [(f.resource.rstrip("/").rsplit("/", 1)[-1], f.scenario, f.remediation or "-", f.decision) for f in findings]
    widths = [max(len(r[i]) for r in [*rows, ("RESOURCE", "SCENARIO", "REMEDIATION", "DECISION")]) for i in range(4)]
    fmt = "  ".join(f"{{:{w}}}" for w in widths) + "  {}"
    lines = [fmt.format("RESOURCE", "SCENARIO", "REMEDIATION", "DECISION", "WHY")]
    for row, f in zip(rows, findings, strict=True):
        lines.append(fmt.format(*row, f.reason[:90]))
        lines.extend(f"    {c['field']}: {_short(c['before'])} -> {_short(c['after'])}" for c in f.changes)
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.decision] = counts.get(f.decision, 0) + 1
    lines.append("total: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    return "\n".join(lines)


_RESOURCE_ID = re.compile(r"/subscriptions/[^\s'\"]+/([^/\s'\"]+)")


def _short(value: Any) -> str:
    """Resource ids shown by their names: the table is for reading; --json has the ids."""
    return _RESOURCE_ID.sub(r"\1", repr(value))


def _sandbox(args: argparse.Namespace) -> int:
    try:
        commands = _sandbox_commands()
    except SandboxMissing as exc:
        return _settings_error(exc)
    return int(commands.serve(args.port))


def _serve(args: argparse.Namespace) -> int:
    try:
        commands = _sandbox_commands()
    except SandboxMissing as exc:
        return _settings_error(exc)
    return int(commands.serve_app(sandbox=args.sandbox, port=args.port, timer=args.timer,
                                  function_key=args.function_key, data=args.data))
