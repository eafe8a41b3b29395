"""The `remediator` commands that need the sandbox: `sweep --sandbox`, `sandbox` and `serve`.

Registered as the entry point `remediator.sandbox` (pyproject.toml), so the CLI in `shared/`
finds them without importing this package: the deployed app never contains it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

EXIT_OK = 0


@contextmanager
def context() -> Iterator[tuple[Any, list[str]]]:
    """A Context wired to an embedded double serving the sandbox estate."""
    import tempfile
    from pathlib import Path

    from remediations.context import Context
    from remediations.limits import Limits
    from remediations.vault import DirVault
    from sandbox import AzureDouble, sandbox_estate
    from shared.azure.clients import Clients
    from shared.azure.endpoints import Endpoints

    estate = sandbox_estate()
    with AzureDouble(estate=estate) as double, tempfile.TemporaryDirectory(prefix="remediator-vault-") as vault:
        ctx = Context(clients=Clients(Endpoints(arm=double.arm_url, logs=double.logs_url), polling_interval=0.2),
                      limits=Limits.from_env(), vault=DirVault(Path(vault)),
                      workspace_id=estate.workspaces[0].customer_id if estate.workspaces else None)
        yield ctx, list(dict.fromkeys([estate.subscription_id, *estate.subscriptions]))  # every seeded subscription


def serve(port: int) -> int:
    """Serves the double with the sandbox estate until SIGTERM or Ctrl-C; the first stdout line says where."""
    import signal
    import threading

    from sandbox import AzureDouble, sandbox_estate

    estate = sandbox_estate()
    double = AzureDouble(estate=estate, port=port)
    url = double.start()
    print(json.dumps({"url": url, "logs_url": double.logs_url, "subscription": estate.subscription_id,
                      "workspace_id": estate.workspaces[0].customer_id if estate.workspaces else None,
                      "resources": dict(estate.refs)}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        double.stop()
    return EXIT_OK


def serve_app(*, sandbox: bool, port: int, timer: bool, function_key: str | None, data: str | None) -> int:
    """`remediator serve`: the whole Function App locally, as the Functions host runs it (sandbox/serve.py)."""
    from pathlib import Path

    from sandbox.serve import Options, run

    return run(Options(sandbox=sandbox, port=port, timer=timer, function_key=function_key,
                       data=Path(data) if data else None))
