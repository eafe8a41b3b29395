"""The local Azure double, driven by the real SDK clients (raw HTTP where a status code or a header
is the point) and checked against the official REST specs (tests/double_helpers.py)."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from sandbox import AzureDouble, Estate, RunOutcome, sandbox_estate
from sandbox.util import parse_duration
from shared.azure.clients import Clients
from shared.azure.endpoints import Endpoints
from tests.double_helpers import Spec, call

AUTOMATION = "2024-10-23"
MAINTENANCE = "2023-04-01"
AIB = "2025-10-01"
RESOURCES = "2025-04-01"


@pytest.fixture(scope="module")
def estate() -> Estate:
    return sandbox_estate()


@pytest.fixture(scope="module")
def spec() -> Spec:
    return Spec()


@pytest.fixture
def double(estate: Estate) -> Iterator[AzureDouble]:
    with AzureDouble(estate=estate, poll_after=2) as d:
        yield d


@pytest.fixture
def clients(double: AzureDouble) -> Clients:
    return Clients(Endpoints(arm=double.arm_url, logs=double.logs_url))


def _url(d: AzureDouble, path: str, version: str) -> str:
    return f"{d.url}{path}?api-version={version}"


def _sub(d: AzureDouble) -> str:
    return d.refs["subscription"]


def _error(exc: Exception) -> tuple[str, str]:
    """(code, message) of an SDK error's ARM error body."""
    error = getattr(exc, "error", None)
    return str(getattr(error, "code", "")), str(getattr(error, "message", ""))


# ---------------------------------------------------------------------------------------------
# ARM itself: authentication, api-versions, providers, GET by id


def test_requests_without_a_bearer_token_are_refused_with_each_services_error(double: AzureDouble) -> None:
    arm = call(_url(double, double.refs["vm-web-01"], "2024-07-01"), token=None)
    assert arm.status == 401
    assert arm.json()["error"]["code"] == "AuthenticationFailed"
    assert arm.headers["www-authenticate"].startswith("Bearer ")
    logs = call(f"{double.logs_url}/workspaces/{double.refs['workspace_id']}/query", "POST",
                {"query": "Heartbeat"}, token=None)
    assert logs.status == 401
    assert logs.json()["error"]["code"] == "AuthorizationRequiredError"
    blob = call(double.blob_url(*double.refs["log:tpl-ok"].split("/", 2)), token=None)
    assert blob.status == 401
    assert blob.headers["x-ms-error-code"] == "NoAuthenticationInformation"
    assert [r.status for r in double.requests] == [401, 401, 401]


def test_unknown_or_missing_api_version_is_400_as_arm_answers(double: AzureDouble) -> None:
    bad = call(_url(double, double.refs["suc:weekly-windows-critical"], "2099-01-01"))
    assert bad.status == 400
    error = bad.json()["error"]
    assert error["code"] == "InvalidApiVersionParameter"
    assert "'2099-01-01'" in error["message"]
    assert AUTOMATION in error["message"]
    missing = call(f"{double.url}{double.refs['template:tpl-ok']}")
    assert missing.status == 400
    assert missing.json()["error"]["code"] == "MissingApiVersionParameter"


def test_provider_registration_goes_registering_then_registered_after_poll_after_gets(
        double: AzureDouble, clients: Clients, spec: Spec) -> None:
    providers = clients.resources(_sub(double)).providers
    assert providers.get("Microsoft.Automation").registration_state == "NotRegistered"
    assert providers.get("Microsoft.Maintenance").registration_state == "Registered"
    assert providers.register("Microsoft.Automation").registration_state == "Registering"
    seen = [providers.get("Microsoft.Automation").registration_state for _ in range(3)]
    assert seen == ["Registering", "Registering", "Registered"]
    assert providers.register("Microsoft.Automation").registration_state == "Registered"
    assert len(double.requests_for("providers.register")) == 2
    raw = call(_url(double, f"/subscriptions/{_sub(double)}/providers", RESOURCES))
    assert spec.errors(raw.json(), "resources.json", "ProviderListResult") == []
    automation = next(p for p in raw.json()["value"] if p["namespace"] == "Microsoft.Automation")
    assert "automationAccounts/softwareUpdateConfigurations" in [t["resourceType"] for t in automation["resourceTypes"]]


def test_get_by_id_answers_404_resource_not_found_for_machines_that_are_gone(
        double: AzureDouble, clients: Clients, spec: Spec) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    resources = clients.resources(_sub(double)).resources
    assert resources.get_by_id(double.refs["vm-web-01"], api_version="2024-07-01").name == "vm-web-01"
    assert resources.get_by_id(double.refs["onprem-db01"], api_version="2024-07-10").properties["status"] == "Connected"
    with pytest.raises(ResourceNotFoundError) as gone:
        resources.get_by_id(double.refs["vm-web-03"], api_version="2024-07-01")
    assert _error(gone.value)[0] == "ResourceNotFound"
    arc = double.refs["onprem-db01"].replace("onprem-db01", "onprem-app07")
    with pytest.raises(ResourceNotFoundError):
        resources.get_by_id(arc, api_version="2024-07-10")
    assert resources.check_existence_by_id(double.refs["vm-web-01"], api_version="2024-07-01") is True
    assert resources.check_existence_by_id(double.refs["vm-web-03"], api_version="2024-07-01") is False
    raw = call(_url(double, double.refs["vm-web-01"], "2024-07-01"))
    assert spec.errors(raw.json(), "resources.json", "GenericResource") == []
    missing_group = call(_url(double, double.refs["vm-web-01"].replace("rg-app", "rg-nope"), "2024-07-01"))
    assert (missing_group.status, missing_group.json()["error"]["code"]) == (404, "ResourceGroupNotFound")


