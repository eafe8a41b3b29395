"""Classifier behaviour a user notices: right scenario, evidence, advice, limits."""

from __future__ import annotations

import json

import pytest

from shared.core.domain import Failure, Family, Mode, SourceKind
from shared.diagnosis.catalog import BY_ID, SCENARIOS
from shared.diagnosis.classifier import MAX_SCAN, classify, classify_text, last_customizer
from tests.packer_logs import customization_log

# The guides describe these only in prose: the symptom as an engineer reports it.
PROSE = {
    "um.not_showing": "The VM shows Not configured in Update Management, heartbeat is there but no update data",
    "um.superseded_missing": "Old superseded updates still show as missing in Update Management",
    "um.unexplained_reboots": "Servers rebooted after patching even though reboot setting is Never reboot",
    "um.installed_without_deployment": "Updates are installed without a deployment on our Windows servers",
    "um.wsus_unapproved": "Updates are needed but not approved in WSUS so they never install",
    "um.kb2267602_missing": "KB2267602 is consistently missing on every machine",
    "um.maintenance_window_exceeded": "Update run status: MaintenanceWindowExceeded",
    "um.hresult": "Machine is Not assessed: Exception from HRESULT: 0x8024402C",
    "um.run_failed_linux": "apt: E: dpkg was interrupted, you must manually run 'sudo dpkg --configure -a'",
    "aib.large_file_download": "myBigFile.zip 826 B / 826000 B  1.00%",
    "aib.vm_from_image_fails": "VMs created from the AIB image never finish provisioning and time out",
    "aib.slow_windows_logon": "Please wait for the Windows Modules Installer",
}


@pytest.mark.parametrize(("scenario", "text"), sorted(PROSE.items()))
def test_prose_symptom_is_recognised(scenario: str, text: str) -> None:
    assert classify_text(text).scenario == scenario


def test_every_catalog_row_is_complete() -> None:
    for s in SCENARIOS:
        assert s.signatures and s.remediations and s.advice and s.title, s.id
        assert all(sig.anchor == sig.anchor.lower() for sig in s.signatures), s.id
        assert s.id.startswith(("aib.",) if s.family is Family.AIB else ("um.", "aum."))


def test_unrelated_failures_stay_unknown() -> None:
    for text in (
        "Operation could not be completed as it results in exceeding approved Total Regional Cores quota.",
        "The requested VM size Standard_NC6 is not available in the current region (SkuNotAvailable).",
        "502 Bad Gateway from the App Service front end",
        "it broke",
    ):
        d = classify_text(text)
        assert d.scenario == "unknown", (text, d.evidence)
        assert d.confidence == 0.0
        assert [r.mode for r in d.remediations] == [Mode.ADVICE]


def test_hresult_diagnosis_carries_the_code_specific_advice_from_the_guide() -> None:
    d = classify_text("Not assessed. Exception from HRESULT: 0x80070422 The service cannot be started")
    assert d.scenario == "um.hresult"
    assert ("hresult", "0x80070422") in d.details
    assert "wuauserv" in d.advice[0]


def test_registration_access_denied_is_communication_not_hresult() -> None:
    text = "Unable to Register Machine for Patch Management: Access is denied. (0x80070005 E_ACCESSDENIED)"
    assert classify_text(text).scenario == "um.cannot_communicate"


def test_family_hint_keeps_the_diagnosis_inside_its_guide() -> None:
    text = "context deadline exceeded while Packer waited"
    assert classify_text(text, Family.UPDATE).scenario == "unknown"
    assert classify_text(text, Family.AIB).scenario == "aib.build_timeout"


def test_success_signal_is_no_failure() -> None:
    ok = Failure(source=SourceKind.IMAGE_TEMPLATE, failed=False, status="Succeeded")
    d = classify(ok)
    assert d.scenario == "none" and d.remediations == ()


@pytest.mark.parametrize(
    ("tail", "scenario"),
    [
        ("PACKER ERR ==> Builds finished but no artifacts were created.", "aib.no_artifacts"),
        ("PACKER OUT     azure-arm: IMAGE_STATE_UNDEPLOYABLE\n" * 40, "aib.sysprep_timing"),
        ("PACKER OUT ==> azure-arm: A system shutdown is in progress.(1115)\n"
         "PACKER OUT Build 'azure-arm' errored: unexpected EOF", "aib.low_resources"),
    ],
)
def test_decisive_line_near_the_end_of_a_1mb_packer_log(tail: str, scenario: str) -> None:
    log = customization_log(tail, size=1_000_000, seed=7)
    assert len(log) > MAX_SCAN
    d = classify_text(log)
    assert d.scenario == scenario
    assert d.evidence and all(len(e) <= 410 for e in d.evidence)


