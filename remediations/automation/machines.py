"""What the two machine remediations share: the machines that failed to start in a
deployment's latest run, and how a machine is named in the deployment and in Log Analytics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from remediations.base import RemediationError
from remediations.context import Context
from shared.azure.automation import submittable
from shared.azure.base import prop

AZURE_VMS = "azureVirtualMachines"
NON_AZURE = "nonAzureComputerNames"


@dataclass(frozen=True, slots=True)
class FailedMachine:
    target: str  # a VM resource id, or a non-Azure computer name, as the deployment lists it
    source_computer_id: str
    list_name: str  # which list of the deployment holds it

    @property
    def computer(self) -> str:
        return self.target.rstrip("/").rsplit("/", 1)[-1] if self.list_name == AZURE_VMS else self.target


@dataclass(frozen=True, slots=True)
class FailedRun:
    configuration: dict[str, Any]
    run: dict[str, Any]
    machines: tuple[FailedMachine, ...]



def when(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


def failed_run(ctx: Context, configuration_id: str) -> FailedRun | None:
    """The latest run's FailedToStart machines, or None when the latest run has none."""
    configuration = ctx.automation.get_configuration(configuration_id)
    run = ctx.automation.latest_run(configuration_id)
    if run is None:
        return None
    machine_runs = ctx.automation.machine_runs_of(configuration_id, str(run.get("name")))
    machines = tuple(
        FailedMachine(
            str(prop(m, "properties.targetComputer")),
            str(prop(m, "properties.sourceComputerId") or ""),
            AZURE_VMS if str(prop(m, "properties.targetComputer") or "").startswith("/subscriptions/") else NON_AZURE,
        )
        for m in machine_runs if prop(m, "properties.status") == "FailedToStart"
    )
    return FailedRun(configuration, run, machines) if machines else None


def same_computer(a: str, b: str) -> bool:
    """Log Analytics may report `web01` or `web01.contoso.com` for one machine."""
    a, b = a.lower(), b.lower()
    return a == b or a.split(".", 1)[0] == b.split(".", 1)[0]


def workspace(params: dict[str, str] | Any, ctx: Context) -> str:
    found = params.get("workspace") or ctx.workspace_id
    if not found:
        raise RemediationError("a Log Analytics workspace id is needed (param workspace, or REMEDIATOR_WORKSPACE_ID)")
    return str(found)


def bounded(machines: list[FailedMachine], ctx: Context, verb: str) -> dict[str, set[str]]:
    """The machines by the deployment list that holds them, refused past max_machines_per_change."""
    if len(machines) > ctx.limits.max_machines_per_change:
        raise RemediationError(f"{len(machines)} machines to {verb}, over max_machines_per_change "
                               f"({ctx.limits.max_machines_per_change}): review by hand")
    lists: dict[str, set[str]] = {}
    for machine in machines:
        lists.setdefault(machine.list_name, set()).add(machine.target)
    return lists


def without(configuration: dict[str, Any], drop: dict[str, set[str]]) -> dict[str, Any]:
    """The PUT body of the deployment with the named machines left out of its lists."""
    body = submittable(configuration)
    update = body["properties"].setdefault("updateConfiguration", {})
    for list_name, names in drop.items():
        lowered = {n.lower() for n in names}
        update[list_name] = [m for m in update.get(list_name) or [] if m.lower() not in lowered]
    return body


def refuse_while_readd_pending(ctx: Context, configuration_id: str, name: str) -> None:
    """A deployment with an interrupted re-add kept in the vault is finished by it first: another
    PUT now would be undone (or undo the machines) when the re-add resumes."""
    kept = ctx.vault.get(configuration_id)
    if kept is not None and kept.get("remediation") not in (None, name):
        raise RemediationError(f"an interrupted {kept.get('remediation')} is pending on {configuration_id}: "
                               "it is finished first")