def test_state_api_reads_and_writes_case_insensitively(double: AzureDouble) -> None:
    vm = double.refs["vm-web-01"]
    assert double.state.get(vm.upper()) == double.state.get(vm)
    body = double.state.get(vm)
    assert body is not None
    body["tags"] = {"changed": "yes"}
    assert double.state.get(vm)["tags"] != {"changed": "yes"}  # type: ignore[index]
    double.state.put(vm, body)
    assert double.state.get(vm)["tags"] == {"changed": "yes"}  # type: ignore[index]
    assert double.state.delete(vm.lower())
    assert double.state.get(vm) is None
    assert call(_url(double, vm, "2024-07-01")).status == 404


# ---------------------------------------------------------------------------------------------
# Automation Update Management


def test_software_update_configuration_answers_match_the_spec(double: AzureDouble, spec: Spec) -> None:
    account = double.refs["automation_account"]
    one = call(_url(double, double.refs["suc:weekly-windows-critical"], AUTOMATION))
    assert spec.errors(one.json(), "softwareUpdateConfiguration.json", "softwareUpdateConfiguration") == []
    listing = call(_url(double, f"{account}/softwareUpdateConfigurations", AUTOMATION))
    assert spec.errors(listing.json(), "softwareUpdateConfiguration.json",
                       "softwareUpdateConfigurationListResult") == []
    runs = call(_url(double, f"{account}/softwareUpdateConfigurationRuns", AUTOMATION))
    assert spec.errors(runs.json(), "softwareUpdateConfigurationRun.json",
                       "softwareUpdateConfigurationRunListResult") == []
    machine_runs = call(_url(double, f"{account}/softwareUpdateConfigurationMachineRuns", AUTOMATION))
    assert spec.errors(machine_runs.json(), "softwareUpdateConfigurationMachineRun.json",
                       "softwareUpdateConfigurationMachineRunListResult") == []


def test_create_example_round_trips_201_then_200_and_get_returns_it(double: AzureDouble, spec: Spec) -> None:
    example = spec.example("automation/2024-10-23/examples/softwareUpdateConfiguration/"
                           "createSoftwareUpdateConfiguration.json")
    p = example["parameters"]
    account = (f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}/providers/"
               f"Microsoft.Automation/automationAccounts/{p['automationAccountName']}")
    double.state.put(account, {"name": p["automationAccountName"], "type": "Microsoft.Automation/AutomationAccounts",
                               "location": "westus", "properties": {"state": "Ok"}})
    target = _url(double, f"{account}/softwareUpdateConfigurations/{p['softwareUpdateConfigurationName']}", AUTOMATION)
    created = call(target, "PUT", p["parameters"])
    assert created.status == 201
    assert spec.errors(created.json(), "softwareUpdateConfiguration.json", "softwareUpdateConfiguration") == []
    expected = example["responses"]["201"]["body"]["properties"]["updateConfiguration"]
    got = created.json()["properties"]["updateConfiguration"]
    assert got["duration"] == expected["duration"] == "PT2H"
    assert got["azureVirtualMachines"] == expected["azureVirtualMachines"]
    assert got["nonAzureComputerNames"] == expected["nonAzureComputerNames"]
    assert created.json()["properties"]["provisioningState"] == "Provisioning"
    again = call(target, "PUT", p["parameters"])
    assert again.status == 200
    read = call(target).json()
    assert read["properties"]["updateConfiguration"] == got
    assert read["properties"]["tasks"] == p["parameters"]["properties"]["tasks"]
    assert [r.status for r in double.requests_for("softwareUpdateConfigurations.put")] == [201, 200]


@pytest.mark.parametrize(("duration", "problem"), [
    ("PT7H", "6 hours"), ("PT10M", "30 minutes"), ("2 hours", "ISO 8601"), ("P1M", "ISO 8601")])
def test_put_rejects_a_duration_the_service_refuses_naming_the_field(
        double: AzureDouble, clients: Clients, duration: str, problem: str) -> None:
    target = _url(double, double.refs["suc:weekly-windows-critical"], AUTOMATION)
    body = call(target).json()
    body["properties"]["updateConfiguration"]["duration"] = duration
    answer = call(target, "PUT", body)
    assert answer.status == 400
    assert "properties.updateConfiguration.duration" in answer.json()["error"]["message"]
    assert problem in answer.json()["error"]["message"]
    assert call(target).json()["properties"]["updateConfiguration"]["duration"] == "PT2H"


def test_extending_the_window_through_the_sdk_puts_once_and_reads_back(double: AzureDouble, clients: Clients) -> None:
    automation = clients.automation(_sub(double)).software_update_configurations
    current = automation.get_by_name("rg-patching", "aa-patching", "weekly-windows-critical")
    current.update_configuration.duration = timedelta(hours=3)
    automation.create("rg-patching", "aa-patching", "weekly-windows-critical", current)
    again = automation.get_by_name("rg-patching", "aa-patching", "weekly-windows-critical")
    assert again.update_configuration.duration == timedelta(hours=3)
    assert again.update_configuration.azure_virtual_machines == current.update_configuration.azure_virtual_machines
    puts = double.requests_for("softwareUpdateConfigurations.put")
    assert len(puts) == 1
    sent = json.loads(puts[0].body)["properties"]["updateConfiguration"]["duration"]
    assert parse_duration(sent) == timedelta(hours=3)  # the SDK writes 'PT03H00M00S'; the service answers 'PT3H'
    assert double.state.get(double.refs["suc:weekly-windows-critical"])["properties"][  # type: ignore[index]
        "updateConfiguration"]["duration"] == "PT3H"


