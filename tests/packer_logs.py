"""Realistic Image Builder customization.log text of any size, for tests and benchmarks.

Real logs are ~1 MB of Packer output with the decisive lines near the end; the noise here
has the same line shapes (GUID prefix, PACKER OUT/ERR, Azure request lines, telemetry
pairs, download progress) and none of the scenarios' phrases.
"""

from __future__ import annotations

import random
import uuid

_PROVISIONERS = ("powershell", "windows-update", "file", "shell", "windows-restart")


def _noise(rng: random.Random, prefix: str, n: int) -> str:
    kind = rng.random()
    stamp = f"2026/11/2{rng.randint(0, 9)} 0{rng.randint(0, 9)}:{rng.randint(10, 59)}:{rng.randint(10, 59)}"
    if kind < 0.35:
        return (f"[{prefix}] PACKER ERR {stamp} packer: {stamp} Azure request method=\"GET\" request=\"https://"
                f"management.azure.com/subscriptions/{uuid.UUID(int=rng.getrandbits(128))}/resourcegroups/"
                f"IT_rg-images_w2022_{n:06d}/providers/Microsoft.Resources/deployments/pkrdp{n:x}/operationStatuses/"
                f"0858{n:012d}?[REDACTED]\" body=\"\"")
    if kind < 0.7:
        version = f"{n % 7}.{n % 13}.{n % 5}"
        return f"[{prefix}] PACKER OUT     azure-arm: Installing package libexample{n % 97}-{n} ({version})"
    if kind < 0.85:
        size = rng.randint(1000, 90000)
        return f"[{prefix}] PACKER OUT     azure-arm: Downloading tools-{n}.zip {size} bytes ... done"
    return f"[{prefix}] PACKER ERR {stamp} [INFO] RPC endpoint: Communicator ended with: 0"


def customization_log(tail: str, size: int = 1_000_000, seed: int = 0) -> str:
    """A log of about `size` characters whose last lines before clean-up are `tail`."""
    rng = random.Random(seed)
    prefix = str(uuid.UUID(int=rng.getrandbits(128)))
    lines: list[str] = []
    total = 0
    n = 0
    while total < size:
        if n % 400 == 0:
            step = _PROVISIONERS[(n // 400) % len(_PROVISIONERS)]
            block = [f"[{prefix}] PACKER ERR 2026/11/21 01:02:03 [INFO] (telemetry) Starting provisioner {step}",
                     f"[{prefix}] PACKER ERR 2026/11/21 01:02:09 [INFO] (telemetry) ending {step}"]
        else:
            block = [_noise(rng, prefix, n)]
        lines.extend(block)
        total += sum(len(line) + 1 for line in block)
        n += 1
    lines.append(f"[{prefix}] PACKER ERR 2026/11/21 03:58:00 [INFO] (telemetry) Starting provisioner powershell")
    lines.extend(f"[{prefix}] {line}" if line.strip() else line for line in tail.splitlines())
    lines += [
        f"[{prefix}] PACKER OUT ==> azure-arm: Deleting individual resources ...",
        f"[{prefix}] PACKER OUT ==> azure-arm: Deleting -> Microsoft.Network/networkInterfaces : 'pkrni{seed}'",
        f"[{prefix}] PACKER ERR 2026/11/21 03:59:12 waiting for all plugin processes to complete...",
        f"Done exporting Packer logs to Azure for Packer prefix: [{prefix}] PACKER OUT",
    ]
    return "\n".join(lines)
