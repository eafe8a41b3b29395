"""Whose failure a text is: ours (Image Builder / Packer azure-arm, Update Management / Update
Manager) or another product's.

Two tables of markers, matched as anchors by the classifier's index (one pass over the text's words):
- OWN_CONTEXT: words that place a text in one family's own product (an image template, a Packer
  azure-arm log, an Automation account, a maintenance configuration, a patch extension, ...).
  Stricter than the catalog's FAMILY_WORDS, which only tip ties.
- FOREIGN: words of other products whose failures share our vocabulary: configuration tools
  (Ansible, Chef, Puppet, DSC, cloud-init), container and cluster tools, infrastructure-as-code
  tools, other agents that drive Windows Update (Intune, Kaspersky, WSUS server maintenance),
  other clouds. A text of theirs that does not also name our product is not ours: the same
  `E: Could not get lock` or `Exception from HRESULT` is their task's failure, not a patch run's.

Other clouds' and hypervisors' Packer builders are read from the log's structure
(`shared.diagnosis.structure.builders`).
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.core.domain import Family

OWN_CONTEXT: dict[Family, tuple[str, ...]] = {
    Family.AIB: (
        "image builder", "imagebuilder", "imagetemplate", "image template", "virtualmachineimages", "aib",
        "packer out", "packer err", "customization.log", "azure-arm", "packerizer", "packer-plugin-azure",
        "packer-builder-azure", "azvmimagebuilder", "packer", "shared_image_gallery", "customizer", "sysprep",
        "runoutput", "buildtimeoutinminutes", "image build", "builder vm", "build agent image",
        "run template", "==>",
        # the distribution phase's own report ("Failed in distributing 1 images out of total 1: {[Error 0]
        # [Distribute 0] ...")
        "failed in distributing", "[distribute ",
        # Packer azure-arm's own names for its temporary resources (temp_compute_name, temp_resource_group_name).
        "pkrvm", "pkr-resource-group", "pkros",
    ),
    Family.UPDATE: (
        "update management", "update manager", "automation account", "softwareupdateconfiguration",
        "maintenance configuration", "maintenanceconfiguration", "linuxpatchextension", "windowspatchextension",
        "linuxosupdateextension", "windowsosupdateextension", "patch-microsoftomscomputer", "hybrid runbook worker",
        "hybrid worker", "inguestpatch", "patchassessmentresources", "patchinstallationresources", "update deployment",
        "not assessed", "microsoft.maintenance", "maintenance assignment", "configurationassignment", "assessmentmode",
        "patchmode", "msftlinuxpatch", "update agent troubleshooter", "troubleshoot update agent", "omsupdatemgmt",
        "microsoft.automation", "guest patch", "vmguestpatch", "patch orchestration", "periodic assessment",
        "patch extension", "maintenance run", "update run", "patch installation", "assessment fail",
        "softwareupdatemanagement", "microsoft.cplat.core", "maintenance window", "update compliance",
        "scheduled patching", "patching schedule", "patch schedule", "patch run", "microsoft monitoring agent",
        "log analytics agent", "enableautomaticupdates",
        # the Log Analytics agent's older name and its Linux daemon
        "oms agent", "omsagent",
        # The Compute API's own patch operations and their result fields (assessPatches / installPatches).
        "assess-patches", "install-patches", "assesspatches", "installpatches", "assessmentactivityid",
        "installationactivityid", "windows update api failed",
        # The Hybrid Runbook Worker's registration message ("Unable to Register Machine for Patch Management").
        "machine for patch management",
    ),
}

# name -> (marker words, the families whose scenarios it disowns)
FOREIGN: dict[str, tuple[tuple[str, ...], frozenset[Family]]] = {
    "ansible": (("fatal: [", "unreachable! =>", "ansible", "win_updates", "failed to search for "
                 "updates", "\"changed\": false", "'changed': false",
                 # win_updates' own PowerShell function, named in its stack traces
                 "at dowindowsupdate",
                 # a task's loop item that failed ("failed: [host] (item=...) => {...}")
                 "(item=", "failed: [localhost]"), frozenset(Family)),
    "chef": (("mixlib::", "cookbook", "recipe: "), frozenset(Family)),
    "puppet": (("puppet",), frozenset(Family)),
    "salt": (("salt-minion", "salt.states", "saltstack"), frozenset(Family)),
    "dsc": (("powershell dsc resource", "dsc configuration", "xwindowsupdate", "dscextension",
             "test-targetresource", "set-targetresource",
             # Automation State Configuration's agent and its PowerShell module (Register-DscAgent's errors)
             "dsc agent", "desiredstateconfiguration"), frozenset(Family)),
    "cloud-init": (("cloudinit", "cloud-init", "cc_apt", "cc_package"), frozenset(Family)),
    "docker": (("the command '/bin/sh -c", "the command '/bin/bash -c", "docker build", "dockerfile",
                "docker image build", "returned a non-zero code:", "docker daemon"), frozenset(Family)),
    "terraform": (("terraform", "azurerm_"), frozenset(Family)),
    "pulumi": (("pulumi", "azure-native:"), frozenset(Family)),
    "kubernetes": (("kubectl", "kubernetes", "kubelet", "k8s", "controller-runtime", "openshift", "nodepool",
                    "aks cluster", "pod disruption", "capz",
                    # AKS node images (publisher microsoft-aks, offers aks-ubuntu-*, aks-windows-*)
                    "microsoft-aks", "aks-ubuntu", "aks-windows", "aks-engine"),
                   frozenset(Family)),
    "intune": (("intune", "autopilot", "enrollment status page", "intunewin", "memcm"), frozenset({Family.UPDATE})),
    "kaspersky": (("kaspersky", "nagent", "csadminkit"), frozenset({Family.UPDATE})),
    "wsus-server": (("susdb", "wsus maintenance", "invoke-wsusservercleanup", "wsusutil", "wsus-cleanup",
                     "declining superseded", "declining expired"), frozenset({Family.UPDATE})),
    "msbuild": (("msbuild",), frozenset(Family)),
    "aws": (("amazon-ebs", "aws", "ec2", "iam instance profile", "unauthorizedoperation"), frozenset(Family)),
    "gcp": (("googlecompute", "googleapi", "gcloud"), frozenset(Family)),
    "azure-monitor-agent": (("azure monitor agent", "microsoft.azure.monitor", "azuremonitoragent"),
                            frozenset(Family)),
    "custom-script": (("customscript", "custom script extension", "runcommandwindows", "vmsscse"),
                      frozenset(Family)),
    # Deploying a VM (not building an image): its image and provisioning errors are the deployment's.
    "vm-deployment": (("virtualmachinesclient#createorupdate", "creating windows virtual machine",
                       "creating linux virtual machine", "compute:virtualmachine"),
                      frozenset({Family.AIB})),
    "azure-login": (("login-azurermaccount", "connect-azaccount", "az login", "connect-azurermaccount"),
                    frozenset(Family)),
}

# Words that show an image build is running (not only that the text is about images): inside one, a
# package manager's or Windows Update's error is the build step's.
BUILD: tuple[str, ...] = ("packer", "azure-arm", "customization.log", "customizer", "provisioner", "imagetemplate",
                          "image template", "image builder", "packerizer", "==>")
# Packer builders of other clouds and hypervisors: a log of theirs is no Image Builder build, though it
# says "packer"; an Azure builder in the same log keeps it ours.
OTHER_BUILDERS: tuple[str, ...] = (
    "amazon-", "packer-builder-amazon", "googlecompute", "virtualbox-", "vmware-", "vsphere", "hyperv-", "qemu",
    "parallels-", "proxmox", "oracle-oci",
    "lxd", "lxc", "openstack", "digitalocean", "hcloud", "linode", "scaleway", "alicloud-ecs", "tencentcloud-cvm",
    "yandex", "ucloud-uhost", "nutanix", "vagrant", "==> docker", "build 'docker'", "azure-chroot",
    # amazon-ebs's own step messages, whatever the build is named ("Launching a source AWS instance...")
    "source aws instance",
)
AZURE_BUILDERS: tuple[str, ...] = ("azure-arm", "packer-plugin-azure", "packer-builder-azure", "packer out",
                                   "packer err")

ALL_MARKERS: tuple[str, ...] = tuple(
    dict.fromkeys([w for words in OWN_CONTEXT.values() for w in words]
                  + [m for markers, _ in FOREIGN.values() for m in markers] + list(BUILD) + list(OTHER_BUILDERS)
                  + list(AZURE_BUILDERS))
)
_BUILD = frozenset(BUILD)
_OTHER_BUILDERS = frozenset(OTHER_BUILDERS)
_AZURE_BUILDERS = frozenset(AZURE_BUILDERS)
_ALL = frozenset(ALL_MARKERS)
# marker -> the families it names / the other product it names (with the families that product disowns)
_OWN_OF: dict[str, frozenset[Family]] = {}
for _fam, _words in OWN_CONTEXT.items():
    for _w in _words:
        _OWN_OF[_w] = _OWN_OF.get(_w, frozenset()) | {_fam}
_FOREIGN_OF: dict[str, tuple[str, frozenset[Family]]] = {
    m: (name, against) for name, (markers, against) in FOREIGN.items() for m in markers}
Owners = tuple[tuple[str, frozenset[Family]], ...]
_NOBODY: tuple[frozenset[Family], Owners, bool] = (frozenset(), (), False)


def read(present: Iterable[str]) -> tuple[frozenset[Family], Owners, bool]:
    """From the anchors present in a text: the families whose own product it names, the other products it
    names (each with the families it disowns, by name), and whether it is an image build's own output.
    A Packer log of another cloud's or hypervisor's builder, with no Azure builder beside it, is another
    product's, though it says "packer"."""
    hits = _ALL.intersection(present)
    if not hits:
        return _NOBODY
    own: set[Family] = set()
    foreign: dict[str, frozenset[Family]] = {}
    build = azure = False
    other: list[str] = []
    for m in hits:
        fams = _OWN_OF.get(m)
        if fams is not None:
            own |= fams
        owner = _FOREIGN_OF.get(m)
        if owner is not None:
            foreign[owner[0]] = owner[1]
        if m in _BUILD:
            build = True
        if m in _OTHER_BUILDERS:
            other.append(m)
        elif m in _AZURE_BUILDERS:
            azure = True
    if other and not azure:
        own.discard(Family.AIB)
        foreign[f"packer builder {min(other)}"] = frozenset({Family.AIB})
    return frozenset(own), tuple(sorted(foreign.items())), build
