"""The read adapters Update Manager's diagnosis uses: the RBAC actions they declare, Resource Graph
paging and subscription batches, and the VM / Arc reads, through the real SDK clients against the double.

Action names: the Azure resource provider operations list (Microsoft.Compute
`virtualMachines/patchInstallationResults/read`, `virtualMachines/patchAssessmentResults/latest/read`,
`virtualMachines/extensions/read`; Microsoft.HybridCompute `machines/patchInstallationResults/read`,
`machines/patchAssessmentResults/read`, `machines/extensions/read`; Microsoft.Maintenance
`applyUpdates/read`, `configurationAssignments/read`) and Update Manager's roles and permissions page
(learn.microsoft.com/azure/update-manager/roles-permissions).
"""

from __future__ import annotations

import json

from remediations.context import Context
from sandbox import AzureDouble
from shared.azure import resourcegraph
from shared.azure.compute import Compute
from shared.azure.permissions import ADAPTER_MODULES, required_actions
from shared.azure.resourcegraph import ResourceGraph, kql_string
from shared.diagnosis.update_manager import facts_from_vm


def test_the_reads_declare_the_actions_resource_graph_checks() -> None:
    assert {"shared.azure.resourcegraph", "shared.azure.compute"} <= set(ADAPTER_MODULES)
    actions, _ = required_actions()
    assert {
        "Microsoft.ResourceGraph/resources/read",
        "Microsoft.Compute/virtualMachines/patchInstallationResults/read",
        "Microsoft.HybridCompute/machines/patchInstallationResults/read",
        "Microsoft.Compute/virtualMachines/patchAssessmentResults/latest/read",
        "Microsoft.HybridCompute/machines/patchAssessmentResults/read",
        "Microsoft.Maintenance/applyUpdates/read",
        "Microsoft.Maintenance/configurationAssignments/read",
        "Microsoft.Compute/virtualMachines/read",
        "Microsoft.Compute/virtualMachines/extensions/read",
        "Microsoft.HybridCompute/machines/read",
        "Microsoft.HybridCompute/machines/extensions/read",
    } <= actions


def test_an_id_can_never_end_a_kql_string() -> None:
    assert kql_string("a'b\\c") == "'a\\'b\\\\c'"


def test_every_page_of_every_batch_of_subscriptions_is_read(double: AzureDouble, ctx: Context,
                                                            monkeypatch: object) -> None:
    import pytest

    mp = pytest.MonkeyPatch()
    mp.setattr(resourcegraph, "PAGE_SIZE", 3)
    mp.setattr(resourcegraph, "SUBSCRIPTION_BATCH", 1)
    try:
        subs = [double.refs["um:subscription"], double.refs["subscription"]]
        rows = ResourceGraph(ctx.clients, ctx.retry).machines(subs)
    finally:
        mp.undo()
    bodies = [json.loads(r.body or b"{}") for r in double.requests_for("resourceGraph.resources")]
    assert {tuple(b["subscriptions"]) for b in bodies} == {(s,) for s in subs}
    assert all(b["options"]["$top"] == 3 for b in bodies)
    assert any("$skipToken" in b["options"] for b in bodies), "a second page is asked for with its token"
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) > 6
    assert {r["subscriptionId"] for r in rows} == set(subs)


def test_a_machine_and_its_extensions_are_read_by_id(double: AzureDouble, ctx: Context) -> None:
    vm = double.refs["aum.extension_failed:vm"]
    rows = ResourceGraph(ctx.clients, ctx.retry).machines([double.refs["um:subscription"]], ids=[vm.upper()])
    assert {r["id"].lower() for r in rows} == {vm.lower(), double.refs["aum.extension_failed:extension"].lower()}


def test_a_vms_instance_view_gives_its_agent_power_and_extension_facts(double: AzureDouble, ctx: Context) -> None:
    compute = Compute(ctx.clients, ctx.retry)
    off = facts_from_vm(compute.vm(double.refs["aum.machine_unavailable:vm"]))
    assert off.power_state == "PowerState/deallocated" and off.os_type == "windows"
    assert off.customer_managed
    failed = facts_from_vm(compute.vm(double.refs["aum.extension_failed:vm"]))
    assert [(e.type, e.succeeded) for e in failed.extensions] == [("LinuxPatchExtension", False)]
    listed = compute.vm_extensions(double.refs["aum.extension_failed:vm"])
    assert any(e.get("name") == "LinuxPatchExtension" for e in listed)
    arc = compute.arc_machine(double.refs["aum.arc_disconnected:machine"])
    assert arc["properties"]["status"] == "Disconnected"
    assert isinstance(compute.arc_extensions(double.refs["aum.arc_disconnected:machine"]), list)
