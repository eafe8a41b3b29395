"""The Update Manager (`aum.*`) rows: each links to its section of the Update Manager troubleshooting
guide, and each is recognised from Update Manager's documented wording.

Where the wording comes from (the pages as published in MicrosoftDocs/azure-docs, articles/):
- update-manager/troubleshoot.md (learn.microsoft.com/azure/update-manager/troubleshoot): its section
  headings (the anchors below), `ShutdownOrUnresponsive`, the internal execution error, the sudo exception,
  AllowExtensionOperations, MsftLinuxPatchAutoAssess, the moved-VM and concurrent-schedule known issues;
- update-manager/prerequsite-for-schedule-patching.md: "You get an error that the prerequisites for
  schedule patch aren't met";
- update-manager/manage-pre-post-events.md: "Maintenance cancelled using cancellation API at YYYY-MM-DD"
  (a user) and "Maintenance cancelled due to internal platform failure at YYYY-MM-DD" (the system);
- Azure/LinuxPatchExtension (src/core): "Machine is Required to reboot. However, the customer-specified reboot
  setting doesn't allow reboots.", "Customer environment error: Investigate and resolve unexpected return
  code (...) from package manager on command: ...", "Package manager on machine is not healthy".
"""

from __future__ import annotations

import pytest

from shared.core.domain import Family
from shared.diagnosis.catalog import BY_ID
from shared.diagnosis.classifier import classify_text

GUIDE = "https://learn.microsoft.com/azure/update-manager/troubleshoot"
# The aum.* ids of the scenario contract.
AUM_IDS = (
    "aum.schedule_prereq_not_set", "aum.periodic_assessment_not_enabled", "aum.provider_not_registered",
    "aum.machine_unavailable", "aum.extension_failed", "aum.auto_assessment_not_running",
    "aum.internal_execution_error", "aum.reboot_required", "aum.reboot_not_completed", "aum.schedule_not_triggered",
    "aum.dynamic_scope_miss", "aum.linux_sudo_check_failed", "aum.os_not_supported", "aum.arc_disconnected",
    "aum.run_cancelled_by_platform", "aum.pre_event_failed", "aum.configuration_invalid",
)
# The guide's section anchors (learn.microsoft.com's anchors of troubleshoot.md's headings, ms.date 02/17/2025).
GUIDE_ANCHORS = {
    "general-troubleshooting", "periodic-assessment-isnt-set-correctly",
    "prerequisite-for-scheduled-patching-isnt-set-correctly", "policy-remediation-tasks-are-failing-for-images",
    "you-cant-generate-periodic-assessment-for-azure-arc-enabled-servers",
    "maintenance-configuration-isnt-applied-when-you-move-a-vm",
    "you-cant-change-patch-orchestration-from-automatic-to-manual",
    "machine-is-not-assessed-and-shows-an-hresult-exception", "you-get-an-internal-execution-error",
    "scheduled-patching-isnt-working", "you-get-a-shutdownorunresponsive-error",
    "you-cant-apply-patches-for-shut-down-machines",
    "update-history-inaccurately-shows-that-you-exceeded-the-maintenance-window",
    "windowslinux-os-update-extension-isnt-installed", "windowslinux-patch-update-extension-isnt-installed",
    "extension-check-fails", "sudo-privileges-arent-present", "proxy-is-configured", "tls-12-check-fails",
    "https-connection-check-fails", "msftlinuxpatchautoassess-service-isnt-running-or-times-out",
    "linux-repositories-arent-accessible",
}

