"""The local Azure double's Update Manager side, driven by the real SDK clients (azure-mgmt-compute 39,
azure-mgmt-hybridcompute 10, azure-mgmt-maintenance 2.1, azure-mgmt-resourcegraph 8; raw HTTP where a
status code or a header is the point) and checked against the spec files vendored in tests/specs and
the SDKs' models of the same api-versions (tests/double_helpers.py)."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from sandbox import AzureDouble, Estate, sandbox_estate
from sandbox.estate import fleet_estate
from sandbox.patching import PatchOutcome
from shared.azure.clients import Clients
from shared.azure.endpoints import Endpoints
from tests.double_helpers import Answer, VendoredSpec, call, keys_within, undeclared

COMPUTE = "2026-04-01"
HYBRID = "2026-07-15"
MAINTENANCE = "2023-04-01"
GRAPH = "2021-03-01"
VM_EXAMPLES = "compute/2026-04-01/examples/virtualMachineExamples"
ARC_EXAMPLES = "hybridcompute/2026-07-15/examples"


@pytest.fixture(scope="module")
def estate() -> Estate:
    return sandbox_estate()


@pytest.fixture(scope="module")
def spec() -> VendoredSpec:
    return VendoredSpec()


@pytest.fixture
def double(estate: Estate) -> Iterator[AzureDouble]:
    with AzureDouble(estate=estate, poll_after=2) as d:
        yield d


@pytest.fixture
def clients(double: AzureDouble) -> Clients:
    return Clients(Endpoints(arm=double.arm_url, logs=double.logs_url))


def _url(d: AzureDouble, path: str, version: str, query: str = "") -> str:
    return f"{d.url}{path}?api-version={version}{query}"


def _sub(d: AzureDouble) -> str:
    return d.refs["um:subscription"]


def _parts(resource_id: str) -> tuple[str, str]:
    """(resource group, name) of a resource id."""
    parts = resource_id.split("/")
    return parts[4], parts[-1]


def _error(exc: BaseException) -> tuple[int, str, str]:
    error = getattr(exc, "error", None)
    return int(getattr(exc, "status_code", 0) or 0), str(getattr(error, "code", "")), str(getattr(error, "message", ""))


def _poll(answer: Answer, header: str) -> list[Answer]:
    """Polls an LRO's status URL until it stops saying 202 / InProgress; every answer."""
    url = answer.headers[header]
    seen = []
    for _ in range(20):
        got = call(url)
        seen.append(got)
        if got.status != 202 and (not got.body or got.json().get("status") != "InProgress"):
            return seen
    raise AssertionError("the operation never finished")


def _graph(d: AzureDouble, query: str, **options: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"query": query}
    if options:
        body["options"] = options
    answer = call(_url(d, "/providers/Microsoft.ResourceGraph/resources", GRAPH), "POST", body)
    assert answer.status == 200, answer.body[:500]
    return dict(answer.json())


# ---------------------------------------------------------------------------------------------
# api-versions: the SDKs' own, the others refused as ARM refuses them


def test_the_sdks_send_the_api_versions_the_double_is_built_on(double: AzureDouble, clients: Clients) -> None:
    rg, name = _parts(double.refs["um:vm-succeeded"])
    clients.compute(_sub(double)).virtual_machines.instance_view(rg, name)
    rg, name = _parts(double.refs["um:arc-connected"])
    clients.hybridcompute(_sub(double)).machines.get(rg, name)
    assert double.requests_for("virtualMachines.instanceView")[0].query["api-version"] == COMPUTE
    assert double.requests_for("machines.get")[0].query["api-version"] == HYBRID


@pytest.mark.parametrize(("path", "version"), [
    ("{vm}/instanceView", "2024-07-01"), ("{vm}/assessPatches", "2025-04-01"), ("{arc}/assessPatches", "2025-01-13"),
    ("{vm}/extensions", "2099-01-01")])
def test_other_api_versions_are_refused_with_arms_error(double: AzureDouble, path: str, version: str) -> None:
    target = path.format(vm=double.refs["um:vm-succeeded"], arc=double.refs["um:arc-connected"])
    method = "POST" if target.endswith("assessPatches") else "GET"
    answer = call(_url(double, target, version), method)
    assert answer.status == 400
    error = answer.json()["error"]
    assert error["code"] == "InvalidApiVersionParameter"
    assert f"'{version}'" in error["message"]
    assert (COMPUTE if "Microsoft.Compute/" in target else HYBRID) in error["message"]
    assert call(f"{double.url}{target}", method).json()["error"]["code"] == "MissingApiVersionParameter"


def test_get_by_id_with_another_published_version_still_answers_the_vm(double: AzureDouble) -> None:
    vm = double.refs["um:vm-succeeded"]
    older = call(_url(double, vm, "2024-07-01"))
    assert older.status == 200
    assert older.json()["properties"]["osProfile"]["windowsConfiguration"]["patchSettings"]["patchMode"] == \
        "AutomaticByPlatform"
    assert double.requests[-1].operation == "resources.get"
    assert call(_url(double, vm, COMPUTE)).json() == older.json()
    assert double.requests[-1].operation == "virtualMachines.get"


# ---------------------------------------------------------------------------------------------
# Compute: virtual machines


def test_vm_get_with_instance_view_matches_the_spec(double: AzureDouble, clients: Clients, spec: VendoredSpec) -> None:
    from azure.mgmt.compute import models

    example = spec.example(f"{VM_EXAMPLES}/VirtualMachine_Get.json")["responses"]["200"]["body"]
    for ref in ("aum.schedule_prereq_not_set:vm", "aum.schedule_prereq_not_set:vm-no-os-profile",
                "aum.machine_unavailable:vm", "vm-prod-01", "vm-app-01"):
        raw = call(_url(double, double.refs[ref], COMPUTE, "&$expand=instanceView")).json()
        assert undeclared(raw, models.VirtualMachine) == [], ref
        assert set(raw) - {"instanceView"} <= set(example) | {"resources"}
        assert {"id", "name", "type", "location", "properties"} <= set(raw)
    rg, name = _parts(double.refs["aum.schedule_prereq_not_set:vm"])
    vm = clients.compute(_sub(double)).virtual_machines.get(rg, name, expand="instanceView")
    assert vm.properties.os_profile.windows_configuration.patch_settings.patch_mode == "AutomaticByOS"
    assert vm.properties.os_profile.windows_configuration.enable_automatic_updates is True
    assert [s.code for s in vm.properties.instance_view.statuses] == ["ProvisioningState/succeeded",
                                                                      "PowerState/running"]
    assert vm.resources[0].name == "WindowsPatchExtension"
    specialized = call(_url(double, double.refs["aum.schedule_prereq_not_set:vm-no-os-profile"], COMPUTE)).json()
    assert "osProfile" not in specialized["properties"]
    assert specialized["properties"]["storageProfile"]["osDisk"]["createOption"] == "Attach"


def test_instance_view_carries_power_agent_extensions_and_patch_status_as_the_example(
        double: AzureDouble, clients: Clients, spec: VendoredSpec) -> None:
    from azure.mgmt.compute import models

    example = spec.example(f"{VM_EXAMPLES}/VirtualMachine_Get_InstanceView.json")["responses"]["200"]["body"]
    running = call(_url(double, f"{double.refs['aum.reboot_required:vm']}/instanceView", COMPUTE)).json()
    assert undeclared(running, models.VirtualMachineInstanceView) == []
    assert set(running) <= set(example)
    assert set(running["patchStatus"]["availablePatchSummary"]) == set(example["patchStatus"]["availablePatchSummary"])
    assert running["patchStatus"]["availablePatchSummary"]["rebootPending"] is True
    assert running["vmAgent"]["statuses"][0]["displayStatus"] == "Ready"
    codes = [c["code"].split("/")[0] for c in running["patchStatus"]["configurationStatuses"]]
    assert codes == [c["code"].split("/")[0] for c in example["patchStatus"]["configurationStatuses"]]
    compute = clients.compute(_sub(double)).virtual_machines
    off = compute.instance_view(*_parts(double.refs["aum.machine_unavailable:vm"]))
    assert off.statuses[1].code == "PowerState/deallocated"
    assert off.vm_agent is None
    not_ready = compute.instance_view(*_parts(double.refs["aum.extension_failed:vm-agent-not-ready"]))
    assert not_ready.vm_agent.statuses[0].display_status == "Not Ready"
    failed = compute.instance_view(*_parts(double.refs["aum.extension_failed:vm"]))
    assert failed.extensions[0].name == "LinuxPatchExtension"
    assert failed.extensions[0].statuses[0].code == "ProvisioningState/failed"