def test_failing_customizer_is_named_from_telemetry_lines() -> None:
    log = (
        "(telemetry) Starting provisioner windows-update\n(telemetry) ending windows-update\n"
        "(telemetry) Starting provisioner powershell\nscript failed\n"
        "Failed while waiting for packerizer: Packer build command has failed: exit status 1"
    )
    assert last_customizer(log) == ("powershell", False)
    d = classify_text(log)
    assert d.scenario == "aib.customizer_failed"
    assert ("failing_customizer", "powershell") in d.details


def test_required_remediations_are_proposed_for_their_scenarios() -> None:
    wanted = {
        "register-resource-provider": "um.rp_not_registered",
        "extend-maintenance-window": "um.maintenance_window_exceeded",
        "increase-image-build-timeout": "aib.build_timeout",
        "increase-image-build-vm-size": "aib.low_resources",
        "rerun-image-build": "aib.no_artifacts",
        "recreate-image-template": "aib.template_update_not_supported",
        "readd-changed-machines": "um.failed_to_start",
        "remove-missing-machines": "um.failed_to_start",
    }
    for name, scenario in wanted.items():
        assert name in {r.name for r in BY_ID[scenario].remediations}, (name, scenario)
    assert "increase-image-build-timeout" in {r.name for r in BY_ID["aib.sig_replication_timeout"].remediations}
    assert "increase-image-build-vm-size" in {r.name for r in BY_ID["aib.sysprep_timing"].remediations}


WRAPPER = ("lastRunStatus Failed (Customizing): Failed while waiting for packerizer: Microservice has failed: "
           "Error when executing packerizer: Packer build command has failed: exit status 1. During the image "
           "build, a failure has occurred, please review the build log to identify which build/customization "
           "step failed.")


def test_the_packer_wrapper_alone_is_a_customizer_failure() -> None:
    assert classify_text(WRAPPER).scenario == "aib.customizer_failed"


def test_a_specific_cause_in_the_log_beats_the_packer_wrapper() -> None:
    log = customization_log(tail="PACKER OUT ==> azure-arm: A system shutdown is in progress.(1115)\n"
                                 "PACKER OUT Build 'azure-arm' errored: unexpected EOF\n")
    d = classify_text(WRAPPER + "\n" + log)
    assert d.scenario == "aib.low_resources", d.evidence
    assert any("1115" in e or "unexpected eof" in e.lower() for e in d.evidence)


def test_a_failed_run_status_yields_to_the_machine_runs_cause() -> None:
    text = "update run status: Failed\nmachine vm-app-01: MaintenanceWindowExceeded"
    assert classify_text(text).scenario == "um.maintenance_window_exceeded"
    assert classify_text("update run status: Failed").scenario == "um.run_failed_linux"


# --- structure, ownership, context: what generalises beyond the guides' own wording -------------


def test_the_decisive_code_at_any_depth_of_escaped_json_names_the_scenario() -> None:
    inner = json.dumps({"status": "Failed", "error": {"code": "ResourceDeploymentFailure", "message": "The resource "
                        "operation completed with terminal provisioning state 'Failed'.", "details": [{
                            "code": "OSProvisioningTimedOut", "message": "OS Provisioning for VM 'web01' did not "
                            "finish in the allotted time."}]}})
    text = json.dumps({"code": "DeploymentFailed", "details": [{"code": "Conflict", "message": inner}]})
    assert classify_text("Packer azure-arm build: " + json.dumps(text)).scenario == "aib.vm_from_image_fails"
    # the same body from a plain VM deployment is no image build's
    assert classify_text(json.dumps(text)).scenario == "unknown"


def test_another_products_decisive_code_silences_the_wrappers() -> None:
    text = ("==> azure-arm: ERROR: -> OperationNotAllowed : Operation could not be completed as it results in "
            "exceeding approved standardDSv3Family Cores quota.\n==> Builds finished but no artifacts were created.")
    assert classify_text(text).scenario == "unknown"


