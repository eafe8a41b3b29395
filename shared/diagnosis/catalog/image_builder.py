"""Azure VM Image Builder rows: the `aib.*` scenarios of its troubleshooting guide
(learn.microsoft.com/azure/virtual-machines/linux/image-builder-troubleshoot), which also place
plain Packer `azure-arm` failures of the same causes."""

from __future__ import annotations

from shared.core.domain import Family, Mode
from shared.diagnosis.catalog.model import ADVICE_ONLY, WORD, Scenario, Sig, ref

# A Packer download progress line: "big.iso 1.01 GiB / 1.45 GiB ... 69.66%".
_UNIT = r"\d+(?:\.\d+)? ?(?:b|kb|mb|gb|kib|mib|gib)"
_PROGRESS = _UNIT + " / " + _UNIT + r"\b.{0,60}?\d+(?:\.\d+)?%"
# The same image read fails as "not authorised" (403) or "not found" (404): the code decides.
_NOT_FOUND = ("statuscode=404", "status=404", "resourcenotfound")
_FORBIDDEN = ("statuscode=403", "status=403", "authorizationfailed")
# Actions no build needs: a denied role assignment, deployment validation, key listing or monitoring write is
# the caller's own set-up failing (its RBAC), not the build's identity reading images, galleries or blobs.
OTHER_ACTIONS = tuple(
    f"perform action {q}microsoft.{ns}" for q in ("'", '"')
    for ns in ("authorization/", "resources/deployments/", "insights/", "keyvault/", "operationalinsights/",
               "storage/storageaccounts/listkeys", "web/", "sql/", "containerservice/", "resources/subscriptions/",
               "management/", "policyinsights/"))

