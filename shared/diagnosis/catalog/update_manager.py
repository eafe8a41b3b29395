"""Azure Update Manager rows: the `aum.*` scenarios, linked to its troubleshooting guide
(learn.microsoft.com/azure/update-manager/troubleshoot, `AUM_DOC`) with the section's anchor.

Signatures hold Update Manager's documented wording (the guide, the pre/post events page, the
patch extensions' own messages) and the structured statuses it reports in Azure Resource Graph
(`patchinstallationresources`: `status`, `rebootStatus`, `maintenanceWindowExceeded`, `errorDetails`;
the Linux patch extension's error codes such as `CL_SUDO_CHECK_FAILED`, `UA_ESM_REQUIRED`). Per-machine
diagnosis decides from those fields first (`shared.diagnosis.update_manager`); these signatures read
the same facts from text and from `errorDetails` messages.

Update Manager failures with the cause and fix of a `um.*` row keep that id (scenarios.md):
`um.maintenance_window_exceeded`, `um.hresult`, `um.run_failed_linux`.

Sources of the wording (checked against the pages):
- troubleshoot.md (MicrosoftDocs/azure-docs, articles/update-manager): the sections linked below, the
  `Unable to invoke sudo successfully. Output: root is not in the sudoers file` exception, the
  internal execution error, `ShutdownOrUnresponsive`, AllowExtensionOperations, MsftLinuxPatchAutoAssess;
- prerequsite-for-schedule-patching.md: "You get an error that the prerequisites for schedule patch
  aren't met" (patch mode / BypassPlatformSafetyChecksOnUserSchedule user scenarios);
- manage-pre-post-events.md: "Maintenance cancelled using cancellation API at ..." (user) and
  "Maintenance cancelled due to internal platform failure at ..." (system, pre-event not delivered);
- Azure/LinuxPatchExtension: "Machine is Required to reboot. However, the customer-specified reboot
  setting doesn't allow reboots." (a warning: CompletedWithWarnings), "Customer environment error (sudo
  failure)", "Package manager on machine is not healthy", `PatchOperationErrorCodes`.
"""

from __future__ import annotations

from shared.core.domain import Family, Mode, RemediationRef
from shared.diagnosis.catalog.model import ADVICE_ONLY, AUM_DOC, NEGATION, WORD, Scenario, Sig, ref

EVENTS_DOC = "https://learn.microsoft.com/azure/update-manager/manage-pre-post-events"
SUPPORT_MATRIX = "https://learn.microsoft.com/azure/update-manager/support-matrix"
DYNAMIC_SCOPE_DOC = "https://learn.microsoft.com/azure/update-manager/dynamic-scope-overview"

# The guide's sections (learn.microsoft.com anchors of troubleshoot.md's headings).
A_PERIODIC = "periodic-assessment-isnt-set-correctly"
A_PREREQ = "prerequisite-for-scheduled-patching-isnt-set-correctly"
A_ARC_ASSESSMENT = "you-cant-generate-periodic-assessment-for-azure-arc-enabled-servers"
A_MOVED = "maintenance-configuration-isnt-applied-when-you-move-a-vm"
A_INTERNAL = "you-get-an-internal-execution-error"
A_SCHEDULED = "scheduled-patching-isnt-working"
A_SHUTDOWN = "you-get-a-shutdownorunresponsive-error"
A_WINDOW = "update-history-inaccurately-shows-that-you-exceeded-the-maintenance-window"
A_ARC_EXTENSION = "windowslinux-os-update-extension-isnt-installed"
A_EXTENSION = "windowslinux-patch-update-extension-isnt-installed"
A_SUDO = "sudo-privileges-arent-present"
A_AUTOASSESS = "msftlinuxpatchautoassess-service-isnt-running-or-times-out"
A_GENERAL = "general-troubleshooting"

_NAMESPACES = r"microsoft\.(?:maintenance|compute|hybridcompute|guestconfiguration|eventgrid)"
# The namespace only Update Manager's failures name. Microsoft.HybridCompute is Arc's own (`azcmagent connect`
# fails on it when onboarding), Microsoft.GuestConfiguration machine configuration's (Azure Policy): theirs unless
# the text names Update Manager, like Microsoft.Compute and Microsoft.EventGrid.
_OWN_NAMESPACES = r"microsoft\.maintenance"
# Anchors are word prefixes of the text (the classifier's index): each extension's name is its own.
_EXTENSION_NAMES = ("windowspatchextension", "linuxpatchextension",  # Azure VMs
                    "windowsosupdateextension", "linuxosupdateextension")  # Arc-enabled servers


