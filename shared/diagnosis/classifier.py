"""Classifier: Failure -> Diagnosis, driven by the catalog's signature table.

Why it is built this way:
- Real failure text arrives JSON-escaped, wrapped by consoles, inside 1 MB Packer logs.
  Text is unescaped, lower-cased and whitespace-folded once; every signature is first a
  literal `in` test (C speed), and only a hit runs its regex.
- Logs over MAX_SCAN are cut to head and tail: the decisive Packer lines sit near the
  end, and the cut keeps a 1 MB log inside the latency budget.
- Each scenario scores its best signature plus a fraction of the others, plus a family
  bonus when the text speaks of its guide; the best score at or over MIN_SCORE wins.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterable
from dataclasses import dataclass

from shared.core.domain import Diagnosis, Failure, Family, Mode, RemediationRef
from shared.diagnosis.catalog import (
    BY_ID,
    FAMILY_BONUS,
    FAMILY_WORDS,
    GENERIC_YIELD,
    HRESULT_ADVICE,
    HRESULT_GENERIC,
    MIN_SCORE,
    SCENARIOS,
    Scenario,
    Sig,
)

MAX_SCAN = 128 * 1024
_HEAD = 8 * 1024
MAX_EVIDENCE = 5
_EVIDENCE_CHARS = 400
_SECONDARY = 0.2
RUNNER_MARGIN = 3.0
# Regexes run over the whole text up to this size; beyond it, only within _REACH of the
# anchor's occurrences (patterns span at most ~500 characters around their anchor).
_FULL_REGEX = 4096
_REACH = 700
_HEAD_HITS = 4
_TAIL_HITS = 24
# Anchors are indexed by the first KEY_LEN characters of their longest word; a text is
# reduced to the set of its words' first KEY_LEN characters, and only anchors whose key
# is in that set are tested with `in`. Anchors without a word that long are always tested.
KEY_LEN = 5
_WORD = re.compile(r"[a-z0-9_]+")
# ASCII bytes other than [a-z0-9_] become spaces, so `encode().translate(_SPLIT).split()`
# yields the text's words at C speed.
_SPLIT = bytes(c if (chr(c).isalnum() or c == 95 or c >= 128) else 32 for c in range(256))

_ESCAPES = (
    ("\\r\\n", "\n"), ("\\n", "\n"), ("\\t", " "), ('\\"', '"'), ("\\u0027", "'"), ("\\u0022", '"'),
    ("\\u003c", "<"), ("\\u003e", ">"), ("\\u0026", "&"), ("\\/", "/"),
)
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " ", "\r": ""})
_HRESULT = re.compile(r"0x[0-9a-f]{8}", re.IGNORECASE)
_TELEMETRY_START = "(telemetry) starting provisioner "
_TELEMETRY_END = "(telemetry) ending "

NONE_TITLE = "No failure: the signal reports success or work in progress"
UNKNOWN_TITLE = "No troubleshooting-guide scenario matches this failure"


@dataclass(frozen=True, slots=True)
class _Entry:
    row: int
    family: Family
    sig: Sig
    pattern: re.Pattern[str] | None


def _key(anchor: str) -> bytes | None:
    """The first KEY_LEN characters of the anchor's longest word; a one-word anchor
    shorter than that is its own key (it then matches as a whole word)."""
    words = _WORD.findall(anchor)
    longest = max(words, key=len, default="")
    if len(longest) >= KEY_LEN:
        return longest[:KEY_LEN].encode()
    if len(words) == 1 and words[0] == anchor and not anchor.endswith("_"):
        return anchor.encode()
    return None


def _index() -> tuple[dict[bytes, tuple[str, ...]], tuple[str, ...], dict[str, tuple[_Entry, ...]]]:
    """Signatures grouped by anchor (one test per distinct anchor, not per signature), and
    anchors grouped by key; family words are anchors too, with no entries."""
    by_anchor: dict[str, list[_Entry]] = {}
    for row, scenario in enumerate(SCENARIOS):
        for sig in scenario.signatures:
            pattern = re.compile(sig.pattern, re.DOTALL) if sig.pattern else None
            by_anchor.setdefault(sig.anchor, []).append(_Entry(row, scenario.family, sig, pattern))
    for words in FAMILY_WORDS.values():
        for word in words:
            by_anchor.setdefault(word, [])
    keyed: dict[bytes, list[str]] = {}
    loose: list[str] = []
    for anchor in by_anchor:
        key = _key(anchor)
        (keyed.setdefault(key, []) if key else loose).append(anchor)
    return (
        {k: tuple(v) for k, v in keyed.items()},
        tuple(loose),
        {a: tuple(e) for a, e in by_anchor.items()},
    )


_KEYED, _LOOSE, _BY_ANCHOR = _index()
_PREFIX = operator.itemgetter(slice(0, KEY_LEN))
_FAMILY_WORDS = tuple((fam, frozenset(words)) for fam, words in FAMILY_WORDS.items())


def _present(flat: str) -> list[str]:
    """The anchors that occur in the text."""
    found = [a for a in _LOOSE if a in flat]
    keys = set(map(_PREFIX, flat.encode().translate(_SPLIT).split()))
    for key in _KEYED.keys() & keys:
        for anchor in _KEYED[key]:
            if anchor in flat:
                found.append(anchor)
    return found


def normalize(text: str) -> str:
    """Undo JSON string escaping (twice, for double-encoded payloads), CRs and odd quotes."""
    for _ in range(2):
        if "\\" not in text:
            break
        for old, new in _ESCAPES:
            if old in text:
                text = text.replace(old, new)
        text = text.replace("\\\\", "\\")
    if "\r" in text:
        text = text.replace("\r", "")
    return text if text.isascii() else text.translate(_QUOTES)


def _window(text: str) -> str:
    if len(text) <= MAX_SCAN:
        return text
    return text[:_HEAD] + "\n" + text[-(MAX_SCAN - _HEAD):]


@dataclass(frozen=True, slots=True)
class _Hit:
    sig: Sig
    start: int


class _Text:
    """One failure's text in the three forms the matcher needs, computed once."""

    __slots__ = ("flat", "full", "low", "original")

    def __init__(self, full: str) -> None:
        self.full = full
        self.original = normalize(_window(full))
        self.low = self.original.lower()
        self.flat = " ".join(self.low.split())

    def match(self, entry: _Entry) -> int:
        """Where the signature matches in `flat` (its anchor is known to be present), or -1.

        In long texts a regex runs only around the anchor's occurrences (the first few and
        the last many: Packer puts the decisive lines at the end), never over the whole text.
        """
        sig = entry.sig
        flat = self.flat
        for veto in sig.unless:
            if veto in flat:
                return -1
        if entry.pattern is None:
            return flat.find(sig.anchor)
        if len(flat) <= _FULL_REGEX:
            found = entry.pattern.search(flat)
            return -1 if found is None else found.start()
        for pos in _occurrences(flat, sig.anchor):
            found = entry.pattern.search(flat, max(0, pos - _REACH), pos + _REACH)
            if found is not None:
                return found.start()
        return -1

    def evidence(self, hits: list[_Hit]) -> list[str]:
        """The original lines holding the matches (each once); a folded snippet for a
        match that spans lines."""
        source = self.original if len(self.original) == len(self.low) else self.low
        if "\n" not in source and len(source) <= _EVIDENCE_CHARS:
            return [source.strip()]  # one short line: it is the evidence
        seen: set[int] = set()
        out: list[str] = []
        for hit in hits:
            pos = self.low.find(self.flat[hit.start: hit.start + max(len(hit.sig.anchor), 24)])
            if pos < 0:
                pos = self.low.find(hit.sig.anchor)
            if pos < 0:
                out.append(_clip(self.flat, hit.start))
                continue
            start = source.rfind("\n", 0, pos) + 1
            if start in seen:
                continue
            seen.add(start)
            end = source.find("\n", pos)
            out.append(_clip(source[start: end if end >= 0 else len(source)].strip(), pos - start))
            if len(out) >= MAX_EVIDENCE:
                break
        return out