def test_list_filters_by_virtual_machine_and_delete_answers_200_then_204(double: AzureDouble, clients: Clients) -> None:
    automation = clients.automation(_sub(double)).software_update_configurations
    gone_vm = double.refs["vm-web-03"]
    found = automation.list("rg-patching", "aa-patching",
                            filter=f"properties/updateConfiguration/azureVirtualMachines/any(m: m eq '{gone_vm}')")
    assert [c.name for c in found.value] == ["monthly-linux-security"]
    assert len(automation.list("rg-patching", "aa-patching").value) == 3
    target = _url(double, double.refs["suc:weekly-linux-dev"], AUTOMATION)
    assert call(target, "DELETE").status == 200
    assert call(target, "DELETE").status == 204
    assert call(target).status == 404
    bad = call(_url(double, f"{double.refs['automation_account']}/softwareUpdateConfigurations", AUTOMATION)
               + "&$filter=properties/status%20eqq%201")
    assert bad.status == 400


def test_runs_are_listed_newest_first_filtered_and_paged(double: AzureDouble, clients: Clients, spec: Spec) -> None:
    runs = clients.automation(_sub(double)).software_update_configuration_runs
    failed = runs.list("rg-patching", "aa-patching", filter="properties/status eq 'Failed'").value
    assert [r.name for r in failed] == [double.refs["run:monthly-linux-security"]]
    exceeded = runs.list("rg-patching", "aa-patching",
                         filter="properties/softwareUpdateConfiguration/name eq 'weekly-windows-critical'").value
    assert exceeded[0].status == "MaintenanceWindowExceeded"
    assert exceeded[0].configured_duration == "PT2H"
    assert [r.status for r in exceeded[1:]] == ["Succeeded"] * 3
    assert [r.name for r in runs.list("rg-patching", "aa-patching", skip="1", top="2").value] == [
        r.name for r in runs.list("rg-patching", "aa-patching").value[1:3]]
    account = double.refs["automation_account"]
    seeded = len(runs.list("rg-patching", "aa-patching").value)
    template = call(_url(double, f"{account}/softwareUpdateConfigurationRuns/{exceeded[0].name}", AUTOMATION)).json()
    for index in range(120):
        extra = copy.deepcopy(template)
        extra["name"] = f"00000000-0000-4000-8000-{index:012d}"
        extra["id"] = f"{account}/softwareUpdateConfigurationRuns/{extra['name']}"
        double.state.put(extra["id"], extra)
    page = call(_url(double, f"{account}/softwareUpdateConfigurationRuns", AUTOMATION)).json()
    assert len(page["value"]) == 100
    assert "$skip=100" in page["nextLink"]
    assert spec.errors(page, "softwareUpdateConfigurationRun.json", "softwareUpdateConfigurationRunListResult") == []
    rest = call(page["nextLink"]).json()
    assert len(rest["value"]) == seeded + 120 - 100
    assert "nextLink" not in rest


def test_machine_runs_of_the_failed_run_carry_the_guides_error(double: AzureDouble, clients: Clients) -> None:
    machine_runs = clients.automation(_sub(double)).software_update_configuration_machine_runs
    run = double.refs["run:monthly-linux-security"]
    found = machine_runs.list("rg-patching", "aa-patching", filter=f"properties/correlationId eq {run}").value
    by_target = {m.target_computer.rsplit("/", 1)[-1]: m for m in found}
    assert sorted(by_target) == ["onprem-db01.contoso.local", "vm-web-01", "vm-web-02", "vm-web-03"]
    assert by_target["vm-web-02"].status == "FailedToStart"
    assert by_target["vm-web-02"].source_computer_id == double.refs["scid:vm-web-02:old"]
    assert by_target["vm-web-02"].error.message.startswith("Failed to start the runbook. Check the parameters passed.")
    assert "hybrid worker group that does not exist" in by_target["vm-web-03"].error.message
    failed = machine_runs.list("rg-patching", "aa-patching",
                               filter=f"properties/correlationId eq {run} and properties/status eq 'FailedToStart'")
    assert len(failed.value) == 2
    one = machine_runs.get_by_id("rg-patching", "aa-patching", double.refs["machine-run:vm-web-03"])
    assert one.target_computer == double.refs["vm-web-03"]


def test_writes_to_an_unregistered_namespace_fail_when_registration_is_enforced(estate: Estate) -> None:
    with AzureDouble(estate=estate, poll_after=0, enforce_registration=True) as d:
        target = _url(d, d.refs["suc:weekly-windows-critical"], AUTOMATION)
        body = call(target).json()
        refused = call(target, "PUT", body)
        assert (refused.status, refused.json()["error"]["code"]) == (409, "MissingSubscriptionRegistration")
        call(_url(d, f"/subscriptions/{d.refs['subscription']}/providers/Microsoft.Automation/register", RESOURCES),
             "POST")
        call(_url(d, f"/subscriptions/{d.refs['subscription']}/providers/Microsoft.Automation", RESOURCES))
        assert call(target, "PUT", body).status == 200


# ---------------------------------------------------------------------------------------------
# Update Manager maintenance configurations