def test_vms_are_listed_by_group_and_subscription_in_pages(double: AzureDouble, clients: Clients) -> None:
    compute = clients.compute(_sub(double)).virtual_machines
    names = sorted(v.name for v in compute.list("rg-um-lnx"))
    assert "vm-um-sudo-01" in names
    assert "vm-um-byos-01" not in names
    template = double.state.get(double.refs["um:vm-succeeded"])
    assert template is not None
    for index in range(450):
        extra = copy.deepcopy(template)
        extra["name"] = f"vm-bulk-{index:03d}"
        extra["id"] = template["id"].rsplit("/", 1)[0] + "/" + extra["name"]
        double.state.put(extra["id"], extra)
    everything = list(compute.list_all())
    assert len(everything) == len({v.id for v in everything}) >= 450 + 20
    first = call(_url(double, f"/subscriptions/{_sub(double)}/providers/Microsoft.Compute/virtualMachines", COMPUTE))
    assert len(first.json()["value"]) == 200
    assert "nextLink" in first.json()
    assert len(double.requests_for("virtualMachines.list")) >= 4


def test_patch_is_an_lro_and_sets_customer_managed_schedules(double: AzureDouble, clients: Clients) -> None:
    vm = double.refs["aum.schedule_prereq_not_set:vm-no-bypass"]
    body = {"properties": {"osProfile": {"linuxConfiguration": {"patchSettings": {
        "patchMode": "AutomaticByPlatform",
        "automaticByPlatformSettings": {"bypassPlatformSafetyChecksOnUserSchedule": True}}}}}}
    answer = call(_url(double, vm, COMPUTE), "PATCH", body)
    assert answer.status == 200
    assert answer.json()["properties"]["provisioningState"] == "Updating"
    assert {"azure-asyncoperation", "location"} <= set(answer.headers)
    statuses = [a.json()["status"] for a in _poll(answer, "azure-asyncoperation")]
    assert statuses == ["InProgress", "InProgress", "Succeeded"]
    after = call(_url(double, vm, COMPUTE)).json()["properties"]
    settings = after["osProfile"]["linuxConfiguration"]["patchSettings"]
    assert settings["automaticByPlatformSettings"] == {"rebootSetting": "IfRequired",
                                                       "bypassPlatformSafetyChecksOnUserSchedule": True}
    assert after["provisioningState"] == "Succeeded"
    rg, name = _parts(double.refs["aum.periodic_assessment_not_enabled:vm"])
    poller = clients.compute(_sub(double)).virtual_machines.begin_update(
        rg, name, {"properties": {"osProfile": {"windowsConfiguration": {"patchSettings": {
            "assessmentMode": "AutomaticByPlatform"}}}}}, polling_interval=0)
    updated = poller.result()
    assert updated.properties.os_profile.windows_configuration.patch_settings.assessment_mode == "AutomaticByPlatform"
    assert updated.properties.provisioning_state == "Succeeded"
    assert [r.status for r in double.requests_for("virtualMachines.patch")] == [200, 200]


@pytest.mark.parametrize(("ref", "body", "status", "code", "message", "target"), [
    # enableAutomaticUpdates sent with a value other than the VM's (MicrosoftDocs/azure-docs#112633)
    ("aum.schedule_prereq_not_set:vm", {"osProfile": {"windowsConfiguration": {"enableAutomaticUpdates": False}}},
     409, "PropertyChangeNotAllowed", "Changing property 'windowsConfiguration.enableAutomaticUpdates' is not allowed.",
     "windowsConfiguration.enableAutomaticUpdates"),
    # automaticByPlatformSettings with another patchMode (Azure/bicep-registry-modules#2081)
    ("aum.extension_failed:vm", {"osProfile": {"linuxConfiguration": {"patchSettings": {
        "patchMode": "ImageDefault", "automaticByPlatformSettings": {"rebootSetting": "IfRequired"}}}}},
     400, "InvalidParameter",
     "AutomaticByPlatformSettings cannot be set if the PatchMode is not 'AutomaticByPlatform'.",
     "linuxConfiguration.patchSettings.automaticByPlatformSettings"),
    # a VM without osProfile (attached specialised disk): MicrosoftDocs/azure-docs#12602
    ("aum.schedule_prereq_not_set:vm-no-os-profile", {"osProfile": {"windowsConfiguration": {"patchSettings": {
        "patchMode": "AutomaticByPlatform"}}}}, 409, "PropertyChangeNotAllowed",
     "Changing property 'osProfile' is not allowed.", "osProfile"),
    # AutomaticByOS needs enableAutomaticUpdates (kumarvna/terraform-azurerm-virtual-machine#13)
    ("um:vm-succeeded", {"osProfile": {"windowsConfiguration": {"patchSettings": {
        "patchMode": "AutomaticByOS", "automaticByPlatformSettings": None}}}},
     400, "InvalidParameter", "The patchMode 'AutomaticByOS' is invalid. For patchMode 'AutomaticByOS', the property "
     "'enableAutomaticUpdates' must be set to true.", "windowsConfiguration.patchSettings.patchMode"),
])
def test_patch_refusals_are_the_services(double: AzureDouble, clients: Clients, ref: str,  # noqa: PLR0917
                                         body: dict[str, Any], status: int, code: str, message: str,
                                         target: str) -> None:  # (one parametrized case)
    from azure.core.exceptions import HttpResponseError

    vm = double.refs[ref]
    before = double.state.get(vm)
    raw = call(_url(double, vm, COMPUTE), "PATCH", {"properties": body})
    assert raw.status == status
    assert raw.json()["error"] == {"code": code, "message": message, "target": target}
    with pytest.raises(HttpResponseError) as refused:
        clients.compute(_sub(double)).virtual_machines.begin_update(*_parts(vm), {"properties": body},
                                                                    polling_interval=0)
    assert _error(refused.value)[:2] == (status, code)
    assert double.state.get(vm) == before


def test_sending_the_same_enable_automatic_updates_again_is_accepted(double: AzureDouble) -> None:
    vm = double.refs["aum.schedule_prereq_not_set:vm"]
    body = {"properties": {"osProfile": {"windowsConfiguration": {"enableAutomaticUpdates": True, "patchSettings": {
        "patchMode": "AutomaticByPlatform", "automaticByPlatformSettings": {
            "bypassPlatformSafetyChecksOnUserSchedule": True}}}}}}
    assert call(_url(double, vm, COMPUTE), "PATCH", body).status == 200


