"""The catalog's vocabulary: what a scenario row is, how its signatures are weighed, and the words
that place a text in one guide's world. The rows themselves live in one module per family.

Signatures are matched by `shared.diagnosis.classifier` against lower-cased, whitespace-folded
text. `anchor` is a literal that must occur (a cheap `in` test keeps the classifier fast on
1 MB logs); `pattern`, when set, must then match too. Weights: 9-10 for the guide's exact error
strings, 6-8 for strong paraphrases and structured statuses, 3.5 or less for words that only
count with the family's context (see MIN_SCORE).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.core.domain import Family, Mode, RemediationRef

UM_DOC = "https://learn.microsoft.com/azure/automation/troubleshoot/update-management"
AIB_DOC = "https://learn.microsoft.com/azure/virtual-machines/linux/image-builder-troubleshoot"
# Azure Update Manager's troubleshooting guide: the `aum.*` rows link there (`Scenario.guide`).
AUM_DOC = "https://learn.microsoft.com/azure/update-manager/troubleshoot"

# Scores below this say nothing: the text stays `unknown`.
MIN_SCORE = 4.0
# A specific scenario scoring this much beats a generic (wrapper) scenario that outscores it.
GENERIC_YIELD = 7.0
# Added to a scenario's score when the text speaks of its family (Packer, Update Management, ...).
FAMILY_BONUS = 1.0
# A signature this heavy is the guide's own error string: it stands even beside another product's words.
EXACT = 9.0


@dataclass(frozen=True, slots=True)
class Sig:
    anchor: str
    weight: float
    pattern: str | None = None
    unless: tuple[str, ...] = ()
    # A wrapper ("Packer build command has failed", "update run Failed"): a diagnosis resting on
    # wrappers alone yields to a specific cause found in the same text (the log, the machine runs).
    generic: bool = False
    # Counts only when the text names its family's own product (shared.diagnosis.ownership.OWN_CONTEXT)
    # or the caller says the family: words any product could print (`OSProvisioningTimedOut`, a
    # Windows Update code outside the guide's table) are ours only there.
    context: bool = False


@dataclass(frozen=True, slots=True)
class Scenario:
    id: str
    family: Family
    title: str
    anchor: str
    signatures: tuple[Sig, ...]
    remediations: tuple[RemediationRef, ...]
    advice: tuple[str, ...]
    queries: tuple[str, ...] = ()
    # The guide the anchor belongs to, when it is not the family's default (Update Manager rows).
    guide: str | None = None
    # "linux" / "windows" for a scenario that only exists on that OS: never given to a machine of the other.
    os: str | None = None

    @property
    def doc(self) -> str:
        return f"{self.guide or (AIB_DOC if self.family is Family.AIB else UM_DOC)}#{self.anchor}"


def ref(name: str, mode: Mode) -> RemediationRef:
    return RemediationRef(name, mode)


ADVICE_ONLY = (ref("follow-guide", Mode.ADVICE),)
ADVICE_QUERIES = (ref("run-diagnostic-queries", Mode.ADVICE),)

# Words that place a text in one guide's world; they tip ties, they never decide alone.
FAMILY_WORDS: dict[Family, tuple[str, ...]] = {
    Family.AIB: (
        "image builder", "imagebuilder", "aib", "packer", "imagetemplate", "image template",
        "virtualmachineimages", "customization.log", "azure-arm", "customizer", "sysprep",
        "buildtimeoutinminutes", "shared image gallery", "compute gallery", "it_", "image build",
        "deprovision", "runoutput",
    ),
    Family.UPDATE: (
        "update management", "update deployment", "hybrid worker", "hybrid runbook", "automation account",
        "update manager", "maintenance configuration", "softwareupdateconfiguration", "patch", "wsus",
        "windows update", "log analytics agent", "mma", "omsagent", "not assessed", "compliance",
        "maintenance window", "update run", "sccm",
    ),
}


# Regex pieces the rows share.
NEGATION = r"(?:don't|do not|doesn't|does not|didn't|did not|not|never|won't|cannot|can't|isn't|aren't)"
WORD = r"(?:[\w.'-]+[^\w.'-]+)"  # one word and what follows it (disjoint classes: no backtracking blow-up)