def test_maintenance_examples_round_trip_put_get_patch_delete(double: AzureDouble, spec: Spec) -> None:
    put = spec.example("maintenance/2023-04-01/examples/MaintenanceConfigurations_CreateOrUpdateForResource.json")
    p = put["parameters"]
    double.state.put(f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}",
                     {"type": "Microsoft.Resources/resourceGroups", "location": "westus2"})
    path = (f"/subscriptions/{p['subscriptionId']}/resourcegroups/{p['resourceGroupName']}/providers/"
            f"Microsoft.Maintenance/maintenanceConfigurations/{p['resourceName']}")
    created = call(_url(double, path, MAINTENANCE), "PUT", p["configuration"])
    assert created.status == 200
    assert spec.errors(created.json(), "Maintenance.json", "MaintenanceConfiguration") == []
    assert created.json()["properties"] == {**put["responses"]["200"]["body"]["properties"],
                                            **{k: v for k, v in created.json()["properties"].items()
                                               if k not in put["responses"]["200"]["body"]["properties"]}}
    patch = spec.example("maintenance/2023-04-01/examples/MaintenanceConfigurations_UpdateForResource.json")
    patched = call(_url(double, path, MAINTENANCE), "PATCH", patch["parameters"]["configuration"])
    assert patched.status == 200
    assert patched.json()["properties"]["maintenanceWindow"]["recurEvery"] == "Month Third Sunday"
    assert call(_url(double, path, MAINTENANCE)).json() == patched.json()
    assert call(_url(double, path, MAINTENANCE), "DELETE").status == 200
    assert call(_url(double, path, MAINTENANCE), "DELETE").status == 204
    assert call(_url(double, path, MAINTENANCE)).json()["error"]["code"] == "ResourceNotFound"


def test_seeded_schedule_matches_the_guest_patch_shape(double: AzureDouble, clients: Clients, spec: Spec) -> None:
    raw = call(_url(double, double.refs["maintenance:mc-prod-weekly"], MAINTENANCE)).json()
    assert spec.errors(raw, "Maintenance.json", "MaintenanceConfiguration") == []
    config = clients.maintenance(_sub(double)).maintenance_configurations.get("rg-patching", "mc-prod-weekly")
    assert (config.maintenance_scope, config.duration, config.install_patches.reboot_setting) == (
        "InGuestPatch", "02:00", "IfRequired")
    listed = clients.maintenance(_sub(double)).maintenance_configurations_for_resource_group.list("rg-patching")
    assert sorted(c.name for c in listed) == ["mc-dev-daily", "mc-prod-weekly"]


@pytest.mark.parametrize(("window", "problem"), [
    ({"duration": "04:00"}, "between 01:30 and 03:55"),
    ({"duration": "01:00"}, "between 01:30 and 03:55"),
    ({"duration": "2h"}, "HH:mm"),
    ({"recurEvery": "Month"}, "missing day of month or week of month"),
    ({"recurEvery": "4Hours"}, "6 hours"),
    ({"startDateTime": None}, "StartDateTime is not set"),
])
def test_in_guest_patch_window_limits_are_enforced(double: AzureDouble, window: dict[str, Any], problem: str) -> None:
    target = _url(double, double.refs["maintenance:mc-prod-weekly"], MAINTENANCE)
    answer = call(target, "PATCH", {"properties": {"maintenanceWindow": window}})
    assert answer.status == 400
    assert answer.json()["error"]["code"] == "InvalidMaintenanceWindow"
    assert problem in answer.json()["error"]["message"]
    assert call(target).json()["properties"]["maintenanceWindow"]["duration"] == "02:00"


def test_extending_a_schedule_through_the_sdk_stays_within_the_limit(double: AzureDouble, clients: Clients) -> None:
    from azure.core.exceptions import HttpResponseError

    configurations = clients.maintenance(_sub(double)).maintenance_configurations
    config = configurations.get("rg-patching", "mc-prod-weekly")
    config.duration = "03:55"
    assert configurations.create_or_update("rg-patching", "mc-prod-weekly", config).duration == "03:55"
    config.duration = "04:30"
    with pytest.raises(HttpResponseError) as refused:
        configurations.update("rg-patching", "mc-prod-weekly", config)
    assert refused.value.status_code == 400
    assert configurations.get("rg-patching", "mc-prod-weekly").duration == "03:55"


# ---------------------------------------------------------------------------------------------
# Image Builder


def test_seeded_templates_match_the_2025_10_01_definition(double: AzureDouble, spec: Spec) -> None:
    listing = call(_url(double, f"/subscriptions/{_sub(double)}/providers/Microsoft.VirtualMachineImages/"
                                "imageTemplates", AIB)).json()
    assert spec.errors(listing, "imagebuilder.json", "ImageTemplateListResult") == []
    names = {t["name"]: t for t in listing["value"]}
    assert set(names) == {"tpl-win2022-timeout", "tpl-ubuntu-sig", "tpl-win2019-lowres", "tpl-rhel-noartifacts",
                          "tpl-win11-conflict", "tpl-customizer-fails", "tpl-ok"}
    timeout = names["tpl-win2022-timeout"]["properties"]
    assert timeout["buildTimeoutInMinutes"] == 60
    assert "Timeout waiting for microservice to complete: 'context deadline exceeded'" in timeout["lastRunStatus"][
        "message"]
    assert names["tpl-win2019-lowres"]["properties"]["vmProfile"]["vmSize"] == "Standard_D1_v2"
    assert names["tpl-win11-conflict"]["properties"]["provisioningState"] == "Failed"
    outputs = call(_url(double, f"{double.refs['template:tpl-ok']}/runOutputs", AIB)).json()
    assert spec.errors(outputs, "imagebuilder.json", "RunOutputCollection") == []


