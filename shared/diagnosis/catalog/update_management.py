"""Update Management (Azure Automation) rows: the `um.*` scenarios of its troubleshooting guide
(learn.microsoft.com/azure/automation/troubleshoot/update-management), with the guide's
diagnostic queries and its table of HRESULTs."""

from __future__ import annotations

from shared.core.domain import Family, Mode
from shared.diagnosis.catalog.model import ADVICE_ONLY, ADVICE_QUERIES, NEGATION, WORD, Scenario, Sig, ref

Q_HEARTBEAT = "Heartbeat\n| summarize by Computer, Solutions"
Q_OPERATION = "Operation\n| where OperationCategory == 'Data Collection Status'\n| sort by TimeGenerated desc"
Q_UPDATE_MACHINE = (
    "Update\n| where Computer contains {computer}\n"
    "| project TimeGenerated, Computer, SourceComputerId, Title, UpdateState"
)
Q_SOURCE_ID = "Heartbeat | where TimeGenerated > ago(30d) | distinct SourceComputerId, Computer, ComputerIP"
Q_WSUS = (
    'Update | where UpdateState == "Needed" and ApprovalSource == "WSUS" and Approved == "False" '
    "| summarize max(TimeGenerated) by Computer, KBID, Title"
)

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

# The patch extensions' wording for a reboot that is needed and was not allowed (aum.reboot_required).
_PENDING_REBOOT = ("customer-specified reboot setting", "machine is required to reboot", "doesn't allow reboots",
                   "does not allow reboots", "reboot required", "reboot is required", "pending reboot",
                   "reboot pending", "rebootpending", "required to reboot", "reboot status")
# At machine registration an HRESULT is a communication problem, not an update agent one.
_REGISTRATION = ("unable to register machine", "registration failed", "worker registration", "registration fail")
# The Win32-range codes of the guide's HRESULT table (0x8024xxxx codes are Windows Update's own).
_GUIDE_HRESULTS = r"0x8007(?:0005|0422|2ee2|2efd|2efe|2f8f|0643)"
# The guide's own Windows Update codes.
_GUIDE_WU_HRESULTS = r"0x8024(?:402c|401c|402f|001e|002e)"

# The service control manager's routine line when a service stops (Windows Update stops itself when idle).
_SCM_STOPPED = "service entered the stopped state"

# Machines (or VMs, servers) that vanished from Update Management's lists.
_GONE = (rf"(?:machines?|vms?|servers?|computers?|nodes?|hosts?)\W+{WORD}{{0,6}}(?:vanish\w*|disappear\w*|"
         r"dropped (?:out|off)|went missing|(?:are|is|were|was) (?:gone|missing)|no longer (?:show|appear|list)\w*)\W+"
         rf"{WORD}{{0,5}}update management|update management\W+{WORD}{{0,8}}(?:machines?|vms?|servers?|computers?)\W+"
         rf"{WORD}{{0,4}}(?:vanish\w*|disappear\w*|(?:are|is|were|went) missing|no longer (?:show|appear|list)\w*)")