def test_power_actions_are_lros_that_move_the_power_state(double: AzureDouble, clients: Clients,
                                                          spec: VendoredSpec) -> None:
    from azure.core.exceptions import HttpResponseError

    compute = clients.compute(_sub(double)).virtual_machines
    vm = double.refs["um:vm-succeeded"]
    for action in ("Deallocate", "Start", "Restart"):
        example = spec.example(f"{VM_EXAMPLES}/VirtualMachine_{action}_MinimumSet_Gen.json")["responses"]
        assert set(example) == {"200", "202"}
        assert "location" in example["202"]["headers"]
    started = call(_url(double, f"{vm}/deallocate", COMPUTE), "POST")
    assert started.status == 202
    assert {"location", "azure-asyncoperation", "retry-after"} <= set(started.headers)
    assert compute.instance_view(*_parts(vm)).statuses[1].code == "PowerState/deallocating"
    monitor = _poll(started, "location")  # the instance view above was one observation of the operation
    assert [a.status for a in monitor] == [202, 200]
    assert compute.instance_view(*_parts(vm)).statuses[1].code == "PowerState/deallocated"
    with pytest.raises(HttpResponseError) as refused:
        compute.begin_restart(*_parts(vm), polling_interval=0).result()
    assert _error(refused.value)[:2] == (409, "OperationNotAllowed")
    compute.begin_start(*_parts(vm), polling_interval=0).result()
    view = compute.instance_view(*_parts(vm))
    assert view.statuses[1].code == "PowerState/running"
    assert view.vm_agent.statuses[0].display_status == "Ready"
    compute.begin_power_off(*_parts(vm), polling_interval=0).result()
    assert compute.instance_view(*_parts(vm)).statuses[1].code == "PowerState/stopped"


def test_assess_patches_answers_the_example_and_updates_view_and_graph(
        double: AzureDouble, clients: Clients, spec: VendoredSpec) -> None:
    from azure.mgmt.compute import models

    example = spec.example(f"{VM_EXAMPLES}/VirtualMachine_AssessPatches.json")["responses"]
    vm = double.refs["um:vm-succeeded"]
    before = _graph(double, f"patchassessmentresources | where id =~ '{vm}/patchAssessmentResults/latest'")
    started = call(_url(double, f"{vm}/assessPatches", COMPUTE), "POST")
    assert started.status == 202
    assert set(example["202"]["headers"]) <= {h.title() for h in started.headers}
    status = _poll(started, "azure-asyncoperation")
    assert [a.json()["status"] for a in status] == ["InProgress", "InProgress", "Succeeded"]
    result = call(started.headers["location"]).json()
    assert set(result) == set(example["200"]["body"])
    assert keys_within(result, example["200"]["body"]) == []
    assert undeclared(result, models.VirtualMachineAssessPatchesResult) == []
    assert status[-1].json()["properties"]["output"] == result
    assert result["status"] == "Succeeded"
    assert result["criticalAndSecurityPatchCount"] + result["otherPatchCount"] == len(result["availablePatches"]) > 0
    summary = call(_url(double, f"{vm}/instanceView", COMPUTE)).json()["patchStatus"]["availablePatchSummary"]
    assert summary["assessmentActivityId"] == result["assessmentActivityId"]
    after = _graph(double, f"patchassessmentresources | where id =~ '{vm}/patchAssessmentResults/latest'")
    assert after["data"][0]["properties"]["lastModifiedDateTime"] > before["data"][0]["properties"][
        "lastModifiedDateTime"]
    assert after["data"][0]["name"] == result["assessmentActivityId"]
    patches = _graph(double, f"patchassessmentresources | where type has 'softwarepatches' and id startswith '{vm}'")
    assert patches["totalRecords"] == len(result["availablePatches"])
    sdk = clients.compute(_sub(double)).virtual_machines.begin_assess_patches(*_parts(vm), polling_interval=0).result()
    assert sdk.status == "Succeeded"


def test_an_assessment_reinstalls_a_missing_patch_extension_and_fails_on_a_failed_one(
        double: AzureDouble, clients: Clients) -> None:
    from azure.core.exceptions import HttpResponseError

    compute = clients.compute(_sub(double))
    rg, name = _parts(double.refs["aum.extension_failed:vm"])
    with pytest.raises(HttpResponseError) as failed:
        compute.virtual_machines.begin_assess_patches(rg, name, polling_interval=0).result()
    code, message = _error(failed.value)[1:]
    assert code == "VMExtensionProvisioningError"
    assert "LinuxPatchExtension" in message
    compute.virtual_machine_extensions.begin_delete(rg, name, "LinuxPatchExtension", polling_interval=0).result()
    assert compute.virtual_machine_extensions.list(rg, name).value == []
    assert compute.virtual_machines.begin_assess_patches(rg, name, polling_interval=0).result().status == "Succeeded"
    reinstalled = compute.virtual_machine_extensions.get(rg, name, "LinuxPatchExtension", expand="instanceView")
    assert (reinstalled.properties.publisher, reinstalled.properties.provisioning_state) == (
        "Microsoft.CPlat.Core", "Succeeded")
    assert reinstalled.properties.instance_view.statuses[0].code == "ProvisioningState/succeeded"


def test_internal_execution_error_fails_the_lro_once(double: AzureDouble, clients: Clients) -> None:
    from azure.core.exceptions import HttpResponseError

    compute = clients.compute(_sub(double)).virtual_machines
    rg, name = _parts(double.refs["aum.internal_execution_error:vm"])
    with pytest.raises(HttpResponseError) as failed:
        compute.begin_assess_patches(rg, name, polling_interval=0).result()
    assert _error(failed.value)[1:] == ("VMGuestPatchInternalError",
                                        "An internal execution error occurred. Please retry later.")
    assert compute.begin_assess_patches(rg, name, polling_interval=0).result().status == "Succeeded"


def test_install_patches_takes_the_example_body_and_writes_installation_rows(
        double: AzureDouble, clients: Clients, spec: VendoredSpec) -> None:
    from azure.mgmt.compute import models

    example = spec.example(f"{VM_EXAMPLES}/VirtualMachine_InstallPatches.json")
    vm = double.refs["um:vm-succeeded"]
    started = call(_url(double, f"{vm}/installPatches", COMPUTE), "POST", example["parameters"]["installPatchesInput"])
    assert started.status == 202
    _poll(started, "azure-asyncoperation")
    result = call(started.headers["location"]).json()
    assert set(result) == set(example["responses"]["200"]["body"])
    assert undeclared(result, models.VirtualMachineInstallPatchesResult) == []
    assert result["status"] == "Succeeded"
    assert result["installedPatchCount"] == sum(1 for p in result["patches"] if p["installationState"] == "Installed")
    rows = _graph(double, "patchinstallationresources | where type !has 'softwarepatches' "
                          f"| where name == '{result['installationActivityId']}'")["data"]
    assert [r["properties"]["status"] for r in rows] == ["Succeeded"]
    assert rows[0]["properties"]["startedBy"] == "User"
    assert rows[0]["type"] == "microsoft.compute/virtualmachines/patchinstallationresults"
    per_patch = _graph(double, f"patchinstallationresources | where id contains '{result['installationActivityId']}'"
                               " | where type has 'softwarepatches'")
    assert per_patch["totalRecords"] == len(result["patches"])
    view = call(_url(double, f"{vm}/instanceView", COMPUTE)).json()["patchStatus"]["lastPatchInstallationSummary"]
    assert set(view) == set(spec.example(f"{VM_EXAMPLES}/VirtualMachine_Get_InstanceView.json")["responses"]["200"][
        "body"]["patchStatus"]["lastPatchInstallationSummary"])
    # rebootSetting Never with an update that reboots: CompletedWithWarnings, rebootStatus Required
    params = models.VirtualMachineInstallPatchesParameters(
        maximum_duration=timedelta(hours=2), reboot_setting="Never", windows_parameters=models.WindowsParameters(
            classifications_to_include=["Critical", "Security", "UpdateRollUp", "Definition", "Updates"]))
    rg, name = _parts(double.refs["aum.schedule_not_triggered:vm"])
    done = clients.compute(_sub(double)).virtual_machines.begin_install_patches(rg, name, params,
                                                                               polling_interval=0).result()
    assert (done.status, done.reboot_status) == ("CompletedWithWarnings", "Required")
    assert "customer-specified reboot setting doesn't allow reboots" in done.error.message