def test_create_example_goes_creating_to_succeeded_through_the_lro(double: AzureDouble, clients: Clients,
                                                                   spec: Spec) -> None:
    example = _imagebuilder_create_example()
    templates = clients.imagebuilder(_sub(double)).virtual_machine_image_templates
    poller = templates.begin_create_or_update("rg-images", "myImageTemplate", example, polling_interval=0)
    result = poller.result()
    assert result.properties.provisioning_state == "Succeeded"
    assert result.properties.vm_profile.vm_size == "Standard_D2s_v3"
    raw = call(_url(double, f"/subscriptions/{_sub(double)}/resourceGroups/rg-images/providers/"
                            "Microsoft.VirtualMachineImages/imageTemplates/myImageTemplate", AIB)).json()
    assert spec.errors(raw, "imagebuilder.json", "ImageTemplate") == []
    assert raw["properties"]["distribute"] == example["properties"]["distribute"]
    assert raw["tags"] == example["tags"]
    assert [r.status for r in double.requests_for("imageTemplates.put")] == [201]
    assert [r.status for r in double.requests_for("imageTemplates.operations.get")] == [202, 202, 200]


def _imagebuilder_create_example() -> dict[str, Any]:
    """The request body of CreateImageTemplateLinux.json (2025-10-01), placeholders filled in."""
    sub = "3f2b6c1e-8d4a-4e3b-9c71-2a5d0e6f8b14"
    return {
        "identity": {"type": "UserAssigned", "userAssignedIdentities": {
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg1/providers/"
            "Microsoft.ManagedIdentity/userAssignedIdentities/identity_1": {}}},
        "location": "westus",
        "properties": {
            "customize": [{"name": "Shell Customizer Example", "type": "Shell",
                           "scriptUri": "https://example.com/path/to/script.sh"}],
            "distribute": [{"type": "ManagedImage", "artifactTags": {"tagName": "value"},
                            "imageId": f"/subscriptions/{sub}/resourceGroups/rg1/providers/Microsoft.Compute/images/"
                                       "image_it_1", "location": "1_location", "runOutputName": "image_it_pir_1"}],
            "source": {"type": "ManagedImage", "imageId": "/subscriptions/00000000-0000-0000-0000-000000000000/"
                                                          "resourceGroups/rg1/providers/Microsoft.Compute/images/"
                                                          "source_image"},
            "vmProfile": {"osDiskSizeGB": 64, "vmSize": "Standard_D2s_v3", "vnetConfig": {
                "subnetId": f"/subscriptions/{sub}/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/"
                            "vnet_name/subnets/subnet_name"}},
        },
        "tags": {"imagetemplate_tag1": "IT_T1", "imagetemplate_tag2": "IT_T2"},
    }


def test_put_over_an_existing_template_is_409_update_upgrade_not_supported(
        double: AzureDouble, clients: Clients) -> None:
    from azure.core.exceptions import ResourceExistsError

    templates = clients.imagebuilder(_sub(double)).virtual_machine_image_templates
    current = templates.get("rg-images", "tpl-win2022-timeout")
    current.properties.build_timeout_in_minutes = 120
    with pytest.raises(ResourceExistsError) as conflict:
        templates.begin_create_or_update("rg-images", "tpl-win2022-timeout", current, polling_interval=0)
    assert conflict.value.status_code == 409
    assert _error(conflict.value) == ("Conflict", "Update/Upgrade of image templates is currently not supported")
    assert templates.get("rg-images", "tpl-win2022-timeout").properties.build_timeout_in_minutes == 60


def test_patch_changes_vm_profile_but_refuses_anything_the_spec_does_not_allow(
        double: AzureDouble, clients: Clients) -> None:
    from azure.core.exceptions import HttpResponseError

    templates = clients.imagebuilder(_sub(double)).virtual_machine_image_templates
    updated = templates.begin_update("rg-images", "tpl-win2019-lowres",
                                     {"properties": {"vmProfile": {"vmSize": "Standard_D2s_v3"}}},
                                     polling_interval=0).result()
    assert updated.properties.vm_profile.vm_size == "Standard_D2s_v3"
    assert updated.properties.vm_profile.os_disk_size_gb == 127
    assert updated.properties.provisioning_state == "Succeeded"
    forbidden_patches: list[dict[str, Any]] = [
        {"properties": {"buildTimeoutInMinutes": 120}}, {"location": "eastus"}, {"properties": {"customize": []}}]
    for forbidden in forbidden_patches:
        with pytest.raises(HttpResponseError) as refused:
            templates.begin_update("rg-images", "tpl-win2019-lowres", forbidden, polling_interval=0)
        assert refused.value.status_code == 400
    tags = call(_url(double, double.refs["template:tpl-ok"], AIB), "PATCH", {"tags": {"owner": "me"}})
    assert (tags.status, tags.json()["tags"]) == (200, {"owner": "me"})


def test_delete_is_a_location_lro_and_204_when_absent(double: AzureDouble, clients: Clients) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    templates = clients.imagebuilder(_sub(double)).virtual_machine_image_templates
    target = _url(double, double.refs["template:tpl-win11-conflict"], AIB)
    accepted = call(target, "DELETE")
    assert accepted.status == 202
    assert "/providers/Microsoft.VirtualMachineImages/locations/westeurope/operations/" in accepted.headers["location"]
    assert "azure-asyncoperation" not in accepted.headers
    double.state.finish_operations()
    assert call(target).status == 404
    assert templates.begin_delete("rg-images", "tpl-rhel-noartifacts", polling_interval=0).result() is None
    with pytest.raises(ResourceNotFoundError):
        templates.get("rg-images", "tpl-rhel-noartifacts")
    assert call(target, "DELETE").status == 204


