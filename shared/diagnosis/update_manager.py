"""Azure Update Manager, per machine: why each machine of a run failed, what will fail in the
coming run, and what the estate shows — decided from Update Manager's structured results first.

A `Microsoft.Maintenance.PostMaintenanceEvent` carries a run-level `status` only; which machines
failed, and why, is in Azure Resource Graph under the run's `correlationId`:
`patchinstallationresources` (status, errorDetails, maintenanceWindowExceeded, rebootStatus, osType),
`maintenanceresources` (the run's per-machine `applyupdates`, the per-run record with its cancellation
message, the configuration's assignments) and `resources` (each machine's power state, patch
orchestration, assessment mode, patch extensions, Arc status). Each machine is diagnosed from those
fields, in the order the table `_RULES` gives; the wording of `errorDetails` is read by the classifier
(with the machine's OS, so a Windows machine never gets a Linux-only scenario); text decides only what
the fields leave open. Every diagnosis carries the fields it used as evidence lines.

- `diagnose_run`: a failed run, per machine (`MachineDiagnosis`: the diagnosis and the resource its
  remediations act on: the machine, or the configuration for a window that ran out). A run cancelled
  through the cancellation API is no failure (`none`); one cancelled by the platform is
  `aum.run_cancelled_by_platform` for each of its machines.
- `gate`: a `PreMaintenanceEvent` (sent at least 30 minutes before the start; a run can be cancelled
  until 10 minutes before it): the machines of the coming run (static assignments and dynamic scopes)
  checked for power state, patch orchestration prerequisites, patch extension health and provider
  registration — a report of what will fail and why. It never cancels a run.
- `scan`: the sweep's safety net over an estate, Resource Graph only (one query per table and batch
  of subscriptions).

Reads go through the adapters (`shared.azure.resourcegraph`, `shared.azure.compute`,
`shared.azure.providers`); nothing here changes Azure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from remediations.context import Context
from shared.azure.resourcegraph import (
    APPLY_TYPE,
    ARC_TYPE,
    ASSIGNMENT_TYPE,
    CONFIGURATION_TYPE,
    RUN_TYPE,
    VM_TYPE,
    ResourceGraph,
)
from shared.core.domain import Diagnosis, Failure, Family, Mode, RemediationRef, SourceKind

STRUCTURED = 0.95  # confidence of a diagnosis read from Update Manager's own fields
MAX_INSTANCE_VIEWS = 20  # VMs of one failed run whose instance view is read when the fields leave it open
RUN_SETTLE = timedelta(hours=1)
CANCEL_BEFORE = timedelta(minutes=10)  # a run's results are complete this long after its window ends
CONFIGURATION_TARGETED = frozenset({"um.maintenance_window_exceeded", "aum.configuration_invalid",
                                    "aum.pre_event_failed"})
# Wording that only says a run failed, not why: the fields decide first, it is the last word.
GENERIC_TEXT = frozenset({"um.run_failed_linux"})
USER_CANCELLED = ("cancelled using cancellation api", "canceled using cancellation api",
                  "cancelled using cancelation api", "canceled using cancelation api")
PLATFORM_CANCELLED = ("cancelled due to internal platform failure", "canceled due to internal platform failure")
REGISTRATION_NAMESPACES = ("Microsoft.Maintenance",)
# Arc-enabled servers' subscriptions must be registered to Microsoft.Compute for periodic assessment data.
ARC_NAMESPACE = "Microsoft.Compute"
# A machine whose periodic assessment is expected although no schedule patches it (an opt-in tag).
EXPECT_ASSESSMENT_TAG = "remediator-expect-assessment"
GUEST_MIN_DURATION, GUEST_MAX_DURATION = timedelta(hours=1, minutes=30), timedelta(hours=3, minutes=55)
_FAILED = ("failed",)
_WARNED = ("completedwithwarnings",)
_DONE = ("succeeded", "completed")
_NOT_RUNNING = ("deallocated", "stopped", "deallocating", "stopping")
WINDOWS_ADVICE = (
    "The Windows patch extension reported the failure: read WindowsUpdateExtension.log under "
    "C:\\WindowsAzure\\Logs\\Plugins\\Microsoft.CPlat.Core.WindowsPatchExtension<version> (Arc: "
    "C:\\ProgramData\\GuestConfig\\extension_logs\\Microsoft.SoftwareUpdateManagement.WindowsOsUpdateExtension), "
    "and try the update on the machine with Windows Update to see its error code.",
)
UNKNOWN_TITLE = "Update Manager run failed on this machine; no guide scenario matches its result"


# ---------------------------------------------------------------------------------------------
# facts, as Resource Graph and the instance view give them


@dataclass(frozen=True, slots=True)
class Extension:
    id: str
    type: str
    state: str  # provisioningState (or the instance view's status)

    @property
    def succeeded(self) -> bool:
        return self.state.lower() in ("succeeded", "provisioningstate/succeeded", "success")


@dataclass(frozen=True, slots=True)
class Machine:
    """An Azure VM or Arc-enabled server, with what Update Manager needs of it."""

    id: str
    kind: str  # "vm" | "arc"
    name: str = ""
    subscription: str = ""
    resource_group: str = ""
    location: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    os_type: str = ""  # "windows" | "linux" | ""
    patch_mode: str = ""
    assessment_mode: str = ""
    bypass: bool | None = None  # automaticByPlatformSettings.bypassPlatformSafetyChecksOnUserSchedule
    allow_extension_operations: bool | None = None
    has_os_profile: bool = True
    power_state: str = ""  # "PowerState/running"
    arc_status: str = ""  # Connected | Disconnected | Expired | Error
    time_created: datetime | None = None
    extensions: tuple[Extension, ...] = ()
    agent_status: str = ""  # instance view: "Ready" | "Not Ready"

    @property
    def customer_managed(self) -> bool:
        return self.patch_mode.lower() == "automaticbyplatform" and self.bypass is True

    @property
    def stopped(self) -> bool:
        state = self.power_state.lower().removeprefix("powerstate/")
        return state in _NOT_RUNNING


@dataclass(frozen=True, slots=True)
class Installation:
    """One `patchinstallationresults` summary row."""

    id: str
    machine: str
    status: str
    reboot_status: str = ""
    window_exceeded: bool = False
    os_type: str = ""
    run_id: str = ""
    started_by: str = ""
    started_at: datetime | None = None
    modified_at: datetime | None = None
    error_code: str = ""
    error_message: str = ""
    error_details: tuple[str, ...] = ()  # "CODE: message" of errorDetails.details

    @property
    def error_texts(self) -> tuple[str, ...]:
        head = [self.error_message] if self.error_message else []
        return (*head, *self.error_details)


@dataclass(frozen=True, slots=True)
class Assessment:
    """One machine's latest `patchassessmentresults` summary row."""

    id: str
    machine: str
    status: str = ""
    os_type: str = ""
    reboot_pending: bool = False
    started_by: str = ""
    modified_at: datetime | None = None
    error_code: str = ""
    error_message: str = ""
    error_details: tuple[str, ...] = ()

    @property
    def error_texts(self) -> tuple[str, ...]:
        head = [self.error_message] if self.error_message else []
        return (*head, *self.error_details)

    @property
    def failed(self) -> bool:
        return self.status.lower() == "failed" or bool(self.error_code or self.error_message)