def _occurrences(text: str, anchor: str) -> list[int]:
    """Positions of the anchor: all of them, or the first and the last ones when many."""
    found: list[int] = []
    pos = text.find(anchor)
    while pos >= 0:
        found.append(pos)
        pos = text.find(anchor, pos + 1)
    if len(found) > _HEAD_HITS + _TAIL_HITS:
        found = found[:_HEAD_HITS] + found[-_TAIL_HITS:]
    return found


def _clip(line: str, pos: int) -> str:
    if len(line) <= _EVIDENCE_CHARS:
        return line
    start = max(0, min(pos - 120, len(line) - _EVIDENCE_CHARS))
    return ("..." if start else "") + line[start: start + _EVIDENCE_CHARS] + "..."


def _family_bonus(present: list[str]) -> dict[Family, float]:
    counts = {fam: len(words.intersection(present)) for fam, words in _FAMILY_WORDS}
    top = max(counts.values())
    if top == 0:
        return {}
    return {fam: FAMILY_BONUS for fam, n in counts.items() if n == top}


def _score(weights: list[float]) -> float:
    best = max(weights)
    return best + _SECONDARY * (sum(weights) - best)


def _confidence(score: float, runner_up: float) -> float:
    """Rises with the score; a runner-up within RUNNER_MARGIN of the winner lowers it."""
    base = 1.0 - math.exp(-score / 5.0)
    if runner_up >= score - RUNNER_MARGIN:
        base *= 1.0 - 0.4 * (runner_up / score)
    return max(0.05, min(0.99, base))


