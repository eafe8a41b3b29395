"""Realistic Azure VM Image Builder `customization.log` text for the estate's blobs.

Real logs are Packer's output, each line prefixed with the build's GUID (`[prefix] PACKER OUT` /
`PACKER ERR <timestamp>`), ~1 MB for a Windows build, with `(telemetry) Starting provisioner X` /
`(telemetry) ending X` around each customizer and the decisive lines near the end, followed by
the clean-up and `Done exporting Packer logs to Azure for Packer prefix: [...]`. The shapes below
follow the Image Builder troubleshooting guide's excerpts (seeds/004).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from datetime import datetime, timedelta

_AZURE_STEPS = (
    "Running builder ...",
    "Getting tokens using Managed Identity for Azure",
    "Getting source image id for the deployment ...",
    "Creating resource group ...",
    "Validating deployment template ...",
    "Deploying deployment template ...",
    "Getting the VM's IP address ...",
)


class _Writer:
    def __init__(self, prefix: str, start: datetime, seed: int) -> None:
        self.prefix = prefix
        self.clock = start
        self.rng = random.Random(seed)
        self.lines: list[str] = []
        self.size = 0

    def stamp(self, seconds: float = 1.0) -> str:
        self.clock += timedelta(seconds=seconds)
        return self.clock.strftime("%Y/%m/%d %H:%M:%S")

    def out(self, text: str) -> None:
        self.add(f"[{self.prefix}] PACKER OUT {text}")

    def err(self, text: str, seconds: float = 1.0) -> None:
        stamp = self.stamp(seconds)
        plugin = re.match(r"^(packer[\w-]*): (?!\d{4}/)(.*)$", text)
        if plugin:  # Packer's plugins repeat the timestamp after their name
            text = f"{plugin.group(1)}: {stamp} {plugin.group(2)}"
        self.add(f"[{self.prefix}] PACKER ERR {stamp} {text}")

    def add(self, line: str) -> None:
        self.lines.append(line)
        self.size += len(line) + 1

    def noise(self, windows: bool, n: int) -> None:
        rng = self.rng
        kind = rng.random()
        if kind < 0.3:
            ts = self.stamp(rng.uniform(0.5, 4))
            self.add(f"[{self.prefix}] PACKER ERR {ts} packer: {ts} Azure request method=\"GET\" "
                     f"request=\"https://management.azure.com/subscriptions/{self._guid()}/resourcegroups/"
                     f"IT_rg-images_build_{n:06d}/providers/Microsoft.Resources/deployments/pkrdp{n:x}/"
                     f"operationStatuses/0858{rng.randrange(10**15):015d}?[REDACTED]\" body=\"\"")
        elif kind < 0.65:
            if windows:
                self.out(f"    azure-arm: Installing {rng.choice(('KB', 'package '))}{5030000 + n % 9000} "
                         f"({rng.randint(1, 99)}%)")
            else:
                self.out(f"    azure-arm: Setting up lib{('ssl', 'xml2', 'curl', 'systemd', 'python3')[n % 5]}"
                         f"-{n % 17}.{n % 9}.{n % 5} ({n % 3}.{n % 11}-{n % 7}ubuntu0.{n % 4}) ...")
        elif kind < 0.8:
            if windows:
                self.out(f"    azure-arm: Update {n % 23 + 1} of 38: downloaded, installing "
                         f"(KB50{44000 + n % 999}, {rng.randint(1, 900)} MB)")
            else:
                self.out(f"    azure-arm: Get:{n % 97 + 1} http://azure.archive.ubuntu.com/ubuntu jammy-updates/main "
                         f"amd64 lib{('ssl3', 'xml2', 'curl4', 'systemd0')[n % 4]} amd64 {n % 7}.{n % 13}.{n % 5} "
                         f"[{rng.randint(20, 4000)} kB]")
        elif kind < 0.92:
            self.err("packer: [INFO] RPC endpoint: Communicator ended with: 0", rng.uniform(0.1, 2))
        elif windows:
            self.out(f"    azure-arm: Searching for Windows updates (pass {n % 5 + 1})...")
        else:
            self.out(f"    azure-arm: Unpacking lib{('ssl3', 'xml2', 'curl4')[n % 3]} ({n % 7}.{n % 13}) ...")

    def _guid(self) -> str:
        value = self.rng.getrandbits(128)
        text = f"{value:032x}"
        return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-a{text[17:20]}-{text[20:32]}"


def customization_log(*, prefix: str, start: datetime, windows: bool, provisioners: Sequence[str],
                      tail: Sequence[str], size: int, seed: int, finished: bool = False) -> str:
    """A log of about `size` characters: start-up, the provisioners with noise, then `tail`.

    `tail` lines are written verbatim after the prefix (lines starting with `ERR ` get a timestamp);
    `finished` adds the successful end (capture, artifacts) before the clean-up.
    """
    w = _Writer(prefix, start, seed)
    w.err("[INFO] Packer version: 1.10.3 [go1.22.1 linux amd64]")
    w.err("[INFO] PACKER_CONFIG env var not set; checking the default config file path")
    w.err("[INFO] (telemetry) Starting builder azure-arm")
    w.out("azure-arm: output will be in this color.")
    for step in _AZURE_STEPS:
        w.out(f"==> azure-arm: {step}")
    if windows:
        w.err("packer: [INFO] Waiting for WinRM, up to timeout: 10m0s", 60)
        w.out("==> azure-arm: Waiting for WinRM to become available...")
        w.out("    azure-arm: WinRM connected.")
        w.out("==> azure-arm: Connected to WinRM!")
    else:
        w.out("==> azure-arm: Waiting for SSH to become available...")
        w.err("packer: [INFO] Waiting for SSH, up to timeout: 20m0s", 45)
        w.out("==> azure-arm: Connected to SSH!")
    budget = max(size - 4000, 0)
    per = budget // max(len(provisioners), 1)
    n = 0
    for index, name in enumerate(provisioners):
        w.err(f"[INFO] (telemetry) Starting provisioner {name}", 2)
        w.out(f"==> azure-arm: Provisioning with {name}...")
        goal = per * (index + 1)
        while w.size < goal:
            w.noise(windows, n)
            n += 1
        if index < len(provisioners) - 1 or finished:
            w.err(f"[INFO] (telemetry) ending {name}", 1)
    for line in tail:
        if line.startswith("ERR "):
            w.err(line[4:], 0.3)
        elif line == "":
            w.add(f"[{prefix}] PACKER OUT ")
        else:
            w.out(line)
    if finished:
        w.out("==> azure-arm: Querying the machine's properties ...")
        w.out("==> azure-arm: Powering off machine ...")
        w.out("==> azure-arm: Capturing image ...")
        w.err("[INFO] (telemetry) Finalizing. - This means the build hasfinished", 240)
        w.out("Build 'azure-arm' finished after 41 minutes 12 seconds.")
        w.out("==> Wait completed after 41 minutes 12 seconds")
        w.out("==> Builds finished. The artifacts of successful builds are:")
        w.out("--> azure-arm: Azure.ResourceManagement.VMImage:")
    w.out("==> azure-arm: Deleting individual resources ...")
    short = prefix.replace("-", "")[:11]
    w.out(f"==> azure-arm: Deleting -> Microsoft.Compute/virtualMachines : 'pkrvm{short}'")
    w.out(f"==> azure-arm: Deleting -> Microsoft.Network/networkInterfaces : 'pkrni{short}'")
    w.out(f"==> azure-arm: Deleting -> Microsoft.Network/publicIPAddresses : 'pkrip{short}'")
    w.err("waiting for all plugin processes to complete...", 30)
    w.add(f"Done exporting Packer logs to Azure for Packer prefix: [{prefix}] PACKER OUT")
    return "\n".join(w.lines) + "\n"


# The decisive endings, in the guide's words (seeds/004).

LOW_RESOURCES_TAIL = (
    "    azure-arm: Waiting for operation to complete (system performance: 1% cpu; 37% memory)...",
    "    azure-arm: Waiting for operation to complete (system performance: 51% cpu; 35% memory)...",
    "    azure-arm: Waiting for operation to complete (system performance: 90% cpu; 32% memory)...",
    "    azure-arm: Waiting for the Windows Modules Installer to exit...",
    "ERR packer: [INFO] command 'PowerShell -ExecutionPolicy Bypass -OutputFormat Text -File "
    "C:/Windows/Temp/packer-windows-update-elevated.ps1' exited with code: 101",
    "==> azure-arm: Restarting the machine...",
    "ERR packer: [INFO] RPC endpoint: Communicator ended with: 101",
    "==> azure-arm: Waiting for machine to become available...",
    "ERR packer: [INFO] starting remote command: shutdown.exe -f -r -t 0 -c \"packer restart\"",
    "ERR packer: [INFO] command 'shutdown.exe -f -r -t 0 -c \"packer restart\"' exited with code: 0",
    "==> azure-arm: A system shutdown is in progress.(1115)",
    "ERR packer: [INFO] starting remote command: shutdown.exe -f -r -t 60 -c \"packer restart test\"",
    "ERR packer: [INFO] command 'shutdown.exe -f -r -t 60 -c \"packer restart test\"' exited with code: 1115",
    "ERR packer: [INFO] RPC endpoint: Communicator ended with: 1115",
    "ERR packer-provisioner-windows-update: Retryable error: Machine not yet available (exit status 1115)",
    "Build 'azure-arm' errored: unexpected EOF",
    "",
)

NO_ARTIFACTS_TAIL = (
    "Build 'azure-arm' errored: Future#WaitForCompletion: context has been cancelled: StatusCode=200 -- "
    "Original Error: context deadline exceeded",
    "ERR ==> Some builds didn't complete successfully and had errors:",
    "",
    "ERR machine readable: azure-arm,error []string{\"Future#WaitForCompletion: context has been cancelled: "
    "StatusCode=200 -- Original Error: context deadline exceeded\"}",
    "==> Some builds didn't complete successfully and had errors:",
    "ERR ==> Builds finished but no artifacts were created.",
    "--> azure-arm: Future#WaitForCompletion: context has been cancelled: StatusCode=200 -- Original Error: "
    "context deadline exceeded",
    "ERR Cancelling builder after context cancellation context canceled",
    "",
    "ERR [INFO] (telemetry) Finalizing. - This means the build hasfinished",
    "==> Builds finished but no artifacts were created.",
)

POWERSHELL_FAILURE_TAIL = (
    "==> azure-arm: Provisioning with powershell script: C:/Windows/Temp/script-6712ad6e-28b1-4f0e-9a77.ps1",
    "    azure-arm: Installing the line-of-business baseline module...",
    "    azure-arm: Install-Module : No match was found for the specified search criteria and module name "
    "'Contoso.Baseline'. Try Get-PSRepository to see all available registered module repositories.",
    "    azure-arm: At C:\\Windows\\Temp\\script-6712ad6e-28b1-4f0e-9a77.ps1:4 char:1",
    "    azure-arm: + Install-Module -Name Contoso.Baseline -Repository ContosoFeed -Force",
    "    azure-arm:     + CategoryInfo          : ObjectNotFound: (Microsoft.Power....InstallPackage:InstallPackage) "
    "[Install-Package], Exception",
    "    azure-arm:     + FullyQualifiedErrorId : NoMatchFoundForCriteria,Microsoft.PowerShell.PackageManagement."
    "Cmdlets.InstallPackage",
    "ERR packer: [INFO] command 'powershell -executionpolicy bypass \"& { if (Test-Path "
    "variable:global:ProgressPreference){set-variable -name variable:global:ProgressPreference -value "
    "'SilentlyContinue'};. c:/Windows/Temp/packer-ps-env-vars-6712ad6e.ps1; "
    "&'c:/Windows/Temp/script-6712ad6e-28b1-4f0e-9a77.ps1'; exit $LastExitCode }\"' exited with code: 1",
    "ERR [INFO] (telemetry) ending powershell",
    "==> azure-arm: Script exited with non-zero exit status: 1. Allowed exit codes are: [0]",
    "Build 'azure-arm' errored after 38 minutes 9 seconds: Script exited with non-zero exit status: 1. "
    "Allowed exit codes are: [0]",
    "",
)

TIMEOUT_TAIL = (
    "    azure-arm: Found 38 updates to install. Downloading...",
    "    azure-arm: Installing 2024-11 Cumulative Update for Microsoft server operating system version 21H2 "
    "for x64-based Systems (KB5046616)...",
    "    azure-arm: Update 21 of 38: installing...",
    "ERR Cancelling build after receiving terminated",
    "ERR [INFO] (telemetry) ending windows-update",
    "Build 'azure-arm' errored after 59 minutes 56 seconds: context canceled",
    "",
)

SIG_SUCCESS_TAIL = (
    "    azure-arm: Reading package lists...",
    "    azure-arm: Processing triggers for man-db (2.10.2-1) ...",
    "    azure-arm: + sudo waagent -force -deprovision+user",
    "    azure-arm: WARNING! The waagent service will be stopped.",
)

SUCCESS_TAIL = (
    "    azure-arm: Writing the image baseline marker...",
    "    azure-arm: Done.",
)