@pytest.mark.parametrize(("body", "target"), [
    ({"rebootSetting": "IfRequired", "windowsParameters": {}}, "maximumDuration"),
    ({"maximumDuration": "4 hours", "rebootSetting": "IfRequired", "windowsParameters": {}}, "maximumDuration"),
    ({"maximumDuration": "PT2H", "rebootSetting": "Sometimes", "windowsParameters": {}}, "rebootSetting"),
    ({"maximumDuration": "PT2H", "rebootSetting": "IfRequired", "linuxParameters": {}}, "windowsParameters"),
    ({"maximumDuration": "PT2H", "rebootSetting": "IfRequired",
      "windowsParameters": {"classificationsToInclude": ["Other"]}}, "windowsParameters.classificationsToInclude"),
])
def test_install_parameters_are_validated(double: AzureDouble, body: dict[str, Any], target: str) -> None:
    answer = call(_url(double, f"{double.refs['um:vm-succeeded']}/installPatches", COMPUTE), "POST", body)
    assert answer.status == 400
    assert answer.json()["error"]["code"] == "InvalidParameter"
    assert answer.json()["error"]["target"] == target


def test_guest_operations_on_a_vm_that_is_not_running_are_refused(double: AzureDouble, clients: Clients) -> None:
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.compute.models import VirtualMachineInstallPatchesParameters, WindowsParameters

    compute = clients.compute(_sub(double))
    rg, name = _parts(double.refs["aum.machine_unavailable:vm"])
    params = VirtualMachineInstallPatchesParameters(maximum_duration=timedelta(hours=2), reboot_setting="IfRequired",
                                                    windows_parameters=WindowsParameters(
                                                        classifications_to_include=["Security"]))
    starts: list[Callable[[], Any]] = [lambda: compute.virtual_machines.begin_assess_patches(rg, name),
                                       lambda: compute.virtual_machines.begin_install_patches(rg, name, params)]
    for start in starts:
        with pytest.raises(HttpResponseError) as refused:
            start()
        status, code, message = _error(refused.value)
        assert (status, code) == (409, "OperationNotAllowed")
        assert "since the VM is deallocated" in message
    with pytest.raises(HttpResponseError) as extension:
        compute.virtual_machine_extensions.begin_delete(rg, name, "WindowsPatchExtension")
    assert _error(extension.value) == (409, "OperationNotAllowed",
                                       "Cannot modify extensions in the VM when the VM is not running.")


def test_vm_extensions_get_list_delete_as_the_examples(double: AzureDouble, clients: Clients,
                                                       spec: VendoredSpec) -> None:
    from azure.mgmt.compute import models

    vm = double.refs["um:vm-succeeded"]
    target = f"{vm}/extensions/WindowsPatchExtension"
    maximum = spec.example(f"{VM_EXAMPLES}/VirtualMachineExtension_Get_MaximumSet_Gen.json")["responses"]["200"]["body"]
    minimum = spec.example(f"{VM_EXAMPLES}/VirtualMachineExtension_Get_MinimumSet_Gen.json")["responses"]["200"]["body"]
    one = call(_url(double, target, COMPUTE, "&$expand=instanceView")).json()
    assert keys_within(one, maximum) == []
    assert set(minimum) <= set(one)
    assert undeclared(one, models.VirtualMachineExtension) == []
    assert (one["properties"]["publisher"], one["properties"]["type"]) == ("Microsoft.CPlat.Core",
                                                                           "WindowsPatchExtension")
    listed = call(_url(double, f"{vm}/extensions", COMPUTE)).json()
    listing = spec.example(f"{VM_EXAMPLES}/VirtualMachineExtension_List_MaximumSet_Gen.json")["responses"]["200"][
        "body"]
    assert keys_within(listed, listing) == []
    assert "instanceView" not in listed["value"][0]["properties"]
    delete = spec.example(f"{VM_EXAMPLES}/VirtualMachineExtension_Delete_MinimumSet_Gen.json")["responses"]
    gone = call(_url(double, target, COMPUTE), "DELETE")
    assert gone.status == 202 and str(gone.status) in delete
    assert "location" in gone.headers
    assert call(_url(double, target, COMPUTE)).json()["properties"]["provisioningState"] == "Deleting"
    _poll(gone, "location")
    assert call(_url(double, target, COMPUTE)).status == 404
    again = call(_url(double, target, COMPUTE), "DELETE")
    assert again.status == 204 and "204" in delete
    rg, name = _parts(double.refs["aum.reboot_required:vm"])
    ext = clients.compute(_sub(double)).virtual_machine_extensions.get(rg, name, "WindowsPatchExtension")
    assert ext.properties.provisioning_state == "Succeeded"


# ---------------------------------------------------------------------------------------------
# HybridCompute: Arc-enabled servers


def test_arc_machines_get_list_patch_as_the_examples(double: AzureDouble, clients: Clients, spec: VendoredSpec) -> None:
    from azure.mgmt.hybridcompute import models

    machine = double.refs["um:arc-connected"]
    raw = call(_url(double, machine, HYBRID)).json()
    assert undeclared(raw, models.Machine) == []
    assert raw["properties"]["status"] == "Connected"
    hybrid = clients.hybridcompute(_sub(double)).machines
    assert sorted(m.name for m in hybrid.list_by_resource_group("rg-um-arc")) == [
        "arc-um-disconnected-01", "arc-um-expired-01", "arc-um-ok-01"]
    assert {m.properties.status for m in hybrid.list_by_subscription()} == {"Connected", "Disconnected", "Expired"}
    example = spec.example(f"{ARC_EXAMPLES}/machine/Machines_Update.json")
    profile = example["parameters"]["parameters"]["properties"]["osProfile"]
    updated = call(_url(double, machine, HYBRID), "PATCH", {"properties": {"osProfile": profile}})
    assert updated.status == 200
    assert undeclared(updated.json(), models.Machine) == []
    settings = updated.json()["properties"]["osProfile"]["windowsConfiguration"]["patchSettings"]
    assert (settings["assessmentMode"], settings["patchMode"]) == ("ImageDefault", "AutomaticByPlatform")
    sdk = hybrid.update(*_parts(machine), {"properties": {"osProfile": {"windowsConfiguration": {
        "patchSettings": {"assessmentMode": "AutomaticByPlatform"}}}}})
    assert sdk.properties.os_profile.windows_configuration.patch_settings.assessment_mode == "AutomaticByPlatform"
    bad = call(_url(double, machine, HYBRID), "PATCH", {"properties": {"osProfile": {"linuxConfiguration": {
        "patchSettings": {"assessmentMode": "Sometimes"}}}}})
    assert (bad.status, bad.json()["error"]["code"]) == (400, "InvalidParameter")


def test_arc_assess_and_install_answer_the_examples(double: AzureDouble, clients: Clients, spec: VendoredSpec) -> None:
    from azure.mgmt.hybridcompute import models

    machine = double.refs["um:arc-connected"]
    assess = spec.example(f"{ARC_EXAMPLES}/machine/Machine_AssessPatches.json")["responses"]
    started = call(_url(double, f"{machine}/assessPatches", HYBRID), "POST")
    assert started.status == 202
    assert set(assess["202"]["headers"]) <= {h.title() for h in started.headers}
    result = _poll(started, "location")[-1].json()
    assert set(assess["200"]["body"]) <= set(result)
    assert undeclared(result, models.MachineAssessPatchesResult) == []
    install = spec.example(f"{ARC_EXAMPLES}/machine/Machine_InstallPatches.json")
    started = call(_url(double, f"{machine}/installPatches", HYBRID), "POST",
                   install["parameters"]["installPatchesInput"])
    result = _poll(started, "location")[-1].json()
    assert set(install["responses"]["200"]["body"]) <= set(result)
    assert undeclared(result, models.MachineInstallPatchesResult) == []
    rows = _graph(double, "patchinstallationresources | where type == "
                          "'microsoft.hybridcompute/machines/patchinstallationresults' "
                          f"| where name == '{result['installationActivityId']}'")
    assert rows["count"] == 1
    hybrid = clients.hybridcompute(_sub(double)).machines
    assert hybrid.begin_assess_patches(*_parts(machine), polling_interval=0).result().status == "Succeeded"