def test_run_reports_running_then_ends_as_the_estate_says(double: AzureDouble, clients: Clients) -> None:
    templates = clients.imagebuilder(_sub(double)).virtual_machine_image_templates
    started = call(_url(double, f"{double.refs['template:tpl-rhel-noartifacts']}/run", AIB), "POST")
    assert started.status == 202
    assert started.headers["retry-after"] == "0"
    status_url = started.headers["azure-asyncoperation"]
    running = templates.get("rg-images", "tpl-rhel-noartifacts").properties.last_run_status
    assert running.run_state == "Running"
    polls = [call(status_url) for _ in range(3)]
    assert [(a.status, a.json()["status"]) for a in polls][-1] == (200, "Succeeded")
    finished = templates.get("rg-images", "tpl-rhel-noartifacts").properties.last_run_status
    assert finished.run_state == "Succeeded"
    assert finished.end_time is not None
    outputs = list(templates.list_run_outputs("rg-images", "tpl-rhel-noartifacts"))
    assert [o.name for o in outputs] == ["rhel9-base-sig"]
    assert "/galleries/gal_images/images/rhel9-base/versions/" in outputs[0].properties.artifact_id


def test_a_failing_run_fails_the_poller_and_points_at_a_served_log(double: AzureDouble, clients: Clients) -> None:
    from azure.core.exceptions import HttpResponseError

    templates = clients.imagebuilder(_sub(double)).virtual_machine_image_templates
    poller = templates.begin_run("rg-images", "tpl-customizer-fails", polling_interval=0)
    with pytest.raises(HttpResponseError) as failed:
        poller.result()
    assert _error(failed.value)[0] == "PackerBuildFailed"
    status = templates.get("rg-images", "tpl-customizer-fails").properties.last_run_status
    assert status.run_state == "Failed"
    url = status.message.split("Image Build log location: ", 1)[1].split(". OperationId", 1)[0]
    assert url.startswith(double.blob_endpoint)
    log = call(url)
    assert log.status == 200
    assert b"Script exited with non-zero exit status: 1" in log.body
    double.state.set_next_run(double.refs["template:tpl-customizer-fails"], RunOutcome("PartiallySucceeded"))
    assert templates.begin_run("rg-images", "tpl-customizer-fails", polling_interval=0).result() is None


def test_cancel_stops_a_running_build(double: AzureDouble, clients: Clients) -> None:
    templates = clients.imagebuilder(_sub(double)).virtual_machine_image_templates
    # The run is started raw: no SDK poller thread polls it to its end before the cancel arrives.
    started = call(_url(double, f"{double.refs['template:tpl-ok']}/run", AIB), "POST")
    assert started.status == 202
    status_url = {k.lower(): v for k, v in started.headers.items()}["azure-asyncoperation"]
    templates.begin_cancel("rg-images", "tpl-ok", polling_interval=0).result()
    assert templates.get("rg-images", "tpl-ok").properties.last_run_status.run_state == "Canceled"
    assert call(status_url).json()["status"] in ("Canceled", "Failed"), "the run's operation ends unsuccessfully"
    assert call(_url(double, f"{double.refs['template:tpl-ok']}/cancel", AIB), "POST").status == 409


# ---------------------------------------------------------------------------------------------
# Resource Graph


def test_resource_graph_finds_the_machines_that_exceeded_the_window(double: AzureDouble, clients: Clients,
                                                                    spec: Spec) -> None:
    from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

    graph = clients.resourcegraph()
    run = double.refs["maintenance-run:mc-prod-weekly"]
    query = ("patchinstallationresources\n| where type !has \"softwarepatches\"\n"
             f"| where properties.maintenanceRunId == '{run}' and properties.maintenanceWindowExceeded == true\n"
             "| project id, status = tostring(properties.status), startedBy = tostring(properties.startedBy)")
    answer = graph.resources(QueryRequest(subscriptions=[_sub(double)], query=query))
    machines = sorted(row["id"].split("/")[8] for row in answer.data)
    assert machines == ["vm-prod-02", "vm-prod-04"]
    assert {row["startedBy"] for row in answer.data} == {"Platform"}
    assert (answer.total_records, answer.count, answer.result_truncated) == (2, 2, "false")
    config = double.refs["maintenance:mc-prod-weekly"]
    runs = graph.resources(QueryRequest(subscriptions=[_sub(double)], query=(
        "maintenanceresources | where type == 'microsoft.maintenance/applyupdates' "
        f"| where properties.maintenanceConfigurationId =~ '{config}' "
        "| summarize machines = count() by runId = tostring(properties.correlationId)")))
    assert sorted(r["machines"] for r in runs.data) == [4, 4]
    first = graph.resources(QueryRequest(subscriptions=[_sub(double)], query="patchinstallationresources",
                                         options=QueryRequestOptions(top=4)))
    assert (first.count, first.total_records) == (4, 10)
    assert first.skip_token
    second = graph.resources(QueryRequest(subscriptions=[_sub(double)], query="patchinstallationresources",
                                          options=QueryRequestOptions(skip_token=first.skip_token)))
    assert second.count == 6
    assert not {r["id"] for r in first.data} & {r["id"] for r in second.data}
    raw = call(_url(double, "/providers/Microsoft.ResourceGraph/resources", "2021-03-01"), "POST",
               {"subscriptions": [_sub(double)], "query": query})
    assert spec.errors(raw.json(), "resourcegraph.json", "QueryResponse") == []


def test_resource_graph_refuses_what_it_cannot_run(double: AzureDouble, spec: Spec) -> None:
    target = _url(double, "/providers/Microsoft.ResourceGraph/resources", "2021-03-01")
    for query in ("patchinstallationresources | join kind=inner (resources) on id", "nosuchtable | take 1",
                  "resources | where nosuchcolumn == 1"):
        answer = call(target, "POST", {"query": query})
        assert answer.status == 400
        assert spec.errors(answer.json(), "resourcegraph.json", "ErrorResponse") == []
        assert answer.json()["error"]["details"][0]["code"] == "InvalidQuery"
    vms = call(target, "POST", {"query": "resources | where type =~ 'Microsoft.Compute/virtualMachines' "
                                         "| where resourceGroup == 'rg-app' | project name"}).json()
    assert sorted(r["name"] for r in vms["data"]) == ["vm-app-01", "vm-app-02", "vm-web-01", "vm-web-02"]


