"""The error blocks of the troubleshooting guides, labelled by the section they sit in.

The guides (../shared/seeds) are the product's source: every ```error / ```text block
inside a scenario's section must be diagnosed as that scenario.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from shared.diagnosis.catalog import SCENARIOS

# Older guide versions name a few sections differently.
ALIASES = {"scenario-update-run-returns-failed-status": "um.run_failed_linux"}
_ANCHOR = re.compile(r'<a name="([^"]+)"></a>')
_BLOCK = re.compile(r"```(?:error|text)\n(.*?)```", re.DOTALL)
# Blocks that illustrate the log's layout, not a failure.
_NOT_SCENARIOS = {"customization-log", "understanding-the-customization-log", "troubleshooting-the-task",
                  "troubleshoot-image-template-submission-errors", "troubleshoot-build-failures"}


@dataclass(frozen=True)
class Block:
    seed: str
    scenario: str
    text: str


def guide_blocks(seeds: Path) -> list[Block]:
    by_anchor = {s.anchor: s.id for s in SCENARIOS} | ALIASES
    blocks: list[Block] = []
    for path in sorted(seeds.glob("*.txt")):
        text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
        current: tuple[int, str] | None = None  # (heading level, scenario id)
        for section in re.split(r"\n(?=#{2,6} )", text):
            heading = section.split("\n", 1)[0]
            level = len(heading) - len(heading.lstrip("#"))
            anchors = _ANCHOR.findall(heading)
            scenario = next((by_anchor[a] for a in anchors if a in by_anchor), None)
            if scenario is not None and not any(a in _NOT_SCENARIOS for a in anchors):
                current = (level, scenario)
            elif current is not None and level <= current[0]:
                current = None
            if current is not None and not {"solution", "resolution", "cause"} & set(anchors):
                blocks.extend(Block(path.name, current[1], m.group(1).strip()) for m in _BLOCK.finditer(section))
    return blocks