def classify_text(text: str, family: Family | None = None) -> Diagnosis:
    """Diagnose plain failure text (the CLI and the corpus script use this)."""
    from shared.diagnosis.envelopes import parse_text

    return classify(parse_text(text, family))


def classify(failure: Failure) -> Diagnosis:
    if not failure.failed:
        return Diagnosis(
            scenario="none", confidence=1.0, title=NONE_TITLE, failure=failure, family=failure.family,
            evidence=failure.texts[:1] or ((f"status: {failure.status}",) if failure.status else ()),
        )
    text = _Text("\n".join(failure.texts))
    present = _present(text.flat)
    # A known family (payload or hint) is the strongest family context there is.
    bonus = {failure.family: FAMILY_BONUS} if failure.family else _family_bonus(present)
    only = failure.family
    by_row: dict[int, list[_Entry]] = {}
    for anchor in present:
        for entry in _BY_ANCHOR[anchor]:
            if only is None or entry.family is only:
                by_row.setdefault(entry.row, []).append(entry)
    # Branch and bound: literal signatures are free to check, regexes are not. A row's
    # upper bound assumes all its regexes match; rows are tried best bound first and the
    # search stops once no bound can come within RUNNER_MARGIN of the best score, which
    # keeps both the winner and every runner-up that affects confidence exact.
    bounds: list[tuple[float, int]] = []
    for row, entries in by_row.items():
        bounds.append((_score([e.sig.weight for e in entries]) + bonus.get(SCENARIOS[row].family, 0.0), row))
    bounds.sort(key=lambda b: (-b[0], b[1]))
    results: list[tuple[float, int, list[_Hit]]] = []
    best, leader_generic = 0.0, False
    for bound, row in bounds:
        # A generic leader can still lose to a specific row scoring GENERIC_YIELD.
        if bound < MIN_SCORE - RUNNER_MARGIN or (
                bound < best - RUNNER_MARGIN and (not leader_generic or bound < GENERIC_YIELD)):
            break
        hits = [_Hit(e.sig, pos) for e in by_row[row] if (pos := text.match(e)) >= 0]
        if hits:
            score = _score([h.sig.weight for h in hits]) + bonus.get(SCENARIOS[row].family, 0.0)
            results.append((score, row, hits))
            if score > best:
                best, leader_generic = score, _generic(hits)
    results.sort(key=lambda r: (-r[0], r[1]))  # table order breaks ties
    if not results or results[0][0] < MIN_SCORE:
        return _unknown(failure, results)
    if _generic(results[0][2]):
        specific = next((r for r in results if not _generic(r[2]) and r[0] >= GENERIC_YIELD), None)
        if specific is not None:  # the wrapper agrees with the cause; it is no rival for confidence
            results = [specific] + [r for r in results if not _generic(r[2]) and r is not specific]
    score, row, hits = results[0]
    runner_up = results[1][0] if len(results) > 1 else 0.0
    return _diagnosis(failure, text, SCENARIOS[row], hits, _confidence(score, runner_up))


