"""Classifier: Failure -> Diagnosis, driven by the catalog's signature table.

Why it is built this way:
- Real failure text arrives JSON-escaped, wrapped by consoles, inside 1 MB Packer logs.
  Text is unescaped, lower-cased and whitespace-folded once; every signature is first a
  literal `in` test (C speed), and only a hit runs its regex.
- Logs over MAX_SCAN are cut to head and tail: the decisive Packer lines sit near the
  end, and the cut keeps a 1 MB log inside the latency budget.
- Each scenario scores its best signature plus a fraction of the others, plus a family
  bonus when the text speaks of its guide; the best score at or over MIN_SCORE wins.
- Structure before wording (`shared.diagnosis.structure`): the decisive error code at any depth
  of nested JSON, HTTP statuses, the Packer builder, the run's OS. A code of ours adds its
  scenario; another product's code as the decisive one takes the wrappers' say away.
- Ownership (`shared.diagnosis.ownership`): a text naming another product (Ansible, DSC,
  Terraform, another cloud's Packer builder, ...) and not ours is not ours; signatures flagged
  `context` count only where the text names its family's own product; inside a Packer build a
  package manager or Windows Update error is a failing customizer, not a patch run.
- The decisive line of a Packer log sits near its end (`Build 'x' errored`, `--> x:`): what matches
  there weighs more than what an earlier, recovered step printed.
- A text of no failure shape (a listing of succeeded resources, a configuration) stays `unknown`.
- Confidence reflects how the winner was found (the guide's exact string, a structured code, a
  paraphrase) and how far ahead of the runner-up it is; the runners-up come back as `alternatives`.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterable
from dataclasses import dataclass

from shared.core.domain import Alternative, Diagnosis, Failure, Family, Mode, RemediationRef, SourceKind
from shared.diagnosis import ownership, structure
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
from shared.diagnosis.catalog.image_builder import OTHER_ACTIONS
from shared.diagnosis.catalog.model import EXACT

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
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " ", "\r": "",
                         # CJK punctuation (full-width brackets, quotes, commas, stops): a word of ours written
                         # between them (「...」, （superseded）) is a word of its own, as between ASCII ones
                         "\u3000": " ", "\u3001": ",", "\u3002": ".", "\u300c": '"', "\u300d": '"',
                         "\u300e": '"', "\u300f": '"', "\u3010": "[", "\u3011": "]", "\uff08": "(",
                         "\uff09": ")", "\uff0c": ",", "\uff1a": ":", "\uff1b": ";", "\uff01": "!",
                         "\uff1f": "?"})
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
    context: bool
    weight: float
    # A literal with no veto: present means matched, where the anchor first occurs (no call needed).
    plain: bool = False


# Words (by their key) most failure texts hold: an anchor is keyed on another of its words when it has one,
# so a text that says "packer", "build" or "maintenance" does not test every anchor that says it too.
_COMMON_KEYS = frozenset({
    "azure", "build", "packe", "image", "windo", "maint", "custo", "insta", "autom", "provi", "confi", "updat",
    "error", "faile", "machi", "templ", "resou", "subsc", "micro", "deplo", "manag", "timeo", "waiti", "comma",
    "servi", "scrip", "statu", "runni", "exite", "exten", "virtu", "creat",
})


def _key(anchor: str) -> bytes | None:
    """The first KEY_LEN characters of the anchor's longest word that is not a common one (else of its
    longest word); a one-word anchor shorter than that is its own key (it then matches as a whole word)."""
    words: list[str] = _WORD.findall(anchor)
    long_words = [w for w in words if len(w) >= KEY_LEN]
    rare = [w for w in long_words if w[:KEY_LEN] not in _COMMON_KEYS]
    if rare or long_words:
        chosen: str = max(rare or long_words, key=len)
        return chosen[:KEY_LEN].encode()
    if len(words) == 1 and words[0] == anchor and not anchor.endswith("_"):
        return anchor.encode()
    return None


_Keyed = dict[bytes, tuple[tuple[str, frozenset[bytes] | None], ...]]


def _others(anchor: str, key: bytes) -> frozenset[bytes] | None:
    """The keys of the anchor's other words of KEY_LEN characters or more: a text lacking one of them
    cannot hold the anchor, so its `in` test is skipped."""
    found = frozenset(w[:KEY_LEN].encode() for w in _WORD.findall(anchor) if len(w) >= KEY_LEN) - {key}
    return found or None


def _index() -> tuple[_Keyed, tuple[str, ...], dict[str, tuple[_Entry, ...]]]:
    """Signatures grouped by anchor (one test per distinct anchor, not per signature), and
    anchors grouped by key (each with its other words' keys); family words are anchors too, with no entries."""
    by_anchor: dict[str, list[_Entry]] = {}
    for row, scenario in enumerate(SCENARIOS):
        for sig in scenario.signatures:
            pattern = re.compile(sig.pattern, re.DOTALL) if sig.pattern else None
            by_anchor.setdefault(sig.anchor, []).append(_Entry(row, scenario.family, sig, pattern, sig.context,
                                                                     sig.weight, pattern is None and not sig.unless))
    for words in FAMILY_WORDS.values():
        for word in words:
            by_anchor.setdefault(word, [])
    for word in ownership.ALL_MARKERS:  # whose product the text is: anchors with no signature
        by_anchor.setdefault(word, [])
    keyed: dict[bytes, list[str]] = {}
    loose: list[str] = []
    for anchor in by_anchor:
        key = _key(anchor)
        (keyed.setdefault(key, []) if key else loose).append(anchor)
    return (
        {k: tuple((a, _others(a, k)) for a in v) for k, v in keyed.items()},
        tuple(loose),
        {a: tuple(e) for a, e in by_anchor.items()},
    )


_KEYED, _LOOSE, _BY_ANCHOR = _index()
# Per set of families lacking context: each anchor's entries that count there (at most four sets).
_USABLE: dict[frozenset[Family], dict[str, tuple[_Entry, ...]]] = {}
# Per key: the anchors tested as they are, and those tested only when their other words' keys are there too.
_SPLIT_KEYED: dict[bytes, tuple[tuple[str, ...], tuple[tuple[str, frozenset[bytes]], ...]]] = {
    k: (tuple(a for a, o in v if o is None), tuple((a, o) for a, o in v if o is not None)) for k, v in _KEYED.items()}
# The keys worth noting in a text: every anchor's key and its other words' keys (a guard is then a subset test
# against the keys the text holds, and the text's words never have to be collected in a set of their own).
_WATCHED = frozenset(_KEYED).union(*(o for _, guarded in _SPLIT_KEYED.values() for _, o in guarded))
_PREFIX = operator.itemgetter(slice(0, KEY_LEN))
_WEIGHT_OF = operator.attrgetter("sig.weight")
_GENERIC_OF = operator.attrgetter("sig.generic")
_FAMILY_WORDS = tuple((fam, frozenset(words)) for fam, words in FAMILY_WORDS.items())


def _present(flat: str) -> dict[str, int]:
    """The anchors that occur in the text (the ownership markers of `shared.diagnosis.ownership` among them),
    each with where it first occurs (a literal signature's match, found once)."""
    found: dict[str, int] = {}
    for a in _LOOSE:
        if (pos := flat.find(a)) >= 0:
            found[a] = pos
    held = _WATCHED.intersection(map(_PREFIX, flat.encode().translate(_SPLIT).split()))
    find = flat.find
    split_keyed = _SPLIT_KEYED
    for key in held:
        if key not in split_keyed:
            continue  # only another anchor's guard
        plain, guarded = split_keyed[key]
        for anchor in plain:
            if (pos := find(anchor)) >= 0:
                found[anchor] = pos
        for anchor, others in guarded:
            if others <= held and (pos := find(anchor)) >= 0:
                found[anchor] = pos
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


class _Hit:
    """A signature that matched, and where in the folded text (a plain slotted class: a frozen
    dataclass's __init__ costs a call per field, and hits are made per text)."""

    __slots__ = ("sig", "start")

    def __init__(self, sig: Sig, start: int) -> None:
        self.sig = sig
        self.start = start


class _Text:
    """One failure's text in the three forms the matcher needs, computed once."""

    __slots__ = ("at", "flat", "full", "low", "original")

    def __init__(self, full: str) -> None:
        self.full = full
        self.original = normalize(_window(full))
        self.low = self.original.lower()
        self.flat = " ".join(self.low.split())
        self.at: dict[str, int] = {}  # where each present anchor first occurs in `flat`

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
            pos = self.at.get(sig.anchor)
            return flat.find(sig.anchor) if pos is None else pos
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


def _family_bonus(present: Iterable[str]) -> dict[Family, float]:
    counts = {fam: len(words.intersection(present)) for fam, words in _FAMILY_WORDS}
    top = max(counts.values())
    if top == 0:
        return {}
    return {fam: FAMILY_BONUS for fam, n in counts.items() if n == top}


def _score(weights: list[float]) -> float:
    best = max(weights)
    return best + _SECONDARY * (sum(weights) - best)


# Another product's text that does not name ours keeps this share of its score.
DISOWNED = 0.2
# The other family's product is named and this one's is not: a Packer log's apt lock is a build step's.
OFF_CONTEXT = 0.5
# The decisive error code is another product's: wrappers say nothing, paraphrases weigh less.
FOREIGN_CODE = 0.6
# What matches on a Packer log's decisive (last) error lines; what matches only before them, when
# another scenario matches on them, keeps this share (a step Packer recovered from, a warning).
DECISIVE_BONUS = 1.5
EARLIER = 0.7
ALTERNATIVES = 3
# A package manager or Windows Update error inside a Packer build: its provisioner failed.
_BUILD_STEP_WEIGHT = 6.0
_ROW = {s.id: i for i, s in enumerate(SCENARIOS)}
_FAMILY_OF = tuple(s.family for s in SCENARIOS)
_DOC = {s.id: s.doc for s in SCENARIOS}  # a property that formats: once per scenario, not per diagnosis
_CUSTOMIZER = "aib.customizer_failed"
# Scenarios only a Linux machine has (the Linux package manager, sudo, the auto-assessment service).
_LINUX_ONLY = frozenset(i for i, s in enumerate(SCENARIOS) if s.os == "linux")
_OTHER = {Family.AIB: Family.UPDATE, Family.UPDATE: Family.AIB}
_OFF_CONTEXT_NOTE = {f: f"the text names {_OTHER[f].value}'s product, not this one's" for f in Family}
# Decisive error codes that name a scenario: (scenario, weight, needs the family's own context).
CODE_RULES: dict[str, tuple[str, float, bool]] = {
    "propertychangenotallowed": ("aum.schedule_prereq_not_set", 6.0, True),
    "authorizationfailed": ("aib.authorization_failed", 6.0, True),
    "osprovisioningtimedout": ("aib.vm_from_image_fails", 7.0, True),
    "osprovisioningclienterror": ("aib.vm_from_image_fails", 6.0, True),
    "platformimagenotfound": ("aib.source_image_not_found", 7.0, True),
    "imagenotfound": ("aib.source_image_not_found", 7.0, True),
    "galleryimagenotfound": ("aib.source_image_not_found", 7.0, True),
    "imageversionnotfound": ("aib.source_image_not_found", 7.0, True),
    "publicaccessnotpermitted": ("aib.external_file_download_failed", 6.0, True),
    "authorizationpermissionmismatch": ("aib.external_file_download_failed", 6.0, True),
    "maintenancewindowexceeded": ("um.maintenance_window_exceeded", 9.0, False),
    "invalidmaintenancewindow": ("aum.configuration_invalid", 7.0, False),
    "vmguestpatchinternalerror": ("aum.internal_execution_error", 7.0, False),
    "shutdownorunresponsive": ("aum.machine_unavailable", 8.0, False),
}
# Codes our signatures read by themselves; with CODE_RULES, the codes that are ours.
OUR_CODES = frozenset(CODE_RULES) | {
    "resourcenotfound", "linkedauthorizationfailed", "missingsubscriptionregistration", "packerbuildfailed",
    "internalexecutionerror", "unauthorized", "propertychangenotallowed", "customerenvironmenterror",
    "package_manager_failure", "invalidparameter", "operationnotallowed_imagetemplate",
}
_SYNTHETIC: dict[tuple[str, str, float], Sig] = {}


def _synthetic(scenario: str, anchor: str, weight: float) -> Sig:
    key = (scenario, anchor, weight)
    sig = _SYNTHETIC.get(key)
    if sig is None:
        sig = _SYNTHETIC[key] = Sig(anchor, weight)
    return sig


_BOTH = frozenset((Family.AIB, Family.UPDATE))
_AIB_ONLY = frozenset((Family.AIB,))
_UPDATE_ONLY = frozenset((Family.UPDATE,))
# (own context, family hint, in a build) -> the families whose context-only signatures do not count
_LACKING: dict[tuple[frozenset[Family], Family | None, bool], frozenset[Family]] = {}


class _Facts:
    """What the text says by its structure and whose product it names, read once per text."""

    __slots__ = ("build", "codes", "decisive", "foreign", "hint", "lacking", "own", "region")

    def __init__(self, flat: str, present: Iterable[str], hint: Family | None) -> None:
        self.hint = hint
        own, self.foreign, build = ownership.read(present)
        self.own = own
        # An image build's own output: its package manager and Windows Update errors are the build step's.
        self.build = build and own == _AIB_ONLY and hint is not Family.UPDATE
        # The families whose context-only signatures do not count here (inside a build, the update
        # family's do: they become the failing step's evidence).
        key = (own, hint, self.build)
        lacking = _LACKING.get(key)
        if lacking is None:
            lacking = _BOTH - own - ({hint} if hint is not None else set()) - (_UPDATE_ONLY if self.build else set())
            _LACKING[key] = lacking
        self.lacking = lacking
        self.codes = structure.codes(flat)
        self.decisive = structure.decisive_code(self.codes) if self.codes else None
        # Only a build's log has decisive lines (`Build 'x' errored`).
        self.region = _decisive_region(flat) if Family.AIB in own or hint is Family.AIB else -1

    def has_context(self, family: Family) -> bool:
        return family is self.hint or family in self.own

    def disowned_by(self, family: Family) -> str | None:
        """The other product that claims the text, when the text does not name ours."""
        if self.has_context(family):
            return None
        return next((name for name, against in self.foreign if family in against), None)

    def foreign_code(self) -> str | None:
        d = self.decisive
        return d.code if d is not None and d.code not in OUR_CODES else None


_REGION_MARKS = ("some builds didn't complete successfully", "errored:", "errored after")


_BUILD_ERROR = re.compile(r"errored(?: after [^:]{0,60})?: (.{3,160}?)(?= ==> | --> | \[[0-9a-f-]{36}\] |$)")
_BUILD_SUMMARY = re.compile(r"--> [\w.:-]+: (.{3,160}?)(?= ==> | --> |$)")


def _build_error(flat: str, region: int) -> str | None:
    """The error a Packer build ended on: its last `Build 'x' errored[ after t]: <error>` line, else the
    `--> x: <error>` summary of its decisive lines."""
    last = flat.rfind("errored")
    found = _BUILD_ERROR.match(flat, last) if last >= 0 else None
    if found is None:
        found = _BUILD_SUMMARY.search(flat, region)
    return found.group(1).strip() if found is not None else None


def _decisive_region(flat: str) -> int:
    """Where a Packer log's decisive error lines start (its last `Build 'x' errored` / `-->` summary),
    or -1 when the text has none."""
    if "errored" not in flat and "some builds" not in flat:
        return -1
    best = -1
    for mark in _REGION_MARKS:
        best = max(best, flat.rfind(mark))
    if best < 0:
        return -1
    return max(0, flat.rfind(" ==> ", 0, best) if "==>" in flat[max(0, best - 200):best] else best - 200)


def _structural(flat: str, facts: _Facts) -> list[tuple[int, _Hit]]:
    """Hits read from structure: the decisive code of ours, an HTTP status in a build's context."""
    d = facts.decisive
    if d is None and "403" not in flat and "404" not in flat:
        return []
    out: list[tuple[int, _Hit]] = []
    if d is not None and d.code in CODE_RULES:
        scenario, weight, needs = CODE_RULES[d.code]
        row = _ROW.get(scenario)
        if row is not None and (not needs or facts.has_context(SCENARIOS[row].family)) and not (
                d.code == "authorizationfailed" and any(a in flat for a in OTHER_ACTIONS)):
            out.append((row, _Hit(_synthetic(scenario, d.code, weight), d.start)))
    if facts.has_context(Family.AIB):
        if "403" in flat and (pos := structure.http_status(flat, "403")) >= 0:
            out.append((_ROW["aib.authorization_failed"],
                        _Hit(_synthetic("aib.authorization_failed", "403", 6.5), pos)))
        if "404" in flat and ("image" in flat or "gallery" in flat) and "resource group 'it_" not in flat and (
                pos := structure.http_status(flat, "404")) >= 0:
            out.append((_ROW["aib.source_image_not_found"],
                        _Hit(_synthetic("aib.source_image_not_found", "404", 6.0), pos)))
    return out


def _confidence(score: float, runner_up: float, top: float, structural: bool, doubt: bool, *,
                beside: bool = False) -> float:
    """Rises with the score; a runner-up within RUNNER_MARGIN of the winner lowers it. A winner
    resting on the guide's exact string or a structured code may reach the top; one resting on
    paraphrases alone, or beside another product's words (`beside`), stays under 0.8."""
    base = 1.0 - math.exp(-score / 5.0)
    close = runner_up >= score - RUNNER_MARGIN
    if close:
        base *= 1.0 - 0.4 * (runner_up / score)
    if doubt:
        base = min(base, 0.6)
    elif close or beside or (top < EXACT and not structural):
        base = min(base, 0.79)
    return max(0.05, min(0.99, base))


def classify_text(text: str, family: Family | None = None) -> Diagnosis:
    """Diagnose plain failure text (the CLI and the corpus script use this)."""
    return classify(Failure(source=SourceKind.TEXT, failed=True, texts=(text,), family=family))


class _Result:
    """A scenario's score, the hits it rests on (their best weight, whether all are wrappers), and what
    lowered it."""

    __slots__ = ("decisive", "generic", "hits", "note", "row", "score", "top")

    def __init__(self, score: float, row: int, hits: list[_Hit], note: str = "", decisive: bool = False) -> None:
        self.score, self.row, self.hits, self.note, self.decisive = score, row, hits, note, decisive
        self.top = max(map(_WEIGHT_OF, hits))
        self.generic = all(map(_GENERIC_OF, hits))


def classify(failure: Failure) -> Diagnosis:
    if not failure.failed:
        return Diagnosis(
            scenario="none", confidence=1.0, title=NONE_TITLE, failure=failure, family=failure.family,
            evidence=failure.texts[:1] or ((f"status: {failure.status}",) if failure.status else ()),
        )
    text = _Text("\n".join(failure.texts))
    flat = text.flat
    if flat[:1] in ("{", "[") and not structure.reports_failure(flat):
        return _unknown(failure, [], "the text reports no failure (a listing, a configuration or a success)")
    present = text.at = _present(flat)
    facts = _Facts(flat, present, failure.family)
    # A known family (payload or hint) is the strongest family context there is.
    bonus = {failure.family: FAMILY_BONUS} if failure.family else _family_bonus(present)
    only = failure.family
    lacking = facts.lacking
    by_row: dict[int, list[_Entry]] = {}
    if only is None:
        usable = _USABLE.get(lacking)
        if usable is None:
            usable = _USABLE[lacking] = {a: tuple(e for e in entries if not (e.context and e.family in lacking))
                                         for a, entries in _BY_ANCHOR.items()}
        for anchor in present:
            for entry in usable[anchor]:
                if entry.row in by_row:
                    by_row[entry.row].append(entry)
                else:
                    by_row[entry.row] = [entry]
    else:
        for anchor in present:
            for entry in _BY_ANCHOR[anchor]:
                if entry.family is only and not (entry.context and entry.family in lacking):
                    by_row.setdefault(entry.row, []).append(entry)
    seeded: dict[int, list[_Hit]] = {}
    if facts.decisive is not None or (facts.has_context(Family.AIB) and ("403" in flat or "404" in flat)):
        for row, hit in _structural(flat, facts):
            if only is None or SCENARIOS[row].family is only:
                seeded.setdefault(row, []).append(hit)
    raw = _search(text, by_row, seeded, bonus, facts.region)
    results = _judge(raw, facts, flat)
    results.sort(key=lambda r: (-r.score, r.row))  # table order breaks ties
    if not results or results[0].score < MIN_SCORE:
        return _unknown(failure, results)
    ranked = results
    if results[0].generic:
        specific = next((r for r in results if not r.generic and r.score >= GENERIC_YIELD), None)
        if specific is not None:  # the wrapper agrees with the cause; it is no rival for confidence
            ranked = [specific] + [r for r in results if r is not specific]
            results = [specific] + [r for r in results if not r.generic and r is not specific]
    win = results[0]
    if win.generic and facts.region >= 0 and (ended := _build_error(flat, facts.region)) is not None:
        # Packer's epilogue ("no artifacts were created", "build command has failed") says only that the
        # build failed; the log names the error that ended it, and no scenario explains that error.
        return _unknown(failure, ranked, f"the build ended on an error no scenario of the guide explains: {ended}")
    runner_up = results[1].score if len(results) > 1 else 0.0
    family = SCENARIOS[win.row].family
    # Only a decisive code of ours read from the structure counts as structural evidence.
    structural = facts.decisive is not None and facts.decisive.code in CODE_RULES and _ROW.get(
        CODE_RULES[facts.decisive.code][0]) == win.row
    doubt = bool(win.note) or facts.disowned_by(family) is not None or (
        not facts.has_context(family) and facts.has_context(_OTHER[family]))
    # Our product named beside another that claims such texts (a Packer-built AKS image, an Ansible task in a build):
    # the scenario may stand, but not with the confidence of a text that is only ours.
    beside = any(family in against for _, against in facts.foreign)
    confidence = _confidence(win.score, runner_up, win.top, structural, doubt, beside=beside)
    return _diagnosis(failure, text, SCENARIOS[win.row], win.hits, confidence, others=ranked[1:])


def _search(text: _Text, by_row: dict[int, list[_Entry]], seeded: dict[int, list[_Hit]], bonus: dict[Family, float],
            region: int) -> list[_Result]:
    """Branch and bound: literal signatures are free to check, regexes are not. A row's
    upper bound assumes all its regexes match; rows are tried best bound first and the
    search stops once no bound can come within RUNNER_MARGIN of the best score, which
    keeps both the winner and every runner-up that affects confidence exact."""
    flat = text.flat
    at, match = text.at, text.match
    extra = DECISIVE_BONUS if region >= 0 else 0.0
    family_of = _FAMILY_OF
    bounds: list[tuple[float, int]] = []  # (-bound, row): a plain sort puts the best bound first, table order on ties
    for row, entries in by_row.items():
        weights = [e.weight for e in entries]
        if seeded and row in seeded:
            weights += [h.sig.weight for h in seeded[row]]
        bounds.append((-(_score(weights) + (bonus.get(family_of[row], 0.0) if bonus else 0.0) + extra), row))
    for row, hits in seeded.items():
        if row not in by_row:
            bounds.append((-(_score([h.sig.weight for h in hits]) + bonus.get(family_of[row], 0.0) + extra), row))
    bounds.sort()
    raw: list[_Result] = []
    best, leader_generic = 0.0, False
    for negated, row in bounds:
        bound = -negated
        # A generic leader can still lose to a specific row scoring GENERIC_YIELD.
        if bound < MIN_SCORE - RUNNER_MARGIN or (
                bound < best - RUNNER_MARGIN and (not leader_generic or bound < GENERIC_YIELD)):
            break
        hits = [_Hit(e.sig, at[e.sig.anchor]) if e.plain else _Hit(e.sig, pos)
                for e in by_row.get(row, ()) if e.plain or (pos := match(e)) >= 0]
        if seeded and row in seeded:
            hits += seeded[row]
        if hits:
            score = _score(list(map(_WEIGHT_OF, hits))) + (bonus.get(family_of[row], 0.0) if bonus else 0.0)
            decisive = region >= 0 and any(flat.find(h.sig.anchor, region) >= 0 for h in hits)
            if decisive:
                score += DECISIVE_BONUS
            result = _Result(score, row, hits, decisive=decisive)
            raw.append(result)
            if score > best:
                best, leader_generic = score, result.generic
    return raw


def _verdicts(raw: list[_Result], facts: _Facts) -> dict[Family, tuple[float, str, bool] | None]:
    """Per family of the results: the factor ownership or context puts on its scores, why, and whether it
    holds even for the guide's exact strings (None: no change)."""
    verdicts: dict[Family, tuple[float, str, bool] | None] = {}
    for family in {_FAMILY_OF[r.row] for r in raw}:
        owner = facts.disowned_by(family) if facts.foreign else None
        if owner is not None:
            verdicts[family] = (DISOWNED, f"the text is {owner}'s", True)
        elif family not in facts.own and facts.hint is None and _OTHER[family] in facts.own:
            verdicts[family] = (OFF_CONTEXT, _OFF_CONTEXT_NOTE[family], False)
        else:
            verdicts[family] = None
    return verdicts


def _judge(raw: list[_Result], facts: _Facts, flat: str) -> list[_Result]:
    """Ownership, context and the decisive code applied to the signature scores (in place)."""
    if not raw:
        return raw
    foreign_code = facts.foreign_code()
    on_decisive = facts.region >= 0 and any(r.decisive for r in raw) and not all(r.decisive for r in raw)
    build = facts.build
    linux_only = _LINUX_ONLY
    if foreign_code is None and not on_decisive and not build and not facts.foreign and (
            facts.hint is not None or len(facts.own) != 1 or all(_FAMILY_OF[r.row] in facts.own for r in raw)
    ) and all(r.row not in linux_only for r in raw):
        return raw  # no other product, no one family's context against the other's, no decisive lines
    verdicts = _verdicts(raw, facts)
    if foreign_code is None and not on_decisive and not build and all(
            verdicts[_FAMILY_OF[r.row]] is None and r.row not in linux_only for r in raw):
        return raw  # nothing to weigh: no other product, no family out of context, no decisive lines
    out: list[_Result] = []
    build_step: list[_Hit] = []
    for r in raw:
        family = _FAMILY_OF[r.row]
        if build and family is Family.UPDATE and r.top < EXACT:
            # Inside a Packer build, a package manager or Windows Update error is the build step's.
            build_step.extend(_Hit(_synthetic(_CUSTOMIZER, h.sig.anchor, min(h.sig.weight, _BUILD_STEP_WEIGHT)),
                                   h.start) for h in r.hits)
            continue
        notes: list[str] = []
        if foreign_code is not None:
            hits = [h for h in r.hits if not h.sig.generic]
            if not hits:
                continue
            if len(hits) < len(r.hits):
                kept = _score([h.sig.weight for h in hits]) + r.score - _score([h.sig.weight for h in r.hits])
                r = _Result(kept, r.row, hits, r.note, r.decisive)  # noqa: PLW2901 (the wrappers' share gone)
            if r.top < EXACT:
                r.score *= FOREIGN_CODE
                notes.append(f"decisive code {foreign_code} is another product's")
        if on_decisive and not r.decisive:
            r.score *= EARLIER
            notes.append("matched only before the log's decisive lines")
        verdict = verdicts[family]
        if verdict is not None and (verdict[2] or r.top < EXACT):
            r.score *= verdict[0]
            notes.append(verdict[1])
        if r.row in linux_only and structure.os_of(flat) == "windows":
            notes.append("the run is a Windows one")
            r.score = 0.0
        if notes:
            r.note = "; ".join(notes)
        out.append(r)
    if build_step:
        row = _ROW[_CUSTOMIZER]
        merged = next((r for r in out if r.row == row), None)
        hits = (merged.hits if merged else []) + build_step
        score = _score([h.sig.weight for h in hits]) + FAMILY_BONUS
        out = [r for r in out if r.row != row] + [_Result(score, row, hits, merged.note if merged else "")]
    return out
def _alternatives(results: list[_Result]) -> tuple[Alternative, ...]:
    seen: set[int] = set()
    out: list[Alternative] = []
    for r in results:
        if r.row in seen or r.score <= 0:
            continue
        seen.add(r.row)
        out.append(Alternative(SCENARIOS[r.row].id, r.score, tuple((h.sig.anchor, h.sig.weight) for h in r.hits),
                               r.note))
        if len(out) >= ALTERNATIVES:
            break
    return tuple(out)


def _unknown(failure: Failure, results: list[_Result], why: str | None = None) -> Diagnosis:
    near = tuple(f"weak match: {SCENARIOS[r.row].id} (score {r.score:.1f})" for r in results[:2] if r.score > 0)
    if why:
        near = (why, *near)
    first = next((t for t in failure.texts if t.strip()), "")
    if first:
        near = (_clip(first.strip().splitlines()[0], 0), *near)
    return Diagnosis(
        scenario="unknown", confidence=0.0, title=UNKNOWN_TITLE, failure=failure, family=failure.family,
        evidence=near,
        remediations=(RemediationRef("follow-guide", Mode.ADVICE),),
        advice=("No scenario of the troubleshooting guides fits: read the evidence and the full error, "
                "and check the guide for your service.",),
        alternatives=_alternatives(results),
    )


def _diagnosis(
    failure: Failure, text: _Text, scenario: Scenario, hits: list[_Hit], confidence: float, *,
    others: list[_Result],
) -> Diagnosis:
    hits = sorted(hits, key=lambda h: h.sig.weight, reverse=True)
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
        doc=_DOC[scenario.id],
        anchor=scenario.anchor,
        advice=tuple(advice),
        queries=scenario.queries,
        family=scenario.family,
        details=tuple(details),
        failure=failure,
        alternatives=_alternatives([r for r in others if r.row != _ROW[scenario.id]]),
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