def test_a_disconnected_arc_machine_queues_its_operations(double: AzureDouble, clients: Clients,
                                                          spec: VendoredSpec) -> None:
    machine = double.refs["aum.arc_disconnected:machine"]
    started = call(_url(double, f"{machine}/assessPatches", HYBRID), "POST")
    assert started.status == 202
    for _ in range(5):
        assert call(started.headers["location"]).status == 202
    double.state.finish_operations()
    assert call(started.headers["location"]).status == 202
    extension = f"{machine}/extensions/LinuxOsUpdateExtension"
    deleting = call(_url(double, extension, HYBRID), "DELETE")
    assert deleting.status == 202
    example = spec.example(f"{ARC_EXAMPLES}/extension/Extension_Delete.json")["responses"]["202"]["headers"]
    assert {h.lower() for h in example} <= set(deleting.headers)
    for _ in range(4):  # queued: it stays in progress however often it is polled
        assert call(deleting.headers["azure-asyncoperation"]).json()["status"] == "InProgress"
    body = double.state.get(machine)
    assert body is not None
    body["properties"]["status"] = "Connected"
    double.state.put(machine, body)
    assert call(deleting.headers["azure-asyncoperation"]).json()["status"] == "Succeeded"
    assert call(_url(double, extension, HYBRID)).status == 404
    assert call(started.headers["location"]).status == 200  # the queued assessment reinstalls the extension
    assert call(_url(double, extension, HYBRID)).json()["properties"]["provisioningState"] == "Succeeded"
    assert clients.hybridcompute(_sub(double)).machines.get(*_parts(machine)).properties.status == "Connected"


def test_arc_extensions_and_reinstall_on_assessment(double: AzureDouble, clients: Clients, spec: VendoredSpec) -> None:
    from azure.mgmt.hybridcompute import models

    hybrid = clients.hybridcompute(_sub(double))
    rg, name = _parts(double.refs["aum.arc_disconnected:expired-machine"])
    body = double.state.get(double.refs["aum.arc_disconnected:expired-machine"])
    assert body is not None and body["properties"]["status"] == "Expired"
    machine = double.refs["um:arc-connected"]
    listed = call(_url(double, f"{machine}/extensions", HYBRID)).json()["value"]
    assert [e["name"] for e in listed] == ["WindowsOsUpdateExtension"]
    assert undeclared(listed[0], models.MachineExtension) == []
    example = spec.example(f"{ARC_EXAMPLES}/extension/Extension_Update.json")["responses"]["200"]["body"]
    assert set(listed[0]["properties"]) <= set(example["properties"])
    assert set(listed[0]) - {"tags"} <= set(example)
    rg, name = _parts(machine)
    hybrid.machine_extensions.begin_delete(rg, name, "WindowsOsUpdateExtension", polling_interval=0).result()
    assert list(hybrid.machine_extensions.list(rg, name)) == []
    hybrid.machines.begin_assess_patches(rg, name, polling_interval=0).result()
    again = hybrid.machine_extensions.get(rg, name, "WindowsOsUpdateExtension")
    assert (again.properties.publisher, again.properties.provisioning_state) == (
        "Microsoft.SoftwareUpdateManagement", "Succeeded")


# ---------------------------------------------------------------------------------------------
# Maintenance: configuration assignments, schedules


def test_configuration_assignments_round_trip_as_the_examples(double: AzureDouble, clients: Clients,
                                                              spec: VendoredSpec) -> None:
    put = spec.example(f"maintenance/{MAINTENANCE}/examples/ConfigurationAssignments_CreateOrUpdate.json")
    vm = double.refs["aum.schedule_not_triggered:vm"]
    config = double.refs["um:schedule:noreboot"]
    target = f"{vm}/providers/Microsoft.Maintenance/configurationAssignments/noreboot-missed"
    body = {"properties": {"maintenanceConfigurationId": config}}
    created = call(_url(double, target, MAINTENANCE), "PUT", body)
    assert created.status == 200
    assert set(created.json()) == set(put["responses"]["200"]["body"])
    assert spec.errors(created.json(), "Maintenance.json", "ConfigurationAssignment") == []
    assert created.json()["properties"] == {"maintenanceConfigurationId": config, "resourceId": vm}
    rows = _graph(double, f"maintenanceresources | where type == 'microsoft.maintenance/configurationassignments' "
                          f"| where properties.resourceId =~ '{vm}' | project id, config = "
                          "tostring(properties.maintenanceConfigurationId)")["data"]
    assert config in [r["config"] for r in rows]
    listing = call(_url(double, f"{vm}/providers/Microsoft.Maintenance/configurationAssignments", MAINTENANCE)).json()
    assert spec.errors(listing, "Maintenance.json", "ListConfigurationAssignmentsResult") == []
    assert sorted(a["name"] for a in listing["value"]) == ["mc-um-win-weekly-vm-um-missed-01", "noreboot-missed"]
    maintenance = clients.maintenance(_sub(double))
    rg, name = _parts(vm)
    got = maintenance.configuration_assignments.get(rg, "Microsoft.Compute", "virtualMachines", name, "noreboot-missed")
    assert got.maintenance_configuration_id == config
    delete = spec.example(f"maintenance/{MAINTENANCE}/examples/ConfigurationAssignments_Delete.json")["responses"]
    gone = call(_url(double, target, MAINTENANCE), "DELETE")
    assert gone.status == 200
    assert set(gone.json()) == set(delete["200"]["body"])
    assert call(_url(double, target, MAINTENANCE), "DELETE").status == 204
    assert call(_url(double, target, MAINTENANCE)).status == 404
    rows = _graph(double, f"maintenanceresources | where id =~ '{target}'")
    assert rows["totalRecords"] == 0
    sdk = maintenance.configuration_assignments.create_or_update(
        rg, "Microsoft.Compute", "virtualMachines", name, "sdk-assignment",
        {"properties": {"maintenanceConfigurationId": config}})
    assert sdk.resource_id == vm
    missing = call(_url(double, target, MAINTENANCE), "PUT", {"properties": {}})
    assert (missing.status, missing.json()["error"]["target"]) == (400, "properties.maintenanceConfigurationId")


def test_dynamic_scope_assignments_keep_their_filter(double: AzureDouble, clients: Clients, spec: VendoredSpec) -> None:
    example = spec.example(f"maintenance/{MAINTENANCE}/examples/ConfigurationAssignmentsForSubscriptions_"
                           "CreateOrUpdate.json")
    body = copy.deepcopy(example["parameters"]["configurationAssignment"])
    body["properties"]["maintenanceConfigurationId"] = double.refs["um:schedule:win"]
    target = f"/subscriptions/{_sub(double)}/providers/Microsoft.Maintenance/configurationAssignments/dyn-example"
    created = call(_url(double, target, MAINTENANCE), "PUT", body)
    assert created.status == 200
    expected = example["responses"]["200"]["body"]
    assert set(created.json()) == set(expected)
    assert created.json()["properties"]["filter"] == expected["properties"]["filter"]
    assert created.json()["properties"]["resourceId"] == f"/subscriptions/{_sub(double)}"
    assert spec.errors(created.json(), "Maintenance.json", "ConfigurationAssignment") == []
    maintenance = clients.maintenance(_sub(double))
    seeded = maintenance.configuration_assignments_for_subscriptions.get("dyn-linux-weekly")
    assert seeded.filter.tag_settings.tags == {"patch-group": ["linux-weekly"]}
    everything = list(maintenance.configuration_assignments_within_subscription.list())
    names = {a.name for a in everything}
    assert {"dyn-example", "dyn-linux-weekly", "mc-um-win-weekly-vm-um-missed-01"} <= names
    bad = copy.deepcopy(body)
    bad["properties"]["filter"]["tagSettings"]["filterOperator"] = "Some"
    assert call(_url(double, target, MAINTENANCE), "PUT", bad).status == 400
    maintenance.configuration_assignments_for_subscriptions.delete("dyn-example")
    assert call(_url(double, target, MAINTENANCE)).status == 404