def _generic(hits: list[_Hit]) -> bool:
    return all(h.sig.generic for h in hits)


def _unknown(failure: Failure, results: list[tuple[float, int, list[_Hit]]]) -> Diagnosis:
    near = tuple(f"weak match: {SCENARIOS[r[1]].id} (score {r[0]:.1f})" for r in results[:2])
    first = next((t for t in failure.texts if t.strip()), "")
    if first:
        near = (_clip(first.strip().splitlines()[0], 0), *near)
    return Diagnosis(
        scenario="unknown", confidence=0.0, title=UNKNOWN_TITLE, failure=failure, family=failure.family,
        evidence=near,
        remediations=(RemediationRef("follow-guide", Mode.ADVICE),),
        advice=("No scenario of the troubleshooting guides fits: read the evidence and the full error, "
                "and check the guide for your service.",),
    )


def _diagnosis(
    failure: Failure, text: _Text, scenario: Scenario, hits: list[_Hit], confidence: float
) -> Diagnosis:
    hits.sort(key=lambda h: h.sig.weight, reverse=True)
    evidence = _dedupe(text.evidence(hits))
    advice = list(scenario.advice)
    details: list[tuple[str, str]] = []
    if scenario.id == "um.hresult":
        for code in _dedupe(m.group(0).upper().replace("0X", "0x") for m in _HRESULT.finditer(text.flat)):
            details.append(("hresult", code))
            advice.insert(0, f"{code}: {HRESULT_ADVICE.get(code, HRESULT_GENERIC)}")
        if not details:
            advice.insert(0, HRESULT_GENERIC)
    if scenario.family is Family.AIB:
        customizer = last_customizer(text.full, text.low if len(text.full) <= MAX_SCAN else None)
        if customizer is not None:
            name, finished = customizer
            details.append(("last_customizer" if finished else "failing_customizer", name))
            if not finished:
                advice.insert(0, f"The customizer that did not finish: '{name}' (per the (telemetry) lines).")
    return Diagnosis(
        scenario=scenario.id,
        confidence=confidence,
        title=scenario.title,
        evidence=tuple(evidence),
        remediations=scenario.remediations,
        doc=scenario.doc,
        anchor=scenario.anchor,
        advice=tuple(advice),
        queries=scenario.queries,
        family=scenario.family,
        details=tuple(details),
        failure=failure,
    )


def last_customizer(log: str, low: str | None = None) -> tuple[str, bool] | None:
    """The last customizer customization.log started, and whether it logged its end.

    Searches the log's last 512 KiB from the end, since the classifier's window may cut
    the telemetry lines out. `low` is the lower-cased log when the caller has it.
    """
    if low is None:
        low = log[-(4 * MAX_SCAN):].lower()
    if _TELEMETRY_START not in low:
        return None
    pos = low.rfind(_TELEMETRY_START)
    if pos < 0:
        return None
    start = pos + len(_TELEMETRY_START)
    end = start
    while end < len(low) and not low[end].isspace():
        end += 1
    name = low[start:end].strip("'\".,")
    if not name:
        return None
    finished = low.find(_TELEMETRY_END + name, end) >= 0
    return name, finished


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        if item and item not in seen:
            seen[item] = None
    return list(seen)


def scenario_ids() -> tuple[str, ...]:
    return tuple(BY_ID)
