"""The `remediator` command line: the same pipeline as the Functions, without Functions.

Other tools rely on its output (see the README's CLI contract): keep field names stable.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from typing import Any, TextIO

from shared.core.domain import Diagnosis, Family
from shared.core.errors import PayloadError
from shared.diagnosis.envelopes import family_hint
from shared.diagnosis.offline import diagnose_input, diagnose_payload, result_json

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    result: int = handler(args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="remediator",
        description="Diagnose (and remediate) failed Azure Update Management runs and Image Builder builds.",
    )
    sub = parser.add_subparsers(dest="command")
    diag = sub.add_parser(
        "diagnose",
        help="diagnose a payload or failure text",
        description="FILE is any supported payload (Event Grid, CloudEvent, common alert schema, ARM GET "
        "body) or plain failure text; '-' or nothing reads standard input.",
    )
    diag.add_argument("file", nargs="?", default="-", metavar="FILE|-")
    out = diag.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON (a list for a batch of events)")
    out.add_argument("--jsonl", action="store_true",
                     help="read JSON lines from stdin, write one JSON result line per input line")
    diag.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                      help="--jsonl worker processes (default: one per CPU); order is kept")
    diag.add_argument("--source", choices=[f.value for f in Family], help="the guide the failure belongs to")
    diag.add_argument("--samples", action="store_true", help="diagnose the bundled sample failures")
    diag.set_defaults(handler=_diagnose)
    from shared.entry.cli_actions import add_parsers

    add_parsers(sub)
    return parser


def _diagnose(args: argparse.Namespace) -> int:
    family = family_hint(args.source)
    if args.samples:
        return _samples(args.json, family)
    if args.jsonl:
        if args.file not in ("-", None):
            print("remediator: --jsonl reads standard input; drop FILE", file=sys.stderr)
            return EXIT_BAD_INPUT
        return run_jsonl(sys.stdin.buffer, sys.stdout, family, workers=max(1, args.workers))
    try:
        raw = _read(args.file)
        diagnoses, batch = diagnose_input(raw, family, lenient=True)
    except PayloadError as exc:
        if args.json:
            print(json.dumps(exc.to_dict()))
        else:
            print(f"remediator: invalid payload: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"remediator: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        body: Any = [d.to_dict() for d in diagnoses] if batch else diagnoses[0].to_dict()
        print(json.dumps(body, indent=2, ensure_ascii=False))
    else:
        sys.stdout.write("\n".join(render(d) for d in diagnoses))
    return EXIT_OK


def _samples(as_json: bool, family: Family | None) -> int:
    """The embedded default: every bundled sample, one diagnosis block (or JSON object) each."""
    from importlib.resources import files

    results: list[dict[str, Any]] = []
    for item in sorted(files("shared.diagnosis.samples").iterdir(), key=lambda p: p.name):
        if not item.name.endswith((".json", ".txt")):
            continue
        diagnoses, _ = diagnose_input(item.read_bytes(), family, lenient=True)
        if as_json:
            results.extend({"sample": item.name, **d.to_dict()} for d in diagnoses)
        else:
            sys.stdout.write(f"== {item.name}\n" + "\n".join(render(d) for d in diagnoses) + "\n")
    if as_json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    return EXIT_OK


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as fh:
        return fh.read()


JSONL_CHUNK = 2000


def run_jsonl(lines: Iterable[bytes], out: TextIO, family: Family | None, *, workers: int = 1) -> int:
    """One result line per input line, in order; a bad line gets an error line, never a gap.

    Input is cut into chunks; with several workers, forked processes classify chunks in
    parallel and `imap` hands them back in input order. Input that fits one chunk is done
    in-process, so short runs pay no fork.
    """
    chunks = _chunks(lines, JSONL_CHUNK)
    first = next(chunks, None)
    if first is None:
        return EXIT_OK
    render = partial(_render_chunk, family=family)
    if workers <= 1 or len(first) < JSONL_CHUNK:
        for chunk in itertools.chain([first], chunks):
            out.write(render(chunk))
    else:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for text in pool.imap(render, itertools.chain([first], chunks)):
                out.write(text)
    out.flush()
    return EXIT_OK


def _chunks(lines: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    it = iter(lines)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _render_chunk(chunk: list[bytes], family: Family | None) -> str:
    return "".join(_jsonl_line(raw, family) + "\n" for raw in chunk)


def _jsonl_line(raw: bytes, family: Family | None) -> str:
    try:
        value = json.loads(raw)
    except RecursionError:
        return json.dumps({"scenario": None, "error": "invalid JSON line", "problem": "nested too deeply"})
    except ValueError as exc:
        return json.dumps({"scenario": None, "error": "invalid JSON line", "problem": str(exc)})
    try:
        diagnoses, batch = diagnose_payload(value, family)
    except PayloadError as exc:
        return json.dumps({"scenario": None, **exc.to_dict()})
    if not batch:
        return result_json(diagnoses[0])
    parts = [result_json(d) for d in diagnoses]
    first = next((d for d in diagnoses if d.scenario != "none"), diagnoses[0])
    return f'{{"scenario": {json.dumps(first.scenario)}, "batch": [{", ".join(parts)}]}}'


def render(d: Diagnosis) -> str:
    """A readable summary for a person at a terminal."""
    lines = [f"{d.scenario}  (confidence {d.confidence:.2f})  {d.title}"]
    failure = d.failure
    if failure is not None:
        where = failure.resource_id or "(no resource id)"
        lines.append(f"  source: {failure.source.value}  status: {failure.status or '-'}  resource: {where}")
    if d.evidence:
        lines.append("  evidence:")
        lines.extend(f"    > {e}" for e in d.evidence)
    for key, value in d.details:
        lines.append(f"  {key.replace('_', ' ')}: {value}")
    if d.remediations:
        lines.append("  remediations: " + ", ".join(f"{r.name} ({r.mode.value})" for r in d.remediations))
    if d.advice:
        lines.append("  advice:")
        lines.extend(f"    - {a}" for a in d.advice)
    for q in d.queries:
        lines.append("  query:")
        lines.extend(f"    {line}" for line in q.splitlines())
    if d.doc:
        lines.append(f"  doc: {d.doc}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