def test_schedule_put_keeps_the_whole_body_and_refuses_one_without_patch_mode(double: AzureDouble,
                                                                              spec: VendoredSpec) -> None:
    config = double.refs["um:schedule:win"]
    body = call(_url(double, config, MAINTENANCE)).json()
    body["properties"]["maintenanceWindow"]["duration"] = "03:30"
    saved = call(_url(double, config, MAINTENANCE), "PUT", body)
    assert saved.status == 200
    assert saved.json()["properties"]["extensionProperties"] == {"InGuestPatchMode": "User"}
    assert saved.json()["properties"]["installPatches"] == body["properties"]["installPatches"]
    assert spec.errors(saved.json(), "Maintenance.json", "MaintenanceConfiguration") == []
    invalid = call(_url(double, double.refs["aum.configuration_invalid:schedule"], MAINTENANCE)).json()
    assert "extensionProperties" not in invalid["properties"]
    refused = call(_url(double, double.refs["aum.configuration_invalid:schedule"], MAINTENANCE), "PUT", invalid)
    assert refused.status == 400
    assert refused.json()["error"]["message"] == "Extension properties must contain Patch mode"


# ---------------------------------------------------------------------------------------------
# Resource Graph


SAMPLE_QUERIES = (  # learn.microsoft.com/azure/update-manager/sample-query-logs, verbatim but the VM id
    """patchassessmentresources
| where type !has "softwarepatches"
| extend prop = parse_json(properties)
| extend lastTime = properties.lastModifiedDateTime
| extend updateRollupCount = prop.availablePatchCountByClassification.updateRollup, featurePackCount = prop.availablePatchCountByClassification.featurePack, servicePackCount = prop.availablePatchCountByClassification.servicePack, definitionCount = prop.availablePatchCountByClassification.definition, securityCount = prop.availablePatchCountByClassification.security, criticalCount = prop.availablePatchCountByClassification.critical, updatesCount = prop.availablePatchCountByClassification.updates, toolsCount = prop.availablePatchCountByClassification.tools, otherCount = prop.availablePatchCountByClassification.other, OS = prop.osType
| project lastTime, id, OS, updateRollupCount, featurePackCount, servicePackCount, definitionCount, securityCount, criticalCount, updatesCount, toolsCount, otherCount""",  # noqa: E501
    """patchinstallationresources
| where type !has "softwarepatches"
| extend machineName = tostring(split(id, "/", 8)), resourceType = tostring(split(type, "/", 0)), tostring(rgName = split(id, "/", 4))
| extend prop = parse_json(properties)
| extend lTime = todatetime(prop.lastModifiedDateTime), OS = tostring(prop.osType), installedPatchCount = tostring(prop.installedPatchCount), failedPatchCount = tostring(prop.failedPatchCount), pendingPatchCount = tostring(prop.pendingPatchCount), excludedPatchCount = tostring(prop.excludedPatchCount), notSelectedPatchCount = tostring(prop.notSelectedPatchCount)
| where lTime > ago(7d)
| project lTime, RunID=name,machineName, rgName, resourceType, OS, installedPatchCount, failedPatchCount, pendingPatchCount, excludedPatchCount, notSelectedPatchCount""",  # noqa: E501
    """patchinstallationresources
| where type has "softwarepatches" and properties !has "version"
| extend machineName = tostring(split(id, "/", 8)), resourceType = tostring(split(type, "/", 0)), tostring(rgName = split(id, "/", 4)), tostring(RunID = split(id, "/", 10))
| extend prop = parse_json(properties)
| extend lTime = todatetime(prop.lastModifiedDateTime), patchName = tostring(prop.patchName), kbId = tostring(prop.kbId), installationState = tostring(prop.installationState), classifications = tostring(prop.classifications)
| where lTime > ago(7d)
| project lTime, RunID, machineName, rgName, resourceType, patchName, kbId, classifications, installationState
| sort by RunID""",  # noqa: E501
    """patchinstallationresources
| where type has "softwarepatches" and properties has "version"
| extend machineName = tostring(split(id, "/", 8)), resourceType = tostring(split(type, "/", 0)), tostring(rgName = split(id, "/", 4)), tostring(RunID = split(id, "/", 10))
| extend prop = parse_json(properties)
| extend lTime = todatetime(prop.lastModifiedDateTime), patchName = tostring(prop.patchName), version = tostring(prop.version), installationState = tostring(prop.installationState), classifications = tostring(prop.classifications)
| where lTime > ago(7d)
| project lTime, RunID, machineName, rgName, resourceType, patchName, version, classifications, installationState
| sort by RunID""",  # noqa: E501
    """maintenanceresources 
| where ['id'] contains "{vm}" //VM Id here
| where ['type'] == "microsoft.maintenance/applyupdates" 
| where properties.maintenanceScope == "InGuestPatch"
""",  # noqa: W291
)


def test_the_update_manager_sample_queries_run(double: AzureDouble, clients: Clients, spec: VendoredSpec) -> None:
    from azure.mgmt.resourcegraph.models import QueryRequest

    graph = clients.resourcegraph()
    vm = double.refs["um.run_failed_linux:vm"].lower()
    answers = [graph.resources(QueryRequest(subscriptions=[_sub(double)], query=q.replace("{vm}", vm)))
               for q in SAMPLE_QUERIES]
    assessments, installations, windows, linux, runs = answers
    assert {"lastTime", "id", "OS", "securityCount", "otherCount"} <= set(assessments.data[0])
    by_machine = {r["machineName"]: r for r in installations.data}
    assert by_machine['["vm-um-pkgmgr-01"]']["failedPatchCount"] == "3"
    assert {r["resourceType"] for r in installations.data} >= {'["microsoft.compute"]'}
    assert windows.data and all(r["kbId"] for r in windows.data)
    # "has 'version'" also catches a Windows update named "... (Version 1.421.1590.0)", as it would in Azure
    linux_rows = [r for r in linux.data if r["rgName"] == '["rg-um-lnx"]']
    assert linux_rows and all(r["version"] for r in linux_rows)
    assert {r["installationState"] for r in linux_rows} >= {"Failed", "Installed"}
    assert runs.count == 1
    assert runs.data[0]["properties"]["correlationId"] == double.refs["um.run_failed_linux:run"]
    raw = call(_url(double, "/providers/Microsoft.ResourceGraph/resources", GRAPH), "POST",
               {"subscriptions": [_sub(double)], "query": SAMPLE_QUERIES[1]})
    assert spec.errors(raw.json(), "resourcegraph.json", "QueryResponse") == []


def test_resource_graph_pages_with_skip_token_as_the_examples(double: AzureDouble, spec: VendoredSpec) -> None:
    first_example = spec.example("resourcegraph/2021-03-01/examples/ResourcesFirstPageQuery.json")
    next_example = spec.example("resourcegraph/2021-03-01/examples/ResourcesNextPageQuery.json")
    query = "resources | where type =~ 'microsoft.compute/virtualmachines' | project id, name, type, location"
    body = {"subscriptions": [_sub(double)], "query": query, "options": first_example["parameters"]["query"]["options"]}
    first = call(_url(double, "/providers/Microsoft.ResourceGraph/resources", GRAPH), "POST", body).json()
    assert set(first) == set(first_example["responses"]["200"]["body"])
    assert spec.errors(first, "resourcegraph.json", "QueryResponse") == []
    assert first["count"] == 3
    rest = call(_url(double, "/providers/Microsoft.ResourceGraph/resources", GRAPH), "POST",
                {**body, "options": {"$skipToken": first["$skipToken"]}}).json()
    assert set(rest) <= set(next_example["responses"]["200"]["body"])
    assert rest["totalRecords"] == first["totalRecords"] == 3 + rest["count"]
    assert "$skipToken" not in rest
    assert not {r["id"] for r in first["data"]} & {r["id"] for r in rest["data"]}