DOCUMENTED = {
    "aum.schedule_prereq_not_set": "Autopatch and schedule patch don't run. You get an error that the prerequisites "
                                   "for schedule patch aren't met.",
    "aum.periodic_assessment_not_enabled": "Periodic assessment isn't getting set correctly during resource creation "
                                           "for specialized, migrated, and restored VMs.",
    "aum.provider_not_registered": "The subscription is not registered to use namespace 'Microsoft.Maintenance'. "
                                   "See https://aka.ms/rps-not-found for how to register subscriptions.",
    "aum.machine_unavailable": "Scheduled patching doesn't install the patches on the VMs and gives a "
                               "ShutdownOrUnresponsive error.",
    "aum.extension_failed": "The property AllowExtensionOperations is set to false in the machine OSProfile.",
    "aum.auto_assessment_not_running": "Job for MsftLinuxPatchAutoAssess.service failed because the control process "
                                       "exited with error code.",
    "aum.internal_execution_error": "An internal execution error occurred. Please retry later. The operation did "
                                    "not return a response and should be retried. This result may be incomplete.",
    "aum.reboot_required": "Machine is Required to reboot. However, the customer-specified reboot setting doesn't "
                           "allow reboots.",
    "aum.reboot_not_completed": "patchinstallationresources status: Failed, rebootStatus: Failed",
    "aum.schedule_not_triggered": "When you move a VM to another subscription or resource group, the scheduled "
                                  "maintenance configuration associated with the VM isn't running.",
    "aum.dynamic_scope_miss": "The dynamic scope didn't include two of our VMs in last night's run.",
    "aum.linux_sudo_check_failed": "EXCEPTION: Exception('Unable to invoke sudo successfully. Output: root is not "
                                   "in the sudoers file. This incident will be reported. False ',)",
    "aum.os_not_supported": "The selected VM image is not supported for VM Guest patch operations. Learn more at: "
                            "https://aka.ms/VMGuestPatchingCompatibility",
    "aum.arc_disconnected": "The Azure Arc-enabled server shows Disconnected: extension operations stay queued.",
    "aum.run_cancelled_by_platform": "Maintenance cancelled due to internal platform failure at 2026-11-21",
    "aum.pre_event_failed": "PreMaintenanceEvent delivery failed for the webhook endpoint; the event was "
                            "dead-lettered.",
    "aum.configuration_invalid": "Extension properties must contain Patch mode",
}


def test_every_update_manager_id_is_a_catalog_row_in_the_update_family() -> None:
    assert set(AUM_IDS) == {s for s in BY_ID if s.startswith("aum.")}
    assert set(DOCUMENTED) == set(AUM_IDS)
    for scenario in AUM_IDS:
        row = BY_ID[scenario]
        assert row.family is Family.UPDATE and row.signatures and row.advice and row.remediations


@pytest.mark.parametrize("scenario", AUM_IDS)
def test_each_row_links_to_a_section_of_the_update_manager_guide(scenario: str) -> None:
    url, _, anchor = BY_ID[scenario].doc.partition("#")
    assert url == GUIDE
    assert anchor in GUIDE_ANCHORS


@pytest.mark.parametrize(("scenario", "text"), sorted(DOCUMENTED.items()))
def test_each_id_is_recognised_from_its_documented_wording(scenario: str, text: str) -> None:
    for family in (None, Family.UPDATE):
        d = classify_text(text, family)
        assert d.scenario == scenario, (family, d.evidence)
        assert d.evidence and d.doc == BY_ID[scenario].doc


def test_errors_update_manager_reports_no_longer_come_back_unknown() -> None:
    reported = {
        "ShutdownOrUnresponsive": "aum.machine_unavailable",
        "An internal execution error occurred. Please retry later": "aum.internal_execution_error",
        "Unable to invoke sudo successfully": "aum.linux_sudo_check_failed",
        "Maintenance cancelled due to internal platform failure": "aum.run_cancelled_by_platform",
        "Customer environment error: Investigate and resolve unexpected return code (100) from package manager on "
        "command: LANG=en_US.UTF8 sudo apt-get -y --only-upgrade true install openssl": "um.run_failed_linux",
    }
    for text, scenario in reported.items():
        # as Update Manager reports them: its results, its events (the family is known)
        assert classify_text(text, Family.UPDATE).scenario == scenario, text
    # bare, the short internal error is any Azure operation's (a VM allocation's too); the guide's full one is ours
    assert classify_text("An internal execution error occurred. Please retry later. The operation did not return a "
                         "response and should be retried.").scenario == "aum.internal_execution_error"


def test_a_reboot_the_setting_did_not_allow_is_pending_not_unexplained() -> None:
    d = classify_text("Machine is Required to reboot. However, the customer-specified reboot setting doesn't allow "
                      "reboots.")
    assert d.scenario == "aum.reboot_required"
    assert classify_text("Servers rebooted after patching even though reboot setting is Never reboot").scenario == \
        "um.unexplained_reboots"


def test_sudo_failure_in_a_package_manager_line_is_still_the_sudo_check() -> None:
    text = ("Customer environment error (sudo failure). [Exception=Unable to invoke sudo successfully. Output: [sudo] "
            "password for azureuser: False][MaxRetryCount=5]")
    assert classify_text(text).scenario == "aum.linux_sudo_check_failed"


def test_the_linux_only_rows_say_so() -> None:
    assert {s.id for s in BY_ID.values() if s.os == "linux"} >= {
        "um.run_failed_linux", "aum.linux_sudo_check_failed", "aum.auto_assessment_not_running"}
