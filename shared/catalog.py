"""The scenario catalog: one row per troubleshooting-guide scenario (scenarios.md).

A row holds what identifies the scenario (signatures), what the guide says to do
(advice, diagnostic queries) and which remediations apply, with their default mode.
Adding a scenario is adding a row here, plus its corpus lines and tests.

Signatures are matched by `shared.classifier` against lower-cased, whitespace-folded
text. `anchor` is a literal that must occur (a cheap `in` test keeps the classifier
fast on 1 MB logs); `pattern`, when set, must then match too. Weights: 9-10 for the
guide's exact error strings, 6-8 for strong paraphrases and structured statuses,
3.5 or less for words that only count with the family's context (see MIN_SCORE).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain import Family, Mode, RemediationRef

UM_DOC = "https://learn.microsoft.com/azure/automation/troubleshoot/update-management"
AIB_DOC = "https://learn.microsoft.com/azure/virtual-machines/linux/image-builder-troubleshoot"

# Scores below this say nothing: the text stays `unknown`.
MIN_SCORE = 4.0
# A specific scenario scoring this much beats a generic (wrapper) scenario that outscores it.
GENERIC_YIELD = 7.0
# Added to a scenario's score when the text speaks of its family (Packer, Update Management, ...).
FAMILY_BONUS = 1.0


@dataclass(frozen=True, slots=True)
class Sig:
    anchor: str
    weight: float
    pattern: str | None = None
    unless: tuple[str, ...] = ()
    # A wrapper ("Packer build command has failed", "update run Failed"): a diagnosis resting on
    # wrappers alone yields to a specific cause found in the same text (the log, the machine runs).
    generic: bool = False


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

    @property
    def doc(self) -> str:
        return f"{AIB_DOC if self.family is Family.AIB else UM_DOC}#{self.anchor}"


def _r(name: str, mode: Mode) -> RemediationRef:
    return RemediationRef(name, mode)


ADVICE_ONLY = (_r("follow-guide", Mode.ADVICE),)
ADVICE_QUERIES = (_r("run-diagnostic-queries", Mode.ADVICE),)

Q_HEARTBEAT = "Heartbeat\n| summarize by Computer, Solutions"
Q_OPERATION = "Operation\n| where OperationCategory == 'Data Collection Status'\n| sort by TimeGenerated desc"
Q_UPDATE_MACHINE = (
    'Update\n| where Computer contains "{computer}"\n'
    "| project TimeGenerated, Computer, SourceComputerId, Title, UpdateState"
)
Q_SOURCE_ID = "Heartbeat | where TimeGenerated > ago(30d) | distinct SourceComputerId, Computer, ComputerIP"
Q_WSUS = (
    'Update | where UpdateState == "Needed" and ApprovalSource == "WSUS" and Approved == "False" '
    "| summarize max(TimeGenerated) by Computer, KBID, Title"
)

# A Packer download progress line: "big.iso 1.01 GiB / 1.45 GiB ... 69.66%".
_UNIT = r"\d+(?:\.\d+)? ?(?:b|kb|mb|gb|kib|mib|gib)"
_PROGRESS = _UNIT + " / " + _UNIT + r"\b.{0,60}?\d+(?:\.\d+)?%"

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

# Advice per HRESULT, from the guide's table (um.hresult).
HRESULT_ADVICE: dict[str, str] = {
    "0x8024402C": "Network connectivity problem: make sure the machine reaches Update Management (see the "
    "network planning ports and addresses). With a WSUS server, check that the WUServer and "
    "WUStatusServer values under HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate name the "
    "right server.",
    "0x8024401C": "Network connectivity problem: make sure the machine reaches Update Management (see the "
    "network planning ports and addresses).",
    "0x8024402F": "Network connectivity problem: make sure the machine reaches Update Management (see the "
    "network planning ports and addresses).",
    "0x8024001E": "The update operation did not complete because the service or system was shutting down.",
    "0x8024002E": "The Windows Update service is disabled.",
    "0x80072EE2": "Network connectivity problem or a problem talking to the configured WSUS server: check "
    "the WSUS settings and that the service is reachable from the client.",
    "0x80070422": "Make sure the Windows Update service (wuauserv) is running and not disabled.",
    "0x80070005": "Access denied: an infected machine, Windows Update settings not configured correctly, "
    "a file permission error on %WinDir%\\SoftwareDistribution, or too little disk space on C:.",
}
HRESULT_GENERIC = (
    "Look the code up in the Windows Update error code list; %Windir%\\Windowsupdate.log and the "
    "Windows Update troubleshooter can show the cause."
)

# The same image read fails as "not authorised" (403) or "not found" (404): the code decides.
_NOT_FOUND = ("statuscode=404", "status=404", "resourcenotfound")
_FORBIDDEN = ("statuscode=403", "status=403", "authorizationfailed")
# At machine registration an HRESULT is a communication problem, not an update agent one.
_REGISTRATION = ("unable to register machine", "registration failed", "worker registration", "registration fail")
# The Win32-range codes of the guide's HRESULT table (0x8024xxxx codes are Windows Update's own).
_GUIDE_HRESULTS = r"0x8007(?:0005|0422|2ee2|2efd|2efe|2f8f|0643)"
_NOT = r"(?:don't|do not|doesn't|does not|didn't|did not|not|never|won't|cannot|can't|isn't|aren't)"
_W = r"(?:[\w.'-]+[^\w.'-]+)"  # one word and what follows it (disjoint classes: no backtracking blow-up)

SCENARIOS: tuple[Scenario, ...] = (
    # ---------------------------------------------------------------- Update Management
    Scenario(
        "um.enable_failed", Family.UPDATE, "Failed to enable the Update solution",
        "scenario-you-receive-the-error-failed-to-enable-the-update-solution",
        (
            Sig("failed to enable the update", 10, r"failed to enable the update (?:management )?solution"),
            Sig("update", 6, rf"(?:fail\w*|unable|cannot|can't|couldn't|could not|error)\W+{_W}{{0,3}}"
                rf"(?:enabl|onboard)\w*\W+{_W}{{0,3}}update (?:management|solution)"),
            Sig("update management", 6, rf"(?:enabl|onboard)\w*\W+{_W}{{0,2}}update management\W+{_W}{{0,4}}"
                r"(?:fail|error)"),
            Sig("disconnected", 3, r"non-?compliant.{0,200}disconnected|disconnected.{0,200}non-?compliant"),
        ),
        ADVICE_ONLY,
        (
            "Run the update agent troubleshooter for Windows or Linux on the machine.",
            "Check the network requirements of Update Management and of the Log Analytics agent: the "
            "agent fails when it cannot resolve the DNS URLs.",
            "Check the scope configuration: a machine in the workspace but not in Update Management "
            "is not targeted by it.",
            "Remove the Hybrid Runbook Worker configuration and enable the solution again.",
        ),
    ),
    Scenario(
        "um.superseded_missing", Family.UPDATE, "Superseded update indicated as missing",
        "scenario-superseded-update-indicated-as-missing-in-update-management",
        (
            Sig("supersed", 8, r"supersed\w*.{0,160}(?:missing|needed|required|not installed|non-?compliant|"
                r"applicable|shows? (?:up|as))|(?:missing|needed|required|applicable).{0,160}supersed"),
            Sig("supersed", 4),
        ),
        ADVICE_ONLY,
        (
            "Confirm the superseded update is 100% not applicable, then set its approval state to Declined.",
            "Force a compliance rescan from the Machines view, repeat for other superseded updates, and "
            "run the cleanup wizard to delete files of declined updates.",
            "With WSUS, clean up all superseded updates to refresh the infrastructure; repeat regularly.",
        ),
    ),
    Scenario(
        "um.not_showing", Family.UPDATE, "Machines don't show up in Update Management", "nologs",
        (
            Sig("overquota", 9),
            Sig("data collection stopped due to daily limit", 9),
            Sig("daily limit of free data", 8),
            Sig("daily cap", 5, r"daily cap.{0,80}(?:reached|hit|exceeded)|(?:reached|hit|exceeded).{0,40}daily cap"),
            Sig("not configured", 5, r"(?:shows?|showing|status|state|appears?|listed)\W+(?:as\W+)?['\"]?"
                r"not configured"),
            Sig("not assessed", 5),
            Sig("update management", 7, rf"(?:machines?|vms?|servers?|computers?|nodes?)\W+{_W}{{0,5}}{_NOT}\W+"
                rf"(?:\w+\W+)?(?:show|appear|list|visible)\w*\W+{_W}{{0,4}}update management"),
            Sig("update management", 6, r"missing (?:from|in) (?:the )?update management"),
            Sig("heartbeat", 4, r"heartbeat.{0,200}(?:but|yet|however).{0,120}(?:not|no|missing)"),
            Sig("update management", 6, r"update management.{0,300}(?:not (?:in|on) the list|(?:is|are) (?:not|n't) "
                r"(?:appearing|showing|listed|visible)|(?:don't|doesn't|do not|does not) (?:show|appear))"
                r".{0,400}heartbeat|heartbeat.{0,400}update management.{0,200}(?:not (?:in|on) the list|"
                r"(?:don't|doesn't) (?:show|appear))"),
        ),
        ADVICE_QUERIES,
        (
            "Run the update agent troubleshooter (Windows or Linux) on the machine.",
            "Check that the machine reports to the workspace linked to the Automation account "
            "(Automation account > Linked workspace).",
            "If the machine is absent from the Heartbeat query, reinstall the Log Analytics agent; if it is "
            "present, fix the scope configuration so it targets the machine.",
            "If the Operation query shows 'Ingestion status = OverQuota', the workspace's daily cap stopped "
            "data collection: raise or remove it under Usage and estimated costs > Data volume management.",
            "If nothing helps, re-deploy the Hybrid Runbook Worker.",
        ),
        (Q_HEARTBEAT, Q_OPERATION),
    ),
    Scenario(
        "um.rp_not_registered", Family.UPDATE, "Unable to register Automation Resource Provider", "rp-register",
        (
            Sig("unable to register automation resource provider", 10),
            Sig("not registered to use namespace", 10, r"not registered to use namespace\W+microsoft\.automation"),
            Sig("missingsubscriptionregistration", 9, r"missingsubscriptionregistration.{0,300}microsoft\.automation"
                r"|microsoft\.automation.{0,300}missingsubscriptionregistration"),
            Sig("microsoft.automation", 8, rf"microsoft\.automation\W+{_W}{{0,5}}(?:is )?(?:not registered|"
                r"notregistered|unregistered)|(?:register|registration)\w*\W+(?:the\W+)?(?:resource provider\W+)?"
                r"microsoft\.automation\W+(?:\w+\W+){0,3}(?:fail|error|denied)"),
            Sig("automation", 7, rf"automation\W+(?:resource )?provider\W+{_W}{{0,4}}(?:not registered|"
                r"unregistered|isn't registered|is not registered|fail)"),
        ),
        (_r("register-resource-provider", Mode.AUTO),),
        (
            "Register the Microsoft.Automation resource provider on the subscription "
            "(Subscriptions > Resource providers, or `az provider register --namespace Microsoft.Automation`).",
        ),
    ),
    Scenario(
        "um.components_enabled_configuring", Family.UPDATE,
        "Update Management components enabled, VM still shows as being configured",
        "components-enabled-not-working",
        (
            Sig("solution have been enabled", 10),
            Sig("this virtual machine is being configured", 9),
            Sig("enabled", 7, r"components? (?:are|is|have been|has been|were|got) enabled.{0,80}(?:being configured|"
                r"configuring)"),
            Sig("can sometimes take up to 15 minutes", 8),
            Sig("configur", 7, r"(?:stuck|still|keeps?|remains?|hangs?)\W+(?:\w+\W+){0,4}(?:being configured|"
                r"configuring|in configuration)"),
            Sig("duplicate", 5, r"duplicate\W+(?:\w+\W+){0,2}(?:computer|machine|vm|host)\W*names?"),
            Sig("same", 5, r"same\W+(?:\w+\W+){0,2}(?:computer|machine|vm|host)\W*names?"),
            Sig("clone", 6, r"clon\w+.{0,200}(?:source ?computer ?id|mma|microsoft monitoring agent|sysprep)|"
                r"(?:source ?computer ?id).{0,200}clon"),
            Sig("sourcecomputerid", 5, r"same sourcecomputerid|identical sourcecomputerid"),
        ),
        ADVICE_QUERIES,
        (
            "Check that the machine can reach the Automation account (Update Management network ports "
            "and addresses).",
            "Duplicate computer names with different SourceComputerIds (same name in different resource "
            "groups reporting to one workspace): rename the VMs so names are unique.",
            "Cloned image with the same SourceComputerId: remove the VM from the "
            "MicrosoftDefaultScopeConfig-Updates saved search, delete "
            "HKLM:\\software\\microsoft\\hybridrunbookworker, run `Restart-Service HealthService`; if that "
            "fails, sysprep the image first and install MMA afterwards.",
        ),
        (Q_UPDATE_MACHINE,),
    ),
    Scenario(
        "um.linked_subscription_tenant", Family.UPDATE,
        "Linked subscription error for machines in another Azure tenant", "multi-tenant",
        (
            Sig("not authorized to access linked subscription", 10),
            Sig("linked subscription", 7),
            Sig("tenant", 6, r"(?:update deployment|software ?update ?configuration|schedul\w+|patch\w*)"
                r".{0,150}(?:another|different|other|second|customer'?s?) (?:azure )?(?:ad )?(?:tenant|directory)|"
                r"(?:another|different|other|second) (?:azure )?(?:ad )?(?:tenant|directory).{0,150}"
                r"(?:update deployment|update management|patch|software ?update)"),
            Sig("tenant", 5, r"(?:cross|multi)-?tenant.{0,120}(?:update|patch)"),
        ),
        (_r("use-non-azure-computer-names", Mode.APPROVAL),),
        (
            "Machines in another tenant cannot be targeted as Azure VMs: create the schedule with "
            "New-AzAutomationSchedule -ForUpdate and pass those machines to "
            "New-AzAutomationSoftwareUpdateConfiguration as -NonAzureComputer (nonAzureComputerNames).",
        ),
    ),
    Scenario(
        "um.unexplained_reboots", Family.UPDATE, "Unexplained reboots", "node-reboots",
        (
            Sig("reboot", 7, r"never reboot.{0,200}(?:reboot|restart)|(?:reboot|restart)\w*.{0,200}"
                r"(?:never reboot|reboot (?:setting|option|control)|rebootsetting\W+never|set to never)"),
            Sig("never", 6, r"(?:reboot|restart)\w*\W+(?:\w+\W+){0,5}(?:even though|although|despite)\W+"
                r"(?:\w+\W+){0,6}never"),
            Sig("reboot", 6, r"(?:unexpected|unexplained|unplanned|surprise|random)\w*\W+(?:\w+\W+){0,2}reboot"),
            Sig("restart", 6, r"(?:unexpected|unexplained|unplanned|surprise|random)\w*\W+(?:\w+\W+){0,2}restart"),
        ),
        ADVICE_ONLY,
        (
            "Windows Update behaviour is changed by several registry keys that can all force a restart: "
            "review the 'Configure Automatic Updates by editing the registry' keys and the registry keys "
            "used to manage restart, so the machines honour 'Never reboot'.",
        ),
    ),
    Scenario(
        "um.failed_to_start", Family.UPDATE, "Machine shows Failed to start in an update deployment",
        "failed-to-start",
        (
            Sig("hybrid worker group that does not exist", 10),
            Sig("failed to start the runbook", 9),
            Sig("patch-microsoftomscomputer", 8),
            Sig("failedtostart", 8),
            Sig("failed to start", 7, r"(?:machine|vm|server|computer|node)s?\W+(?:\w+\W+){0,8}"
                r"(?:show|status|state|report|display|list|marked)\w*\W+(?:\w+\W+){0,2}['\"]?failed to start"),
            Sig("failed to start", 6, r"failed to start['\"]?\W+(?:\w+\W+){0,4}(?:update deployment|"
                r"deployment|update run|patch|status)"),
            Sig("source", 6, r"source ?computer ?id\W+(?:\w+\W+){0,4}(?:changed|has changed|was changed)|"
                r"chang\w*\W+(?:\w+\W+){0,3}source ?computer ?id"),
            Sig("concurrent job", 5, r"(?:2,?000|limit).{0,40}concurrent jobs?|concurrent jobs?.{0,40}limit"),
            Sig("failed to start", 3),
        ),
        (
            _r("readd-changed-machines", Mode.AUTO),
            _r("remove-missing-machines", Mode.APPROVAL),
            _r("retry-later", Mode.ADVICE),
        ),
        (
            "Check that the machine still exists and is reachable; if it no longer exists, remove it "
            "from the deployment.",
            "Check the network requirements and the Hybrid Runbook Worker with the agent troubleshooter.",
            "An MMA update may have changed the SourceComputerId: find machines with a new id "
            "(Heartbeat query) and remove and re-add them in the deployments that target them.",
            "An Automation account runs at most 2,000 concurrent jobs (each machine is a job): if the "
            "run was throttled, retry later or spread the deployments. Prefer dynamic groups.",
        ),
        (Q_SOURCE_ID,),
    ),
    Scenario(
        "um.installed_without_deployment", Family.UPDATE, "Updates are installed without a deployment",
        "updates-nodeployment",
        (
            Sig("install", 8, rf"updates?\W+{_W}{{0,4}}(?:got |get |were |are |being )?(?:installed|installing|"
                rf"applied)\W+{_W}{{0,4}}(?:without|outside|with no|no)\W+{_W}{{0,3}}(?:deployment|schedule)"),
            Sig("auto download and install", 6),
            Sig("auoptions", 6, r"auoptions\W+(?:\w+\W+){0,3}(?:0x)?4\b"),
            Sig("automatic updates", 6, r"configure automatic updates\W{0,4}(?:=|:|is|set to)?\W{0,3}4\b|"
                r"auto download and schedule the install"),
            Sig("install", 6, r"install(?:ed|ing)?\b.{0,200}\b(?:no|without|not created any|haven't created any)\W+"
                r"(?:\w+\W+){0,2}(?:deployment|schedule)s?\b"),
            Sig("install", 5, r"(?:automatically|on their own|by themselves)\W+(?:\w+\W+){0,3}install|"
                r"install\w*\W+(?:\w+\W+){0,3}(?:automatically|on their own|by themselves)"),
        ),
        ADVICE_ONLY,
        (
            "Windows installs updates as soon as they are available when "
            "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate\\AU is 4 (auto download and install); "
            "set it to 3 (auto download but do not auto install) on Update Management clients.",
        ),
    ),
    Scenario(
        "um.already_registered", Family.UPDATE, "Machine is already registered to a different account",
        "machine-already-registered",
        (
            Sig("already registered to a different", 10),
            Sig("already registered", 6, r"already registered.{0,80}(?:account|workspace|automation|"
                r"hybrid|patch management)"),
            Sig("already", 6, r"already (?:belongs|registered|assigned|linked|bound)\W+(?:\w+\W+){0,2}"
                r"(?:different|another|other|old) (?:automation )?(?:account|workspace)"),
        ),
        (_r("delete-stale-hybrid-worker-group", Mode.APPROVAL),),
        (
            "The machine is onboarded to another workspace for Update Management: make sure it reports to "
            "the right workspace, then clean up by deleting the hybrid runbook worker group and retry.",
        ),
    ),
    Scenario(
        "um.cannot_communicate", Family.UPDATE, "Machine can't communicate with the service",
        "machine-unable-to-communicate",
        (
            Sig("do not possess a common algorithm", 9),
            Sig("error parsing positive infinity value", 9),
            Sig("not issued by a certificate authority used for microsoft services", 9),
            Sig("intercepts tls/ssl", 7),
            Sig("exception form hresult", 9),
            Sig("e_accessdenied", 9, r"(?:regist\w+|hybrid|patch management).{0,300}(?:e_accessdenied|0x80070005)|"
                r"(?:e_accessdenied|0x80070005).{0,300}(?:regist\w+|hybrid)"),
            Sig("e_accessdenied", 5),
            Sig("opinsights.azure.com", 7, r"opinsights\.azure\.com.{0,200}(?:certificate|tls|ssl|proxy|"
                r"connect|unreachable|blocked)|(?:certificate|tls|ssl|proxy|connect).{0,200}opinsights\.azure\.com"),
            Sig("registration failed with exception", 6),
            Sig("unable to register machine for patch management", 6),
        ),
        ADVICE_ONLY,
        (
            "A proxy, gateway or firewall may be blocking network communication (or intercepting TLS): "
            "review the network and allow the ports and addresses that Update Management and Hybrid "
            "Runbook Workers need.",
        ),
    ),
    Scenario(
        "um.selfsigned_cert", Family.UPDATE, "Unable to create a self-signed certificate",
        "unable-to-create-selfsigned-cert",
        (
            Sig("failed to create a self-signed certificate", 10),
            Sig("certificatecreationexception", 9),
            Sig("self", 7, r"(?:create|creating|generate|generating)\W+(?:a\W+)?self[- ]?signed cert"),
            Sig("crypto\\rsa", 5),
        ),
        ADVICE_ONLY,
        (
            "The Hybrid Runbook Worker could not generate a self-signed certificate: give the system "
            "account read access to C:\\ProgramData\\Microsoft\\Crypto\\RSA and retry.",
        ),
    ),
    Scenario(
        "um.maintenance_window_exceeded", Family.UPDATE, "Scheduled update failed: MaintenanceWindowExceeded",
        "mw-exceeded",
        (
            Sig("maintenancewindowexceeded", 10, r"maintenancewindowexceeded(?!\W{0,4}(?:false|0)\b)"),
            Sig("maintenance window exceeded", 10),
            Sig("maintenance window", 9, r"exceed\w* (?:the |its |their |our )?(?:\w+ )?maintenance window|"
                r"maintenance window\W+(?:\w+\W+){0,3}(?:exceeded|exceeds|exceeding|reached|ran out|expired|elapsed|"
                r"too short|ended before|was over|not long enough|isn't long enough)"),
            Sig("window exceeded", 5),
            Sig("window", 6, r"ran out of (?:the )?(?:maintenance |patch(?:ing)? )?window|"
                r"(?:patch(?:ing)?|update) window\W+(?:\w+\W+){0,3}(?:exceeded|too short|ran out|expired)"),
        ),
        (_r("extend-maintenance-window", Mode.AUTO),),
        (
            "The default maintenance window is 120 minutes; Automation allows up to 6 hours (PT6H): edit "
            "the failed scheduled deployment and increase its window (Update Manager: raise the maintenance "
            "configuration's duration within its limit).",
        ),
    ),
    Scenario(
        "um.hresult", Family.UPDATE, "Machine shows Not assessed with an HRESULT exception", "hresult",
        (
            Sig("0x802", 8, r"0x8024[0-9a-f]{4}", unless=_REGISTRATION),
            Sig("0x800", 8, _GUIDE_HRESULTS, unless=_REGISTRATION),
            # Other Win32 and servicing codes (0x8007000e is out of memory anywhere) need the guide's context.
            Sig("0x800", 3.5, r"0x800(?:7|9|f)[0-9a-f]{4}", unless=_REGISTRATION),
            Sig("exception from hresult", 8, r"exception from hresult\W{0,3}(?:0x8024|" + _GUIDE_HRESULTS + ")",
                unless=_REGISTRATION),
            Sig("hresult", 3.5),
            Sig("wuauserv", 5, r"wuauserv.{0,80}(?:disabled|stopped|not running)|(?:disabled|stopped).{0,80}wuauserv"),
            Sig("windows update service", 5, r"windows update service\W+(?:\w+\W+){0,3}(?:disabled|stopped|"
                r"not running|cannot be started)"),
        ),
        ADVICE_ONLY,
        (
            "The update agent (Windows Update Agent, or the Linux package manager) is not configured "
            "correctly: try running updates locally on the machine.",
            "Often network or firewall configuration: check the package repository endpoint (Linux), or "
            "the Windows Update / WSUS endpoints and the WUServer registry key (Windows).",
        ),
    ),
    Scenario(
        "um.run_failed_linux", Family.UPDATE, "Update run returns Failed status",
        "scenario-update-run-returns-failed-status-linux",
        (
            Sig("update run status: failed", 6, generic=True),
            Sig("maintenance run status: failed", 6, generic=True),
            Sig("status: failed", 2.5, generic=True),
            Sig("update", 5, rf"update (?:run|deployment|job)s?\W+{_W}{{0,6}}(?:failed(?! to start)|fails|"
                r"returns? (?:a )?(?:failed|failure)|ends? (?:as|in|with) (?:a )?fail)", generic=True),
            Sig("package_manager_failure", 8),
            Sig("exclud", 3, r"exclud\w*\W+(?:\w+\W+){0,3}packages?"),
            Sig("package manager", 7, r"package manager\W+(?:\w+\W+){0,3}(?:unhealthy|broken|locked|corrupt\w*|"
                r"not healthy|in a bad state)"),
            Sig("dpkg was interrupted", 8),
            Sig("could not get lock", 7),
            Sig("unmet dependencies", 8),
            Sig("fix-broken", 7),
            Sig("dependenc", 7, r"dependenc\w+.{0,80}(?:not resolved|unresolved|could not be resolved|unmet|"
                r"missing|conflict)|(?:unresolved|unmet|missing|broken|conflicting)\W+(?:\w+\W+){0,2}dependenc"),
            Sig("omsupdatemgmt.log", 6),
            Sig("rpmdb", 6),
            Sig("depsolv", 7),
            Sig("error: package", 5),
        ),
        (_r("exclude-failed-packages", Mode.APPROVAL),),
        (
            "Check the job output of the affected machine in the run for the specific error; Update "
            "Management needs a healthy package manager.",
            "If specific patches, packages or updates appear right before the failure, exclude them from "
            "the next deployment.",
            "Before the next deployment, keep a copy of "
            "/var/opt/microsoft/omsagent/run/automationworker/omsupdatemgmt.log for troubleshooting.",
        ),
    ),
    Scenario(
        "um.wsus_unapproved", Family.UPDATE, "Updates available but not shown: not approved in WSUS/SCCM",
        "i-know-updates-are-available-but-they-dont-show-as-available-on-my-machines",
        (
            Sig("approv", 8, r"(?:not|un)[\s-]?approved.{0,160}(?:wsus|sccm|configuration manager)|"
                r"(?:wsus|sccm|configuration manager).{0,200}(?:not|un)[\s-]?approved|"
                r"approv\w*\W+(?:\w+\W+){0,4}in (?:wsus|sccm)"),
            Sig("approvalsource", 7),
            Sig("approv", 6, r"(?:wsus|sccm|mecm|configuration manager|software update point|\bsup\b).{0,200}"
                rf"(?:{_NOT}|hasn't|has not|haven't|nothing)\W+(?:\w+\W+){{0,4}}approv"),
            Sig("usewuserver", 5),
            Sig("available", 5, rf"updates?\W+{_W}{{0,5}}(?:available|released|out)\W+{_W}{{0,6}}{_NOT}\W+"
                r"(?:\w+\W+)?(?:show|appear|list|visible)"),
        ),
        ADVICE_QUERIES,
        (
            "Machines that get updates from WSUS or Configuration Manager only install approved updates: "
            "check UseWUServer in the registry, then approve the updates in WSUS/SCCM.",
        ),
        (Q_WSUS,),
    ),
    Scenario(
        "um.kb2267602_missing", Family.UPDATE, "KB2267602 (Defender definitions) is consistently missing",
        "kb2267602-is-consistently-missing",
        (
            Sig("kb2267602", 10),
            Sig("2267602", 9),
            Sig("defender", 6, r"defender\W+(?:antivirus\W+)?(?:\w+\W+){0,2}definition\w*.{0,160}(?:missing|needed|"
                r"non-?compliant|keeps|always|every day|daily)"),
        ),
        (_r("acknowledge-benign", Mode.AUTO),),
        (
            "KB2267602 is the Windows Defender definition update; it is released daily, so it shows as "
            "missing between releases. Benign: no change is needed.",
        ),
    ),
    # ---------------------------------------------------------------- Azure VM Image Builder
    Scenario(
        "aib.template_update_not_supported", Family.AIB, "Update/Upgrade of image templates is not supported",
        "updateupgrade-of-image-templates-is-currently-not-supported",
        (
            Sig("of image templates is currently not supported", 10),
            Sig("update/upgrade of image template", 9),
            Sig("template", 6, r"(?:cannot|can't|unable to|not possible to|not allowed to)\W+(?:\w+\W+){0,2}"
                r"(?:update|modify|change|redeploy|resubmit)\W+(?:\w+\W+){0,3}(?:the\W+)?(?:an\W+)?"
                r"(?:existing\W+)?(?:image\W*)?template"),
            Sig("template", 5, r"image ?template\W+(?:\w+\W+){0,4}already exists"),
            Sig("supported", 7, r"(?:updat|upgrad)\w*(?:/(?:updat|upgrad)\w*)?\W+(?:\w+\W+){0,2}(?:image ?)?templates?"
                r"\W+(?:\w+\W+){0,2}(?:is ?n[o']?t|are ?n[o']?t|not|never) supported"),
        ),
        (_r("recreate-image-template", Mode.APPROVAL),),
        (
            "The template already exists, and image templates cannot be updated in place: a failed "
            "submission leaves the failed template behind. Delete it, then submit the template again.",
        ),
    ),
    Scenario(
        "aib.deployment_failed_permissions", Family.AIB,
        "Resource operation completed with terminal provisioning state 'Failed'",
        "the-resource-operation-completed-with-terminal-provisioning-state-failed",
        (
            Sig("terminal provisioning state", 9, r"(?:virtualmachineimages|imagetemplate|image template|"
                r"image builder).{0,400}terminal provisioning state|terminal provisioning state.{0,400}"
                r"(?:virtualmachineimages|imagetemplate|image template|image builder|internaloperationerror)"),
            Sig("terminal provisioning state", 3.5),
            Sig("resourcedeploymentfailure", 3.5),
            Sig("internaloperationerror", 3.5),
        ),
        ADVICE_ONLY,
        (
            "Mostly missing permissions: give the Image Builder identity access to the source image or "
            "Shared Image Gallery resource group, the distribution image or gallery, and any storage "
            "account, container or blob the File customizer reads.",
        ),
    ),
    Scenario(
        "aib.authorization_failed", Family.AIB, "Error getting managed image: authorization failed",
        "error-getting-managed-image",
        (
            Sig("error getting managed image", 9, unless=_NOT_FOUND),
            Sig("step failed: error getting", 8, unless=_NOT_FOUND),
            Sig("does not have authorization to perform action", 8,
                r"does not have authorization to perform action\W+microsoft\.(?:compute/(?:images|galleries|"
                r"disks|snapshots)|virtualmachineimages|managedidentity)"),
            Sig("does not have authorization to perform action", 3.0),
            Sig("authorizationfailed", 3.0),
            Sig("403", 5, r"(?:image builder|aib|imagetemplate|packer).{0,300}(?:403|forbidden)"),
        ),
        ADVICE_ONLY,
        (
            "The Image Builder identity lacks a permission: grant the action named in the error over the "
            "scope named in the error (source image or gallery resource group, distribution target, "
            "storage for File customizers).",
        ),
    ),
    Scenario(
        "aib.source_image_not_found", Family.AIB, "Build step failed for image version: source not found",
        "build--step-failed-for-image-version",
        (
            Sig("step failed for image version", 9, unless=_FORBIDDEN),
            Sig("error getting image version", 8, unless=_FORBIDDEN),
            Sig("galleryimageversionsclient#get", 8, unless=_FORBIDDEN),
            Sig("resourcenotfound", 9.5, r"(?:managed image|image version|imagesclient#get|microsoft\.compute/images/|"
                r"/versions/|sharedimageversion|gallery version|source image).{0,400}resourcenotfound|"
                r"resourcenotfound.{0,300}(?:managed image|image version|microsoft\.compute/images/|/versions/|"
                r"(?:that|the|this|source|gallery) version)"),
            Sig("image", 7, rf"(?:source|base|platform|marketplace|gallery)\W+image\W+{_W}{{0,8}}(?:not found|"
                r"was not found|does not exist|doesn't exist|could not be found|cannot be found|not available)"),
            Sig("image", 6, r"(?:platformimagenotfound|imageversionnotfound|galleryimagenotfound)"),
        ),
        ADVICE_ONLY,
        (
            "Image Builder cannot find the source image: check the image reference is right and that the "
            "image (version) exists in the template's region.",
        ),
    ),
    Scenario(
        "aib.external_file_download_failed", Family.AIB, "Downloading external file to local file failed",
        "downloading-external-file-to-local-file",
        (
            Sig("downloading external file", 9),
            Sig("customizer.fp", 7),
            Sig("error downloading", 8, r"error downloading\W+'[^']*'\W+to\W+'"),
            Sig("sourceuri", 6, r"(?:file customizer|sourceuri).{0,200}(?:404|403|not ?found|forbidden|"
                r"authorizationpermissionmismatch|could not download|failed to download|unreachable)"),
        ),
        ADVICE_ONLY,
        (
            "The file name or location is wrong, or the location cannot be reached: check the file is "
            "reachable from the build VM and that its name and location are correct.",
        ),
    ),
    Scenario(
        "aib.customizer_failed", Family.AIB, "Packer build command failure (a customizer failed)",
        "packer-build-command-failure",
        (
            Sig("packer build command has failed", 8, generic=True),
            Sig("during the image build a failure has occurred", 8, generic=True),
            Sig("during the image build, a failure has occurred", 8, generic=True),
            Sig("packerbuildfailed", 8, generic=True),
            Sig("build/customization step failed", 7, generic=True),
            Sig("error when executing packerizer", 6, generic=True),
            Sig("script exited with non-zero exit status", 7),
            Sig("provisioning step had errors", 7),
            # not the wrapper's own "which build/customization step failed"
            Sig("customiz", 6, r"(?<!build/)customi[sz](?:er|ation)\W+(?:\w+\W+){0,4}(?:fail|error)"),
            Sig("(telemetry) starting provisioner", 2, generic=True),
        ),
        ADVICE_ONLY,
        (
            "A customization failed: open customization.log and search for '(telemetry)'; the last "
            "'Starting provisioner' without its 'ending' line is the customizer that failed.",
        ),
    ),
    Scenario(
        "aib.build_timeout", Family.AIB, "Build timeout exceeded", "timeout-exceeded",
        (
            Sig("timeout waiting for microservice to complete", 10),
            Sig("failed while waiting for packerizer: timeout", 9),
            Sig("context deadline exceeded", 3.5),
            Sig("buildtimeoutinminutes", 3),
            Sig("build", 6, r"(?:image )?build\w*\W+(?:\w+\W+){0,4}(?:timed? ?out|timing out|times out|"
                r"time-?out|exceed\w* (?:the )?(?:build )?time)(?! waiting for (?:winrm|ssh))"),
            Sig("build timeout", 5),
        ),
        (_r("increase-image-build-timeout", Mode.AUTO),),
        (
            "Review customization.log from the bottom for the last '(telemetry)' customizer; check scripts "
            "for prompts (use quiet options such as `apt-get install -y`) and waits.",
            "Use a script or inline download instead of the File customizer for files over 20 MB.",
            "If the customization needs more time, raise buildTimeoutInMinutes (default 4 hours, at most "
            "960); for heavy work consider a larger build VM size.",
        ),
    ),
    Scenario(
        "aib.large_file_download", Family.AIB, "Long file download time (File customizer)", "long-file-download-time",
        (
            Sig(" b / ", 6, r"\d+ b / \d+ b \d+(?:\.\d+)?%"),
            Sig("ib / ", 6, _PROGRESS),
            Sig("b / ", 4, _PROGRESS),
            Sig("provisioner file", 4, r"provisioner file.{0,600}" + _PROGRESS),
            Sig("customizer", 7, r"(?:\d+ ?gb|\d+(?:\.\d+)? ?gib|large|big|huge)\W+(?:\w+\W+){0,3}(?:iso|zip|file|"
                r"installer|media)\w*\W+(?:\w+\W+){0,6}file\W{0,2} customizer|"
                r"file\W{0,2} customizer\W+(?:\w+\W+){0,10}(?:large|big|huge|slow|hours|\d+ ?h\b|"
                r"\d+ ?gb|\d+(?:\.\d+)? ?gib|gigabyte)"),
            Sig("download", 5, r"(?:large|big|huge|\d+ ?gb)\W+(?:\w+\W+){0,3}(?:file|iso|zip|installer)\w*"
                r"\W+(?:\w+\W+){0,6}(?:takes?|took|taking) (?:hours|forever|very long|ages)"),
            Sig("hours later", 3),
        ),
        ADVICE_ONLY,
        (
            "The File customizer suits only small files (under 20 MB). Download large files with a script "
            "or inline command instead: wget or curl on Linux, Invoke-WebRequest on Windows.",
        ),
    ),
    Scenario(
        "aib.sig_replication_timeout", Family.AIB, "Error waiting on Shared Image Gallery (replication timeout)",
        "error-waiting-on-shared-image-gallery",
        (
            Sig("error waiting on shared image gallery", 10),
            Sig("publishing mdi to shared image gallery", 8),
            Sig("error returned from sig client", 8),
            Sig("replicat", 3.5, r"replicat\w*.{0,160}(?:timed? ?out|timeout|deadline|too long|takes? hours)"),
            Sig("gallery", 3, r"gallery.{0,200}replicat|replicat\w*.{0,200}gallery"),
        ),
        (_r("increase-image-build-timeout", Mode.APPROVAL),),
        (
            "Image Builder timed out waiting for the gallery to replicate the image. The image version was "
            "probably created and replication goes on: check the distribution runOutput for its "
            "properties, and raise buildTimeoutInMinutes for the next build.",
        ),
    ),
    Scenario(
        "aib.low_resources", Family.AIB, "Low Windows resources on the build VM",
        "low-windows-resource-information-events",
        (
            Sig("system shutdown is in progress", 8),
            Sig("machine not yet available (exit status 1115)", 8),
            Sig("errored: unexpected eof", 8),
            Sig("exited with code: 101", 5),
            Sig("system performance:", 3),
            Sig("windows modules installer to exit", 4),
            Sig("out of", 5, r"(?:running out of|ran out of|out of)\W+(?:memory|resources|disk space)"),
            Sig("resource", 5, r"(?:low|insufficient|exhaust\w*)\W+(?:\w+\W+){0,2}(?:memory|resources|cpu)"),
        ),
        (_r("increase-image-build-vm-size", Mode.AUTO),),
        (
            "The build VM ran out of resources, typical of Windows Update on the default Standard_D1_v2: "
            "raise the build VM size (vmProfile.vmSize).",
        ),
    ),
    Scenario(
        "aib.no_artifacts", Family.AIB, "Builds finished but no artifacts were created",
        "builds-finished-but-no-artifacts-were-created",
        (
            Sig("builds finished but no artifacts were created", 10),
            Sig("no artifacts were created", 9),
        ),
        (_r("rerun-image-build", Mode.AUTO),),
        ("A timeout while waiting for Azure resources to be created: run the build again.",),
    ),
    Scenario(
        "aib.resource_not_found", Family.AIB, "Resource not found in the staging resource group",
        "resource-not-found",
        (
            Sig("network.interfacesclient#updatetags", 10),
            Sig("resource group 'it_", 8, r"(?:resourcenotfound|was not found|not found).{0,300}"
                r"resource group 'it_|resource group 'it_[^']*' was not found"),
            Sig("staging", 6, r"staging (?:resource )?group.{0,200}(?:not found|404|missing|deleted)"),
        ),
        ADVICE_ONLY,
        (
            "Image Builder lacks permissions on resources in its staging (IT_) resource group: check every "
            "permission the Image Builder identity needs.",
        ),
    ),
    Scenario(
        "aib.sysprep_timing", Family.AIB, "Sysprep timing (WindowsAzureGuestAgent not yet installed)",
        "sysprep-timing",
        (
            Sig("image_state_undeployable", 10),
            Sig("service name 'windowsazureguestagent'", 9),
            Sig("windowsazureguestagent", 4),
            Sig("sysprep", 6, r"sysprep\w*\W+(?:\w+\W+){0,5}(?:timing|hang|hung|stuck|never|undeployable|too early)"),
        ),
        (_r("increase-image-build-vm-size", Mode.APPROVAL), _r("add-sleep-customizer", Mode.ADVICE)),
        (
            "On Standard_D1_v2 short customizations let sysprep run before WindowsAzureGuestAgent is fully "
            "installed: raise the VM size, or add a 60-second PowerShell sleep customizer.",
        ),
    ),
    Scenario(
        "aib.context_canceled", Family.AIB, "Cancelling builder after context cancellation",
        "cancelling-builder-after-context-cancellation-context-canceled",
        (
            Sig("cancelling builder after context cancellation", 7),
            Sig("remote command exited without exit status or exit signal", 7),
            Sig("cancelling provisioning due to context cancellation", 6),
            Sig("communicator ended with: 2300218", 6),
            Sig("connection", 6, r"(?:lost|dropped|closed|lose|losing|loses)\W+(?:\w+\W+){0,3}(?:ssh|winrm)\W+"
                r"(?:\w+\W+){0,2}connection|(?:ssh|winrm)\W+(?:\w+\W+){0,2}connection\W+(?:\w+\W+){0,3}"
                r"(?:lost|dropped|closed|reset|refused|timed out)"),
            Sig("port", 5, r"(?:port\W+(?:22|5986)).{0,160}(?:block|firewall|closed)|(?:firewall|nsg).{0,160}"
                r"port\W+(?:22|5986)"),
        ),
        ADVICE_ONLY,
        (
            "The service lost its connection to the build VM (SSH port 22 on Linux, WinRM 5986 on "
            "Windows): check scripts for firewall, SSH or WinRM changes and keep those ports open.",
        ),
    ),
    Scenario(
        "aib.devops_operation_canceled", Family.AIB, "DevOps task: the operation was canceled",
        "operation-was-canceled",
        (
            Sig("##[error]the operation was canceled", 10),
            Sig("ran longer than the maximum time", 8),
            Sig("the operation was canceled", 3.5),
            Sig("azure vm image builder task", 2),
        ),
        ADVICE_ONLY,
        (
            "If nobody canceled it, the Azure DevOps agent did: hosted agents stop jobs after 60 minutes. "
            "Host your own agent or shorten the build (e.g. replicate to one region, asynchronously).",
        ),
    ),
    Scenario(
        "aib.slow_windows_logon", Family.AIB, "Slow Windows logon: 'Please wait for the Windows Modules Installer'",
        "slow-windows-logon-please-wait-for-the-windows-modules-installer",
        (
            Sig("please wait for the windows modules installer", 10),
            Sig("windows modules installer", 4),
            Sig("logon", 6, r"(?:first|initial) (?:logon|log-?in|sign-?in|rdp)\W+(?:\w+\W+){0,6}(?:slow|minutes|"
                r"takes|long|blue screen|waits?)"),
        ),
        ADVICE_ONLY,
        (
            "Add a Windows Restart customizer as the last customization so no reboot is pending, make sure "
            "all software installs finished, and add /mode:vm to the sysprep command Image Builder uses.",
        ),
    ),
    Scenario(
        "aib.vm_from_image_fails", Family.AIB, "VMs created from AIB images do not create successfully",
        "vms-created-from-aib-images-do-not-create-successfully",
        (
            Sig("image", 7, r"vms?\W+(?:\w+\W+){0,6}(?:create[ds]?|deploy(?:ed|s)?|built|provision(?:ed|s)?|made)"
                r"\W+from\W+(?:(?:\w+\W+){0,5}image|it|them)\W+(?:\w+\W+){0,10}(?:fail|never|stuck|time[sd]? ?out|"
                r"hang|not (?:complete|finish|succeed|boot))"),
            Sig("osprovisioningtimedout", 3.5),
            Sig("did not finish in the allotted time", 3.5),
            Sig("generaliz", 5, r"generaliz\w+\W+(?:\w+\W+){0,4}(?:fail|wrong|incomplete|broken)"),
        ),
        ADVICE_ONLY,
        (
            "Image Builder generalizes with a generic Sysprep (Windows) or `waagent -deprovision+user` "
            "(Linux) command that may not suit every image: override it by creating "
            "c:\\DeprovisioningScript.ps1 or /tmp/DeprovisioningScript.sh in a customizer, and review the "
            "Windows Server Sysprep documentation.",
        ),
    ),
)

BY_ID: dict[str, Scenario] = {s.id: s for s in SCENARIOS}