def test_resources_rows_carry_power_state_patch_settings_and_arc_status(double: AzureDouble) -> None:
    vms = _graph(double, "resources | where type =~ 'microsoft.compute/virtualmachines' "
                         "| where properties.extended.instanceView.powerState.code == 'PowerState/deallocated' "
                         "| project name, mode = "
                         "tostring(properties.osProfile.windowsConfiguration.patchSettings.patchMode)")
    assert {"name": "vm-um-off-01", "mode": "AutomaticByPlatform"} in vms["data"]
    arc = _graph(double, "resources | where type == 'microsoft.hybridcompute/machines' "
                         "| summarize count() by status = tostring(properties.status)")
    assert {r["status"]: r["count_"] for r in arc["data"]} == {"Connected": 3, "Disconnected": 1, "Expired": 1}
    vm = double.refs["um:vm-succeeded"]
    call(_url(double, f"{vm}/deallocate", COMPUTE), "POST")
    double.state.finish_operations()
    moved = _graph(double, f"resources | where id =~ '{vm}' "
                           "| project power = tostring(properties.extended.instanceView.powerState.code)")
    assert moved["data"] == [{"power": "PowerState/deallocated"}]


def test_unsupported_kql_is_still_a_400(double: AzureDouble, spec: VendoredSpec) -> None:
    answer = call(_url(double, "/providers/Microsoft.ResourceGraph/resources", GRAPH), "POST",
                  {"query": "patchinstallationresources | mv-expand properties"})
    assert answer.status == 400
    assert spec.errors(answer.json(), "resourcegraph.json", "ErrorResponse") == []


# ---------------------------------------------------------------------------------------------
# the estate: every scenario's evidence


def _row(d: AzureDouble, table: str, where: str) -> dict[str, Any]:
    rows = _graph(d, f"{table} | where {where}")["data"]
    assert len(rows) == 1, (where, rows)
    return dict(rows[0])


def _settings(d: AzureDouble, ref: str) -> dict[str, Any]:
    vm = call(_url(d, d.refs[ref], COMPUTE)).json()
    profile = vm["properties"]["osProfile"]
    config = profile.get("windowsConfiguration") or profile["linuxConfiguration"]
    return dict(config["patchSettings"])


def _install_row(d: AzureDouble, ref: str) -> dict[str, Any]:
    return dict(_row(d, "patchinstallationresources", f"type !has 'softwarepatches' and id startswith "
                                                      f"'{d.refs[ref]}/'")["properties"])


def _assess_row(d: AzureDouble, ref: str) -> dict[str, Any]:
    return dict(_row(d, "patchassessmentresources", f"id =~ '{d.refs[ref]}/patchAssessmentResults/latest'")[
        "properties"])


def _assigned(d: AzureDouble, ref: str, schedule: str) -> bool:
    rows = _graph(d, "maintenanceresources | where type == 'microsoft.maintenance/configurationassignments' "
                     f"| where properties.resourceId =~ '{d.refs[ref]}' "
                     f"| where properties.maintenanceConfigurationId =~ '{d.refs[schedule]}'")
    return bool(rows["count"])


def test_estate_schedule_prereq_periodic_assessment_and_provider_evidence(double: AzureDouble,
                                                                          clients: Clients) -> None:
    assert _settings(double, "aum.schedule_prereq_not_set:vm")["patchMode"] == "AutomaticByOS"
    no_bypass = _settings(double, "aum.schedule_prereq_not_set:vm-no-bypass")
    assert no_bypass["patchMode"] == "AutomaticByPlatform"
    assert no_bypass["automaticByPlatformSettings"]["bypassPlatformSafetyChecksOnUserSchedule"] is False
    for ref in ("aum.schedule_prereq_not_set:vm", "aum.schedule_prereq_not_set:vm-no-bypass"):
        assert _assigned(double, ref, "aum.schedule_prereq_not_set:schedule") or _assigned(
            double, ref, "um:schedule:linux")
    assert _settings(double, "aum.periodic_assessment_not_enabled:vm")["assessmentMode"] == "ImageDefault"
    tags = call(_url(double, double.refs["aum.periodic_assessment_not_enabled:vm"], COMPUTE)).json()["tags"]
    assert tags["remediator-expect-assessment"] == "true"
    assert _graph(double, "patchassessmentresources | where id startswith "
                          f"'{double.refs['aum.periodic_assessment_not_enabled:vm']}/'")["count"] == 0
    noreg = double.refs["aum.provider_not_registered:subscription"]
    providers = clients.resources(noreg).providers
    assert providers.get(double.refs["aum.provider_not_registered:namespace"]).registration_state == "NotRegistered"
    assert providers.get(double.refs["aum.provider_not_registered:arc-namespace"]).registration_state == "NotRegistered"
    assert clients.resources(_sub(double)).providers.get("Microsoft.Maintenance").registration_state == "Registered"
    assert call(_url(double, double.refs["aum.provider_not_registered:machine"], HYBRID)).status == 200


def test_estate_run_results_evidence(double: AzureDouble) -> None:
    off = _install_row(double, "aum.machine_unavailable:vm")
    assert (off["status"], off["errorDetails"]["code"]) == ("Failed", "ShutdownOrUnresponsive")
    assert off["maintenanceRunId"] == double.refs["aum.machine_unavailable:run"]
    schedule = double.refs["aum.machine_unavailable:schedule"]
    assert double.refs["aum.machine_unavailable:run"].startswith(schedule.lower())
    exceeded = _install_row(double, "um.maintenance_window_exceeded:vm")
    assert (exceeded["status"], exceeded["maintenanceWindowExceeded"]) == ("Failed", True)
    assert exceeded["pendingPatchCount"] > 0
    reboot = _install_row(double, "aum.reboot_required:vm")
    assert (reboot["status"], reboot["rebootStatus"]) == ("CompletedWithWarnings", "Required")
    assert reboot["errorDetails"]["message"] == ("Machine is Required to reboot. However, the customer-specified "
                                                 "reboot setting doesn't allow reboots.")
    assert _assess_row(double, "aum.reboot_required:vm")["rebootPending"] is True
    not_completed = _install_row(double, "aum.reboot_not_completed:vm")
    assert (not_completed["status"], not_completed["rebootStatus"]) == ("Failed", "Failed")
    linux = _install_row(double, "um.run_failed_linux:vm")
    assert linux["status"] == "Failed"
    assert linux["errorDetails"]["message"].startswith("Customer environment error:")
    assert "package manager" in linux["errorDetails"]["message"]
    sudo = _install_row(double, "aum.linux_sudo_check_failed:vm")
    assert "Unable to invoke sudo successfully" in sudo["errorDetails"]["message"]
    unsupported = _install_row(double, "aum.os_not_supported:vm")
    assert unsupported["errorDetails"]["code"] == "UA_ESM_REQUIRED"
    image = call(_url(double, double.refs["aum.os_not_supported:vm"], COMPUTE)).json()["properties"]["storageProfile"]
    assert image["imageReference"]["sku"] == "16.04-LTS"
    run = double.refs["aum.schedule_not_triggered:run"]
    ran = _graph(double, "maintenanceresources | where type == 'microsoft.maintenance/applyupdates' "
                         f"| where properties.correlationId == '{run}' | project id")["data"]
    assert ran and not [r for r in ran if double.refs["aum.schedule_not_triggered:vm"].lower() in r["id"]]
    assert _assigned(double, "aum.schedule_not_triggered:vm", "aum.schedule_not_triggered:schedule")
    assert _graph(double, "patchinstallationresources | where id startswith "
                          f"'{double.refs['aum.schedule_not_triggered:vm']}/'")["count"] == 0