@pytest.mark.parametrize("text", [
    'fatal: [web01]: FAILED! => {"changed": false, "msg": "E: Could not get lock /var/lib/dpkg/lock-frontend"}',
    "PowerShell DSC resource MSFT_xWindowsUpdateAgent failed to execute Set-TargetResource functionality with "
    "error message: Exception from HRESULT: 0x8024402C",
    "==> amazon-ebs: Timeout waiting for SSH.\nBuild 'amazon-ebs' errored: Timeout waiting for SSH.\n"
    "==> Builds finished but no artifacts were created.",
    "E: Could not get lock /var/lib/dpkg/lock-frontend - open (11: Resource temporarily unavailable)",
    "Failed to search for updates: Exception from HRESULT: 0x80240438",
    "OS Provisioning for VM 'web-01' did not finish in the allotted time. (OSProvisioningTimedOut)",
])
def test_other_products_failures_stay_unknown(text: str) -> None:
    d = classify_text(text)
    assert d.scenario == "unknown", (d.scenario, d.evidence)


def test_inside_a_packer_build_a_package_manager_error_is_the_failing_step() -> None:
    text = ("==> azure-arm: Provisioning with shell script: /tmp/script.sh\n"
            "    azure-arm: E: Could not get lock /var/lib/dpkg/lock-frontend - open (11: Resource temporarily "
            "unavailable)\n==> azure-arm: Script exited with non-zero exit status: 100")
    assert classify_text(text).scenario == "aib.customizer_failed"
    assert classify_text(text.replace("azure-arm", "virtualbox-iso")).scenario == "unknown"


def test_a_build_vm_never_reached_over_winrm_or_ssh_is_a_lost_connection() -> None:
    for text in ("==> azure-arm: Waiting for WinRM to become available...\n==> azure-arm: Timeout waiting for WinRM.",
                 "==> vhd: Waiting for SSH to become available...\n==> vhd: Timeout waiting for SSH."):
        assert classify_text(text).scenario == "aib.context_canceled"


def test_the_last_error_of_a_packer_log_decides() -> None:
    text = ("==> azure-arm: ERROR: -> ResourceNotFound : The Resource 'Microsoft.Compute/images/base' under resource "
            "group 'rg' was not found.\n==> azure-arm: resources.GroupsClient#CheckExistence: Failure responding to "
            "request: StatusCode=403\nBuild 'azure-arm' errored: resources.GroupsClient#CheckExistence: Failure "
            "responding to request: StatusCode=403 -- Original Error: autorest/azure: error response cannot be parsed")
    d = classify_text(text)
    assert d.scenario == "aib.authorization_failed", d.alternatives
    assert "aib.source_image_not_found" in [a.scenario for a in d.alternatives]


def test_a_listing_of_succeeded_resources_is_no_failure() -> None:
    listing = json.dumps({"value": [{"name": "tpl", "properties": {
        "provisioningState": "Succeeded", "buildTimeoutInMinutes": 240,
        "customize": [{"type": "PowerShell", "name": "install"}],
        "errorHandling": {"onCustomizerError": "cleanup", "onValidationError": "cleanup"},
        "lastRunStatus": {"runState": "Succeeded", "runSubState": "Completed", "message": ""}}}]}, indent=2)
    d = classify_text(listing)
    assert d.scenario == "unknown" and d.confidence == 0.0


def test_a_failed_windows_run_is_not_the_linux_package_manager_scenario() -> None:
    text = '{"osType": "Windows", "status": "Failed", "message": "update run status: failed"}'
    assert classify_text(text).scenario != "um.run_failed_linux"
    assert classify_text(text.replace("Windows", "Linux")).scenario == "um.run_failed_linux"


def test_confidence_separates_the_guides_strings_from_paraphrases() -> None:
    exact = classify_text("Error details: Failed to enable the Update solution")
    paraphrase = classify_text("onboarding 40 VMs keeps failing to enable update management from the account")
    assert exact.scenario == paraphrase.scenario == "um.enable_failed"
    assert exact.confidence >= 0.8 > paraphrase.confidence


def test_alternatives_come_ranked_with_scores_and_reasons() -> None:
    d = classify_text(WRAPPER + "\nPACKER OUT ==> azure-arm: A system shutdown is in progress.(1115)")
    assert d.scenario == "aib.low_resources"
    body = d.to_dict()
    assert body["alternatives"] and set(body["alternatives"][0]) == {"scenario", "score", "reason"}
    assert [a["score"] for a in body["alternatives"]] == sorted((a["score"] for a in body["alternatives"]),
                                                                 reverse=True)
    assert all(a["reason"].startswith("matched ") for a in body["alternatives"])
    unknown = classify_text("it broke")
    assert unknown.to_dict()["alternatives"] == []