ROWS: tuple[Scenario, ...] = (
    Scenario(
        "um.enable_failed", Family.UPDATE, "Failed to enable the Update solution",
        "scenario-you-receive-the-error-failed-to-enable-the-update-solution",
        (
            Sig("failed to enable the update", 10, r"failed to enable the update (?:management )?solution"),
            Sig("update", 6, rf"(?:fail\w*|unable|cannot|can't|couldn't|could not|error)\W+{WORD}{{0,3}}"
                rf"(?:enabl|onboard)\w*\W+{WORD}{{0,3}}update (?:management|solution)"),
            Sig("update management", 6, rf"(?:enabl|onboard)\w*\W+{WORD}{{0,4}}update management\W+{WORD}{{0,4}}"
                r"(?:fail|error)"),
            # the same told the other way round ("Update Management could not be enabled on ...")
            Sig("update", 6, rf"update (?:management|solution)\W+{WORD}{{0,4}}(?:could not|couldn't|cannot|can't|"
                r"fail\w*(?: to)?|won't|will not|unable to)\W+(?:be\W+)?(?:enabl|onboard|add|deploy|install)"),
            Sig("enablement", 5, r"(?:enablement|onboarding)\W+(?:\w+\W+){0,3}(?:fail|error|stuck|did not|didn't)",
                context=True),
            # Enabling deploys the workspace's Updates solution (Microsoft.OperationsManagement/solutions/Updates(ws)).
            Sig("solutions/updates(", 7, r"solutions/updates\(.{0,300}(?:fail|error|denied|disallowed|conflict)|"
                r"(?:fail|error|denied|disallowed).{0,300}solutions/updates\("),
            Sig("disconnected", 3, r"non-?compliant.{0,200}disconnected|disconnected.{0,200}non-?compliant"),
            # Enabling links the Log Analytics workspace to the Automation account: a link that fails.
            Sig("automation account", 6, r"workspace\W+(?:\w+\W+){0,4}(?:never|not|can't|cannot|couldn't|could not|"
                r"fails? to|failed to|won't)\W+(?:be\W+|gets?\W+|get\W+)?link\w*\W+(?:\w+\W+){0,3}automation account|"
                r"link\w* (?:the |a |my |our )?(?:log analytics )?workspace\W+(?:\w+\W+){0,3}(?:to|with) (?:the |an |"
                r"my |our )?automation account\W+(?:\w+\W+){0,4}(?:fail|error|not)"),
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
                r"applicable|shows? (?:up|as))|(?:missing|needed|required|applicable).{0,160}supersed", context=True),
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
            Sig("not configured", 5, r"(?:shows?|showing|status|state|appears?|listed|marked)\W+(?:(?:them|it|the \w+|"
                r"all|every \w+|an?)\W+)?(?:as\W+)?['\"]?not configured"),
            # The Log Analytics agent for Linux registers the machine for Update Management through its
            # nxOMSAutomationWorker DSC resource's AutoRegister instance (a user's own hybrid worker is another
            # instance): that instance failing leaves the machine unregistered.
            Sig("msft_nxomsautomationworkerresource", 7, r"produced errors\W+msft_nxomsautomationworkerresource\W+"
                r"autoregister"),
            Sig("not assessed", 5),
            Sig("update management", 7, rf"(?:machines?|vms?|servers?|computers?|nodes?)\W+{WORD}{{0,5}}{NEGATION}\W+"
                rf"(?:\w+\W+)?(?:show|appear|list|visible)\w*\W+{WORD}{{0,4}}update management"),
            Sig("update management", 6, r"missing (?:from|in) (?:the )?update management"),
            # Machines that were listed and are no more: a symptom told in the user's words (anchored on the
            # verb, so the regex runs only where one is said).
            *(Sig(verb, 7, _GONE) for verb in ("vanish", "disappear", "no longer", "dropped", "went missing", "gone",
                                                "missing")),
            Sig("data", 6, r"\bno\W+(?:\w+\W+){0,2}(?:update|assessment|patch|compliance)\w*\W+(?:\w+\W+)?data\b|"
                r"(?:update|assessment) data\W+(?:\w+\W+){0,4}(?:never|not|isn't|doesn't|don't) (?:arriv|show|appear|"
                r"report|come)", unless=("update manager", "periodic assessment"), context=True),
            # The Linux update agent troubleshooter's table: a check that failed.
            Sig("| failed |", 7, r"(?:hybrid runbook worker|operations endpoint|registration endpoint|software "
                r"repositories|log analytics|omsagent|oms agent|os version|tls)[\w ]{0,40}\| failed \|"),
            Sig("heartbeat", 4, r"heartbeat.{0,200}(?:but|yet|however).{0,120}(?:not|no|missing)"),
            # The update agent troubleshooter's output: a check that failed.
            Sig("checkresult", 7, r"checkresult\W+failed"),
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
            Sig("microsoft.automation", 8, rf"microsoft\.automation\W+{WORD}{{0,5}}(?:is )?(?:not registered|"
                r"notregistered|unregistered)|(?:register|registration)\w*\W+(?:the\W+)?(?:resource provider\W+)?"
                r"microsoft\.automation\W+(?:\w+\W+){0,3}(?:fail|error|denied)"),
            Sig("automation", 7, rf"automation\W+(?:resource )?provider\W+{WORD}{{0,4}}(?:not registered|"
                r"unregistered|isn't registered|is not registered|fail)"),
        ),
        (ref("register-resource-provider", Mode.AUTO),),
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
            # Ours for an Automation deployment's scope, or when no scope is shown; another resource's
            # scope (a scale set's subnet, a diagnostic setting) is another product's linked authorization.
            Sig("not authorized to access linked subscription", 10, r"(?:microsoft\.automation|"
                r"softwareupdateconfiguration|update deployment|update management|patch).{0,800}"
                r"not authorized to access linked subscription|"
                r"^(?:(?!scope ').)*not authorized to access linked subscription"),
            Sig("linked subscription", 7, context=True),
            Sig("tenant", 6, r"(?:update deployment|software ?update ?configuration|schedul\w+|patch\w*)"
                r".{0,150}(?:another|different|other|second|customer'?s?) (?:azure )?(?:ad )?(?:tenant|directory)|"
                r"(?:another|different|other|second) (?:azure )?(?:ad )?(?:tenant|directory).{0,150}"
                r"(?:update deployment|update management|patch|software ?update)"),
            Sig("tenant", 5, r"(?:cross|multi)-?tenant.{0,120}(?:update|patch)"),
        ),
        (ref("use-non-azure-computer-names", Mode.APPROVAL),),
        (
            "Machines in another tenant cannot be targeted as Azure VMs: create the schedule with "
            "New-AzAutomationSchedule -ForUpdate and pass those machines to "
            "New-AzAutomationSoftwareUpdateConfiguration as -NonAzureComputer (nonAzureComputerNames).",
        ),
    ),
    Scenario(
        "um.unexplained_reboots", Family.UPDATE, "Unexplained reboots", "node-reboots",
        (
            # A reboot the setting did *not* allow is a pending reboot (aum.reboot_required), not an unexplained one.
            # "never rebooted" says the machine did not reboot: the opposite of this scenario.
            Sig("reboot", 7, r"never reboot(?!ed).{0,200}(?:reboot|restart)|(?:reboot|restart)\w*.{0,200}"
                r"(?:never reboot(?!ed)|reboot (?:setting|option|control)|rebootsetting\W+never|set to never)",
                unless=_PENDING_REBOOT),
            Sig("never", 6, r"(?:reboot|restart)\w*\W+(?:\w+\W+){0,5}(?:even though|although|despite)\W+"
                r"(?:\w+\W+){0,6}never", unless=_PENDING_REBOOT),
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
            # Any service, task or VM "failed to start": Update Management's only in its own text.
            Sig("failed to start", 3, context=True),
        ),
        (
            ref("readd-changed-machines", Mode.AUTO),
            ref("remove-missing-machines", Mode.APPROVAL),
            ref("retry-later", Mode.ADVICE),
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
            Sig("install", 8, rf"updates?\W+{WORD}{{0,4}}(?:got |get |were |are |being )?(?:installed|installing|"
                rf"applied)\W+{WORD}{{0,4}}(?:without|outside|with no|no)\W+{WORD}{{0,3}}(?:deployment|schedule)"),
            Sig("auto download and install", 6),
            Sig("auoptions", 6, r"auoptions\W+(?:\w+\W+){0,3}(?:0x)?4\b"),
            Sig("automatic updates", 6, r"configure automatic updates\W{0,4}(?:=|:|is|set to)?\W{0,3}4\b|"
                r"auto download and schedule the install"),
            Sig("install", 6, r"install(?:ed|ing)?\b.{0,200}\b(?:no|without|not created any|haven't created any)\W+"
                r"(?:\w+\W+){0,2}(?:deployment|schedule)s?\b"),
            Sig("install", 5, r"(?:automatically|on their own|on its own|by themselves)\W+(?:\w+\W+){0,3}install|"
                r"install\w*\W+(?:\w+\W+){0,3}(?:automatically|on their own|on its own|by themselves)"),
            Sig("install", 6, r"install\w*\W+(?:\w+\W+){0,4}outside (?:of )?(?:the |their |its )?"
                r"(?:scheduled |maintenance |patch |deployment )?(?:window|schedule)"),
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
        (ref("delete-stale-hybrid-worker-group", Mode.APPROVAL),),
        (
            "The machine is onboarded to another workspace for Update Management: make sure it reports to "
            "the right workspace, then clean up by deleting the hybrid runbook worker group and retry.",
        ),
    ),
    Scenario(
        "um.cannot_communicate", Family.UPDATE, "Machine can't communicate with the service",
        "machine-unable-to-communicate",
        (
            # .NET's TLS failure: any client's; the worker's where the text is Update Management's.
            Sig("do not possess a common algorithm", 9, context=True),
            Sig("error parsing positive infinity value", 9),
            Sig("not issued by a certificate authority used for microsoft services", 9),
            Sig("intercepts tls/ssl", 7),
            Sig("exception form hresult", 9),
            Sig("e_accessdenied", 9, r"(?:regist\w+|hybrid|patch management).{0,300}(?:e_accessdenied|0x80070005)|"
                r"(?:e_accessdenied|0x80070005).{0,300}(?:regist\w+|hybrid)"),
            # Windows' access denied any client meets (PSWindowsUpdate, a COM search): the worker's in our text only.
            Sig("e_accessdenied", 5, context=True),
            Sig("opinsights.azure.com", 7, r"opinsights\.azure\.com.{0,200}(?:certificate|tls|ssl|proxy|"
                r"connect|unreachable|blocked)|(?:certificate|tls|ssl|proxy|connect).{0,200}opinsights\.azure\.com"),
            Sig("registration failed with exception", 6),
            # The service's endpoints the guide's network requirements name, unreachable from the machine.
            Sig("azure-automation.net", 7, r"azure-automation\.net.{0,200}(?:proxy|unable|could not|cannot|can't|"
                r"failed|timed? ?out|timeout|refused|blocked|unreachable|not resolve|resolution)|(?:proxy|unable to "
                r"connect|could not connect|cannot connect|timed? ?out|refused|blocked|not resolve).{0,200}"
                r"azure-automation\.net"),
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
        (ref("extend-maintenance-window", Mode.AUTO),),
        (
            "The default maintenance window is 120 minutes; Automation allows up to 6 hours (PT6H): edit "
            "the failed scheduled deployment and increase its window (Update Manager: raise the maintenance "
            "configuration's duration within its limit).",
        ),
    ),
    Scenario(
        "um.hresult", Family.UPDATE, "Machine shows Not assessed with an HRESULT exception", "hresult",
        (
            # The guide's table stands alone; any other Windows Update code is ours only in Update
            # Management's or Update Manager's context (Ansible, DSC, Intune drive Windows Update too).
            # A bare code of the table is ours in the guide's context; elsewhere Windows Update's (any agent's).
            Sig("0x802", 8, _GUIDE_WU_HRESULTS, unless=_REGISTRATION, context=True),
            Sig("0x802", 2.5, _GUIDE_WU_HRESULTS, unless=_REGISTRATION),
            Sig("0x802", 7, r"0x8024[0-9a-f]{4}", unless=_REGISTRATION, context=True),
            Sig("0x800", 8, _GUIDE_HRESULTS, unless=_REGISTRATION, context=True),
            Sig("0x800", 2.5, _GUIDE_HRESULTS, unless=_REGISTRATION),
            # Other Win32 and servicing codes (0x8007000e is out of memory anywhere) need the guide's context.
            Sig("0x800", 3.5, r"0x800(?:7|9|f)[0-9a-f]{4}", unless=_REGISTRATION, context=True),
            # The same exception with no Update Management or Update Manager context is any Windows Update
            # client's (Ansible's win_updates, kbupdate, Packer's windows-update): a weak hint only.
            Sig("exception from hresult", 8, r"exception from hresult\W{0,3}(?:" + _GUIDE_WU_HRESULTS + "|"
                + _GUIDE_HRESULTS + ")", unless=_REGISTRATION, context=True),
            # The guide's own message for a disabled Windows Update service (0x80070422) stands alone.
            Sig("the service cannot be started", 8, r"the service cannot be started, either because it is disabled"
                r".{0,120}0x80070422", unless=_REGISTRATION),
            Sig("exception from hresult", 7, r"exception from hresult\W{0,3}0x8024", unless=_REGISTRATION,
                context=True),
            Sig("hresult", 3.5, context=True),
            # The service disabled or not running (guide: 0x80070422); not the service control manager's routine
            # "The Windows Update service entered the stopped state" (it stops itself when idle).
            Sig("wuauserv", 5, r"wuauserv.{0,80}(?:disabled|stopped|not running)|(?:disabled|stopped).{0,80}wuauserv",
                unless=(_SCM_STOPPED,)),
            Sig("windows update service", 5, r"windows update service\W+(?:\w+\W+){0,3}(?:disabled|stopped|"
                r"not running|cannot be started)", unless=(_SCM_STOPPED,)),
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
            Sig("update", 5, rf"update (?:run|deployment|job)s?\W+{WORD}{{0,6}}(?:failed(?! to start)|fails|"
                r"returns? (?:a )?(?:failed|failure)|ends? (?:as|in|with) (?:a )?fail)", generic=True),
            Sig("package_manager_failure", 8),
            # The Linux patch extension's own wording (Azure/LinuxPatchExtension package manager classes).
            Sig("from package manager", 8, r"unexpected return code \(?\d+\)? from package manager"),
            Sig("customer environment error", 7, r"customer environment error\W+(?!\(sudo)(?:\w+\W+){0,12}"
                r"package manager"),
            Sig("package manager on machine is not healthy", 9),
            Sig("exclud", 3, r"exclud\w*\W+(?:\w+\W+){0,3}packages?"),
            Sig("package manager", 7, r"package manager\W+(?:\w+\W+){0,3}(?:unhealthy|broken|locked|corrupt\w*|"
                r"not healthy|in a bad state)"),
            Sig("dpkg was interrupted", 8),
            Sig("could not get lock", 7, context=True),
            # The Linux patch extension's words for a package manager that failed.
            Sig("from package manager", 7),
            Sig("customer environment error", 7),
            Sig("return code", 5, r"(?:apt|apt-get|yum|dnf|zypper|dpkg|rpm|tdnf)\W+(?:\w+\W+){0,3}"
                r"(?:return|exit)\w* code", context=True),
            Sig("repomd.xml", 6, context=True),
            Sig("job was suspended", 6, context=True),
            # A package manager's own errors: any tool's that drives it (a Dockerfile's, a configuration tool's),
            # ours where the text is an update run's.
            Sig("unmet dependencies", 8, context=True),
            Sig("fix-broken", 7, context=True),
            Sig("dependenc", 7, r"dependenc\w+.{0,80}(?:not resolved|unresolved|could not be resolved|unmet|"
                r"missing|conflict)|(?:unresolved|unmet|missing|broken|conflicting)\W+(?:\w+\W+){0,2}dependenc",
                context=True),
            Sig("omsupdatemgmt.log", 6),
            Sig("rpmdb", 6, context=True),
            Sig("depsolv", 7, context=True),
            Sig("error: package", 5, context=True),
        ),
        (ref("exclude-failed-packages", Mode.APPROVAL),),
        (
            "Check the job output of the affected machine in the run for the specific error; Update "
            "Management needs a healthy package manager.",
            "If specific patches, packages or updates appear right before the failure, exclude them from "
            "the next deployment.",
            "Before the next deployment, keep a copy of "
            "/var/opt/microsoft/omsagent/run/automationworker/omsupdatemgmt.log for troubleshooting.",
        ),
        os="linux",  # the Linux package manager's scenario: never a Windows machine's (its OS decides)
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
                rf"(?:{NEGATION}|hasn't|has not|haven't|nothing)\W+(?:\w+\W+){{0,4}}approv"),
            Sig("usewuserver", 5),
            Sig("available", 5, rf"updates?\W+{WORD}{{0,5}}(?:available|released|out)\W+{WORD}{{0,6}}{NEGATION}\W+"
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
        (ref("acknowledge-benign", Mode.AUTO),),
        (
            "KB2267602 is the Windows Defender definition update; it is released daily, so it shows as "
            "missing between releases. Benign: no change is needed.",
        ),
    ),
)