def test_estate_assessment_extension_and_arc_evidence(double: AzureDouble, clients: Clients) -> None:
    internal = _assess_row(double, "aum.internal_execution_error:vm")
    assert internal["errorDetails"]["message"] == "An internal execution error occurred. Please retry later."
    auto = _assess_row(double, "aum.auto_assessment_not_running:vm")
    assert "MsftLinuxPatchAutoAssess" in auto["errorDetails"]["message"]
    assert auto["osType"] == "Linux"
    sudo = _assess_row(double, "aum.linux_sudo_check_failed:vm")
    assert "Unable to invoke sudo successfully" in sudo["errorDetails"]["message"]
    hresult = _assess_row(double, "um.hresult:vm")
    assert "0x8024402C" in hresult["errorDetails"]["message"]
    extension = call(_url(double, double.refs["aum.extension_failed:extension"], COMPUTE)).json()
    assert (extension["properties"]["type"], extension["properties"]["provisioningState"]) == (
        "LinuxPatchExtension", "Failed")
    arc = clients.hybridcompute(_sub(double)).machines
    assert arc.get(*_parts(double.refs["aum.arc_disconnected:machine"])).properties.status == "Disconnected"
    assert arc.get(*_parts(double.refs["aum.arc_disconnected:expired-machine"])).properties.status == "Expired"


def test_estate_schedule_level_evidence(double: AzureDouble, clients: Clients) -> None:
    platform = _row(double, "maintenanceresources", f"id == '{double.refs['aum.run_cancelled_by_platform:run']}'")
    assert platform["type"] == "microsoft.maintenance/maintenanceconfigurations/applyupdates"
    assert platform["properties"]["status"] == "Cancelled"
    assert platform["properties"]["errorDetails"]["message"] == "Maintenance cancelled due to internal platform failure"
    user = _row(double, "maintenanceresources", f"id == '{double.refs['none:user-cancelled-run']}'")
    assert user["properties"]["errorDetails"]["message"] == "Maintenance cancelled using cancellation API"
    pre = _row(double, "maintenanceresources", f"id == '{double.refs['aum.pre_event_failed:run']}'")
    assert "Pre-maintenance event" in pre["properties"]["errorDetails"]["message"]
    invalid = call(_url(double, double.refs["aum.configuration_invalid:schedule"], MAINTENANCE)).json()
    assert invalid["properties"]["maintenanceScope"] == "InGuestPatch"
    assert "extensionProperties" not in invalid["properties"]
    dynamic = call(_url(double, double.refs["aum.dynamic_scope_miss:assignment"], MAINTENANCE)).json()
    wanted = dynamic["properties"]["filter"]["tagSettings"]["tags"]
    missed = call(_url(double, double.refs["aum.dynamic_scope_miss:vm"], COMPUTE)).json()["tags"]
    included = call(_url(double, double.refs["aum.dynamic_scope_miss:included-vm"], COMPUTE)).json()["tags"]
    assert all(included.get(k) in v for k, v in wanted.items())
    assert not any(missed.get(k) in v for k, v in wanted.items())
    assert _graph(double, "patchinstallationresources | where id startswith "
                          f"'{double.refs['aum.dynamic_scope_miss:vm']}/'")["count"] == 0
    assert _install_row(double, "aum.dynamic_scope_miss:included-vm")["status"] == "Succeeded"


def test_the_first_subscription_is_unchanged_by_the_update_manager_seeds(double: AzureDouble) -> None:
    sub = double.refs["subscription"]
    installs = _graph(double, "patchinstallationresources | summarize count() by subscriptionId")["data"]
    assert {r["subscriptionId"]: r["count_"] for r in installs}[sub] == 10
    assert double.refs["aum.schedule_prereq_not_set:vm"].startswith(f"/subscriptions/{double.refs['um:subscription']}")


# ---------------------------------------------------------------------------------------------
# fault knobs apply to the new operations


def test_faults_reach_the_new_operations(double: AzureDouble, clients: Clients) -> None:
    from azure.core.exceptions import HttpResponseError, ServiceResponseError

    compute = clients.compute(_sub(double)).virtual_machines
    rg, name = _parts(double.refs["um:vm-succeeded"])
    double.faults.fail_next("virtualMachines.patch", 1, status=429, retry_after=3)
    with pytest.raises(HttpResponseError) as throttled:
        compute.begin_update(rg, name, {"tags": {"a": "b"}}, polling_interval=0)
    assert throttled.value.status_code == 429
    double.faults.fail_next("virtualMachines.assessPatches", 1, status=503)
    with pytest.raises(HttpResponseError):
        compute.begin_assess_patches(rg, name, polling_interval=0)
    double.faults.drop_next("machines.assessPatches", 1)
    with pytest.raises(ServiceResponseError):
        clients.hybridcompute(_sub(double)).machines.begin_assess_patches(*_parts(double.refs["um:arc-connected"]))
    double.faults.fail_next("configurationAssignments.put", 1, status=500)
    vm = double.refs["um:vm-succeeded"]
    assert call(_url(double, f"{vm}/providers/Microsoft.Maintenance/configurationAssignments/x", MAINTENANCE), "PUT",
                {"properties": {"maintenanceConfigurationId": double.refs["um:schedule:win"]}}).status == 500
    double.faults.set_latency("virtualMachines.instanceView", 120)
    started = time.monotonic()
    compute.instance_view(rg, name)
    assert time.monotonic() - started >= 0.12
    assert [r.status for r in double.requests_for("virtualMachines.patch")] == [429]
    assert double.requests_for("machines.assessPatches")[0].status == 0


def test_patch_outcomes_can_be_set_for_a_machine(double: AzureDouble, clients: Clients) -> None:
    vm = double.refs["um:vm-succeeded"]
    double.state.set_next_patch_outcome(vm, PatchOutcome("assess", status="Failed", error={
        "code": "1", "message": "Windows Update service is disabled. (0x8024002E)"}))
    result = clients.compute(_sub(double)).virtual_machines.begin_assess_patches(*_parts(vm),
                                                                                polling_interval=0).result()
    assert (result.status, result.error.message) == ("Failed", "Windows Update service is disabled. (0x8024002E)")


# ---------------------------------------------------------------------------------------------
# the fleet


def test_fleet_of_5000_vms_is_built_fast_and_pages_through_resource_graph_fast() -> None:
    from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

    started = time.monotonic()
    fleet = fleet_estate(5000, seed=7)
    built = time.monotonic() - started
    assert built < 5.0
    subscriptions = [fleet.refs[f"fleet:subscription:{i}"] for i in range(4)]
    with AzureDouble(estate=fleet, poll_after=0) as d:
        graph = Clients(Endpoints(arm=d.arm_url, logs=d.logs_url)).resourcegraph()
        started = time.monotonic()
        rows: list[dict[str, Any]] = []
        token = None
        while True:
            page = graph.resources(QueryRequest(
                subscriptions=subscriptions, options=QueryRequestOptions(top=1000, skip_token=token),
                query="resources | where type =~ 'microsoft.compute/virtualmachines' "
                      "| project id, power = tostring(properties.extended.instanceView.powerState.code), "
                      "mode = tostring(properties.osProfile.linuxConfiguration.patchSettings.patchMode)"))
            rows.extend(page.data)
            token = page.skip_token
            if not token:
                break
        swept = time.monotonic() - started
        failed = graph.resources(QueryRequest(subscriptions=subscriptions, options=QueryRequestOptions(top=1000),
                                              query="patchinstallationresources | where properties.status != "
                                                    "'Succeeded' | summarize count()"))
    assert len(rows) == len({r["id"] for r in rows}) == 5000
    assert swept < 30.0, swept
    assert failed.data[0]["count_"] == int(fleet.refs["fleet:failing"]) > 250
    print(f"fleet: built in {built:.2f}s, 5,000 VMs paged through Resource Graph in {swept:.2f}s")