# ---------------------------------------------------------------------------------------------
# Log Analytics


def test_the_guides_queries_return_the_seeded_rows(double: AzureDouble, clients: Clients) -> None:
    logs = clients.logs()
    workspace = double.refs["workspace_id"]
    ids = logs.query_workspace(
        workspace, "Heartbeat | where TimeGenerated > ago(30d) | distinct SourceComputerId, Computer, ComputerIP",
        timespan=timedelta(days=60)).tables[0]
    assert ids.columns == ["SourceComputerId", "Computer", "ComputerIP"]
    computers = [row[1] for row in ids.rows]
    assert computers.count("vm-web-02") == 2
    assert "vm-web-03" not in computers
    changed = {row[0] for row in ids.rows if row[1] == "vm-web-02"}
    assert changed == {double.refs["scid:vm-web-02:old"], double.refs["scid:vm-web-02:new"]}
    quota = logs.query_workspace(workspace, "Operation\n| where OperationCategory == 'Data Collection Status'\n"
                                            "| sort by TimeGenerated desc", timespan=timedelta(days=7)).tables[0]
    assert len(quota.rows) == 1
    assert "Ingestion status = OverQuota" in quota.rows[0][quota.columns.index("Detail")]
    wsus_query = ('Update | where UpdateState == "Needed" and ApprovalSource == "WSUS" and Approved == "False" '
                  "| summarize max(TimeGenerated) by Computer, KBID, Title")
    wsus = logs.query_workspace(workspace, wsus_query, timespan=timedelta(days=1)).tables[0]
    assert wsus.columns == ["Computer", "KBID", "Title", "max_TimeGenerated"]
    assert sorted(row[0] for row in wsus.rows) == ["vm-app-01", "vm-app-02"]
    recent = logs.query_workspace(workspace, "Heartbeat | summarize by Computer, Solutions",
                                  timespan=timedelta(days=1)).tables[0]
    assert "vm-web-03" not in [row[0] for row in recent.rows]


def test_log_analytics_answers_match_the_spec_and_batch_works(double: AzureDouble, clients: Clients,
                                                              spec: Spec) -> None:
    from azure.monitor.query import LogsBatchQuery

    workspace = double.refs["workspace_id"]
    raw = call(f"{double.logs_url}/workspaces/{workspace}/query", "POST",
               {"query": "UpdateSummary | summarize arg_max(TimeGenerated, *) by Computer", "timespan": "P2D"})
    assert spec.errors(raw.json(), "OperationalInsights.json", "queryResults") == []
    assert raw.json()["tables"][0]["name"] == "PrimaryResult"
    bad = call(f"{double.logs_url}/workspaces/{workspace}/query", "POST", {"query": "Heartbeat | mv-expand x"})
    assert bad.status == 400
    assert spec.errors(bad.json(), "OperationalInsights.json", "errorResponse") == []
    assert call(f"{double.logs_url}/workspaces/00000000-0000-0000-0000-000000000000/query", "POST",
                {"query": "Heartbeat"}).status == 404
    results = clients.logs().query_batch([
        LogsBatchQuery(workspace, "Heartbeat | count", timespan=timedelta(days=60)),
        LogsBatchQuery(workspace, "Nope | count", timespan=None)])
    assert results[0].tables[0].rows[0][0] > 0
    assert results[1].code == "BadArgumentError"


# ---------------------------------------------------------------------------------------------
# Blob


def test_customization_logs_are_served_with_ranges(double: AzureDouble) -> None:
    account, container, path = double.refs["log:tpl-win2019-lowres"].split("/", 2)
    url = double.blob_url(account, container, path)
    whole = call(url)
    assert whole.status == 200
    assert whole.headers["x-ms-blob-type"] == "BlockBlob"
    assert whole.headers["content-type"].startswith("text/plain")
    assert int(whole.headers["content-length"]) == len(whole.body) > 900_000
    assert b"(telemetry) Starting provisioner windows-update" in whole.body
    # the service's two range formats are bytes=a- and bytes=a-b ("Specifying the range header for Blob
    # service operations"): a suffix range is none of them, so the double answers the whole blob
    suffix = call(url, headers={"Range": "bytes=-4096"})
    assert (suffix.status, len(suffix.body)) == (200, len(whole.body))
    tail = call(url, headers={"Range": f"bytes={len(whole.body) - 4096}-"})
    assert tail.status == 206
    assert tail.headers["content-range"] == f"bytes {len(whole.body) - 4096}-{len(whole.body) - 1}/{len(whole.body)}"
    assert tail.body == whole.body[-4096:]
    assert b"Machine not yet available (exit status 1115)" in tail.body
    assert b"errored: unexpected EOF" in tail.body
    middle = call(url, headers={"x-ms-range": "bytes=10-19"})
    assert (middle.status, middle.body) == (206, whole.body[10:20])
    assert call(url, headers={"Range": f"bytes={len(whole.body)}-"}).status == 416
    missing = call(double.blob_url(account, container, "nope/customization.log"))
    assert (missing.status, missing.headers["x-ms-error-code"]) == (404, "BlobNotFound")
    template = call(_url(double, double.refs["template:tpl-win2019-lowres"], AIB)).json()
    assert url in template["properties"]["lastRunStatus"]["message"]


# ---------------------------------------------------------------------------------------------
# faults and the request log