@dataclass(frozen=True, slots=True)
class Configuration:
    """A maintenance configuration as the `resources` table holds it."""

    id: str
    subscription: str = ""
    scope: str = ""
    in_guest_patch_mode: str = ""
    duration: str = ""
    recur_every: str = ""


@dataclass(frozen=True, slots=True)
class Assignment:
    id: str
    configuration_id: str
    machine: str | None  # a static assignment's machine; None for a dynamic scope
    subscription: str = ""
    filter: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Run:
    """One run of a maintenance configuration, as its records in Resource Graph show it."""

    correlation_id: str
    configuration_id: str
    start: datetime | None = None
    end: datetime | None = None
    status: str = ""
    texts: tuple[str, ...] = ()  # the per-run record's messages (cancellation)
    machines: Mapping[str, str] = field(default_factory=dict)  # machine id (lower) -> applyupdates status


@dataclass(frozen=True, slots=True)
class Estate:
    machines: Mapping[str, Machine]  # by lower-cased id
    assignments: tuple[Assignment, ...]
    runs: Mapping[str, Run]  # by lower-cased correlation id
    installations: tuple[Installation, ...]
    assessments: tuple[Assessment, ...] = ()
    configurations: Mapping[str, Configuration] = field(default_factory=dict)  # by lower-cased id


@dataclass(frozen=True, slots=True)
class MachineDiagnosis:
    """One machine's diagnosis, and the resource its remediations act on."""

    machine: str
    target: str
    diagnosis: Diagnosis
    tags: Mapping[str, str] = field(default_factory=dict)  # the target's tags (per-resource policy)


@dataclass(frozen=True, slots=True)
class RunDiagnosis:
    configuration_id: str | None
    correlation_id: str | None
    status: str | None
    machines: tuple[MachineDiagnosis, ...]
    evidence: tuple[str, ...]  # what the run's records showed
    cancelled_by_user: bool = False


@dataclass(frozen=True, slots=True)
class GateLine:
    machine: str
    verdict: str  # "ok" | "will fail"
    scenario: str | None
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GateReport:
    configuration_id: str | None
    correlation_id: str | None
    start: datetime | None
    cancellation_cutoff: datetime | None
    lines: tuple[GateLine, ...]
    diagnoses: tuple[MachineDiagnosis, ...]
    evidence: tuple[str, ...] = ()

    @property
    def at_risk(self) -> tuple[GateLine, ...]:
        return tuple(line for line in self.lines if line.verdict != "ok")


# ---------------------------------------------------------------------------------------------
# rows -> facts


