"""Generates infra/role-actions.json, the one list of Azure RBAC actions the deployment grants.

The actions come from the code: every adapter declares what it calls with `@requires(...)`,
and `shared.azure.permissions.required_actions()` collects them. This script only decides
*where* each action is granted, from the small mapping below (kept here, not in `shared/`):

  managedScopes           custom role, assigned at every entry of managedScopes (default)
  registration            custom role, assigned at every managed subscription: provider
                          registration is subscription-wide, so `<ns>/register/action` only works
                          there; the Bicep grants it for each namespace of `registerNamespaces`
  imageBuilderIdentities  built-in Managed Identity Operator on each Image Builder identity
  buildLogs               built-in Storage Blob Data Reader on the staging resource groups, with
                          an ABAC condition that limits blob reads to the `packerlogs` container
  automationWorkspace     built-in Log Analytics Reader on the Automation workspace

Usage:
  python -m scripts.role_actions            print the JSON
  python -m scripts.role_actions --write    write infra/role-actions.json
  python -m scripts.role_actions --check    exit 1 (with a diff) when the file is stale
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "infra" / "role-actions.json"

GRANTS = ("managedScopes", "registration", "imageBuilderIdentities", "buildLogs", "automationWorkspace")
DEFAULT_GRANT = "managedScopes"

# Control-plane actions that are not granted at the managed scopes, by grant.
ACTION_GRANTS: dict[str, str] = {
    # Attaching an identity to an image template: only on the Image Builder identities, which
    # often live outside the managed scopes (never "any identity in a managed scope").
    "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action": "imageBuilderIdentities",
    # GET /subscriptions/{id}/providers/{namespace}: a subscription-level read.
    "Microsoft.Resources/subscriptions/providers/read": "registration",
}
# Any Log Analytics workspace action (query/read, per-table reads, workspaces/read): the
# built-in Log Analytics Reader on the one workspace covers them.
WORKSPACE_ACTION = re.compile(r"^Microsoft\.OperationalInsights/workspaces(/.*)?$", re.IGNORECASE)
# `<Namespace>/register/action`: granted per configured namespace at subscription scope.
REGISTER_ACTION = re.compile(r"^(?P<namespace>[A-Za-z0-9]+\.[A-Za-z0-9.]+)/register/action$")

DATA_ACTION_GRANTS: dict[str, str] = {
    # Image Builder's packerlogs/<run>/customization.log in the staging resource group.
    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read": "buildLogs",
}


def grant_of(action: str) -> str:
    if action in ACTION_GRANTS:
        return ACTION_GRANTS[action]
    if WORKSPACE_ACTION.match(action):
        return "automationWorkspace"
    if REGISTER_ACTION.match(action):
        return "registration"
    return DEFAULT_GRANT


def build(actions: Iterable[str], data_actions: Iterable[str]) -> dict[str, Any]:
    """The role-actions.json document for the declared (actions, dataActions)."""
    doc: dict[str, Any] = {grant: {"actions": [], "dataActions": []} for grant in GRANTS}
    namespaces: set[str] = set()
    for action in actions:
        if "*" in action:
            raise ValueError(f"wildcard action declared in code: {action}")
        register = REGISTER_ACTION.match(action)
        if register is not None:
            namespaces.add(register.group("namespace"))
            continue
        doc[grant_of(action)]["actions"].append(action)
    for action in data_actions:
        if "*" in action:
            raise ValueError(f"wildcard data action declared in code: {action}")
        doc[DATA_ACTION_GRANTS.get(action, DEFAULT_GRANT)]["dataActions"].append(action)
    for section in doc.values():
        section["actions"] = sorted(set(section["actions"]))
        section["dataActions"] = sorted(set(section["dataActions"]))
    # The namespaces the code registers today; the deployment grants `<ns>/register/action`
    # for every entry of `registerNamespaces`, which must include these.
    doc["registration"]["declaredRegisterNamespaces"] = sorted(namespaces)
    return doc


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def declared() -> tuple[frozenset[str], frozenset[str]]:
    from shared.azure.permissions import required_actions

    return required_actions()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"write {OUTPUT.relative_to(ROOT)}")
    mode.add_argument("--check", action="store_true", help="exit 1 with a diff when the file is stale")
    args = parser.parse_args(argv)

    actions, data_actions = declared()
    text = render(build(actions, data_actions))
    if args.write:
        OUTPUT.write_text(text, encoding="utf-8")
        print(f"wrote {OUTPUT.relative_to(ROOT)}", file=sys.stderr)
        return 0
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current == text:
            return 0
        sys.stdout.writelines(difflib.unified_diff(
            current.splitlines(keepends=True), text.splitlines(keepends=True),
            fromfile=f"{OUTPUT.relative_to(ROOT)} (committed)", tofile="declared by the code"))
        print(f"{OUTPUT.relative_to(ROOT)} is stale: run python -m scripts.role_actions --write", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