def test_fail_next_and_throttling_reach_the_client_with_retry_after(double: AzureDouble, clients: Clients) -> None:
    from azure.core.exceptions import HttpResponseError

    templates = clients.imagebuilder(_sub(double)).virtual_machine_image_templates
    double.faults.fail_next("imageTemplates.get", 2, status=429, retry_after=7)
    for _ in range(2):
        with pytest.raises(HttpResponseError) as throttled:
            templates.get("rg-images", "tpl-ok")
        assert throttled.value.status_code == 429
        headers: Any = getattr(throttled.value.response, "headers", {})
        assert headers["Retry-After"] == "7"
    assert templates.get("rg-images", "tpl-ok").name == "tpl-ok"
    assert [r.status for r in double.requests_for("imageTemplates.get")] == [429, 429, 200]
    double.faults.fail_next("*", 1, status=503)
    with pytest.raises(HttpResponseError) as unavailable:
        clients.resources(_sub(double)).providers.get("Microsoft.Compute")
    assert unavailable.value.status_code == 503
    double.faults.set_rate("maintenanceConfigurations.get", 1.0, status=500, retry_after=None)
    with pytest.raises(HttpResponseError) as broken:
        clients.maintenance(_sub(double)).maintenance_configurations.get("rg-patching", "mc-prod-weekly")
    assert broken.value.status_code == 500
    double.faults.clear()
    assert clients.maintenance(_sub(double)).maintenance_configurations.get("rg-patching", "mc-prod-weekly")


def test_dropped_connections_and_latency(double: AzureDouble, clients: Clients) -> None:
    from azure.core.exceptions import ServiceResponseError

    double.faults.drop_rate("providers.get", 1.0)
    with pytest.raises(ServiceResponseError):
        clients.resources(_sub(double)).providers.get("Microsoft.Compute")
    assert double.requests_for("providers.get")[-1].status == 0
    double.faults.clear()
    double.faults.latency_ms = 150
    import time

    started = time.monotonic()
    clients.resources(_sub(double)).providers.get("Microsoft.Compute")
    assert time.monotonic() - started >= 0.15


def test_error_rates_are_reproducible_with_a_seed(estate: Estate) -> None:
    outcomes = []
    for _ in range(2):
        with AzureDouble(estate=estate, seed=42) as d:
            d.faults.set_rate("resources.get", 0.5, status=503)
            outcomes.append([call(_url(d, d.refs["vm-web-01"], "2024-07-01")).status for _ in range(12)])
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) == {200, 503}


def test_concurrent_writes_are_all_recorded_and_none_lost(double: AzureDouble) -> None:
    target = _url(double, double.refs["suc:weekly-windows-critical"], AUTOMATION)
    body = call(target).json()
    errors: list[int] = []

    def put(hours: int) -> None:
        mine = copy.deepcopy(body)
        mine["properties"]["updateConfiguration"]["duration"] = f"PT{hours}H"
        answer = call(target, "PUT", mine)
        if answer.status != 200:
            errors.append(answer.status)

    threads = [threading.Thread(target=put, args=(1 + i % 5,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(double.requests_for("softwareUpdateConfigurations.put")) == 16
    assert call(target).json()["properties"]["updateConfiguration"]["duration"] in {f"PT{h}H" for h in range(1, 6)}


def test_an_empty_double_has_one_subscription_and_registered_providers() -> None:
    with AzureDouble() as d:
        sub = d.state.default_subscription
        assert call(_url(d, f"/subscriptions/{sub}/providers/Microsoft.VirtualMachineImages", RESOURCES)).json()[
            "registrationState"] == "Registered"
        assert call(_url(d, f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/x",
                         "2024-07-01")).json()["error"]["code"] == "ResourceGroupNotFound"
    with pytest.raises(OSError):  # stopped: nothing listens any more
        call(_url(d, f"/subscriptions/{sub}", RESOURCES))


def test_the_python_api_exposes_rows_blobs_and_knobs(double: AzureDouble) -> None:
    assert {r["Computer"] for r in double.heartbeat} >= {"vm-web-02", "vm-web-03"}
    assert set(double.tables()) == {"Heartbeat", "Update", "UpdateSummary", "Operation"}
    double.state.add_log_rows("Operation", [{"Computer": "vm-app-01", "OperationStatus": "Succeeded",
                                             "OperationCategory": "Data Collection Status", "Type": "Operation",
                                             "Detail": "resumed", "TimeGenerated": "2099-01-01T00:00:00Z"}])
    rows = call(f"{double.logs_url}/workspaces/{double.refs['workspace_id']}/query", "POST",
                {"query": "Operation | count"}).json()["tables"][0]["rows"]
    assert rows == [[2]]
    double.state.add_graph_rows("patchinstallationresources", [{"id": "/x", "subscriptionId": _sub(double),
                                                                "properties": {"status": "InProgress"}}])
    graph = call(_url(double, "/providers/Microsoft.ResourceGraph/resources", "2021-03-01"), "POST",
                 {"query": "patchinstallationresources | where properties.status == 'InProgress' | project id"})
    assert graph.json()["data"] == [{"id": "/x"}]
    double.state.put_blob("stlogs", "packerlogs", "a/customization.log", "hello")
    assert call(double.blob_url("stlogs", "packerlogs", "a/customization.log")).body == b"hello"
    double.state.set_provider_state("Microsoft.Maintenance", "NotRegistered")
    assert call(_url(double, f"/subscriptions/{_sub(double)}/providers/Microsoft.Maintenance", RESOURCES)).json()[
        "registrationState"] == "NotRegistered"
    started = call(_url(double, f"{double.refs['template:tpl-ok']}/run", AIB), "POST")
    assert started.status == 202
    double.state.finish_operations()
    assert call(started.headers["azure-asyncoperation"]).json()["status"] == "Succeeded"