def _extension_sigs(weight: float, after: str) -> tuple[Sig, ...]:
    return tuple(Sig(name, weight, name + after) for name in _EXTENSION_NAMES)


def _row(id_: str, title: str, anchor: str, signatures: tuple[Sig, ...],  # noqa: PLR0917 (a row reads as one)
         remediations: tuple[RemediationRef, ...], advice: tuple[str, ...], os: str | None = None) -> Scenario:
    return Scenario(id_, Family.UPDATE, title, anchor, signatures, remediations, advice, guide=AUM_DOC, os=os)


ROWS: tuple[Scenario, ...] = (
    _row(
        "aum.schedule_prereq_not_set",
        "Azure VM is not on Customer Managed Schedules (scheduled patching prerequisite)",
        A_PREREQ,
        (
            Sig("prerequisite", 10, r"prerequisites? (?:for|of) (?:the )?schedul\w* patch\w* (?:aren't|are not|isn't|"
                r"is not|were not|was not|not) (?:met|set)"),
            Sig("prerequisite", 7, r"(?:scheduled[- ]patching|schedule patch\w*) prerequisite"),
            Sig("customer managed schedule", 7),
            Sig("bypassplatform", 8, r"bypassplatform\w*\W{1,6}(?:false|null|none|not set|missing|not enabled)"),
            Sig("bypassplatform", 5),
            Sig("automaticbyplatformsettings cannot be set", 8),
            Sig("patch orchestration", 6, rf"patch orchestration\W+{WORD}{{0,8}}(?:customer managed|"
                r"automaticbyplatform|azure[- ]orchestrated|schedule)"),
            Sig("patchmode", 7, r"patchmode\W{1,6}(?:automaticbyos|manual|imagedefault)\b.{0,200}"
                r"(?:schedul|maintenance configuration|assign)|(?:schedul|maintenance configuration|assign)\w*"
                r".{0,200}patchmode\W{1,6}(?:automaticbyos|manual|imagedefault)\b"),
            # Attaching a schedule to a VM is refused while the VM lacks the prerequisite patch mode.
            Sig("assignment", 5, r"(?:creat|issu|add|attach|assign)\w*\W+(?:\w+\W+){0,4}(?:maintenance|configuration) "
                r"assignment.{0,400}(?:fail|error|not allowed|invalid|400|bad ?request|conflict)|"
                r"(?:maintenance|configuration) assignment\w*\W+(?:\w+\W+){0,4}(?:fail|error)|"
                r"(?:error|fail\w*)\W+(?:\w+\W+){0,6}(?:maintenance|configuration) assignment", context=True),
            Sig("outside", 8, r"install\w*\W+(?:\w+\W+){0,5}outside\W+(?:the\W+|its\W+|their\W+|our\W+)?"
                r"(?:maintenance|patch(?:ing)?|scheduled?) window"),
        ),
        (ref("set-customer-managed-schedules", Mode.APPROVAL),),
        (
            "An Azure VM is patched by a schedule only when its patch orchestration is Customer Managed "
            "Schedules: patchMode AutomaticByPlatform and automaticByPlatformSettings."
            "bypassPlatformSafetyChecksOnUserSchedule true (Arc-enabled servers need neither).",
            "With AutomaticByPlatform but without the bypass flag the VM is auto-patched by the platform; with a "
            "schedule attached and the prerequisite missing, neither runs and the prerequisites error is shown.",
            "For VMs created by policy (specialized, generalized, migrated or restored), run a remediation task "
            "after creation so the prerequisite is set and the schedule attached.",
        ),
    ),
    _row(
        "aum.periodic_assessment_not_enabled", "Periodic assessment is not enabled (assessmentMode ImageDefault)",
        A_PERIODIC,
        (
            Sig("imagedefault", 8, r"assessment ?mode\W{1,8}(?:is\W+|set to\W+|still\W+|=\W*|:\W*)?['\"]?imagedefault"),
            Sig("imagedefault", 6, r"imagedefault.{0,120}assessment ?mode"),
            Sig("periodic assessment", 7, r"periodic assessment\W+(?:\w+\W+){0,4}(?:not|isn't|isnt|aren't|disabled|"
                r"off|no\b|non-?compliant|never)|periodic assessment\W{1,4}no\b"),
            Sig("assessmentmode", 5, context=True),
            Sig("periodic assessment", 3.5),
        ),
        (ref("enable-periodic-assessment", Mode.AUTO),),
        (
            "Set patchSettings.assessmentMode to AutomaticByPlatform so the machine is assessed every 24 hours "
            "(Azure VM: VM PATCH; Arc-enabled server: machine PATCH).",
            "The periodic assessment policy does not set it correctly when specialized, migrated or restored VMs "
            "are created: run a remediation task for them.",
        ),
    ),
    _row(
        "aum.provider_not_registered", "Subscription not registered for a provider Update Manager needs",
        A_ARC_ASSESSMENT,
        (
            Sig("not registered to use namespace", 10, rf"not registered to use namespace\W+['\"]?{_OWN_NAMESPACES}"),
            Sig("not registered to use namespace", 8, rf"not registered to use namespace\W+['\"]?{_NAMESPACES}",
                context=True),
            Sig("missingsubscriptionregistration", 9, rf"missingsubscriptionregistration.{{0,300}}{_OWN_NAMESPACES}|"
                rf"{_OWN_NAMESPACES}.{{0,300}}missingsubscriptionregistration"),
            Sig("missingsubscriptionregistration", 8, rf"missingsubscriptionregistration.{{0,300}}{_NAMESPACES}|"
                rf"{_NAMESPACES}.{{0,300}}missingsubscriptionregistration", context=True),
            Sig("microsoft", 7, rf"{_OWN_NAMESPACES}\W+{WORD}{{0,5}}(?:is )?(?:not registered|notregistered|"
                r"unregistered)"),
            Sig("microsoft", 7, context=True, pattern=rf"{_NAMESPACES}\W+{WORD}{{0,5}}(?:is )?(?:not registered|"
                r"notregistered|unregistered)|"
                rf"(?:register|registration)\w*\W+(?:the\W+)?(?:resource provider\W+)?{_NAMESPACES}\W+(?:\w+\W+){{0,3}}"
                r"(?:fail|error|denied|pending|required|needed)"),
            Sig("not registered", 6, r"(?:preview )?feature\W+['\"]?(?:microsoft\.\w+/)?(?:inguest\w+|\w*prepost\w*)"
                r"['\"]?"
                r"\W+(?:\w+\W+){0,4}(?:not registered|isn't registered|is not registered|unregistered)"),
            Sig("inguestpatchprepostmaintenanceactivity", 7),
            Sig("inguest", 6, r"inguest\w*preview\W+(?:feature\W+)?(?:\w+\W+){0,3}(?:is )?(?:not registered|"
                r"isn't registered|unregistered|registered under|needs? to be registered|stuck in pending)"),
            Sig("arc", 6, r"arc.{0,160}(?:not producing|no|aren't producing|isn't producing|not generating)\W+"
                r"(?:\w+\W+){0,2}assessment data"),
            Sig("subscription is not registered", 6, context=True),
        ),
        (ref("register-resource-provider", Mode.AUTO),),
        (
            "Register the resource provider the operation names on the machine's subscription "
            "(`az provider register --namespace <ns>`): Arc-enabled servers' subscriptions must be registered "
            "to Microsoft.Compute for periodic assessment data, schedules need Microsoft.Maintenance.",
        ),
    ),
    _row(
        "aum.machine_unavailable", "Machine off, deallocated or unresponsive at run time (ShutdownOrUnresponsive)",
        A_SHUTDOWN,
        (
            Sig("shutdownorunresponsive", 10),
            Sig("shutdown or unresponsive", 8),
            Sig("state", 8, r"patch\w*.{0,120}(?:in a|in) shut-?down state|(?:in a|in) shut-?down state.{0,120}patch"),
            Sig("state", 7, r"(?:in|a) (?:shut-?down|shut down|stopped|deallocated) state", context=True),
            Sig("powerstate/", 7, r"powerstate/(?:deallocated|stopped|deallocating|stopping)", context=True),
            Sig("deallocated", 5, r"(?:vm|machine|server)s?\W+(?:\w+\W+){0,4}(?:deallocated|powered off|turned off|"
                r"shut down|stopped)\W+(?:\w+\W+){0,8}(?:patch|update|schedul|maintenance)", context=True),
            Sig("created with the same", 5,
                r"(?:deleted and re-?created|re-?created) with the same (?:resource id|name)", context=True),
        ),
        (ref("start-machines-before-window", Mode.APPROVAL), ref("install-patches-now", Mode.APPROVAL)),
        (
            "Keep machines turned on at least 15 minutes before the scheduled update: a shut-down machine is not "
            "patched (and may lose its schedule).",
            "Schedules that run on a machine deleted and re-created with the same resource id within 8 hours fail "
            "with ShutdownOrUnresponsive (a known limitation): re-assign the configuration after re-creating, or "
            "wait until the period has passed.",
            "Catch up the machines that missed the run with a one-time install.",
        ),
    ),
    _row(
        "aum.extension_failed",
        "Patch extension missing or not Succeeded, VM agent not ready, or extensions disallowed",
        A_EXTENSION,
        (
            Sig("extension", 8, r"(?:patch|os) update extension (?:isn't|is not|not|wasn't|was not) installed"),
            *_extension_sigs(7, r"\W+(?:\w+\W+){0,6}(?:provisioning ?state|status|state)\W+(?:\w+\W+){0,2}"
                                r"(?:failed|transitioning|unhealthy|error)"),
            Sig("extension", 7, r"extension\W+(?:\w+\W+){0,4}(?:status|state)\W+(?:\w+\W+){0,2}(?:isn't|is not|not) "
                r"succeeded"),
            Sig("allowextensionoperations", 9, r"allowextensionoperations\W+(?:\w+\W+){0,3}(?:false|disabled)|"
                r"allowextensionoperations\W+(?:\w+\W+){0,4}(?:check|fail)"),
            Sig("allowextensionoperations", 5, context=True),
            Sig("agent", 7, r"(?:vm|guest|azure) agent\W+(?:\w+\W+){0,4}not ready|vmagent\W+(?:\w+\W+){0,3}not ready",
                context=True),
            Sig("reserved for internal use", 6, r"(?:linux|windows)patchextension is reserved for internal use"),
            *_extension_sigs(3.5, ""),
        ),
        (ref("reinstall-patch-extension", Mode.AUTO), ref("follow-guide", Mode.ADVICE)),
        (
            "The patch extension (Azure VM: WindowsPatchExtension / LinuxPatchExtension; Arc: WindowsOsUpdateExtension "
            "/ LinuxOsUpdateExtension) must be installed and Succeeded for assessment and patching. If it is "
            "present but not Succeeded, remove it and trigger an on-demand assessment, which reinstalls it.",
            "osProfile.allowExtensionOperations must be true for extensions to work.",
            "If the VM agent is Not Ready, restart the VM or repair the agent (waagent / WindowsAzureGuestAgent).",
        ),
    ),
    _row(
        "aum.auto_assessment_not_running", "Linux periodic assessment service MsftLinuxPatchAutoAssess is not running",
        A_AUTOASSESS,
        (
            Sig("msftlinuxpatchautoassess", 9, r"msftlinuxpatchautoassess.{0,200}(?:fail|not running|inactive|dead|"
                r"no such file|timed? ?out|killed|sigterm|not found|error)|(?:fail|inactive|timed? ?out|no such file)"
                r".{0,200}msftlinuxpatchautoassess"),
            Sig("msftlinuxpatchautoassess", 7),
            Sig("active: failed", 5, context=True),
        ),
        (ref("reinstall-patch-extension", Mode.AUTO),),
        (
            "MsftLinuxPatchAutoAssess (service and timer installed by the LinuxPatchExtension) runs the periodic "
            "assessment: make sure the LinuxPatchExtension status is Succeeded, then reboot the machine.",
            "A service left pointing at a removed extension version is fixed by reinstalling the extension.",
        ),
        os="linux",
    ),
    _row(
        "aum.internal_execution_error", "Update Manager internal execution error (transient)", A_INTERNAL,
        (
            Sig("did not return a response and should be retried", 10),
            Sig("an internal execution error occurred", 9, r"an internal execution error occurred\W+please retry later"
                r".{0,300}(?:patch|assess|update manager|vmguestpatch|maintenance)|(?:patch|assess|update manager|"
                r"vmguestpatch|maintenance).{0,300}an internal execution error occurred"),
            Sig("vmguestpatchinternalerror", 9),
            # The guide's message; without "please retry later" it is any Azure operation's (context only).
            Sig("an internal execution error occurred", 7,
                r"an internal execution error occurred\W+please retry later", context=True),
            Sig("an internal execution error occurred", 6, context=True),
        ),
        (ref("assess-patches-now", Mode.AUTO), ref("install-patches-now", Mode.APPROVAL)),
        (
            "A temporary platform problem or a communication failure between Update Manager and the VM: retry "
            "after a few minutes.",
            "Make sure the VM agent is healthy and up to date (reboot the VM if it shows Not Ready), check the VM's "
            "CPU, memory and disk, and its connectivity to Azure.",
        ),
    ),
    _row(
        "aum.reboot_required", "Patches wait for a reboot that was not done", A_WINDOW,
        (
            Sig("customer-specified reboot setting", 10),
            Sig("machine is required to reboot", 10),
            Sig("reboot", 8, r"reboot ?status\W{1,6}(?:is\W+)?required"),
            # Any OS says a reboot is required: ours only in Update Manager's context (or with its family).
            Sig("reboot", 6, r"(?:reboot|restart) ?pending\W{1,6}true|pending (?:reboot|restart)|"
                r"(?:reboot|restart) (?:is )?(?:required|pending|needed)\b"
                r"(?!\W{0,4}[=:]\W{0,3}(?:false|no|0)\b)(?! by)", context=True),
            Sig("completedwithwarnings", 6, r"completedwithwarnings.{0,200}reboot|reboot.{0,200}completedwithwarnings"),
            Sig("neverreboot", 5, r"neverreboot.{0,200}(?:pending|required|warning)"),
        ),
        (ref("restart-machine", Mode.APPROVAL),),
        (
            "The installation needs a reboot to finish, and the schedule's reboot setting (or the time left in the "
            "window: 10 minutes are kept for it) did not allow one: restart the machine in a quiet period.",
            "Set the maintenance configuration's rebootSetting to IfRequired if such reboots are acceptable.",
        ),
    ),
    _row(
        "aum.reboot_not_completed", "The reboot after installing did not complete in time", A_WINDOW,
        (
            Sig("reboot", 8, r"reboot ?status\W{1,6}(?:is\W+)?failed"),
            Sig("reboot", 7, r"reboot\w*\W+(?:\w+\W+){0,4}(?:did not|didn't|never) (?:complete|finish).{0,160}install|"
                r"install\w*.{0,160}reboot\w*\W+(?:\w+\W+){0,4}(?:did not|didn't|never) (?:complete|finish)"),
            Sig("reboot", 7, r"(?:reboot|restart)\w*\W+(?:\w+\W+){0,4}(?:did not|didn't|failed to|never|could not|"
                r"couldn't) (?:complete|finish|come back)|(?:reboot|restart)\w*\W+(?:\w+\W+){0,3}timed? ?out",
                context=True),
            Sig("reboot", 6, r"(?:os|machine|vm) (?:couldn't|could not) be restarted", context=True),
        ),
        (ref("follow-guide", Mode.ADVICE), ref("install-patches-now", Mode.APPROVAL)),
        (
            "The machine did not come back from the post-install reboot in time, so the installation is reported "
            "failed: check boot diagnostics and the serial console for what held the boot.",
            "Then install the remaining patches with a one-time install.",
        ),
    ),
    _row(
        "aum.schedule_not_triggered", "An assigned machine was not part of a run that happened", A_MOVED,
        (
            Sig("no patch installation result", 8),
            Sig("maintenance", 7, r"maintenance (?:schedule|configuration)\w*\W+(?:\w+\W+){0,4}(?:never|not|didn't|"
                r"did not|wasn't|isn't)\W+(?:\w+\W+)?(?:trigger\w*|run|ran|fire\w*|running)\b"),
            Sig("schedul", 7, rf"schedul\w*\W+(?:\w+\W+){{0,4}}(?:{NEGATION}|wasn't|was not|weren't)\W+(?:\w+\W+)?"
                r"(?:trigger\w*|run|ran|fire\w*|kick\w* off|start\w*)\b", context=True),
            Sig("conflicting schedule", 7, context=True),
            Sig("concurrent", 5, r"concurrent (?:or conflicting )?schedules?", context=True),
            Sig("move", 7, r"(?:moved?|moving)\W+(?:\w+\W+){0,6}(?:another|different|new|other) (?:resource group|"
                r"subscription).{0,200}(?:maintenance|schedul|patch)|(?:maintenance configuration|schedule)\w*\W+"
                r"(?:\w+\W+){0,6}(?:isn't|is not|not|wasn't) (?:applied|running|run).{0,160}mov", context=True),
            Sig("moved", 7, r"(?:moved?|moving)\W+(?:\w+\W+){0,6}(?:another|different|new|other) (?:resource group|"
                r"subscription).{0,200}(?:maintenance|schedul|patch)|(?:maintenance configuration|schedule)\w*\W+"
                r"(?:\w+\W+){0,6}(?:isn't|is not|not|wasn't) (?:applied|running|run).{0,160}mov", context=True),
            Sig("assignment", 6,
                r"(?:stale|deleted|orphaned|missing|lost) (?:configuration |maintenance )?assignments?", context=True),
        ),
        (ref("reassign-maintenance-configuration", Mode.APPROVAL), ref("follow-guide", Mode.ADVICE)),
        (
            "Maintenance configurations do not follow a VM moved to another resource group or subscription: remove "
            "the assignment, move the VM, then re-create the assignment (with a dynamic scope, let the next run drop "
            "it first).",
            "For concurrent or conflicting schedules only one is triggered; the other runs after it finishes. A newly "
            "created machine may start up to 15 minutes late.",
        ),
    ),
    _row(
        "aum.dynamic_scope_miss", "Dynamic scope did not include a machine", A_SCHEDULED,
        (
            Sig("dynamic scope", 7, rf"dynamic scop\w*\W+{WORD}{{0,8}}(?:{NEGATION}|missing|miss\w*|excluded|left out)"
                r"\W*(?:\w+\W+){0,3}(?:includ|pick|match|cover|contain|patch|select|apply)\w*"),
            Sig("dynamic scope", 6, r"dynamic scop\w*.{0,200}(?:tag\w*\W+(?:\w+\W+){0,3}(?:removed|misspelled|wrong|"
                r"changed)|1,?000 (?:resource )?associations|30 subscriptions|null location)"),
            Sig("dynamic scope", 3.5),
        ),
        ADVICE_ONLY,
        (
            "A dynamic scope's criteria are evaluated at run time: a machine whose tag, resource group, location or "
            "OS did not match then was not in the run (check misspelled or removed tags, and null locations).",
            f"Dynamic scope limits: 1,000 resource associations, 50 tag filters, 50 resource group filters per "
            f"scope ({DYNAMIC_SCOPE_DOC}).",
        ),
    ),
    _row(
        "aum.linux_sudo_check_failed", "Linux patch extension cannot run sudo non-interactively", A_SUDO,
        (
            Sig("unable to invoke sudo successfully", 10),
            # Packer shell provisioners print it too ("azureuser is not in the sudoers file"): the guide's is root's.
            Sig("root is not in the sudoers file", 9),
            Sig("not in the sudoers file", 8, context=True),
            Sig("cl_sudo_check_failed", 10),
            Sig("sudo status check failed", 9),
            Sig("sudo failure", 9, r"customer environment error \(sudo failure\)"),
            Sig("sudo", 7, r"sudo privileges\W+(?:\w+\W+){0,3}(?:aren't|are not|not|missing|absent)|"
                r"sudo\W+(?:\w+\W+){0,4}requiretty|requiretty.{0,120}sudo", context=True),
        ),
        ADVICE_ONLY,
        (
            "Update Manager's Linux extensions run as root and need sudo without a prompt: add `root ALL=(ALL) ALL` "
            "to /etc/sudoers (sudo visudo), and do not require a tty for it.",
        ),
        os="linux",
    ),
    _row(
        "aum.os_not_supported", "Image, OS or workload not supported by Update Manager", A_GENERAL,
        (
            Sig("ua_esm_required", 9),
            Sig("not supported for vm guest patch", 9),
            Sig("vmguestpatchingcompatibility", 8),
            Sig("esm", 6, r"(?:ubuntu pro|esm)\W+(?:\w+\W+){0,4}(?:required|not attached|needed)", context=True),
            Sig("support", 6, r"(?:image|os|operating system|distro\w*|scale set|vmss|client os|windows (?:10|11))\W+"
                r"(?:\w+\W+){0,5}(?:isn't|is not|not|aren't|are not) supported\W+(?:\w+\W+){0,6}"
                r"(?:update manager|patch|assessment|schedul)", context=True),
            Sig("unsupported", 5,
                r"unsupported\W+(?:\w+\W+){0,2}(?:image|os|operating system|distro\w*|package manager)",
                context=True),
        ),
        ADVICE_ONLY,
        (
            f"Check the machine's OS, image and workload against Update Manager's support matrix ({SUPPORT_MATRIX}); "
            "client OS, scale sets and some distributions or package managers are not supported for scheduled "
            "patching.",
            "Ubuntu ESM packages need an attached Ubuntu Pro subscription (UA_ESM_REQUIRED).",
        ),
    ),
    _row(
        "aum.arc_disconnected", "Arc-enabled server disconnected or expired", A_GENERAL,
        (
            Sig("disconnected", 7, r"(?:arc|connected machine|hybridcompute|azcmagent)\W+(?:\w+\W+){0,8}"
                r"(?:disconnected|"
                r"expired)|(?:disconnected|expired)\W+(?:\w+\W+){0,6}(?:arc|connected machine agent)"),
            Sig("disconnected", 5, r"(?:agent )?status\W{1,6}(?:is\W+)?['\"]?disconnected", context=True),
            Sig("expired", 5,
                r"(?:arc|agent|machine)\W+(?:\w+\W+){0,3}(?:status|state)?\W{0,6}(?:is\W+)?['\"]?expired",
                context=True),
            Sig("heartbeat", 4, r"(?:arc|connected machine).{0,120}(?:no|missing|stopped) heartbeat", context=True),
        ),
        ADVICE_ONLY,
        (
            "A disconnected Arc-enabled server runs no extension operation (they stay queued) and reports no "
            "assessment: reconnect the Connected Machine agent (`azcmagent show`, check its network access); an "
            "expired one (disconnected for 45 days) must be onboarded again.",
        ),
    ),
    _row(
        "aum.run_cancelled_by_platform", "Maintenance run cancelled by the platform (pre-event not delivered)",
        A_SCHEDULED,
        (
            Sig("maintenance cancelled due to internal platform failure", 10),
            Sig("cancelled due to internal platform failure", 9),
            Sig("canceled due to internal platform failure", 9),
            Sig("cancelation by system", 7),
            Sig("cancellation by system", 7),
        ),
        (ref("install-patches-now", Mode.APPROVAL),),
        (
            "The system cancels a run when it cannot send the pre-event to your endpoint 30 minutes before the "
            f"start ({EVENTS_DOC}): check the event subscription's delivery metrics, then catch up the machines "
            "with a one-time install.",
            "A run cancelled with 'Maintenance cancelled using cancellation API' was cancelled by a user or a "
            "pre-event script: no failure.",
        ),
    ),
    _row(
        "aum.pre_event_failed", "Pre/post maintenance event handler failed or was not delivered", A_SCHEDULED,
        (
            # "pre-event", "post maintenance event": Update Manager's words; a bare "pre event" is anyone's.
            Sig("event", 7, r"(?:pre|post)(?:-|[- ]?maintenance[- ])events?\W+(?:\w+\W+){0,6}(?:failed|not delivered|"
                r"(?:could not|couldn't|was not|wasn't) be(?:en)? delivered|delivery fail\w*|dead-?letter\w*|"
                r"never (?:ran|fired|triggered|delivered)|timed? ?out)"),
            Sig("event", 6, r"(?:pre|post) events?\W+(?:\w+\W+){0,6}(?:failed|not delivered|"
                r"(?:could not|couldn't|was not|wasn't) be(?:en)? delivered|delivery fail\w*|dead-?letter\w*|"
                r"never (?:ran|fired|triggered|delivered)|timed? ?out)", context=True),
            # The handler itself (a runbook, function or webhook the event calls) told not doing its work.
            Sig("event", 6, r"(?:pre|post)(?:-|[- ]?maintenance[- ])events?\W+(?:\w+\W+){0,2}?(?:runbook|function|"
                r"webhook|handler|script|automation)\w*\W+(?:\w+\W+){0,24}?(?:fail\w*|errors? out|never|"
                r"nothing (?:is|was|gets?) (?:started|run|done)|(?:didn't|did not|doesn't|does not) (?:start|run|fire|"
                r"trigger|work))"),
            Sig("premaintenanceevent", 6, r"(?:pre|post)maintenanceevent.{0,200}(?:fail|not delivered|dead-?letter|"
                r"timed? ?out)"),
            Sig("delivery", 6, r"(?:delivery (?:failed|failure)|dead-?letter).{0,200}(?:maintenance|pre-?event|"
                r"post-?event)|(?:maintenance|pre-?event|post-?event).{0,200}"
                r"(?:delivery (?:failed|failure)|dead-?letter)", context=True),
        ),
        ADVICE_ONLY,
        (
            "Check the event subscription of the maintenance configuration (Events): Published, Matched and "
            f"Delivered Events must agree, and the handler's runs (runbook jobs, function invocations) must "
            f"succeed ({EVENTS_DOC}).",
            "A pre-event must finish within 20 minutes; a run can be cancelled until 10 minutes before its start. "
            "Handlers must be idempotent (Event Grid delivers at least once).",
        ),
    ),
    _row(
        "aum.configuration_invalid", "The maintenance configuration itself is invalid", A_SCHEDULED,
        (
            Sig("extension properties must contain patch mode", 10),
            Sig("inguestpatch", 8, r"inguestpatch\W+(?:\w+\W+){0,6}(?:not supported|isn't supported|unsupported|"
                r"is not valid)|(?:not supported|unsupported).{0,80}inguestpatch"),
            # the service's checks of the window (a StartDateTime an SDK did not send is no invalid schedule)
            Sig("invalid maintenance window", 7, r"invalid maintenance window\W+error\W+(?:duration|recurrence|"
                r"monthly|weekly|expiration|.{0,120}(?:inguestpatch|01:30|03:55|6 hours))"),
            Sig("invalidmaintenancewindow", 7),
            Sig("recurrence", 6, r"recurrence\W+(?:\w+\W+){0,6}(?:6 hours|six hours|every 6)", context=True),
            Sig("duration", 5, r"duration\W+(?:\w+\W+){0,8}01:30\W+(?:\w+\W+){0,2}03:55", context=True),
            # Creating or updating a maintenance configuration rejected by the service (400, invalid, unsupported).
            Sig("maintenance", 6, r"(?:creat|updat|deploy|sav|submit|put)\w*\W+(?:\w+\W+){0,3}maintenance ?"
                r"configuration.{0,500}(?:\b400\b|bad ?request|invalid|not valid|not supported|isn't supported|"
                r"unsupported)|"
                r"maintenance ?configuration.{0,300}(?:status code '?badrequest|invalidparameter|\b400 bad request)|"
                r"maintenance (?:scope|subscope|window|duration|recurrence|start ?date ?time)\w*\W+(?:\w+\W+){0,4}"
                r"(?:is |was |are )?(?:invalid|not valid|not supported|isn't supported|unsupported)",
                unless=("managedcluster", "control plane", "aks", "node os")),
        ),
        ADVICE_ONLY,
        (
            "An InGuestPatch maintenance configuration needs extensionProperties.InGuestPatchMode (User), an "
            "api-version that knows the InGuestPatch scope, a duration between 01:30 and 03:55 and a recurrence of "
            "6 hours or more: fix the definition and deploy it again.",
        ),
    ),
)
