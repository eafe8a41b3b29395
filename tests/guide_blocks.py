"""The troubleshooting guides as test data, and their error blocks labelled by the section they sit in.

`tests/data/guides/` holds, for each guide version, what the tests read of it (its README says
where each comes from and under which licence): the headings (level and anchors) and the fenced
code blocks under each (error strings, log excerpts, Log Analytics queries, commands), not the
prose. The guides are the product's source: every ```error / ```text block inside a scenario's
section must be diagnosed as that scenario.

A guide's data file is made from its markdown source (the learn.microsoft.com page's source):

    .venv/bin/python -m tests.guide_blocks GUIDE.md --url URL --out tests/data/guides/NNN-name.locale.json
"""

from __future__ import annotations

import argparse
import json
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from shared.diagnosis.catalog import SCENARIOS

GUIDES = Path(__file__).resolve().parent / "data" / "guides"

# Older guide versions name a few sections differently.
ALIASES = {"scenario-update-run-returns-failed-status": "um.run_failed_linux"}
ERROR_LANGS = frozenset({"error", "text"})
_ANCHOR = re.compile(r'<a name="([^"]+)"></a>')
_HEADING = re.compile(r"\n(?=#{2,6} )")
_FENCE = re.compile(r"```([\w-]*)\n(.*?)```", re.DOTALL)
# Blocks that illustrate the log's layout, not a failure.
_NOT_SCENARIOS = {"customization-log", "understanding-the-customization-log", "troubleshooting-the-task",
                  "troubleshoot-image-template-submission-errors", "troubleshoot-build-failures"}


@dataclass(frozen=True)
class Code:
    lang: str  # the fence's info string: error, text, loganalytics, azurecli, ... ("" for none)
    text: str


@dataclass(frozen=True)
class Section:
    level: int  # 1 for the title, 2-6 for ## ... ######
    anchors: tuple[str, ...]
    code: tuple[Code, ...]


@dataclass(frozen=True)
class Guide:
    file: str
    url: str
    locale: str
    date: str
    sections: tuple[Section, ...]

    @property
    def anchors(self) -> set[str]:
        return {a for s in self.sections for a in s.anchors}

    def code(self, *langs: str) -> list[str]:
        return [c.text for s in self.sections for c in s.code if not langs or c.lang in langs]


@dataclass(frozen=True)
class Block:
    guide: str  # the data file's name; its first three characters number the guide version
    scenario: str
    text: str


@cache
def load_guides(folder: Path = GUIDES) -> tuple[Guide, ...]:
    guides: list[Guide] = []
    for path in sorted(folder.glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        sections = tuple(Section(s["level"], tuple(s["anchors"]), tuple(Code(c["lang"], c["text"]) for c in s["code"]))
                         for s in raw["sections"])
        guides.append(Guide(path.name, raw["url"], raw["locale"], raw["date"], sections))
    if not guides:
        raise FileNotFoundError(f"no guide data in {folder}")
    return tuple(guides)


def anchors_by_url(folder: Path = GUIDES) -> dict[str, set[str]]:
    """Every guide's section anchors, by the guide's address (all its language versions together)."""
    anchors: dict[str, set[str]] = {}
    for guide in load_guides(folder):
        anchors.setdefault(guide.url, set()).update(guide.anchors)
    return anchors


def guide_blocks(folder: Path = GUIDES) -> list[Block]:
    by_anchor = {s.anchor: s.id for s in SCENARIOS} | ALIASES
    blocks: list[Block] = []
    for guide in load_guides(folder):
        current: tuple[int, str] | None = None  # (heading level, scenario id)
        for section in guide.sections:
            anchors = section.anchors
            scenario = next((by_anchor[a] for a in anchors if a in by_anchor), None)
            if scenario is not None and not any(a in _NOT_SCENARIOS for a in anchors):
                current = (section.level, scenario)
            elif current is not None and section.level <= current[0]:
                current = None
            if current is not None and not {"solution", "resolution", "cause"} & set(anchors):
                blocks.extend(Block(guide.file, current[1], c.text) for c in section.code if c.lang in ERROR_LANGS)
    return blocks


# --- making a guide's data file from its markdown ----------------------------------------------


def extract(markdown: str, url: str) -> dict[str, Any]:
    """What the tests use of one guide: its front matter's locale and date, and per heading its
    level, anchors and fenced code blocks (de-indented as markdown reads them)."""
    text = markdown.replace("\r\n", "\n")
    front: dict[str, str] = {}
    if text.startswith("---\n"):
        head, _, text = text[4:].partition("\n---\n")
        for line in head.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                front[key.strip()] = value.strip().strip('"')
    sections: list[dict[str, Any]] = []
    for chunk in _HEADING.split(text):
        first = chunk.lstrip("\n").split("\n", 1)[0]
        hashes = len(first) - len(first.lstrip("#"))
        code = [{"lang": m.group(1), "text": textwrap.dedent(m.group(2)).strip()} for m in _FENCE.finditer(chunk)]
        sections.append({"level": hashes if first[hashes:hashes + 1] == " " else 1,
                         "anchors": _ANCHOR.findall(first), "code": code})
    date = front.get("ms.date", "")
    if date:
        date = datetime.strptime(date, "%m/%d/%Y").date().isoformat()
    return {"url": url, "locale": front.get("ms.contentlocale", "en-US"), "date": date, "sections": sections}


def dumps(data: dict[str, Any]) -> str:
    """JSON with one line per section and per code block, for readable diffs."""
    def line(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    head = ", ".join(f"{line(k)}: {line(v)}" for k, v in data.items() if k != "sections")
    sections = []
    for s in data["sections"]:
        code = ",\n".join(f"  {line(c)}" for c in s["code"])
        sections.append(f' {{"level": {s["level"]}, "anchors": {line(s["anchors"])}, "code": ['
                        + (f"\n{code}]}}" if code else "]}"))
    return f"{{{head}, \"sections\": [\n" + ",\n".join(sections) + "\n]}\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a guide's data file (tests/data/guides/) from its markdown.")
    parser.add_argument("markdown", type=Path)
    parser.add_argument("--url", required=True, help="the guide's address, e.g. "
                        "https://learn.microsoft.com/azure/automation/troubleshoot/update-management")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    data = extract(args.markdown.read_text(encoding="utf-8"), args.url)
    args.out.write_text(dumps(data), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