def _when(value: Any) -> datetime | None:
    """An ISO time (Resource Graph, events) as an aware UTC datetime; None when absent or unreadable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _flag(value: Any) -> bool | None:
    text = str(value).strip().lower() if value is not None else ""
    return True if text == "true" else False if text == "false" else None


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def machine_of(resource_id: str) -> str:
    """The VM or Arc machine a result, extension or assignment id belongs to."""
    low = resource_id.lower()
    for marker in ("/patchinstallationresults/", "/patchassessmentresults/", "/extensions/",
                   "/providers/microsoft.maintenance/"):
        at = low.find(marker)
        if at >= 0:
            return resource_id[:at]
    return resource_id


def machines_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, Machine]:
    """`resources` rows (VMs, Arc machines and their patch extensions) -> machines by lower-cased id."""
    found: dict[str, Machine] = {}
    extensions: dict[str, list[Extension]] = {}
    for row in rows:
        rid = _text(row.get("id"))
        kind = _text(row.get("type")).lower()
        if kind.endswith("/extensions"):
            state = _text(row.get("provisioningState")) or _text(row.get("extensionStatus"))
            extensions.setdefault(machine_of(rid).lower(), []).append(
                Extension(rid, _text(row.get("extensionType")) or rid.rsplit("/", 1)[-1], state))
            continue
        if kind not in (VM_TYPE, ARC_TYPE):
            continue
        tags = row.get("tags") if isinstance(row.get("tags"), dict) else {}
        found[rid.lower()] = Machine(
            id=rid, kind="vm" if kind == VM_TYPE else "arc", name=_text(row.get("name")),
            subscription=_text(row.get("subscriptionId")), resource_group=_text(row.get("resourceGroup")),
            location=_text(row.get("location")).lower(), tags={str(k): str(v) for k, v in (tags or {}).items()},
            os_type=_text(row.get("osType")).lower(), patch_mode=_text(row.get("patchMode")),
            assessment_mode=_text(row.get("assessmentMode")),
            bypass=_flag(row.get("bypassPlatformSafetyChecksOnUserSchedule")),
            allow_extension_operations=_flag(row.get("allowExtensionOperations")),
            has_os_profile=_flag(row.get("hasOsProfile")) is not False,
            power_state=_text(row.get("powerState")),
            arc_status=_text(row.get("arcStatus")) if kind == ARC_TYPE else "",
            time_created=_when(row.get("timeCreated")),
        )
    for key, items in extensions.items():
        if key in found:
            found[key] = dataclasses.replace(found[key], extensions=tuple(items))
    return found


def _error_lines(details: Any) -> tuple[str, str, tuple[str, ...]]:
    if isinstance(details, str):
        try:
            import json

            details = json.loads(details)
        except ValueError:
            return "", details, ()
    if not isinstance(details, Mapping):
        return "", "", ()
    code = _text(details.get("code"))
    message = _text(details.get("message"))
    lines: list[str] = []
    for item in details.get("details") or []:
        if isinstance(item, Mapping):
            inner = ": ".join(p for p in (_text(item.get("code")), _text(item.get("message"))) if p)
            if inner:
                lines.append(inner)
    return ("" if code in ("0", "") else code), message, tuple(lines)


def installations_from_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[Installation, ...]:
    out: list[Installation] = []
    for row in rows:
        rid = _text(row.get("id"))
        code, message, details = _error_lines(row.get("errorDetails"))
        out.append(Installation(
            id=rid, machine=machine_of(rid), status=_text(row.get("status")),
            reboot_status=_text(row.get("rebootStatus")),
            window_exceeded=_flag(row.get("maintenanceWindowExceeded")) is True,
            os_type=_text(row.get("osType")).lower(), run_id=_text(row.get("maintenanceRunId")),
            started_by=_text(row.get("startedBy")), started_at=_when(row.get("startDateTime")),
            modified_at=_when(row.get("lastModifiedDateTime")), error_code=code, error_message=message,
            error_details=details,
        ))
    return tuple(out)


def assessments_from_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[Assessment, ...]:
    out: list[Assessment] = []
    for row in rows:
        rid = _text(row.get("id"))
        code, message, details = _error_lines(row.get("errorDetails"))
        out.append(Assessment(
            id=rid, machine=machine_of(rid), status=_text(row.get("status")), os_type=_text(row.get("osType")).lower(),
            reboot_pending=_flag(row.get("rebootPending")) is True, started_by=_text(row.get("startedBy")),
            modified_at=_when(row.get("lastModifiedDateTime")), error_code=code, error_message=message,
            error_details=details))
    return tuple(out)


def configurations_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, Configuration]:
    """`resources` rows of maintenance configurations -> by lower-cased id."""
    return {_text(r.get("id")).lower(): Configuration(
        _text(r.get("id")), _text(r.get("subscriptionId")), _text(r.get("maintenanceScope")),
        _text(r.get("inGuestPatchMode")), _text(r.get("duration")), _text(r.get("recurEvery")))
        for r in rows if _text(r.get("type")).lower() == CONFIGURATION_TYPE}


def _strings(value: Any) -> list[str]:
    """Every string inside a JSON value (a per-run record's messages, wherever the service puts them)."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def maintenance_from_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[tuple[Assignment, ...], dict[str, Run]]:
    """`maintenanceresources` rows -> assignments, and runs by lower-cased correlation id."""
    assignments: list[Assignment] = []
    runs: dict[str, dict[str, Any]] = {}
    for row in rows:
        kind = _text(row.get("type")).lower()
        rid = _text(row.get("id"))
        config = _text(row.get("maintenanceConfigurationId"))
        if kind == ASSIGNMENT_TYPE:
            target = _text(row.get("resourceId")) or machine_of(rid)
            flt = row.get("filter") if isinstance(row.get("filter"), Mapping) else None
            static = "/providers/" in target.lower() and flt is None
            assignments.append(Assignment(rid, config, target if static else None, _text(row.get("subscriptionId")),
                                          flt))
            continue
        if kind not in (APPLY_TYPE, RUN_TYPE):
            continue
        correlation = _text(row.get("correlationId")) or (rid if kind == RUN_TYPE else "")
        if not correlation:
            continue
        run = runs.setdefault(correlation.lower(), {"id": correlation, "config": config, "start": None, "end": None,
                                                    "status": "", "texts": [], "machines": {}})
        run["config"] = run["config"] or config or _configuration_of(correlation)
        run["start"] = run["start"] or _when(row.get("startDateTime"))
        run["end"] = run["end"] or _when(row.get("endDateTime"))
        if kind == RUN_TYPE:
            run["status"] = _text(row.get("status")) or run["status"]
            run["texts"].extend(_strings(row.get("runDetails")))
        else:
            machine = _text(row.get("resourceId")) or machine_of(rid)
            run["machines"][machine.lower()] = _text(row.get("status"))
    return tuple(assignments), {k: Run(v["id"], v["config"], v["start"], v["end"], v["status"], tuple(v["texts"]),
                                       dict(v["machines"])) for k, v in runs.items()}


def _configuration_of(correlation_id: str) -> str:
    """A run id is its configuration's id + `/providers/microsoft.maintenance/applyupdates/<time>`."""
    low = correlation_id.lower()
    at = low.find("/providers/microsoft.maintenance/applyupdates/")
    return correlation_id[:at] if at > 0 and "/maintenanceconfigurations/" in low[:at] else ""


def in_dynamic_scope(machine: Machine, assignment: Assignment) -> bool:
    """Whether a machine matches a dynamic scope's filter now (Update Manager evaluates it at run time)."""
    flt = assignment.filter or {}
    if assignment.subscription and machine.subscription.lower() != assignment.subscription.lower():
        return False

    def listed(key: str) -> list[str]:
        return [str(v).lower() for v in flt.get(key) or []]

    types = listed("resourceTypes")
    kind = VM_TYPE if machine.kind == "vm" else ARC_TYPE
    if types and kind not in types:
        return False
    groups = listed("resourceGroups")
    if groups and machine.resource_group.lower() not in groups:
        return False
    oses = listed("osTypes")
    if oses and machine.os_type not in oses:
        return False
    locations = listed("locations")
    if locations and machine.location not in locations:
        return False
    settings = flt.get("tagSettings") or {}
    tags = settings.get("tags") or {} if isinstance(settings, Mapping) else {}
    if tags:
        own = {k.lower(): v.lower() for k, v in machine.tags.items()}
        hits = [own.get(str(k).lower()) in {str(v).lower() for v in (values or [])} for k, values in tags.items()]
        if not (all(hits) if str(settings.get("filterOperator") or "All").lower() == "all" else any(hits)):
            return False
    return True


def members(estate: Estate, configuration_id: str) -> dict[str, str]:
    """The machines assigned to a configuration: lower-cased id -> "static" | "dynamic"."""
    found: dict[str, str] = {}
    config = configuration_id.lower()
    for assignment in estate.assignments:
        if assignment.configuration_id.lower() != config:
            continue
        if assignment.machine is not None:
            found[assignment.machine.lower()] = "static"
        else:
            for key, machine in estate.machines.items():
                if in_dynamic_scope(machine, assignment):
                    found.setdefault(key, "dynamic")
    return found


def read_estate(ctx: Context, subscriptions: Sequence[str], *, days: int = 7) -> Estate:
    """The estate as Resource Graph holds it: four queries (resources, maintenanceresources,
    patchinstallationresources, patchassessmentresources) over the subscriptions, each through every page."""
    graph = ResourceGraph(ctx.clients, ctx.retry)
    resources = graph.machines(subscriptions)
    assignments, runs = maintenance_from_rows(graph.maintenance(subscriptions, days=days, per_machine=False))
    installs = installations_from_rows(graph.installations(subscriptions, days=days))
    assessed = assessments_from_rows(graph.assessments(subscriptions, days=days))
    return Estate(machines_from_rows(resources), assignments, with_runs_of(installs, runs), installs, assessed,
                  configurations_from_rows(resources))


def with_runs_of(installs: Iterable[Installation], runs: Mapping[str, Run]) -> dict[str, Run]:
    """The runs the installation results name, beside the per-run records (a scheduled run's id
    begins with its configuration's id), each with the machines that have a result for it."""
    out = dict(runs)
    for install in installs:
        key = install.run_id.lower()
        config = _configuration_of(install.run_id)
        if not key or not config:
            continue  # an on-demand installation
        run = out.get(key) or Run(install.run_id, config, install.started_at)
        if run.start is None and install.started_at is not None:
            run = dataclasses.replace(run, start=install.started_at)
        out[key] = dataclasses.replace(run, machines={**run.machines, install.machine.lower(): install.status})
    return out


# ---------------------------------------------------------------------------------------------
# one machine


@dataclass(frozen=True, slots=True)
class MachineCase:
    """What is known of one machine for one run (or none)."""

    machine_id: str
    machine: Machine | None
    installation: Installation | None
    run: Run | None
    membership: str = ""  # "static" | "dynamic" | "" (not known to be assigned)
    in_run: bool = False  # the run has an applyupdates record for it
    scheduled: bool = True


def _os(case: MachineCase) -> str:
    return (case.installation.os_type if case.installation and case.installation.os_type else
            case.machine.os_type if case.machine else "")


def _install_lines(i: Installation) -> list[str]:
    lines = [f"patchinstallationresources.status: {i.status}"]
    if i.os_type:
        lines.append(f"patchinstallationresources.osType: {i.os_type.capitalize()}")
    return lines


def _machine_lines(m: Machine, *names: str) -> list[str]:
    values = {
        "powerState": m.power_state, "patchMode": m.patch_mode or "(not set)", "assessmentMode": m.assessment_mode,
        "bypassPlatformSafetyChecksOnUserSchedule": "(not set)" if m.bypass is None else str(m.bypass).lower(),
        "allowExtensionOperations": "" if m.allow_extension_operations is None else
        str(m.allow_extension_operations).lower(), "arcStatus": m.arc_status, "vmAgent": m.agent_status,
    }
    return [f"{'resources' if n != 'vmAgent' else 'instanceView'}.{n}: {values[n]}" for n in names if values.get(n)]


Verdict = tuple[str, list[str], tuple[RemediationRef, ...] | None]
Rule = Callable[[MachineCase], Verdict | None]


def _rule_window(case: MachineCase) -> Verdict | None:
    i = case.installation
    if i is None or not i.window_exceeded:
        return None
    lines = [*_install_lines(i), "patchinstallationresources.maintenanceWindowExceeded: true"]
    return "um.maintenance_window_exceeded", lines, None


def _rule_reboot(case: MachineCase) -> Verdict | None:
    i = case.installation
    if i is None or not i.reboot_status:
        return None
    reboot = i.reboot_status.lower()
    lines = [*_install_lines(i), f"patchinstallationresources.rebootStatus: {i.reboot_status}"]
    if reboot == "failed" and i.status.lower() in _FAILED:
        return "aum.reboot_not_completed", lines, None
    if reboot == "required" and i.status.lower() in (*_FAILED, *_WARNED, "succeeded"):
        return "aum.reboot_required", lines, None
    return None


def _rule_arc(case: MachineCase) -> Verdict | None:
    m = case.machine
    if m is None or m.kind != "arc" or m.arc_status.lower() not in ("disconnected", "expired"):
        return None
    return "aum.arc_disconnected", _machine_lines(m, "arcStatus"), None


def _rule_power(case: MachineCase) -> Verdict | None:
    m = case.machine
    if m is None or m.kind != "vm" or not m.stopped:
        return None
    # Still off: a catch-up install would be refused (the guest must run); starting it comes first.
    return "aum.machine_unavailable", _machine_lines(m, "powerState"), (
        RemediationRef("start-machines-before-window", Mode.APPROVAL),)


def _rule_prerequisite(case: MachineCase) -> Verdict | None:
    m = case.machine
    if m is None or m.kind != "vm" or not case.scheduled or m.customer_managed:
        return None
    lines = _machine_lines(m, "patchMode", "bypassPlatformSafetyChecksOnUserSchedule")
    if not m.has_os_profile:
        # No osProfile: the VM PATCH cannot set patch settings at all, so there is nothing to apply.
        lines.append("resources.osProfile: (none: a specialized or migrated VM; its patch settings cannot be "
                     "set through the API)")
        return "aum.schedule_prereq_not_set", lines, (RemediationRef("follow-guide", Mode.ADVICE),)
    # Only the bypass flag missing on an AutomaticByPlatform VM is safe to set without a person.
    mode = Mode.AUTO if m.patch_mode.lower() == "automaticbyplatform" and m.has_os_profile else Mode.APPROVAL
    return "aum.schedule_prereq_not_set", lines, (RemediationRef("set-customer-managed-schedules", mode),)


def _rule_extension(case: MachineCase) -> Verdict | None:
    m = case.machine
    if m is None:
        return None
    if m.allow_extension_operations is False:
        return "aum.extension_failed", _machine_lines(m, "allowExtensionOperations"), (
            RemediationRef("follow-guide", Mode.ADVICE),)
    if m.agent_status and m.agent_status.lower() != "ready":
        return "aum.extension_failed", _machine_lines(m, "vmAgent"), (RemediationRef("follow-guide", Mode.ADVICE),)
    bad = [e for e in m.extensions if not e.succeeded]
    if not bad:
        return None
    return "aum.extension_failed", [f"resources.extension {e.type}: {e.state or '(no state)'}" for e in bad], None


_FACT_RULES: tuple[Rule, ...] = (_rule_arc, _rule_power, _rule_prerequisite, _rule_extension)


def _classify(case: MachineCase, failure: Failure) -> Diagnosis | None:
    """The classifier's reading of errorDetails, unless it names a scenario of another OS."""
    from shared.diagnosis.catalog import BY_ID
    from shared.diagnosis.classifier import classify

    if not failure.texts:
        return None
    diagnosis = classify(failure)
    if diagnosis.scenario in ("unknown", "none"):
        return None
    row = BY_ID.get(diagnosis.scenario)
    os_type = _os(case)
    if row is not None and row.os and os_type and row.os != os_type:
        return None
    return diagnosis


def _failure(case: MachineCase, base: Failure | None) -> Failure:
    i = case.installation
    texts: list[str] = []
    if i is not None:
        if i.error_code:
            texts.append(f"errorDetails.code: {i.error_code}")
        texts.extend(i.error_texts)
    facts: list[tuple[str, str]] = [("machine", case.machine_id)]
    if _os(case):
        facts.append(("os_type", _os(case)))
    run = case.run
    if run is not None and run.configuration_id:
        facts.append(("maintenance_configuration_id", run.configuration_id))
    if i is not None:
        facts.append(("installation_id", i.id))
    correlation = run.correlation_id if run else (i.run_id if i else "")
    start = (run.start if run else None) or (base.started_at if base else None) or (i.started_at if i else None)
    return Failure(
        source=SourceKind.MAINTENANCE, failed=True, texts=tuple(texts), family=Family.UPDATE,
        resource_id=case.machine_id, subscription_id=case.machine_id.split("/")[2] if case.machine_id.count("/") > 2
        else None, operation="patchInstallation", status=i.status if i else "NoResult",
        event_id=base.event_id if base else None, event_type=base.event_type if base else None,
        correlation_ids=(correlation,) if correlation else (), started_at=start,
        ended_at=(run.end if run else None) or (base.ended_at if base else None), facts=tuple(facts),
    )


def _structured(scenario: str, failure: Failure, evidence: Sequence[str],
                remediations: tuple[RemediationRef, ...] | None = None, advice: Sequence[str] = ()) -> Diagnosis:
    from shared.diagnosis.catalog import BY_ID

    row = BY_ID[scenario]
    details = tuple((k, v) for k, v in failure.facts if k in ("machine", "os_type", "maintenance_configuration_id"))
    return Diagnosis(scenario=row.id, confidence=STRUCTURED, title=row.title, evidence=tuple(_dedupe(evidence)),
                     remediations=remediations or row.remediations, doc=row.doc, anchor=row.anchor,
                     advice=(*advice, *row.advice), queries=row.queries, family=row.family, details=details,
                     failure=failure)


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


# Remediations the guest must run: Compute refuses them on a VM that is not running.
_GUEST_OPERATIONS = frozenset({"install-patches-now", "assess-patches-now", "restart-machine",
                               "reinstall-patch-extension"})


def _result(case: MachineCase, diagnosis: Diagnosis) -> MachineDiagnosis:
    config = case.run.configuration_id if case.run else ""
    if case.machine is not None and case.machine.kind == "vm" and case.machine.stopped:
        # Off now: what needs the guest would be refused; starting the machine comes first.
        kept = tuple(r for r in diagnosis.remediations if r.name not in _GUEST_OPERATIONS)
        if kept != diagnosis.remediations:
            start = RemediationRef("start-machines-before-window", Mode.APPROVAL)
            diagnosis = dataclasses.replace(diagnosis, remediations=kept if start in kept else (start, *kept))
    if diagnosis.scenario in CONFIGURATION_TARGETED:
        if config:
            return MachineDiagnosis(case.machine_id, config, diagnosis)
        # an on-demand installation: there is no schedule whose window could be raised
        diagnosis = dataclasses.replace(diagnosis, remediations=(RemediationRef("follow-guide", Mode.ADVICE),))
    return MachineDiagnosis(case.machine_id, case.machine_id, diagnosis, case.machine.tags if case.machine else {})


def diagnose_machine(case: MachineCase, base: Failure | None = None) -> MachineDiagnosis | None:
    """One machine of a run: None when nothing failed (or nothing can be said yet)."""
    failure = _failure(case, base)
    i = case.installation
    if i is not None and i.status.lower() not in ("notstarted", ""):
        status = i.status.lower()
        found = _rule_window(case)
        if found is not None:
            return _result(case, _structured(found[0], failure, found[1], found[2]))
        text = _classify(case, failure)
        fields = _install_lines(i) + ([f"patchinstallationresources.errorDetails.code: {i.error_code}"]
                                      if i.error_code else [])
        if text is not None and text.scenario not in GENERIC_TEXT:
            return _result(case, dataclasses.replace(text, evidence=tuple(_dedupe([*fields, *text.evidence]))))
        found = _rule_reboot(case)
        if found is not None:
            return _result(case, _structured(found[0], failure, found[1], found[2]))
        if status not in (*_FAILED, *_WARNED):
            return None  # Succeeded, InProgress: no failure
        for rule in _FACT_RULES:
            found = rule(case)
            if found is not None:
                return _result(case, _structured(found[0], failure, [*_install_lines(i), *found[1]], found[2]))
        if status in _WARNED:
            return None
        if text is not None:  # the package manager's wording, on a Linux machine (the OS guard let it through)
            return _result(case, dataclasses.replace(text, evidence=tuple(_dedupe([*fields, *text.evidence]))))
        return _result(case, _fallback(case, failure))
    # no result for this machine
    lines = ["patchinstallationresources: no patch installation result for this run" if case.run else
             "patchinstallationresources: no patch installation result"]
    if case.machine is None:
        return _result(case, _structured("aum.schedule_not_triggered", failure, [
            *lines, "resources: the assigned machine no longer exists (a stale or deleted configuration assignment)"]))
    for rule in _FACT_RULES:
        found = rule(case)
        if found is not None:
            return _result(case, _structured(found[0], failure, [*lines, *found[1]], found[2]))
    if case.in_run:
        return None  # in the run, no result yet: Resource Graph may not have it
    if case.membership == "dynamic":
        return _result(case, _structured("aum.dynamic_scope_miss", failure, [
            *lines, "maintenanceresources: in the configuration's dynamic scope now, but not in the run"]))
    return _result(case, _structured("aum.schedule_not_triggered", failure, [
        *lines, "maintenanceresources: assigned to the configuration, no applyupdates record for the run"]))


def _fallback(case: MachineCase, failure: Failure) -> Diagnosis:
    """A failed installation the fields and the wording do not explain: the generic Linux package-manager
    run failure on Linux, and on Windows no Linux advice at all."""
    i = case.installation
    assert i is not None
    lines = [*_install_lines(i), *(f"errorDetails: {t}" for t in i.error_texts[:3])]
    if _os(case) == "windows":
        return Diagnosis(scenario="unknown", confidence=0.0, title=UNKNOWN_TITLE, evidence=tuple(_dedupe(lines)),
                         remediations=(RemediationRef("follow-guide", Mode.ADVICE),), advice=WINDOWS_ADVICE,
                         family=Family.UPDATE, details=(("machine", case.machine_id), ("os_type", "windows")),
                         failure=failure)
    if _os(case) == "linux":
        return _structured("um.run_failed_linux", failure, lines)
    from shared.diagnosis.classifier import UNKNOWN_TITLE as GENERIC

    return Diagnosis(scenario="unknown", confidence=0.0, title=GENERIC, evidence=tuple(_dedupe(lines)),
                     remediations=(RemediationRef("follow-guide", Mode.ADVICE),), family=Family.UPDATE,
                     details=(("machine", case.machine_id),), failure=failure)


# ---------------------------------------------------------------------------------------------
# a failed run (PostMaintenanceEvent)


def _subscriptions(failure: Failure) -> list[str]:
    subs = [v for k, v in failure.facts if k == "resource_subscription_id"]
    if failure.subscription_id and failure.subscription_id not in subs:
        subs.append(failure.subscription_id)
    return subs


def _cancellation(texts: Iterable[str]) -> str | None:
    low = " ".join(texts).lower()
    if any(p in low for p in USER_CANCELLED):
        return "user"
    if any(p in low for p in PLATFORM_CANCELLED):
        return "platform"
    return None


def diagnose_run(ctx: Context, failure: Failure) -> RunDiagnosis:
    """A failed (or cancelled) run: each machine's diagnosis, from the run's records."""
    config = failure.resource_id
    correlation = failure.correlation_ids[0] if failure.correlation_ids else None
    subs = _subscriptions(failure)
    if not correlation or not subs:
        return RunDiagnosis(config, correlation, failure.status, (), ("the event names no run or subscription",))
    graph = ResourceGraph(ctx.clients, ctx.retry)
    assignments, runs = maintenance_from_rows(graph.maintenance(subs, days=31, configuration_id=config,
                                                                correlation_id=correlation))
    run = runs.get(correlation.lower()) or Run(correlation, config or _configuration_of(correlation),
                                                failure.started_at, failure.ended_at, failure.status or "")
    run = dataclasses.replace(run, configuration_id=run.configuration_id or config or "",
                              start=failure.started_at or run.start, end=run.end or failure.ended_at)
    installs = {i.machine.lower(): i for i in installations_from_rows(graph.installations(subs, days=31,
                                                                                          run_id=correlation))}
    evidence = [f"maintenance run {correlation}: status {failure.status or 'unknown'}",
                f"patchinstallationresources: {len(installs)} result(s) for the run",
                f"maintenanceresources: {len(run.machines)} machine(s) in the run"]
    cancelled = _cancellation(run.texts)
    if cancelled == "user":  # cancelled through the cancellation API (a person, a pre-event script): no failure
        why = next(t for t in run.texts if any(p in t.lower() for p in USER_CANCELLED))
        return RunDiagnosis(config, correlation, failure.status, (), (*evidence, f"maintenanceresources (run): {why}"),
                            cancelled_by_user=True)
    ids = set(installs) | set(run.machines)
    estate_members: dict[str, str] = {}
    if run.configuration_id:
        wanted = [a.machine for a in assignments if a.machine] + sorted(ids)
        machines = machines_from_rows(graph.machines(subs, ids=wanted) if wanted else [])
        if any(a.machine is None for a in assignments):  # a dynamic scope: its members are evaluated over the estate
            machines = {**machines_from_rows(graph.machines(subs)), **machines}
        estate = Estate(machines, assignments, {correlation.lower(): run}, tuple(installs.values()))
        estate_members = members(estate, run.configuration_id)
    else:
        machines = machines_from_rows(graph.machines(subs, ids=sorted(ids)) if ids else [])
    if cancelled == "platform":
        out = _cancelled_by_platform(failure, run, sorted(ids | set(estate_members)), machines=machines,
                                     installs=installs, how=estate_members)
        return RunDiagnosis(config, correlation, failure.status, tuple(out), tuple(evidence))
    settled = bool(installs) or bool(run.machines)
    results: list[MachineDiagnosis] = []
    views = 0
    for key in sorted(ids | (set(estate_members) if settled else set())):
        machine = machines.get(key)
        install = installs.get(key)
        case = MachineCase(install.machine if install else machine.id if machine else key, machine, install, run,
                     estate_members.get(key, ""), in_run=key in run.machines)
        found = diagnose_machine(case, failure)
        if (found is None or found.diagnosis.scenario in ("unknown", "um.run_failed_linux")) and machine is not None \
                and machine.kind == "vm" and install is not None and install.status.lower() in (*_FAILED, *_WARNED) \
                and views < MAX_INSTANCE_VIEWS:
            views += 1  # the fields left it open: the instance view may say more (agent, extensions, power)
            seen = _with_instance_view(ctx, machine)
            if seen is not machine:
                again = diagnose_machine(dataclasses.replace(case, machine=seen), failure)
                found = again if again is not None and again.diagnosis.scenario not in ("unknown",) else found
        if found is not None:
            results.append(found)
    return RunDiagnosis(config, correlation, failure.status, tuple(merge(results)), tuple(evidence))


def _cancelled_by_platform(failure: Failure, run: Run, keys: Sequence[str], *, machines: Mapping[str, Machine],
                           installs: Mapping[str, Installation], how: Mapping[str, str]) -> list[MachineDiagnosis]:
    """Every machine of a run the platform cancelled (or the configuration, when none is known)."""
    text = next(t for t in run.texts if any(p in t.lower() for p in PLATFORM_CANCELLED))
    out = []
    for key in keys:
        machine = machines.get(key)
        case = MachineCase(machine.id if machine else key, machine, installs.get(key), run, how.get(key, ""))
        out.append(_result(case, _structured("aum.run_cancelled_by_platform", _failure(case, failure),
                                             [f"maintenanceresources (run): {text}"])))
    if not out:
        target = run.configuration_id or failure.resource_id or run.correlation_id
        f = dataclasses.replace(failure, texts=(*failure.texts, text))
        out.append(MachineDiagnosis(target, target, _structured("aum.run_cancelled_by_platform", f,
                                                                [f"maintenanceresources (run): {text}"])))
    return out


def _with_instance_view(ctx: Context, machine: Machine) -> Machine:
    from remediations.runner import is_operational
    from shared.azure.compute import Compute

    try:
        vm = Compute(ctx.clients, ctx.retry).vm(machine.id)
    except Exception as exc:
        if not is_operational(exc):
            raise
        return machine
    return facts_from_vm(vm, machine)


def facts_from_vm(vm: Mapping[str, Any], known: Machine | None = None) -> Machine:
    """A VM as GET (`$expand=instanceView`) returns it -> its facts (merged into what Resource Graph gave)."""
    props = vm.get("properties") or {}
    view = props.get("instanceView") or {}
    os_profile = props.get("osProfile")
    config = (os_profile or {}).get("windowsConfiguration") or (os_profile or {}).get("linuxConfiguration") or {}
    patch = config.get("patchSettings") or {}
    power = next((s.get("code", "") for s in view.get("statuses") or [] if str(s.get("code", "")).startswith(
        "PowerState/")), "")
    agent = next((s.get("displayStatus", "") for s in (view.get("vmAgent") or {}).get("statuses") or []), "")
    extensions = tuple(
        Extension(str(e.get("name", "")), str(e.get("type") or e.get("name", "")).rsplit(".", 1)[-1],  # publisher.type
                  str(next((s.get("code", "") for s in e.get("statuses") or []), ""))
                  .removeprefix("ProvisioningState/"))
        for e in view.get("extensions") or []
        if any(t.lower() in str(e.get("type") or e.get("name", "")).lower() for t in ("patchextension",)))
    base = known or Machine(id=str(vm.get("id", "")), kind="vm", name=str(vm.get("name", "")))
    os_disk = ((props.get("storageProfile") or {}).get("osDisk") or {}).get("osType")
    return dataclasses.replace(
        base, os_type=str(os_disk or base.os_type).lower(), patch_mode=str(patch.get("patchMode") or base.patch_mode),
        assessment_mode=str(patch.get("assessmentMode") or base.assessment_mode),
        bypass=_flag((patch.get("automaticByPlatformSettings") or {}).get("bypassPlatformSafetyChecksOnUserSchedule"))
        if patch else base.bypass,
        allow_extension_operations=_flag((os_profile or {}).get("allowExtensionOperations"))
        if os_profile else base.allow_extension_operations,
        has_os_profile=os_profile is not None, power_state=str(power or base.power_state),
        extensions=extensions or base.extensions, agent_status=str(agent or base.agent_status))


def merge(found: Iterable[MachineDiagnosis]) -> list[MachineDiagnosis]:
    """One diagnosis per (scenario, target): machines whose remediation acts on the same resource (a
    configuration's window) become one, with every machine's evidence."""
    merged: dict[tuple[str, str], MachineDiagnosis] = {}
    for item in found:
        key = (item.diagnosis.scenario, item.target.lower())
        first = merged.get(key)
        if first is None:
            merged[key] = item
            continue
        if item.machine.lower() == first.machine.lower():
            continue
        evidence = (*first.diagnosis.evidence, f"also on {item.machine.rsplit('/', 1)[-1]}:",
                    *item.diagnosis.evidence)
        merged[key] = dataclasses.replace(first, diagnosis=dataclasses.replace(
            first.diagnosis, evidence=tuple(_dedupe(evidence))))
    return list(merged.values())


# ---------------------------------------------------------------------------------------------
# the coming run (PreMaintenanceEvent)


def gate(ctx: Context, failure: Failure) -> GateReport:
    """What will fail in the coming run, per machine, and why. Reads only; never cancels the run."""
    config = failure.resource_id
    correlation = failure.correlation_ids[0] if failure.correlation_ids else None
    # Runs can be cancelled until 10 minutes before their start (the event's cancellationCutOffDateTime).
    cutoff = _when(failure.fact("cancellation_cutoff")) or (
        failure.started_at - CANCEL_BEFORE if failure.started_at else None)
    subs = _subscriptions(failure)
    if not config or not subs:
        return GateReport(config, correlation, failure.started_at, cutoff, (), (),
                          ("the event names no configuration or subscription",))
    graph = ResourceGraph(ctx.clients, ctx.retry)
    assignments, _ = maintenance_from_rows(graph.maintenance(subs, days=1, configuration_id=config))
    static = [a.machine for a in assignments if a.machine]
    dynamic = any(a.machine is None for a in assignments)
    machines = machines_from_rows(graph.machines(subs) if dynamic else graph.machines(subs, ids=static)
                                  if static else [])
    run = Run(correlation or "", config, failure.started_at, failure.ended_at)
    estate = Estate(machines, assignments, {}, ())
    assigned = members(estate, config)
    registration = _registration(ctx, sorted({(machines[k].subscription if k in machines else k.split("/")[2])
                                              for k in assigned if k.count("/") > 2}))
    lines: list[GateLine] = []
    diagnoses: list[MachineDiagnosis] = []
    for key in sorted(assigned):
        machine = machines.get(key)
        machine_id = machine.id if machine else key
        case = MachineCase(machine_id, machine, None, run, assigned[key])
        verdict = _will_fail(case, registration, failure)
        if verdict is None:
            lines.append(GateLine(machine_id, "ok", None, ("ready for the run",)))
            continue
        diagnoses.append(verdict)
        lines.append(GateLine(machine_id, "will fail", verdict.diagnosis.scenario, verdict.diagnosis.evidence))
    evidence = (f"coming run {correlation or '?'} of {config}", f"{len(assigned)} machine(s) in scope "
                f"({sum(1 for v in assigned.values() if v == 'dynamic')} by dynamic scope)",
                *(f"{ns} on {sub}: {state}" for (sub, ns), state in sorted(registration.items())))
    return GateReport(config, correlation, failure.started_at, cutoff, tuple(lines), tuple(diagnoses), evidence)


def _registration(ctx: Context, subscriptions: Sequence[str]) -> dict[tuple[str, str], str]:
    from remediations.runner import describe_error, is_operational

    states: dict[tuple[str, str], str] = {}
    for sub in subscriptions:
        for namespace in REGISTRATION_NAMESPACES:
            try:
                states[(sub, namespace)] = ctx.providers.state(sub, namespace)
            except Exception as exc:
                if not is_operational(exc):
                    raise
                states[(sub, namespace)] = f"could not be read ({describe_error(exc)})"
    return states


def _will_fail(case: MachineCase, registration: Mapping[tuple[str, str], str],
               base: Failure) -> MachineDiagnosis | None:
    failure = dataclasses.replace(_failure(case, base), status="Scheduled")
    if case.machine is None:
        return _result(case, _structured("aum.schedule_not_triggered", failure, [
            "resources: the assigned machine no longer exists (a stale or deleted configuration assignment)"]))
    for rule in _FACT_RULES:
        found = rule(case)
        if found is not None:
            remediations = found[2]
            if found[0] == "aum.machine_unavailable":  # before the window, starting it is the fix
                remediations = (RemediationRef("start-machines-before-window", Mode.APPROVAL),)
            return _result(case, _structured(found[0], failure, found[1], remediations))
    sub = case.machine.subscription
    for namespace in REGISTRATION_NAMESPACES:
        state = registration.get((sub, namespace), "")
        if state and state != "Registered" and not state.startswith("could not"):
            diagnosis = _structured("aum.provider_not_registered", failure,
                                    [f"providers.{namespace}: {state} on subscription {sub}"])
            diagnosis = dataclasses.replace(diagnosis, details=(*diagnosis.details, ("namespace", namespace)))
            return MachineDiagnosis(case.machine_id, f"/subscriptions/{sub}", diagnosis)
    return None


# ---------------------------------------------------------------------------------------------
# the estate (the sweep's safety net)


def scan(ctx: Context, subscriptions: Sequence[str], *, days: int = 7) -> list[MachineDiagnosis]:
    """Every Update Manager failure the estate shows, per machine: Resource Graph (four queries per
    batch of subscriptions), and the registration of the providers it needs (one read per subscription)."""
    estate = read_estate(ctx, subscriptions, days=days)
    return merge([*scan_estate(estate, ctx.now()), *registration_findings(ctx, estate)])


def _latest(items: Iterable[Any], now: datetime) -> dict[str, Any]:
    """The newest row per machine (by lastModifiedDateTime, then start)."""
    latest: dict[str, Any] = {}
    for item in items:
        key = item.machine.lower()
        known = latest.get(key)
        when = item.modified_at or getattr(item, "started_at", None) or now
        if known is None or when > (known.modified_at or getattr(known, "started_at", None) or now):
            latest[key] = item
    return latest


def _norm(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def _near_miss(machine: Machine, assignment: Assignment) -> str | None:
    """Why a machine a dynamic scope was surely meant to include is not in it: a tag spelled another way
    (`patch_group` for `patch-group`) with the value the scope wants; None when it is no near miss."""
    settings = (assignment.filter or {}).get("tagSettings") or {}
    wanted = settings.get("tags") or {} if isinstance(settings, Mapping) else {}
    if not wanted or in_dynamic_scope(machine, assignment):
        return None
    untagged = dataclasses.replace(assignment, filter={k: v for k, v in (assignment.filter or {}).items()
                                                       if k != "tagSettings"})
    if not in_dynamic_scope(machine, untagged):
        return None  # another criterion (type, group, OS, location) leaves it out on purpose
    for key, values in wanted.items():
        for tag, value in machine.tags.items():
            if tag.lower() != str(key).lower() and _norm(tag) == _norm(str(key)) and \
                    _norm(value) in {_norm(str(v)) for v in values or []}:
                return f"resources.tags: '{tag}: {value}' where the dynamic scope filters on '{key}'"
    return None


def scan_estate(estate: Estate, now: datetime) -> list[MachineDiagnosis]:
    """The findings of an estate read from Resource Graph (no Azure call: the sweep's and the bench's core)."""
    found: list[MachineDiagnosis] = []
    assigned: dict[str, str] = {}
    by_config: dict[str, dict[str, str]] = {}
    for config in {a.configuration_id.lower(): a.configuration_id for a in estate.assignments}.values():
        by_config[config.lower()] = members(estate, config)
        for key, how in by_config[config.lower()].items():
            assigned.setdefault(key, how)
    # 1. each machine's latest installation: failed, out of its window, waiting for a reboot
    for key, install in sorted(_latest(estate.installations, now).items()):
        run = estate.runs.get(install.run_id.lower()) if install.run_id else None
        if run is None and install.run_id and _configuration_of(install.run_id):
            run = Run(install.run_id, _configuration_of(install.run_id), install.started_at)
        case = MachineCase(install.machine, estate.machines.get(key), install, run, assigned.get(key, ""),
                           in_run=True, scheduled=run is not None)
        result = diagnose_machine(case)
        if result is not None:
            found.append(result)
    # 2. each machine's latest assessment that failed, read by its wording (with the machine's OS)
    for key, assessment in sorted(_latest(estate.assessments, now).items()):
        if assessment.failed:
            result = _assessment_failure(assessment, estate.machines.get(key))
            if result is not None:
                found.append(result)
    # 3. machines Update Manager patches (assigned, or carrying a patch extension): standing problems
    managed = set(assigned) | {k for k, m in estate.machines.items() if m.extensions}
    for key, machine in sorted(estate.machines.items()):
        case = MachineCase(machine.id, machine, None, None, assigned.get(key, ""), scheduled=key in assigned)
        rules = (_rule_arc, _rule_prerequisite, _rule_extension) if key in managed else (_rule_arc,)
        for rule in rules:
            verdict = rule(case)
            if verdict is not None:
                found.append(_result(case, _structured(verdict[0], _failure(case, None), verdict[1], verdict[2])))
        expected = key in assigned or machine.tags.get(EXPECT_ASSESSMENT_TAG, "").lower() == "true"
        if expected and machine.assessment_mode.lower() != "automaticbyplatform" and machine.has_os_profile:
            why = (f"maintenanceresources: assigned to a maintenance configuration ({assigned[key]})" if key in assigned
                   else f"resources.tags: {EXPECT_ASSESSMENT_TAG}=true")
            lines = [f"resources.assessmentMode: {machine.assessment_mode or '(not set: ImageDefault)'}", why]
            found.append(_result(case, _structured("aum.periodic_assessment_not_enabled", _failure(case, None),
                                                   lines)))
    # 4. schedules: an invalid definition; runs whose own record tells of a failure
    for schedule in sorted(estate.configurations.values(), key=lambda c: c.id.lower()):
        problem = _invalid_configuration(schedule)
        if problem:
            case = MachineCase(schedule.id, None, None, Run("", schedule.id))
            found.append(_result(case, _structured("aum.configuration_invalid", _failure(case, None), problem)))
    for run in sorted(estate.runs.values(), key=lambda r: r.correlation_id.lower()):
        result = _run_record_failure(run)
        if result is not None:
            found.append(result)
    # 5. the latest settled run of each configuration: its machines with no result for it
    found.extend(_missed(estate, by_config, now))
    # 6. dynamic scopes that leave out a machine their tag filter was surely meant for
    for scope in estate.assignments:
        if scope.machine is not None or not scope.filter:
            continue
        for machine in estate.machines.values():
            miss = _near_miss(machine, scope)
            if miss:
                case = MachineCase(machine.id, machine, None, Run("", scope.configuration_id), "dynamic")
                found.append(_result(case, _structured("aum.dynamic_scope_miss", _failure(case, None), [
                    miss, f"maintenanceresources: dynamic scope {scope.id.rsplit('/', 1)[-1]} of "
                         f"{scope.configuration_id.rsplit('/', 1)[-1]}"])))
    return merge(found)


def _assessment_failure(assessment: Assessment, machine: Machine | None) -> MachineDiagnosis | None:
    install = Installation(assessment.id, assessment.machine, assessment.status or "Failed",
                           os_type=assessment.os_type, error_code=assessment.error_code,
                           error_message=assessment.error_message, error_details=assessment.error_details)
    case = MachineCase(assessment.machine, machine, install, None, scheduled=False)
    failure = dataclasses.replace(_failure(case, None), operation="patchAssessment")
    text = _classify(case, failure)
    if text is None:
        return None
    lines = [f"patchassessmentresources.status: {assessment.status or 'Failed'}",
             *([f"patchassessmentresources.errorDetails.code: {assessment.error_code}"] if assessment.error_code
               else []), *([f"patchassessmentresources.startedBy: {assessment.started_by}"] if assessment.started_by
                           else [])]
    return _result(case, dataclasses.replace(text, evidence=tuple(_dedupe([*lines, *text.evidence]))))


def _invalid_configuration(config: Configuration) -> list[str]:
    """What makes an InGuestPatch schedule invalid, as the service's own checks word it."""
    if config.scope.lower() != "inguestpatch":
        return []
    problems: list[str] = []
    if not config.in_guest_patch_mode:
        problems.append("resources.extensionProperties.InGuestPatchMode: (missing): Extension properties must "
                        "contain Patch mode")
    hours, _, minutes = config.duration.partition(":")
    if hours.isdigit() and minutes.isdigit():
        length = timedelta(hours=int(hours), minutes=int(minutes))
        if not GUEST_MIN_DURATION <= length <= GUEST_MAX_DURATION:
            problems.append(f"resources.maintenanceWindow.duration: {config.duration} (InGuestPatch: 01:30 to 03:55)")
    recur = config.recur_every.lower().replace(" ", "")
    digits = "".join(c for c in recur if c.isdigit())
    if recur.endswith(("hour", "hours")) and digits and int(digits) < 6:
        problems.append(f"resources.maintenanceWindow.recurEvery: {config.recur_every} (InGuestPatch: 6 hours or more)")
    return problems


def _run_record_failure(run: Run) -> MachineDiagnosis | None:
    """A run whose own record tells of a failure of the schedule (a pre-event that failed, ...);
    cancellations are read per machine (`_missed`)."""
    if not run.texts or not run.configuration_id or _cancellation(run.texts) is not None:
        return None
    case = MachineCase(run.configuration_id, None, None, run)
    failure = dataclasses.replace(_failure(case, None), texts=run.texts, operation="maintenanceRun")
    from shared.diagnosis.classifier import classify

    diagnosis = classify(failure)
    if diagnosis.scenario in ("unknown", "none"):
        return None
    lines = [f"maintenanceresources (run {run.correlation_id.rsplit('/', 1)[-1]}): status {run.status or '?'}"]
    diagnosis = dataclasses.replace(diagnosis, evidence=tuple(_dedupe([*lines, *diagnosis.evidence])))
    return MachineDiagnosis(run.configuration_id, run.configuration_id, diagnosis)


def _missed(estate: Estate, by_config: Mapping[str, Mapping[str, str]], now: datetime) -> list[MachineDiagnosis]:
    with_result = {(i.run_id.lower(), i.machine.lower()) for i in estate.installations if i.run_id}
    latest_runs: dict[str, Run] = {}
    for run in estate.runs.values():
        config = run.configuration_id.lower()
        ended = run.end or (run.start + timedelta(hours=4) if run.start else None)
        if not config or ended is None or ended + RUN_SETTLE > now:
            continue  # still running, or its results may not be in Resource Graph yet
        known = latest_runs.get(config)
        if known is None or (run.start or now) > (known.start or now):
            latest_runs[config] = run
    found: list[MachineDiagnosis] = []
    for config, run in sorted(latest_runs.items()):
        cancelled = _cancellation(run.texts)
        if cancelled == "user":
            continue  # cancelled through the cancellation API: no failure
        for key, how in sorted(by_config.get(config, {}).items()):
            machine = estate.machines.get(key)
            if (run.correlation_id.lower(), key) in with_result:
                continue
            if machine is not None and machine.time_created and run.start and machine.time_created > run.start:
                continue  # created after the run
            case = MachineCase(machine.id if machine else key, machine, None, run, how, in_run=key in run.machines)
            if cancelled == "platform":
                text = next(t for t in run.texts if any(p in t.lower() for p in PLATFORM_CANCELLED))
                found.append(_result(case, _structured("aum.run_cancelled_by_platform", _failure(case, None),
                                                       [f"maintenanceresources (run): {text}"])))
                continue
            result = diagnose_machine(case)
            if result is not None:
                found.append(result)
    return found


def registration_findings(ctx: Context, estate: Estate) -> list[MachineDiagnosis]:
    """Subscriptions not registered for what Update Manager needs there: Microsoft.Maintenance where
    schedules are, Microsoft.Compute where Arc-enabled servers are (periodic assessment data)."""
    needs: dict[tuple[str, str], str] = {}
    for config in estate.configurations.values():
        if config.subscription:
            needs.setdefault((config.subscription, "Microsoft.Maintenance"), config.id)
    for machine in estate.machines.values():
        if machine.kind == "arc" and machine.subscription:
            needs.setdefault((machine.subscription, ARC_NAMESPACE), machine.id)
    from remediations.runner import is_operational

    found: list[MachineDiagnosis] = []
    for (sub, namespace), example in sorted(needs.items()):
        try:
            state = ctx.providers.state(sub, namespace)
        except Exception as exc:
            if not is_operational(exc):
                raise
            continue  # unreadable here: the gate and the next sweep read it again
        if state == "Registered":
            continue
        target = f"/subscriptions/{sub}"
        case = MachineCase(target, None, None, None)
        why = ("Arc-enabled servers here produce no periodic assessment data" if namespace == ARC_NAMESPACE
               else "maintenance configurations live here")
        diagnosis = _structured("aum.provider_not_registered", _failure(case, None), [
            f"providers.{namespace}: {state} on subscription {sub}", f"{why} (e.g. {example.rsplit('/', 1)[-1]})"])
        found.append(MachineDiagnosis(target, target, dataclasses.replace(
            diagnosis, details=(*diagnosis.details, ("namespace", namespace)))))
    return found


# ---------------------------------------------------------------------------------------------
# events


def is_update_manager_event(failure: Failure, kind: str) -> bool:
    """A `Microsoft.Maintenance.<kind>` event (kind: PreMaintenanceEvent | PostMaintenanceEvent)."""
    return failure.source is SourceKind.MAINTENANCE and (failure.event_type or "").lower().endswith(kind.lower())


def report_lines(report: GateReport) -> list[str]:
    """The gate report as text lines (audit trail, card)."""
    out = [f"{len(report.lines)} machine(s), {len(report.at_risk)} at risk"]
    for line in report.at_risk:
        out.append(f"{line.machine.rsplit('/', 1)[-1]}: will fail ({line.scenario}): {'; '.join(line.reasons[:3])}")
    return out