ROWS: tuple[Scenario, ...] = (
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
        (ref("recreate-image-template", Mode.APPROVAL),),
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
            Sig("terminal provisioning state", 3.5, context=True),
            Sig("resourcedeploymentfailure", 3.5, context=True),
            Sig("internaloperationerror", 3.5, context=True),
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
            Sig("does not have authorization to perform action", 3.0, unless=OTHER_ACTIONS),
            Sig("authorizationfailed", 3.0, unless=OTHER_ACTIONS),
            Sig("403", 5, r"(?:image builder|aib|imagetemplate|packer).{0,300}(?:403|forbidden)"),
            Sig("not authorized to access the", 6, r"not authorized to access the(?! linked)"),
            Sig("does not have authorization", 5, context=True, unless=OTHER_ACTIONS),
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
            Sig("image", 7, rf"(?:source|base|platform|marketplace|gallery)\W+image\W+{WORD}{{0,8}}(?:not found|"
                r"was not found|does not exist|doesn't exist|could not be found|cannot be found|not available)"),
            # the same told the other way round ("Packer can't find the source image")
            Sig("find", 7, r"(?:can't|cannot|could not|couldn't|unable to|fails? to|failed to) find (?:the |its |our |"
                r"a )?(?:source|base|platform|marketplace|gallery) image"),
            Sig("platformimagenotfound", 6),
            Sig("imageversionnotfound", 6),
            Sig("galleryimagenotfound", 6),
            # Packer azure-arm's own words for a missing managed image or marketplace version.
            Sig("cannot find an image named", 7),
            Sig("failed to get latest image version", 7),
            Sig("vmimage was not found", 7),
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
            # The service's own validation of a customizer's source URI (Azure Virtual Desktop's custom image
            # templates troubleshooting page quotes it: "Resource <URI> is unavailable. Please check the file
            # exists, and that Image Builder can access it").
            Sig("please check the file exists", 8, r"is unavailable\W+please check the file exists"),
            Sig("sourceuri", 6, r"(?:file customizer|sourceuri).{0,200}(?:404|403|not ?found|forbidden|"
                r"authorizationpermissionmismatch|could not download|failed to download|unreachable)"),
            Sig("customizer", 7, r"file\W{0,2} customizer.{0,240}(?:firewall|private endpoint|network rules|"
                r"public access|storage account)|"
                r"(?:firewall|private endpoint|network rules).{0,240}file\W{0,2} customizer"),
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
            Sig("exited with non-zero exit status", 6),
            # Printed by Packer when any step fails: the cause is elsewhere in the log.
            Sig("provisioning step had errors", 7, generic=True),
            Sig('step "stepprovision" failed', 7),
            # A provisioner's command ending in a non-zero code (101 is the low-resources one).
            Sig("exited with code: ", 6, r"exited with code: (?!0\b|101\b|1115\b)\d+"),
            Sig("communicator ended with: ", 4, r"communicator ended with: (?!0\b|101\b|1115\b)\d+"),
            Sig("unsuccessful exit code", 5, r"unsuccessful exit code (?:returned|was|of|\d)"),
            Sig("unexpected exit code", 5, r"unexpected exit code (?:returned|was|of|\d)"),
            Sig("customizer phase", 6, r"customizer phase.{0,200}(?:exception|error|fail)"),
            # PowerShell's error record from a provisioner's script, in a build's log.
            Sig("fullyqualifiederrorid", 5, r"(?:azure-arm|packer (?:out|err)|==>).{0,400}fullyqualifiederrorid"),
            # A package manager locked by the build VM's own first-boot updates.
            Sig("could not get lock", 6, context=True),
            Sig("frontend lock", 6, r"dpkg frontend lock|lock-frontend", context=True),
            Sig("frontend is locked", 6, context=True),
            # An azure-arm build's provisioner (shell, PowerShell, ...) that printed an error after it began: the
            # step that failed is that customizer (a builder's own errors read "error: -> <code>").
            Sig("provisioning with", 6, r"(?:azure-arm[\w.-]*|packer out ==> [\w.-]+): provisioning with (?:shell|"
                r"powershell|windows|ansible|file)\b.{0,1500}?(?:\be: |dpkg: error|\berror\b(?!: ->)|\bfailed\b|"
                r"not recognized as the name|exception|\[-\] )"),
            # A Packer provisioner (what Image Builder calls a customizer) told failing or hanging.
            # (Not Packer's own "Running the cleanup provisioner, if present..." after a builder's error.)
            Sig("provisioner", 5, r"provisioner\W+(?:\w+\W+){0,3}(?:fail|error|is stuck|hangs?\b|hung|loops|"
                r"never finish)|(?:fail\w*|stuck|hang\w*|hung|loop\w*|error\w*)\W+(?:\w+\W+){0,6}"
                r"(?:in|at|during|on|from) the [\w-]+ provisioner", context=True, unless=("the cleanup provisioner",)),
            # apt's and dpkg's own error lines ("E: ...", "dpkg-deb: error: ...") in an azure-arm build's output:
            # Packer's own lines start "==> azure-arm", a provisioner's output lines "    azure-arm".
            Sig("azure-arm", 6, r"azure-arm[\w.-]*: (?:e: |dpkg(?:-deb)?: error)"),
            # not the wrapper's own "which build/customization step failed"
            # (the literal first, the look-behinds after it: the engine then skips to each "customi")
            Sig("customiz", 6, r"customi(?<!build/customi)(?<!\bno customi)[sz](?:er|ation)\W+(?:\w+\W+){0,4}"
                r"(?:fail|error)"),
            Sig("customiz", 6, r"(?:fail\w*|error)\W+(?:\w+\W+){0,6}(?:in|from|during|at) the (?:\w+\W+){0,2}"
                r"customi[sz](?:ation|er)"),
            # A script's or installer's exit code inside a build: the step that failed.
            Sig("exit code", 5, r"(?:fail\w*|error\w*|exited|returned|finish\w*) with (?:the )?(?:exit|return|error) "
                r"code:? ['\"]?(?!0\b)-?\d+", context=True),
            Sig("failed to install", 5, context=True),
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
            Sig("build", 6, r"build\w*\W+(?:\w+\W+){0,4}(?:timed? ?out|timing out|times out|"
                r"time-?out|exceed\w* (?:the )?(?:build )?time)(?! waiting for (?:winrm|ssh))"),
            Sig("build timeout", 5),
        ),
        (ref("increase-image-build-timeout", Mode.AUTO),),
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
                r"installer|media|blob)\w*\W+(?:\w+\W+){0,12}file\W{0,2} customizer|"
                r"file\W{0,2} customizer\W+(?:\w+\W+){0,10}(?:large|big|huge|slow|hours|\d+ ?h\b|"
                r"\d+ ?gb|\d+(?:\.\d+)? ?gib|gigabyte|under 20 ?mb)"),
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
            Sig("context deadline exceeded", 7, r"(?:sig |shared image gallery|shared_image_gallery|"
                r"gallery image version|replicat).{0,900}context deadline exceeded"),
        ),
        (ref("increase-image-build-timeout", Mode.APPROVAL),),
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
            Sig("exited with code: 101", 7),
            Sig("communicator ended with: 101", 7),
            Sig("1115", 6, r"(?:exit status|exited with code:|communicator ended with:|\() ?1115\b"),
            # A build VM too small for the work: the size is what the text says to change.
            Sig("vm", 6.5, r"(?:bigger|larger|more powerful|higher|premium)\W+(?:\w+\W+){0,2}(?:vm|machine)\b|"
                r"(?:builder|build) vm\W+(?:\w+\W+){0,8}needs? (?:a lot of|more) (?:memory|ram|cpu)", context=True),
            Sig("size", 6.5, r"(?:bigger|larger|more powerful|higher|premium)\W+(?:\w+\W+){0,2}(?:vm[_ ]?)?size\b|"
                r"(?:vm[_ ]?size|vmsize)\W+(?:\w+\W+){0,8}(?:raised|increased|bigger|larger)", context=True),
            Sig("unexpected eof", 5, context=True),
            Sig("system performance:", 3),
            Sig("windows modules installer to exit", 4),
            # Words any Windows or Linux component prints ("Insufficient system resources exist to complete the
            # requested service"): an image build's only where the text is one.
            Sig("out of", 5, r"(?:running out of|ran out of|out of)\W+(?:memory|resources|disk space)", context=True),
            Sig("resource", 5, r"(?:low|insufficient|exhaust\w*)\W+(?:\w+\W+){0,2}(?:memory|resources|cpu)",
                context=True),
        ),
        (ref("increase-image-build-vm-size", Mode.AUTO),),
        (
            "The build VM ran out of resources, typical of Windows Update on the default Standard_D1_v2: "
            "raise the build VM size (vmProfile.vmSize).",
        ),
    ),
    Scenario(
        "aib.no_artifacts", Family.AIB, "Builds finished but no artifacts were created",
        "builds-finished-but-no-artifacts-were-created",
        (
            # The last line of every failed Packer run: a specific cause in the same log wins.
            Sig("builds finished but no artifacts were created", 10, generic=True),
            Sig("no artifacts were created", 9, generic=True),
            # The guide's cause: a wait for Azure resources timed out, then nothing was built.
            Sig("waitforcompletion", 8, r"waitforcompletion.{0,3000}no artifacts were created|"
                r"no artifacts were created.{0,3000}waitforcompletion"),
        ),
        (ref("rerun-image-build", Mode.AUTO),),
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
            # The sysprep customizer waits for the Azure guest services: not there yet.
            Sig("cannot find any service with service name", 9, r"cannot find any service with service name "
                r"'(?:windowsazure\w*|rdagent)'"),
            Sig("windowsazureguestagent", 4),
            Sig("sysprep", 6, r"sysprep\w*\W+(?:\w+\W+){0,5}(?:timing|hang|hung|stuck|never|undeployable|too early)|"
                r"(?:hang|hung|stuck|loops?)\w*\W+(?:\w+\W+){0,5}sysprep"),
            # The sysprep customizer's wait loop prints the registry's ImageState until it reads
            # IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE: any other state in a failed build is that wait going wrong.
            Sig("image_state_", 6, r"image_state_(?!generalize_reseal_to_oobe)[a-z_]+", context=True),
        ),
        (ref("increase-image-build-vm-size", Mode.APPROVAL), ref("add-sleep-customizer", Mode.ADVICE)),
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
            # Packer azure-arm never reached (or lost) the build VM over SSH / WinRM.
            Sig("timeout waiting for winrm", 7),
            Sig("timeout waiting for ssh", 7),
            Sig("waiting for ssh", 6, r"waiting for ssh.{0,400}(?:i/o timeout|connection timed out|no route to host)"),
            Sig("winrm", 6, r"winrm.{0,200}(?:context deadline exceeded|i/o timeout|timed out|no route to host)"),
            Sig("timeout", 6, r"dial tcp [\d.]+:(?:22|5985|5986): i/o timeout"),
            Sig("winrm", 6, r"(?:time[sd]? ?out|timeout)\w*\W+(?:\w+\W+){0,3}(?:waiting for |connecting to )?"
                r"(?:winrm|ssh)\b|\b(?:winrm|ssh)\W+(?:\w+\W+){0,2}time[sd]? ?outs?\b"),
            Sig("ssh", 6, r"(?:times? out|timeout|timed out)\W+(?:\w+\W+){0,2}waiting for (?:ssh|winrm)"),
            # The communicator's connection (WinRM's wsman endpoint, SSH's port 22) dropped mid-build.
            # (a loopback address is a local hypervisor's forwarded port, not an Azure build VM)
            Sig("tcp", 6, r"tcp (?![\d.:]*->127\.)(?!127\.)[\d.:>-]+:(?:22|5985|5986)\W+(?:\w+\W+){0,2}"
                r"(?:wsarecv: |read: |write: |connect: )?(?:an existing connection was forcibly closed|"
                r"connection reset|broken pipe|connection refused|no route to host|i/o timeout)", context=True),
            # Told in words: the build VM cannot be reached over its communicator.
            Sig("connect", 6, r"(?:can't|cannot|can not|unable to|fails? to|failed to|could not|couldn't|never|"
                r"not able to) (?:connect|reach|communicate)\w*\W+(?:\w+\W+){0,5}(?:winrm|ssh)\b", context=True),
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
            # Any pipeline prints these: ours only in an Image Builder task or build.
            Sig("##[error]the operation was canceled", 10, context=True),
            Sig("ran longer than the maximum time", 8, context=True),
            Sig("we stopped hearing from agent", 7, context=True),
            Sig("minute", 6, r"(?:devops|pipeline|agent|job)\W+(?:\w+\W+){0,8}(?:60|sixty)[- ]minutes?\W+"
                r"(?:\w+\W+){0,2}(?:job |time |timeout|limit)", context=True),
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
            Sig("osprovisioningtimedout", 3.5, context=True),
            Sig("did not finish in the allotted time", 3.5, context=True),
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
