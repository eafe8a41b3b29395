"""Offline checks of the deployment: infra/*.bicep, azure.yaml, host.json and friends.

Nothing here talks to Azure. The Bicep is parsed with pycep and the tests follow the
wiring the way ARM would (module params -> module outputs -> resource properties), so a
renamed output or a dropped link fails here instead of in a half-provisioned subscription.
The custom role is compared with the actions the code declares, and checkov must report
zero failed checks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
MODULES = INFRA / "modules"
MAIN = INFRA / "main.bicep"
BICEP_FILES = [MAIN, *sorted(MODULES.glob("*.bicep"))]
CHECKOV = ROOT / "scripts" / "checkov.sh"
CHECKOV_VENV = ROOT / ".tools" / "checkov"

# Built-in role definition ids (the same in every tenant).
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"

APP_SETTINGS = {
    "REMEDIATOR_MODE",
    "REMEDIATOR_SWEEP_SCHEDULE",
    "REMEDIATOR_ALLOWED_SCOPES",
    "REMEDIATOR_MAX_CHANGES_PER_HOUR",
    "REMEDIATOR_MAX_CHANGES_PER_TARGET_PER_DAY",
    "REMEDIATOR_TEAMS_WEBHOOK_URL",
    "REMEDIATOR_SIGNING_KEY",
    "REMEDIATOR_APPROVERS",
    "REMEDIATOR_PUBLIC_URL",
    "AZURE_CLIENT_ID",
}

Json = dict[str, Any]


# ---------------------------------------------------------------- reading the Bicep


@cache
def bicep(path: Path) -> Json:
    """The pycep document of one file (cached: every test reads the same few files)."""
    doc = BicepParser().parse(file_path=path)
    return dict(doc)


def module_file(name: str) -> Json:
    return bicep(MODULES / f"{name}.bicep")


def body(block: Json) -> Json:
    """The properties block of a resource or module, past any `if (...)` / `[for ...]` wrappers."""
    node: Json = block["config"]
    while isinstance(node.get("config"), dict) and ("condition" in node or "loop_type" in node):
        node = node["config"]
    return node


def condition(block: Json) -> str | None:
    """The deploy condition of a resource or module, rendered; None when unconditional."""
    node: Json = block["config"]
    while isinstance(node, dict) and ("condition" in node or "loop_type" in node):
        if node.get("condition") is not None:
            return render(node["condition"])
        node = node["config"]
    return None


def loop_array(block: Json) -> str | None:
    """The array a `[for ...]` resource or module iterates over."""
    loop = block["config"].get("loop_type")
    return None if loop is None else str(loop["detail"]["array_name"])


def resource(doc: Json, name: str) -> Json:
    res: Json = doc["resources"][name]
    return res


def module(doc: Json, name: str) -> Json:
    mod: Json = doc["modules"][name]
    return mod


def resources_of_type(doc: Json, rtype: str) -> list[tuple[str, Json]]:
    return [(n, r) for n, r in doc.get("resources", {}).items() if r["type"] == rtype]


def params_of(mod: Json) -> Json:
    params: Json = body(mod)["params"]
    return params


def render(node: Any) -> str:
    """A pycep expression as compact Bicep-like text: `functionApp.outputs.id`, `split(s, /)[2]`."""
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, str | int | float) or node is None:
        return str(node)
    if isinstance(node, list):
        return "[" + ", ".join(render(v) for v in node) + "]"
    if "operator" in node:
        op = node["operator"]
        operands = list(op["operands"].values())
        if op["type"] == "property_accessor":
            return f"{render(operands[0])}.{render(operands[1])}"
        if op["type"] == "index_accessor":
            return f"{render(operands[0])}[{render(operands[1])}]"
        if op["type"] == "nested_resource_accessor":
            return f"{render(operands[0])}::{render(operands[1])}"
        return f"{op['type']}({', '.join(render(v) for v in operands)})"
    if "function" in node:
        fn = node["function"]
        args = [render(v) for v in (fn.get("parameters") or {}).values() if v is not None]
        return f"{fn['type']}({', '.join(args)})"
    return "{" + ", ".join(f"{k}: {render(v)}" for k, v in node.items()) + "}"


def var(doc: Json, name: str) -> Any:
    return doc["variables"][name]["value"]


def param_default(doc: Json, name: str) -> Any:
    return doc["parameters"][name].get("default")


def strings(node: Any) -> Iterator[str]:
    """Every string leaf of a parsed block (literals and rendered identifiers alike)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def decorator(block: Json, kind: str) -> Any:
    for deco in block.get("decorators", []):
        if deco.get("type") == kind:
            return deco.get("argument")
    return None


def role_id(node: Any) -> str:
    """The role named in `subscriptionResourceId('Microsoft.Authorization/roleDefinitions', <role>)`."""
    fn = node["function"]
    assert fn["type"] == "subscription_resource_id", render(node)
    assert fn["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions", render(node)
    return str(fn["parameters"]["resource_name_1"])


# ---------------------------------------------------------------- parsing and parameters


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.name)
def test_every_bicep_file_parses(path: Path) -> None:
    doc = bicep(path)
    # The guards deploy nothing on purpose: their parameters are the checks (see guard.bicep).
    assert doc.get("resources") or doc.get("modules") or path.name.startswith("guard"), f"{path.name} declares nothing"
    for name, mod in doc.get("modules", {}).items():
        target = (path.parent / mod["detail"]["path"]).resolve()
        assert target.is_file(), f"{path.name}: module {name} points at missing {target}"


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.name)
def test_every_parameter_and_output_has_a_description(path: Path) -> None:
    doc = bicep(path)
    for kind in ("parameters", "outputs"):
        for name, block in doc.get(kind, {}).items():
            text = decorator(block, "description")
            assert isinstance(text, str) and len(text) > 10, f"{path.name}: {kind[:-1]} {name} has no @description"


def test_every_module_is_used_by_the_deployment() -> None:
    used = {MAIN.name}
    todo = [MAIN]
    while todo:
        path = todo.pop()
        for mod in bicep(path).get("modules", {}).values():
            target = (path.parent / mod["detail"]["path"]).resolve()
            if target.name not in used:
                used.add(target.name)
                todo.append(target)
    assert {p.name for p in BICEP_FILES} == used


def test_api_versions_are_pinned_and_ga_where_one_exists() -> None:
    # Subscription diagnostic settings exist only in a preview api-version.
    preview_allowed = {"Microsoft.Insights/diagnosticSettings"}
    for path in BICEP_FILES:
        for name, res in bicep(path).get("resources", {}).items():
            version = res.get("api_version") or ""
            where = f"{path.name}: {name} api-version {version!r}"
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", version), where
            if version.endswith("-preview"):
                assert res["type"] in preview_allowed, f"{path.name}: {name} uses preview {version}"


# ---------------------------------------------------------------- least privilege


def code_actions() -> tuple[frozenset[str], frozenset[str]]:
    try:
        from shared.azure.permissions import required_actions
    except ImportError as exc:  # pragma: no cover - only while the adapters are being written
        pytest.fail(f"shared.azure.permissions.required_actions() is needed to check the role: {exc}")
    try:
        return required_actions()
    except ImportError as exc:  # pragma: no cover
        pytest.fail(f"an adapter module listed in shared.azure.permissions does not import: {exc}")


def role_actions_json() -> Json:
    doc: Json = json.loads((INFRA / "role-actions.json").read_text())
    return doc


def role_actions_script() -> Any:
    """scripts/role_actions.py, which owns the action -> grant mapping (never shared/)."""
    import importlib

    return importlib.import_module("scripts.role_actions")


def actions_match(granted: str, wanted: str) -> bool:
    """ARM's wildcard rule for one action, case-insensitively: `*` matches any run of characters, and
    a `/*/` segment may also be empty (Managed Identity Operator's `userAssignedIdentities/*/assign/
    action` is what grants `userAssignedIdentities/assign/action`: "Read and Assign User Assigned
    Identity", built-in roles reference)."""
    pattern = "^" + re.escape(granted.lower()).replace(r"/\*/", "(/.*)?/").replace(r"\*", ".*") + "$"
    return re.match(pattern, wanted.lower()) is not None


# Built-in roles the deployment assigns on single resources, with the permissions the
# built-in roles reference lists for them
# (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
LOG_ANALYTICS_READER = "73c42c96-874c-492b-b04d-ab87d138a893"
LOG_ANALYTICS_READER_ACTIONS = ("*/read", "Microsoft.OperationalInsights/workspaces/analytics/query/action",
                                "Microsoft.OperationalInsights/workspaces/search/action", "Microsoft.Support/*")
MANAGED_IDENTITY_OPERATOR = "f1a07417-d97a-45cb-824c-7a7467783830"
MANAGED_IDENTITY_OPERATOR_ACTIONS = ("Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
                                     "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
                                     "Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*",
                                     "Microsoft.Resources/subscriptions/resourceGroups/read",
                                     "Microsoft.Resources/deployments/*", "Microsoft.Support/*")
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
STORAGE_BLOB_DATA_READER_DATA_ACTIONS = ("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",)


def test_role_actions_json_is_generated_from_the_declared_actions() -> None:
    """infra/role-actions.json is exactly `scripts/role_actions.py` applied to required_actions().

    Resource Graph and ARM only return what the caller may read, so a missing action is a silent
    gap, and an extra one a standing grant: the file must equal the code, section by section.
    Regenerate with `python -m scripts.role_actions --write`.
    """
    want_actions, want_data = code_actions()
    script = role_actions_script()
    expected = script.build(want_actions, want_data)
    doc = role_actions_json()
    assert doc == expected, "infra/role-actions.json is stale: run python -m scripts.role_actions --write"
    assert (INFRA / "role-actions.json").read_text() == script.render(expected), "not in the generated format"
    assert set(doc) == set(script.GRANTS)

    granted: set[str] = set()
    granted_data: set[str] = set()
    for section in doc.values():
        for key in ("actions", "dataActions"):
            assert section[key] == sorted(set(section[key])), f"{key} not sorted and unique"
            assert all("*" not in a for a in section[key]), "wildcard in role-actions.json"
        granted |= set(section["actions"])
        granted_data |= set(section["dataActions"])
    registered = {f"{ns}/register/action" for ns in doc["registration"]["declaredRegisterNamespaces"]}
    # Every declared action is granted somewhere, and nothing that is not declared.
    assert granted | registered == set(want_actions)
    assert granted_data == set(want_data)


def test_role_actions_check_mode_reports_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    script = role_actions_script()
    monkeypatch.setattr(script, "declared", lambda: (frozenset({"Microsoft.Compute/virtualMachines/read"}),
                                                     frozenset()))
    monkeypatch.setattr(script, "OUTPUT", tmp_path / "role-actions.json")
    monkeypatch.setattr(script, "ROOT", tmp_path)
    assert script.main(["--check"]) == 1
    assert "+" in capsys.readouterr().out
    assert script.main(["--write"]) == 0
    assert script.main(["--check"]) == 0


def test_the_action_to_grant_mapping_routes_scope_sensitive_actions() -> None:
    """The Update Manager sweep's reads go to the managed scopes; identity, registration, workspace
    and blob actions each go to the one grant whose scope makes them work."""
    script = role_actions_script()
    doc = script.build(
        {"Microsoft.Compute/virtualMachines/patchInstallationResults/read",
         "Microsoft.HybridCompute/machines/patchInstallationResults/read",
         "Microsoft.Compute/virtualMachines/patchAssessmentResults/read",
         "Microsoft.Maintenance/applyUpdates/read",
         "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
         "Microsoft.Compute/register/action",
         "Microsoft.Resources/subscriptions/providers/read",
         "Microsoft.OperationalInsights/workspaces/query/read",
         "Microsoft.OperationalInsights/workspaces/read"},
        {"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"})
    assert doc["managedScopes"]["actions"] == [
        "Microsoft.Compute/virtualMachines/patchAssessmentResults/read",
        "Microsoft.Compute/virtualMachines/patchInstallationResults/read",
        "Microsoft.HybridCompute/machines/patchInstallationResults/read",
        "Microsoft.Maintenance/applyUpdates/read",
    ]
    assert doc["imageBuilderIdentities"]["actions"] == [
        "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"]
    assert doc["registration"] == {"actions": ["Microsoft.Resources/subscriptions/providers/read"], "dataActions": [],
                                   "declaredRegisterNamespaces": ["Microsoft.Compute"]}
    assert doc["automationWorkspace"]["actions"] == ["Microsoft.OperationalInsights/workspaces/query/read",
                                                     "Microsoft.OperationalInsights/workspaces/read"]
    assert doc["buildLogs"]["dataActions"] == ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"]
    with pytest.raises(ValueError, match="wildcard"):
        script.build({"Microsoft.Compute/*"}, set())


def test_custom_roles_take_their_permissions_from_role_actions_json() -> None:
    """role.bicep (subscription home) and role-resource-group.bicep (resource group home) are the
    same role: loadJsonContent('../role-actions.json'), the section named by `grant`, nothing else."""
    docs = {name: module_file(name) for name in ("role", "role-resource-group")}
    assert docs["role"]["globals"]["scope"]["value"] == "subscription"
    assert docs["role-resource-group"]["globals"]["scope"]["value"] == "resourceGroup"
    for name, doc in docs.items():
        load = var(doc, "grants")["function"]
        assert load["type"] == "load_json_content", name
        assert load["parameters"]["file_path"] == "../role-actions.json", name
        assert render(var(doc, "roleActions")) == "concat(grants[grant].actions, extraActions)", name
        assert render(var(doc, "roleDataActions")) == "grants[grant].dataActions", name
        assert decorator(doc["parameters"]["grant"], "allowed") == ["managedScopes", "registration"], name
        (_, role), = resources_of_type(doc, "Microsoft.Authorization/roleDefinitions")
        props = body(role)["properties"]
        assert props["type"] == "CustomRole"
        (perms,) = props["permissions"]
        assert perms == {"actions": "roleActions", "notActions": [], "dataActions": "roleDataActions",
                         "notDataActions": []}
        assert props["assignableScopes"] == "assignableScopes"
        assert body(role)["name"] == "roleGuid"
    strip = {k: v for k, v in docs["role"].items() if k != "globals"}
    assert strip == {k: v for k, v in docs["role-resource-group"].items() if k != "globals"}

    main = bicep(MAIN)
    for name in ("managedRoleAtSubscription", "managedRoleAtResourceGroup"):
        params = params_of(module(main, name))
        assert params["grant"] == "managedScopes" and "extraActions" not in params, name
    registration = params_of(module(main, "registrationRole"))
    assert registration["grant"] == "registration"
    assert registration["extraActions"] == "registerActions"


def test_registration_rights_follow_the_configured_namespaces() -> None:
    """Provider registration is subscription-wide and needs `<namespace>/register/action` for that
    provider ("The scope for registration is always the subscription ... you must have permission to
    do the /register/action operation for the resource provider", resource-providers-and-types)."""
    main = bicep(MAIN)
    assert param_default(main, "registerNamespaces") == [
        "Microsoft.Automation", "Microsoft.Compute", "Microsoft.Maintenance", "Microsoft.HybridCompute",
        "Microsoft.GuestConfiguration"]
    loop = var(main, "registerActions")
    assert loop["loop_type"]["detail"]["array_name"] == "registerNamespaces"
    assert loop["config"] == "${namespace}/register/action"
    declared = role_actions_json()["registration"]["declaredRegisterNamespaces"]
    assert set(declared) <= set(param_default(main, "registerNamespaces")), "code registers a namespace not granted"
    assert not [a for a in role_actions_json()["managedScopes"]["actions"] if a.endswith("/register/action")]

    role = module(main, "registrationRole")
    assert condition(role) == "deployRegistrationRole"
    assert render(var(main, "deployRegistrationRole")) == "not(empty(registerNamespaces))"
    assert params_of(role)["assignableScopes"] == "managedSubscriptionScopes"
    assert render(body(role)["scope"]) == "subscription(split(registrationRoleHome, /)[2])"
    assigned = module(main, "registrationRoleAssignments")
    assert loop_array(assigned) == "managedSubscriptionIds"
    assert condition(assigned) == "and(secondPhase, deployRegistrationRole)"
    assert assigned["detail"]["path"] == "modules/role-assignment-subscription.bicep"
    assert params_of(assigned)["roleDefinitionName"] == "registrationRoleGuid"
    assert body(assigned)["dependsOn"] == ["registrationRole"]
    settings = params_of(module(main, "functionApp"))["remediatorSettings"]
    assert render(settings["REMEDIATOR_REGISTER_NAMESPACES"]) == "join(registerNamespaces, ,)"


def test_custom_role_is_created_at_its_first_assignable_scope_and_assigned_after_it() -> None:
    """A role definition is PUT at one of its own assignable scopes (role definitions deploy at
    subscription or resource group scope, templates/microsoft.authorization/roledefinitions), and
    role definitions replicate eventually (Azure/azure-cli#20727): the assignments come in the
    second phase, minutes later, and dependsOn orders them after the definition."""
    main = bicep(MAIN)
    assert decorator(main["parameters"]["managedScopes"], "min_length") == 1
    assert render(var(main, "managedRoleHome")) == "conditional(empty(roleDefinitionScope), managedScopes[0], " \
                                                   "roleDefinitionScope)"
    assert render(var(main, "managedRoleHomeIsGroup")) == "contains(to_lower(managedRoleHome), /resourcegroups/)"
    at_sub = module(main, "managedRoleAtSubscription")
    at_rg = module(main, "managedRoleAtResourceGroup")
    assert at_sub["detail"]["path"] == "modules/role.bicep"
    assert at_rg["detail"]["path"] == "modules/role-resource-group.bicep"
    assert condition(at_sub) == "not(managedRoleHomeIsGroup)"
    assert condition(at_rg) == "managedRoleHomeIsGroup"
    assert render(body(at_sub)["scope"]) == "subscription(split(managedRoleHome, /)[2])"
    assert render(body(at_rg)["scope"]) == ("resource_group(conditional(managedRoleHomeIsGroup, split(managedRoleHome, "
                                            "/)[4], appResourceGroupName), split(managedRoleHome, /)[2])")
    for mod in (at_sub, at_rg):
        assert params_of(mod)["assignableScopes"] == "managedScopes"
        assert params_of(mod)["roleGuid"] == "managedRoleGuid"

    targets = var(main, "managedScopeTargets")
    assert targets["loop_type"]["detail"]["array_name"] == "managedScopes"
    subs = module(main, "subscriptionRoleAssignments")
    rgs = module(main, "resourceGroupRoleAssignments")
    assert loop_array(subs) == loop_array(rgs) == "managedScopeTargets"
    assert condition(subs) == "and(secondPhase, not(target.isResourceGroup))"
    assert condition(rgs) == "and(secondPhase, target.isResourceGroup)"
    assert render(body(subs)["scope"]) == "subscription(target.subscriptionId)"
    assert render(body(rgs)["scope"]) == "resource_group(target.groupName, target.groupSubscriptionId)"
    assert subs["detail"]["path"] == "modules/role-assignment-subscription.bicep"
    assert rgs["detail"]["path"] == "modules/role-assignment-resource-group.bicep"
    for mod in (subs, rgs):
        params = params_of(mod)
        assert params["roleDefinitionName"] == "managedRoleGuid"
        assert render(params["principalId"]) == "identity.outputs.principalId"
        assert params["principalType"] == "ServicePrincipal"
        assert body(mod)["dependsOn"] == ["managedRoleAtSubscription", "managedRoleAtResourceGroup"]

    for name, scope in (("role-assignment-subscription", "subscription"),
                        ("role-assignment-resource-group", "resourceGroup")):
        doc = module_file(name)
        assert doc["globals"]["scope"]["value"] == scope
        (_, ra), = resources_of_type(doc, "Microsoft.Authorization/roleAssignments")
        assert role_id(body(ra)["properties"]["roleDefinitionId"]) == "roleDefinitionName"
        assert body(ra)["properties"]["principalId"] == "principalId"

    # A wrong home never deploys: guard.bicep only allows true.
    guard = params_of(module(main, "guard"))
    assert render(guard["roleDefinitionScopeMustBeAManagedScope"]) == \
        "contains(managedScopesLower, to_lower(managedRoleHome))"
    assert render(guard["registrationRoleScopeMustBeAManagedSubscription"]) == \
        "contains(managedSubscriptionScopesLower, to_lower(registrationRoleHome))"


def test_role_identity_does_not_depend_on_the_order_of_the_scopes() -> None:
    """The GUID and name come from the deployment subscription, the environment, the grant and the
    (pinned) home, never from the scope list itself; the display name carries the environment and
    the GUID's start, so it is unique in the tenant (role names must be)."""
    main = bicep(MAIN)
    assert render(var(main, "managedRoleGuid")) == \
        "guid(subscription().id, environmentName, managedScopes, to_lower(managedRoleHome))"
    # 'managedScopes' in that guid() is the literal grant name: the string, not the parameter.
    assert "'managedScopes'" in (MAIN).read_text().split("var managedRoleGuid =")[1].split("\n")[0]
    assert render(var(main, "registrationRoleGuid")) == \
        "guid(subscription().id, environmentName, registration, to_lower(registrationRoleHome))"
    assert var(main, "managedRoleName") == "Azure Update Remediator (${environmentName}, ${take(managedRoleGuid, 8)})"
    assert "environmentName" in var(main, "registrationRoleName")
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert params["roleDefinitionScope"]["value"] == "${REMEDIATOR_ROLE_DEFINITION_SCOPE}"
    assert params["registrationRoleScope"]["value"] == "${REMEDIATOR_REGISTRATION_ROLE_SCOPE}"
    hooks = load_hooks()
    scopes = ["/subscriptions/b/resourceGroups/z", "/subscriptions/a"]
    assert hooks.pin_home("", scopes) == hooks.pin_home("", list(reversed(scopes))) == "/subscriptions/a"
    assert hooks.pin_home("/subscriptions/b/resourceGroups/Z", scopes) == "/subscriptions/b/resourceGroups/z"


def test_shrinking_scopes_removes_the_assignments_that_would_block_the_next_run() -> None:
    """ARM refuses to remove an assignable scope that still has assignments
    (RoleScopeBeingRemovedContainsAssignments, Azure/bicep#17145): the preprovision hook deletes
    the app identity's assignments of the role at the dropped scopes first."""
    hooks = load_hooks()
    old = ["/subscriptions/a/resourceGroups/x", "/subscriptions/a/resourceGroups/y", "/subscriptions/b"]
    assert hooks.removed_scopes(old, ["/subscriptions/A/resourceGroups/X", "/subscriptions/b"]) == [old[1]]
    assert hooks.is_within("/subscriptions/b/resourceGroups/q", ["/subscriptions/b"])
    assert not hooks.is_within("/subscriptions/bb", ["/subscriptions/b"])

    deleted: list[str] = []
    assignment = {"id": "/subscriptions/a/resourceGroups/y/providers/Microsoft.Authorization/roleAssignments/1",
                  "properties": {"scope": "/subscriptions/a/resourceGroups/y",
                                 "roleDefinitionId": "/subscriptions/a/providers/Microsoft.Authorization/"
                                                     "roleDefinitions/GUID1"}}
    other = {"id": "/subscriptions/a/resourceGroups/y/providers/Microsoft.Authorization/roleAssignments/2",
             "properties": {"scope": "/subscriptions/a/resourceGroups/y",
                            "roleDefinitionId": "/subscriptions/a/providers/Microsoft.Authorization/"
                                                "roleDefinitions/something-else"}}

    def fake_arm(method: str, path: str, api: str, body: Any = None, query: str = "") -> Any:
        if method == "GET":
            return hooks.Response(200, {"properties": {"assignableScopes": old}}, {})
        deleted.append(path)
        return hooks.Response(200, {}, {})

    originals = (hooks.arm, hooks.assignments_of)
    hooks.arm, hooks.assignments_of = fake_arm, lambda principal, sub: [assignment, other]
    try:
        hooks.reconcile_custom_role("managed-scopes", guid="guid1", home=old[0], new_home=old[0],
                                    new_scopes=[old[0], old[2]], principal_id="p")
        assert deleted == [assignment["id"]]
        deleted.clear()
        # The home itself is dropped: every assignment of the old role goes, then the definition.
        hooks.reconcile_custom_role("managed-scopes", guid="guid1", home=old[0], new_home=old[2],
                                    new_scopes=[old[2]], principal_id="p")
        assert deleted[-1].endswith("/providers/Microsoft.Authorization/roleDefinitions/guid1")
    finally:
        hooks.arm, hooks.assignments_of = originals


def test_identity_assign_is_granted_only_on_the_image_builder_identities() -> None:
    """`userAssignedIdentities/assign/action` over a whole scope lets the app attach any identity
    there to a template; it is granted per Image Builder identity (built-in Managed Identity
    Operator, which includes `userAssignedIdentities/*/assign/action`), never at managed scopes."""
    doc = role_actions_json()
    assert "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action" not in doc["managedScopes"]["actions"]
    for wanted in doc["imageBuilderIdentities"]["actions"]:
        assert any(actions_match(g, wanted) for g in MANAGED_IDENTITY_OPERATOR_ACTIONS), wanted
    assert not doc["imageBuilderIdentities"]["dataActions"]

    main = bicep(MAIN)
    assert param_default(main, "imageBuilderIdentityIds") == []
    assert var(main, "managedIdentityOperator") == MANAGED_IDENTITY_OPERATOR
    mod = module(main, "identityOperators")
    assert loop_array(mod) == "imageBuilderIdentityTargets"
    assert var(main, "imageBuilderIdentityTargets")["loop_type"]["detail"]["array_name"] == "imageBuilderIdentityIds"
    assert render(body(mod)["scope"]) == "resource_group(target.resourceGroup, target.subscriptionId)"
    params = params_of(mod)
    assert render(params["identityName"]) == "target.name" and params["roleDefinitionName"] == "managedIdentityOperator"
    assignment = module_file("role-assignment-identity")
    ra = body(resource(assignment, "assignment"))
    assert ra["scope"] == "identity"
    assert resource(assignment, "identity")["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities"
    assert resource(assignment, "identity")["existing"] is True


def test_build_logs_are_read_only_in_packerlogs_containers_of_the_staging_groups() -> None:
    """Image Builder writes packerlogs/<run>/customization.log in its staging group: Storage Blob
    Data Reader there, with an ABAC condition (version 2.0) limiting blob reads to containers named
    packerlogs (storage-auth-abac-examples), instead of blobs/read over whole subscriptions."""
    doc = role_actions_json()
    assert doc["managedScopes"]["dataActions"] == []
    for wanted in doc["buildLogs"]["dataActions"]:
        assert any(actions_match(g, wanted) for g in STORAGE_BLOB_DATA_READER_DATA_ACTIONS), wanted

    main = bicep(MAIN)
    assert var(main, "storageBlobDataReader") == STORAGE_BLOB_DATA_READER
    assert var(main, "packerLogsCondition") == (
        "((!(ActionMatches{\\'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read\\'})) OR "
        "(@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals \\'packerlogs\\'))")
    mod = module(main, "buildLogReaders")
    assert loop_array(mod) == "stagingGroupTargets"
    assert var(main, "stagingGroupTargets")["loop_type"]["detail"]["array_name"] == "imageStagingResourceGroupIds"
    assert render(body(mod)["scope"]) == "resource_group(target.name, target.subscriptionId)"
    assert params_of(mod)["condition"] == "packerLogsCondition"
    assert mod["detail"]["path"] == "modules/role-assignment-resource-group.bicep"
    ra = body(resource(module_file("role-assignment-resource-group"), "assignment"))["properties"]
    assert render(ra["condition"]) == "conditional(empty(condition), None, condition)"
    assert render(ra["conditionVersion"]) == "conditional(empty(condition), None, 2.0)"


def test_automation_workspace_queries_use_log_analytics_reader_on_that_workspace() -> None:
    """`workspaces/query/read` alone reads no table; the built-in Log Analytics Reader (`*/read`,
    which covers workspaces/read and every `workspaces/query/<table>/read`) on the one workspace."""
    doc = role_actions_json()
    assert not [a for a in doc["managedScopes"]["actions"] if a.startswith("Microsoft.OperationalInsights/")]
    for wanted in (*doc["automationWorkspace"]["actions"], "Microsoft.OperationalInsights/workspaces/read",
                   *(f"Microsoft.OperationalInsights/workspaces/query/{t}/read"
                     for t in ("Heartbeat", "Update", "Operation", "UpdateRunProgress"))):
        assert any(actions_match(g, wanted) for g in LOG_ANALYTICS_READER_ACTIONS), wanted

    main = bicep(MAIN)
    assert var(main, "logAnalyticsReader") == LOG_ANALYTICS_READER
    mod = module(main, "workspaceReader")
    assert condition(mod) == "not(empty(automationWorkspaceId))"
    assert render(body(mod)["scope"]) == \
        "resource_group(automationWorkspace.resourceGroup, automationWorkspace.subscriptionId)"
    assert render(params_of(mod)["workspaceName"]) == "automationWorkspace.name"
    workspace = module_file("role-assignment-workspace")
    assert body(resource(workspace, "assignment"))["scope"] == "workspace"
    assert resource(workspace, "workspace")["type"] == "Microsoft.OperationalInsights/workspaces"


def test_built_in_roles_for_the_app_identity_on_its_own_resources() -> None:
    main = bicep(MAIN)
    for name in ("storage", "keyVault", "monitoring"):
        assert render(params_of(module(main, name))["identityPrincipalId"]) == "identity.outputs.principalId"

    storage = module_file("storage")
    roles = var(storage, "appDataRoles")
    assert roles == ["storageBlobDataOwner", "storageQueueDataContributor", "storageTableDataContributor"]
    assert {var(storage, n) for n in var(storage, "appDataRoles")} == {
        STORAGE_BLOB_DATA_OWNER, STORAGE_QUEUE_DATA_CONTRIBUTOR, STORAGE_TABLE_DATA_CONTRIBUTOR}
    ra = resource(storage, "appDataRoleAssignments")
    assert loop_array(ra) == "appDataRoles"
    assert body(ra)["scope"] == "storage"
    assert body(ra)["properties"]["principalId"] == "identityPrincipalId"

    keyvault = module_file("keyvault")
    ra = resource(keyvault, "appSecretsUser")
    assert body(ra)["scope"] == "vault" and body(ra)["properties"]["principalId"] == "identityPrincipalId"
    assert role_id(body(ra)["properties"]["roleDefinitionId"]) == "keyVaultSecretsUser"
    assert var(keyvault, "keyVaultSecretsUser") == KEY_VAULT_SECRETS_USER

    monitoring = module_file("monitoring")
    ra = resource(monitoring, "metricsPublisher")
    assert body(ra)["scope"] == "appInsights" and body(ra)["properties"]["principalId"] == "identityPrincipalId"
    assert var(monitoring, "monitoringMetricsPublisher") == MONITORING_METRICS_PUBLISHER


def test_deployer_principal_type_is_never_assumed() -> None:
    """CI runs as a service principal: principalType comes from the login (the preprovision hook
    sets AZURE_PRINCIPAL_TYPE) or is left out, never a `User` default."""
    main = bicep(MAIN)
    assert param_default(main, "principalType") == ""
    assert decorator(main["parameters"]["principalType"], "allowed") == ["", "User", "Group", "ServicePrincipal"]
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert params["principalType"]["value"] == "${AZURE_PRINCIPAL_TYPE}"
    keyvault = module_file("keyvault")
    assert param_default(keyvault, "operatorPrincipalType") == ""
    officer = body(resource(keyvault, "operatorSecretsOfficer"))["properties"]
    assert render(officer["principalType"]) == "conditional(empty(operatorPrincipalType), None, operatorPrincipalType)"
    hooks = load_hooks()
    assert hooks.principal_type({"idtyp": "app"}) == "ServicePrincipal"
    assert hooks.principal_type({"idtyp": "user", "scp": "user_impersonation"}) == "User"
    assert hooks.principal_type({"scp": "user_impersonation"}) == "User"
    assert hooks.principal_type({"roles": ["x"]}) == "ServicePrincipal"


# ---------------------------------------------------------------- the Function App


def test_function_app_is_flex_consumption_python_311_under_the_user_assigned_identity() -> None:
    main = bicep(MAIN)
    params = params_of(module(main, "functionApp"))
    assert params["pythonVersion"] == "3.11"
    assert render(params["identityId"]) == "identity.outputs.id"
    assert render(params["identityClientId"]) == "identity.outputs.clientId"
    assert render(params["storageAccountName"]) == "storage.outputs.name"
    assert render(params["deploymentContainerName"]) == "storage.outputs.deploymentContainerName"
    assert render(params["applicationInsightsConnectionString"]) == "monitoring.outputs.connectionString"
    assert params["serviceName"] == "api"

    fn = module_file("function")
    plan = body(resource(fn, "plan"))
    assert plan["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    assert plan["properties"]["reserved"] is True
    assert resource(fn, "plan")["type"] == "Microsoft.Web/serverfarms"

    site = body(resource(fn, "functionApp"))
    assert site["kind"] == "functionapp,linux"
    assert site["identity"]["type"] == "UserAssigned"
    assert list(site["identity"]["userAssignedIdentities"]) == ["'${identityId}'"]
    props = site["properties"]
    assert render(props["serverFarmId"]) == "plan.id"
    assert props["httpsOnly"] is True
    assert props["keyVaultReferenceIdentity"] == "identityId"
    config = props["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "pythonVersion"}
    assert fn["parameters"]["pythonVersion"]["default"] == "3.11"
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["value"] == "${storageBlobEndpoint}${deploymentContainerName}"
    assert storage["authentication"] == {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "identityId"}
    assert "azd-service-name" in json.dumps(site["tags"])


def test_flex_site_config_holds_only_what_flex_consumption_accepts() -> None:
    """ftpsState is 'FTPS not supported' on Flex (functions-app-settings, Flex Consumption plan
    deprecations), and newer FC1 stamps reject ftpsState, http20Enabled, remoteDebuggingEnabled and
    scmMinTlsVersion with error 51021. The checkov checks they satisfied are skipped with a reason."""
    fn = module_file("function")
    site_config = body(resource(fn, "functionApp"))["properties"]["siteConfig"]
    assert site_config == {"minTlsVersion": "1.2"}
    text = (MODULES / "function.bicep").read_text()
    for banned in ("ftpsState", "http20Enabled", "remoteDebuggingEnabled", "scmMinTlsVersion", "alwaysOn",
                   "use32BitWorkerProcess", "linuxFxVersion", "functionAppScaleLimit"):
        assert not re.search(rf"^\s*{banned}\s*:", text, re.M), banned
    skips = dict(re.findall(r"checkov:skip=(CKV_AZURE_\d+):(.*)", text.split("resource functionApp ")[1]
                            .split("properties:")[0]))
    for check, reason_word in (("CKV_AZURE_78", "ftpsState"), ("CKV_AZURE_67", "http20Enabled"),
                               ("CKV_AZURE_18", "http20Enabled")):
        assert check in skips and reason_word in skips[check], check


def test_app_settings_are_identity_based_and_secrets_are_key_vault_references() -> None:
    fn = module_file("function")
    platform = var(fn, "platformSettings")
    assert platform["AzureWebJobsStorage__accountName"] == "storageAccountName"
    assert platform["AzureWebJobsStorage__credential"] == "managedidentity"
    assert platform["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert platform["AZURE_CLIENT_ID"] == "identityClientId"
    assert platform["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "applicationInsightsConnectionString"
    assert platform["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"
    assert platform["REMEDIATOR_TEAMS_WEBHOOK_URL"] == "@Microsoft.KeyVault(SecretUri=${teamsWebhookSecretUri})"
    assert platform["REMEDIATOR_SIGNING_KEY"] == "@Microsoft.KeyVault(SecretUri=${signingKeySecretUri})"
    assert platform["REMEDIATOR_PUBLIC_URL"] == "https://${functionApp.properties.defaultHostName}"
    # Connection strings with keys, and settings Flex Consumption rejects, stay out.
    banned_settings = ("AzureWebJobsStorage", "FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION",
                       "WEBSITE_RUN_FROM_PACKAGE")
    for banned in banned_settings:
        assert banned not in platform
    app_settings = body(resource(fn, "appSettings"))
    assert app_settings["name"] == "appsettings"
    assert render(app_settings["properties"]) == "union(remediatorSettings, platformSettings)"

    main = bicep(MAIN)
    params = params_of(module(main, "functionApp"))
    remediator = params["remediatorSettings"]
    declared = set(remediator) | set(platform)
    assert declared >= APP_SETTINGS, APP_SETTINGS - declared
    assert remediator["REMEDIATOR_MODE"] == "remediatorMode"
    assert render(remediator["REMEDIATOR_ALLOWED_SCOPES"]) == "join(managedScopes, ,)"
    assert param_default(main, "remediatorMode") == "suggest"
    assert decorator(main["parameters"]["remediatorMode"], "allowed") == ["observe", "suggest", "auto"]
    assert param_default(main, "sweepSchedule") == "0 */15 * * * *"
    assert param_default(main, "maxChangesPerHour") == 20
    assert param_default(main, "maxChangesPerTargetPerDay") == 3

    # The Key Vault references point at the vault's versionless secret URIs.
    assert render(params["teamsWebhookSecretUri"]) == "keyVault.outputs.teamsWebhookSecretUri"
    assert render(params["signingKeySecretUri"]) == "keyVault.outputs.signingKeySecretUri"
    kv_outputs = module_file("keyvault")["outputs"]
    for output, secret_name in (("teamsWebhookSecretUri", "teamsWebhookSecretName"),
                                ("signingKeySecretUri", "signingKeySecretName")):
        assert kv_outputs[output]["value"] == f"${{vault.properties.vaultUri}}secrets/${{{secret_name}}}"


def test_approvers_are_only_deployed_behind_app_service_authentication() -> None:
    """REMEDIATOR_APPROVERS is checked against X-MS-CLIENT-PRINCIPAL, which only App Service
    authentication (Easy Auth, supported on Flex Consumption: functions-mcp-tutorial enables it on a
    Flex app) makes unforgeable. Both parameters set: authsettingsV2 with the Entra provider
    (tenant v2.0 issuer, AllowAnonymous so function-key routes keep working, no token store, no
    client secret: implicit flow) and the allow-list; approvers alone: the deployment fails."""
    main = bicep(MAIN)
    assert param_default(main, "approvers") == "" and main["parameters"]["approvers"]["type"] == "string"
    assert param_default(main, "approverAuthClientId") == ""
    assert render(var(main, "approverAuthEnabled")) == "not(or(empty(approvers), empty(approverAuthClientId)))"
    params = params_of(module(main, "functionApp"))
    assert render(params["remediatorSettings"]["REMEDIATOR_APPROVERS"]) == \
        "conditional(approverAuthEnabled, approvers, )"
    assert render(params["approverAuthClientId"]) == "conditional(approverAuthEnabled, approverAuthClientId, )"
    # approvers without a client id: guard.bicep refuses the deployment.
    guard_param = params_of(module(main, "guard"))["approversRequireApproverAuthClientId"]
    assert render(guard_param) == "or(empty(approvers), not(empty(approverAuthClientId)))"
    guard = module_file("guard")
    for name, block in guard["parameters"].items():
        assert block["type"] == "bool" and decorator(block, "allowed") == [True], name
    assert body(module(main, "functionApp"))["dependsOn"] == ["guard"]

    fn = module_file("function")
    auth = resource(fn, "authSettings")
    assert auth["type"] == "Microsoft.Web/sites/config"
    assert condition(auth) == "not(empty(approverAuthClientId))"
    props = body(auth)["properties"]
    assert body(auth)["name"] == "authsettingsV2"
    assert props["platform"]["enabled"] is True
    assert props["globalValidation"] == {"requireAuthentication": False,
                                         "unauthenticatedClientAction": "AllowAnonymous"}
    aad = props["identityProviders"]["azureActiveDirectory"]
    assert aad["enabled"] is True
    assert aad["registration"]["clientId"] == "approverAuthClientId"
    assert aad["registration"]["openIdIssuer"] == \
        "${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0"
    assert "clientSecretSettingName" not in aad["registration"]
    assert props["login"]["tokenStore"]["enabled"] is False
    assert props["httpSettings"]["requireHttps"] is True
    assert body(auth)["dependsOn"] == ["appSettings"]  # one write to the site's config at a time

    hooks = load_hooks()
    scopes = '["/subscriptions/00000000-0000-0000-0000-000000000000"]'
    assert hooks.check_config({"REMEDIATOR_MANAGED_SCOPES": scopes, "REMEDIATOR_APPROVERS": "lead@contoso.com"})
    assert not hooks.check_config({"REMEDIATOR_MANAGED_SCOPES": scopes, "REMEDIATOR_APPROVERS": "lead@contoso.com",
                                   "REMEDIATOR_APPROVER_AUTH_CLIENT_ID": "11111111-1111-1111-1111-111111111111"})
    assert hooks.check_config({"REMEDIATOR_MANAGED_SCOPES": '["rg-ops"]'})


def test_storage_is_identity_only_tls12_and_private() -> None:
    storage = module_file("storage")
    props = body(resource(storage, "storage"))["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["allowBlobPublicAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True
    for name in ("deploymentContainer", "deadLetterContainer"):
        assert body(resource(storage, name))["properties"]["publicAccess"] == "None"
    assert storage["parameters"]["deadLetterContainerName"]["default"] == "eventgrid-deadletter"
    assert var(bicep(MAIN), "deadLetterContainerName") == "eventgrid-deadletter"
    # No account keys anywhere: no listKeys on storage, no connection strings.
    for path in BICEP_FILES:
        text = path.read_text()
        assert "AccountKey=" not in text and "listKeys(storage" not in text, path.name


def test_key_vault_uses_rbac_with_purge_protection_and_soft_delete() -> None:
    keyvault = module_file("keyvault")
    props = body(resource(keyvault, "vault"))["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enablePurgeProtection"] is True
    assert props["enableSoftDelete"] is True
    assert "accessPolicies" not in props
    assert param_default(keyvault, "signingKeySecretName") == "approval-signing-key"
    assert param_default(keyvault, "teamsWebhookSecretName") == "teams-webhook-url"


def test_key_vault_name_changes_with_each_environment_lifecycle() -> None:
    """Purge protection keeps a deleted vault's name taken for 90 days: the name mixes in a suffix
    the preprovision hook picks per lifecycle and the postdown/teardown hooks forget."""
    main = bicep(MAIN)
    assert render(var(main, "keyVaultName")) == ("${abbrs.keyVaultVaults}${toLower(uniqueString(subscription().id, "
                                                 "environmentName, location, keyVaultNameSuffix))}")
    assert params_of(module(main, "keyVault"))["name"] == "keyVaultName"
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert params["keyVaultNameSuffix"]["value"] == "${REMEDIATOR_KEY_VAULT_SUFFIX}"
    hooks_text = (INFRA / "hooks" / "remediator_hooks.py").read_text()
    assert 'azd_env_set("REMEDIATOR_KEY_VAULT_SUFFIX", secrets.token_hex(3))' in hooks_text
    assert '"REMEDIATOR_KEY_VAULT_SUFFIX"' in hooks_text.split("def forget_lifecycle_values")[1].split("def ")[0]


def test_secrets_never_pass_through_arm_or_the_azd_environment() -> None:
    """The signing key and the Teams webhook are written to Key Vault's data plane by the
    postprovision hook: no template parameter, no output, no main.parameters.json entry."""
    main = bicep(MAIN)
    for name in ("teamsWebhookUrl", "approvalSigningKey"):
        assert name not in main["parameters"], name
    for path in BICEP_FILES:
        doc = bicep(path)
        assert not [n for n, p in doc.get("parameters", {}).items() if decorator(p, "secure") is not None
                    or any(d.get("type") == "secure" for d in p.get("decorators", []))], path.name
        assert not [n for n in doc.get("resources", {}).values() if n["type"] == "Microsoft.KeyVault/vaults/secrets"]
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert not [n for n, p in params.items() if "TEAMS" in str(p["value"]) or "SIGNING" in str(p["value"])]
    assert not [o for o in main["outputs"] if "WEBHOOK" in o or "SIGNING" in o or "KEY" in o.replace("KEY_VAULT", "")]
    hooks = load_hooks()
    assert hooks.valid_teams_url("https://prod-01.westeurope.logic.azure.com:443/workflows/x")
    assert not hooks.valid_teams_url("http://prod-01.westeurope.logic.azure.com/workflows/x")
    assert not hooks.valid_teams_url("https://contoso.webhook.office.com/webhookb2/x")
    assert len(__import__("base64").urlsafe_b64decode(hooks.new_signing_key())) == 32


def test_application_insights_uses_entra_ingestion_on_a_workspace() -> None:
    monitoring = module_file("monitoring")
    props = body(resource(monitoring, "appInsights"))["properties"]
    assert props["DisableLocalAuth"] is True
    assert render(props["WorkspaceResourceId"]) == "workspace.id"


# ---------------------------------------------------------------- Event Grid


def test_image_resource_groups_feed_on_event_through_system_topics() -> None:
    main = bicep(MAIN)
    topics = module(main, "imageTopics")
    assert loop_array(topics) == "imageResourceGroupIds"
    assert render(body(topics)["scope"]) == "resource_group(split(rgId, /)[4], split(rgId, /)[2])"
    tp = params_of(topics)
    assert tp["topicType"] == "Microsoft.Resources.ResourceGroups"
    assert tp["location"] == "global"
    assert tp["sourceId"] == "rgId"

    subs = module(main, "imageSubscriptions")
    assert loop_array(subs) == "imageResourceGroupIds"
    assert condition(subs) == "secondPhase"
    sp = params_of(subs)
    # The deployment's own topic or the existing one (test_a_source_with_an_existing_system_topic_...).
    assert render(sp["systemTopicName"]) == ("conditional(imageTopicTargets[i].reuse, "
                                            "imageExistingTopics[i].outputs.name, imageTopics[i].outputs.name)")
    assert render(sp["functionAppId"]) == "functionApp.outputs.id"
    assert sp["functionName"] == "on_event"
    assert var(main, sp["includedEventTypes"]) == [
        "Microsoft.Resources.ResourceActionFailure",
        "Microsoft.Resources.ResourceActionSuccess",
        "Microsoft.Resources.ResourceWriteFailure",
    ]
    assert var(main, sp["advancedFilters"]) == [
        {"operatorType": "StringBeginsWith", "key": "data.operationName", "values": ["Microsoft.VirtualMachineImages"]}
    ]
    assert body(subs)["dependsOn"] == ["imageDeadLetterAccess"]
    _assert_dead_letter_wiring(main, sp, "imageDeadLetterAccess", "image")


def test_maintenance_configurations_feed_on_event_through_system_topics() -> None:
    main = bicep(MAIN)
    topics = module(main, "maintenanceTopics")
    assert loop_array(topics) == "maintenanceConfigurationIds"
    tp = params_of(topics)
    assert tp["topicType"] == "Microsoft.Maintenance.MaintenanceConfigurations"
    assert tp["sourceId"] == "mcId"
    assert render(tp["location"]) == "maintenanceConfigurations[i].location"
    assert resource(main, "maintenanceConfigurations")["existing"] is True

    subs = module(main, "maintenanceSubscriptions")
    assert condition(subs) == "secondPhase"
    sp = params_of(subs)
    assert render(sp["systemTopicName"]) == ("conditional(maintenanceTopicTargets[i].reuse, "
                                            "maintenanceExistingTopics[i].outputs.name, "
                                            "maintenanceTopics[i].outputs.name)")
    assert render(sp["functionAppId"]) == "functionApp.outputs.id"
    assert sp["functionName"] == "on_event"
    # PreMaintenanceEvent feeds the health gate, PostMaintenanceEvent the per-machine results.
    assert var(main, sp["includedEventTypes"]) == ["Microsoft.Maintenance.PreMaintenanceEvent",
                                                   "Microsoft.Maintenance.PostMaintenanceEvent"]
    assert body(subs)["dependsOn"] == ["maintenanceDeadLetterAccess"]
    _assert_dead_letter_wiring(main, sp, "maintenanceDeadLetterAccess", "maintenance")


def test_names_in_shared_resource_groups_carry_the_environment() -> None:
    """Two environments can manage the same estate: what each creates in a shared group or
    subscription is named after it. The system topic is the exception Event Grid imposes (one per
    source): it is shared, has no environment name or tag, and each environment subscribes to it."""
    main = bicep(MAIN)
    tag = var(main, "environmentTag")
    assert tag == "${take(environmentSlug, 20)}-${take(uniqueString(environmentName), 5)}"
    slug = render(var(main, "environmentSlug"))
    for char in ("_", ".", "(", ")"):
        assert f", {char}, -)" in slug, char  # Event Grid names take letters, digits and '-' only
    assert params_of(module(main, "imageSubscriptions"))["name"] == "remediator-${environmentTag}-img"
    assert params_of(module(main, "maintenanceSubscriptions"))["name"] == "remediator-${environmentTag}-mc"
    assert params_of(module(main, "imageRunAlerts"))["environmentName"] == "environmentTag"
    assert params_of(module(main, "activityLogRouting"))["environmentName"] == "environmentTag"
    alert = body(resource(module_file("image-run-alert"), "imageRunFailed"))
    assert alert["name"] == "alert-image-template-run-failed-${environmentName}"
    routing = body(resource(module_file("activity-log-routing"), "activityLog"))
    assert routing["name"] == "remediator-${environmentName}-activity-log"
    for topics in ("imageTopics", "maintenanceTopics"):
        assert params_of(module(main, topics))["tags"] == "tags", topics
        assert "environment" not in json.dumps(params_of(module(main, topics))["name"]).lower()
    for path in BICEP_FILES:
        for name, res in bicep(path).get("resources", {}).items():
            if res["type"] == "Microsoft.Authorization/roleAssignments":
                assert render(body(res)["name"]).startswith("guid("), f"{path.name}: {name}"


def _assert_dead_letter_wiring(main: Json, sub_params: Json, access: str, kind: str) -> None:
    assert render(sub_params["deadLetterStorageAccountId"]) == "storage.outputs.id"
    assert render(sub_params["deadLetterContainerName"]) == "storage.outputs.deadLetterContainerName"
    assert render(sub_params["maxDeliveryAttempts"]) == "eventMaxDeliveryAttempts"
    assert render(sub_params["eventTimeToLiveInMinutes"]) == "eventTimeToLiveInMinutes"
    ap = params_of(module(main, access))
    # The identity of whichever topic the subscription is on: the created one or the existing one.
    assert render(ap["topicPrincipalId"]) == (f"conditional({kind}TopicTargets[i].reuse, "
                                              f"{kind}ExistingTopics[i].outputs.principalId, "
                                              f"{kind}Topics[i].outputs.principalId)")
    assert render(ap["storageAccountName"]) == "storage.outputs.name"
    assert render(ap["containerName"]) == "storage.outputs.deadLetterContainerName"
    assert render(body(module(main, access))["scope"]) == "rg"


def test_event_subscription_delivers_to_the_function_with_retries_and_identity_dead_letters() -> None:
    doc = module_file("eventgrid-subscription")
    props = body(resource(doc, "eventSubscription"))["properties"]
    dest = props["destination"]
    assert dest["endpointType"] == "AzureFunction"
    assert dest["properties"]["resourceId"] == "${functionAppId}/functions/${functionName}"
    assert doc["parameters"]["functionName"]["default"] == "on_event"
    assert props["filter"]["includedEventTypes"] == "includedEventTypes"
    assert props["filter"]["advancedFilters"] == "advancedFilters"
    assert props["retryPolicy"] == {
        "maxDeliveryAttempts": "maxDeliveryAttempts",
        "eventTimeToLiveInMinutes": "eventTimeToLiveInMinutes",
    }
    dl = props["deadLetterWithResourceIdentity"]
    assert dl["identity"] == {"type": "SystemAssigned"}
    assert dl["deadLetterDestination"] == {
        "endpointType": "StorageBlob",
        "properties": {"resourceId": "deadLetterStorageAccountId", "blobContainerName": "deadLetterContainerName"},
    }
    assert "deadLetterDestination" not in props, "key-based dead-lettering"

    topic = body(resource(module_file("eventgrid-topic"), "topic"))
    assert topic["identity"] == {"type": "SystemAssigned"}
    assert topic["properties"] == {"source": "sourceId", "topicType": "topicType"}

    access = module_file("eventgrid-deadletter-access")
    ra = body(resource(access, "deadLetterWriter"))
    assert render(ra["scope"]) == "storage::blobService::container"
    assert ra["properties"]["principalId"] == "topicPrincipalId"
    assert role_id(ra["properties"]["roleDefinitionId"]) == "storageBlobDataContributor"
    assert var(access, "storageBlobDataContributor") == STORAGE_BLOB_DATA_CONTRIBUTOR


# ---------------------------------------------------------------- Event Grid: existing system topics
#
# Event Grid allows one system topic per source, so a source that already has one (Update
# Manager's pre/post events create one per maintenance configuration) must get its event
# subscription on that topic. These tests evaluate main.bicep's own expressions for sample
# parameters (a small evaluator of the pycep tree, below) instead of comparing rendered text, so
# they follow what ARM would compute: which topic module deploys, in which resource group the
# subscription lands and which topic and identity it uses.

SUB_A = "/subscriptions/00000000-0000-0000-0000-00000000000a"
SUB_B = "/subscriptions/00000000-0000-0000-0000-00000000000b"
IMAGE_RGS = [f"{SUB_A}/resourceGroups/rg-images", f"{SUB_B}/resourceGroups/rg-golden"]
MC = "providers/Microsoft.Maintenance/maintenanceConfigurations"
TOPICS = "providers/Microsoft.EventGrid/systemTopics"
MAINTENANCE_CONFIGS = [f"{SUB_A}/resourceGroups/rg-patch/{MC}/mc-new",
                       f"{SUB_B}/resourceGroups/rg-patch/{MC}/mc-prepost"]
EXISTING_TOPICS = {
    IMAGE_RGS[1]: f"{SUB_B}/resourceGroups/rg-shared-events/{TOPICS}/golden-events",
    MAINTENANCE_CONFIGS[1]: f"{SUB_B}/resourceGroups/rg-events/{TOPICS}/mc-prepost-events",
}


class Unknown(Exception):
    """An identifier the evaluator does not know (then the pycep string is a literal)."""


class BicepEval:
    """Evaluates the pycep expressions of one Bicep file for given parameter values.

    Only the functions the Event Grid wiring uses are implemented; anything else raises, so a
    change in that wiring fails loudly here instead of being skipped. pycep writes identifiers and
    string literals alike as strings: a string is a name when one is in scope, else a literal.
    Modules evaluate to stand-ins whose outputs name the module, index and output
    (`imageTopics[0].name`); `resourceGroup(sub, name)` to `('rg', sub, name)`.
    """

    def __init__(self, doc: Json, params: Json, base: Path = INFRA) -> None:
        self.doc, self.params, self.base = doc, params, base

    def lookup(self, name: str, scope: Json) -> Any:
        if name in scope:
            return scope[name]
        if name in self.params:
            return self.params[name]
        if name in self.doc.get("parameters", {}):
            return self.doc["parameters"][name].get("default")
        if name in self.doc.get("variables", {}):
            return self.value(self.doc["variables"][name]["value"], {})
        if name in self.doc.get("modules", {}):
            return _ModuleOutputs(name)
        raise Unknown(name)

    def value(self, node: Any, scope: Json) -> Any:
        if isinstance(node, bool | int | float) or node is None:
            return node
        if isinstance(node, str):
            if "${" in node:
                return re.sub(r"\$\{([^}]*)\}", lambda m: str(self.inline(m.group(1), scope)), node)
            try:
                return self.lookup(node, scope)
            except Unknown:
                return node
        if isinstance(node, list):
            return [self.value(v, scope) for v in node]
        if "loop_type" in node:
            return self.loop(node, scope)
        if "operator" in node:
            return self.operator(node["operator"], scope)
        if "function" in node:
            return self.function(node["function"], scope)
        return {k: self.value(v, scope) for k, v in node.items()}

    def inline(self, expr: str, scope: Json) -> Any:
        """`${...}` inside a string: a dotted name or uniqueString(<name>) is all the wiring uses."""
        call = re.fullmatch(r"uniqueString\((\w+)\)", expr)
        if call:
            return "u" + format(abs(hash(self.lookup(call.group(1), scope))) % 10**8, "08d")
        head, *rest = expr.split(".")
        result = self.lookup(head, scope)
        for key in rest:
            result = result[key]
        return result

    def loop(self, node: Json, scope: Json) -> list[Any]:
        detail = node["loop_type"]["detail"]
        items = self.value(detail["array_name"], scope)
        out = []
        for index, item in enumerate(items):
            inner = {**scope, detail["item_name"]: item}
            if detail.get("index_name"):
                inner[detail["index_name"]] = index
            out.append(self.value(node["config"], inner))
        return out

    def path(self, node: Any) -> list[str]:
        """The keys of the right-nested property accessors pycep builds for `a.b.c`."""
        if isinstance(node, str):
            return [node]
        op = node["operator"]
        assert op["type"] == "property_accessor", op["type"]
        return [*self.path(op["operands"]["operand_1"]), *self.path(op["operands"]["operand_2"])]

    def operator(self, op: Json, scope: Json) -> Any:
        kind, operands = op["type"], op["operands"]
        if kind == "conditional":  # ARM's if(): only the chosen branch is evaluated
            branch = "true_value" if self.value(operands["condition"], scope) else "false_value"
            return self.value(operands[branch], scope)
        if kind == "not":
            return not self.value(operands["bool_value"], scope)
        if kind == "index_accessor":
            return self.value(operands["operand_1"], scope)[self.value(operands["operand_2"], scope)]
        if kind == "property_accessor":
            result = self.value(operands["operand_1"], scope)
            for key in self.path(operands["operand_2"]):
                result = result[key]
            return result
        if kind == "equals":
            return self.value(operands["operand_1"], scope) == self.value(operands["operand_2"], scope)
        raise AssertionError(f"operator {kind} is not implemented by the test evaluator")

    def function(self, fn: Json, scope: Json) -> Any:
        kind = fn["type"]
        args = [self.value(v, scope) for v in (fn.get("parameters") or {}).values() if v is not None]
        if kind == "contains":
            container, item = args
            if isinstance(container, dict):  # object keys: case-insensitive in ARM
                return str(item).lower() in {k.lower() for k in container}
            return item in container
        if kind == "empty":
            return not args[0]
        if kind == "split":
            return str(args[0]).split(args[1])
        if kind == "last":
            return args[0][-1]
        if kind == "union":
            return list(dict.fromkeys([*args[0], *args[1]]))
        if kind == "items":
            return [{"key": k, "value": v} for k, v in sorted(args[0].items(), key=lambda kv: kv[0].lower())]
        if kind == "to_lower":
            return str(args[0]).lower()
        if kind == "string":
            return args[0] if isinstance(args[0], str) else json.dumps(args[0])
        if kind == "load_json_content":
            return json.loads((self.base / args[0]).read_text())
        if kind == "resource_group":
            name, subscription_id = args
            return ("rg", subscription_id, name)
        raise AssertionError(f"function {kind} is not implemented by the test evaluator")


class _ModuleOutputs:
    """A module symbol: `mod[i].outputs.<name>` is the string `mod[i].<name>`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getitem__(self, index: int) -> Json:
        return {"outputs": _Outputs(f"{self.name}[{index}]")}


class _Outputs(dict[str, str]):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def __missing__(self, key: str) -> str:
        return f"{self.prefix}.{key}"


def _deploy_sources(existing: Json) -> BicepEval:
    return BicepEval(bicep(MAIN), {"imageResourceGroupIds": IMAGE_RGS,
                                   "maintenanceConfigurationIds": MAINTENANCE_CONFIGS,
                                   "existingSystemTopics": existing})


def _module_for(ev: BicepEval, name: str, index: int, item: str, *keys: str) -> tuple[bool, Any, Json]:
    """(deployed?, scope, the params `keys`) of entry `index` of a `[for (item, i) in ...]` module."""
    mod = module(ev.doc, name)
    loop = mod["config"]["loop_type"]["detail"]
    assert loop["item_name"] == item and loop["index_name"] == "i", name
    scope = {item: ev.value(loop["array_name"], {})[index], "i": index}
    cond = mod["config"].get("condition")
    deployed = True if cond is None else bool(ev.value(cond, scope))
    cfg = body(mod)
    return deployed, ev.value(cfg["scope"], scope), {k: ev.value(cfg["params"][k], scope) for k in keys}


EVENT_GRID_KINDS = [
    pytest.param("image", "rgId", IMAGE_RGS, id="image-resource-groups"),
    pytest.param("maintenance", "mcId", MAINTENANCE_CONFIGS, id="maintenance-configurations"),
]


@pytest.mark.parametrize(("kind", "item", "sources"), EVENT_GRID_KINDS)
def test_a_source_with_an_existing_system_topic_is_subscribed_on_that_topic(kind: str, item: str,
                                                                            sources: list[str]) -> None:
    """Source 0 has no topic: the deployment creates one in the source's group and subscribes
    there. Source 1 already has one (elsewhere, in another group): no topic is created, the
    subscription goes on the existing topic, in its group, and its identity gets dead-letter access."""
    ev = _deploy_sources(EXISTING_TOPICS)
    ev.params["secondPhase"] = True
    for name in (f"{kind}Topics", f"{kind}ExistingTopics"):
        assert body(module(ev.doc, name))["dependsOn"] == ["guard"], f"{name} must wait for the guard"
    for index, source in enumerate(sources):
        existing = EXISTING_TOPICS.get(source)
        created, created_scope, created_params = _module_for(ev, f"{kind}Topics", index, item, "name", "sourceId")
        reused, reused_scope, reused_params = _module_for(ev, f"{kind}ExistingTopics", index, item, "name", "sourceId")
        assert (created, reused) == (existing is None, existing is not None), (kind, index)
        _, sub_scope, sub_params = _module_for(ev, f"{kind}Subscriptions", index, item, "systemTopicName")
        _, _, access_params = _module_for(ev, f"{kind}DeadLetterAccess", index, item, "topicPrincipalId")
        if existing is None:
            assert created_scope == ("rg", source.split("/")[2], source.split("/")[4])
            assert created_params["name"] == f"evgt-remediator-{ev.inline('uniqueString(s)', {'s': source})}"
            assert created_params["sourceId"] == source
            assert sub_scope == created_scope
            assert sub_params["systemTopicName"] == f"{kind}Topics[{index}].name"
            assert access_params["topicPrincipalId"] == f"{kind}Topics[{index}].principalId"
        else:
            topic_rg = ("rg", existing.split("/")[2], existing.split("/")[4])
            assert reused_scope == topic_rg
            assert reused_params == {"name": existing.rsplit("/", 1)[1], "sourceId": source}
            assert sub_scope == topic_rg, "the event subscription is a child of the existing topic"
            assert sub_params["systemTopicName"] == f"{kind}ExistingTopics[{index}].name"
            assert access_params["topicPrincipalId"] == f"{kind}ExistingTopics[{index}].principalId"


@pytest.mark.parametrize(("kind", "item", "sources"), EVENT_GRID_KINDS)
def test_without_existing_topics_every_source_gets_its_own_topic_as_before(kind: str, item: str,
                                                                          sources: list[str]) -> None:
    """The default (existingSystemTopics {}, REMEDIATOR_EXISTING_SYSTEM_TOPICS unset) deploys as
    before: a topic per source, named after it, in its group, and nothing is read."""
    assert param_default(bicep(MAIN), "existingSystemTopics") == {}
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert params["existingSystemTopics"]["value"] == "${REMEDIATOR_EXISTING_SYSTEM_TOPICS={}}"
    ev = _deploy_sources({})
    for index, source in enumerate(sources):
        created, scope, created_params = _module_for(ev, f"{kind}Topics", index, item, "name")
        reused, _, _ = _module_for(ev, f"{kind}ExistingTopics", index, item)
        assert created and not reused
        assert scope == ("rg", source.split("/")[2], source.split("/")[4])
        assert created_params["name"].startswith("evgt-remediator-")
    guard = {k: ev.value(v, {}) for k, v in params_of(module(ev.doc, "guard")).items() if k.startswith("existing")}
    assert guard == {"existingSystemTopicsMustMapListedSources": True, "existingSystemTopicsMustBeSystemTopicIds": True}


def test_the_guard_refuses_existing_topics_for_unlisted_sources_or_non_topic_ids() -> None:
    """A key spelled differently from its source would silently create a second topic (which Event
    Grid refuses, or the subscription would miss the existing one): guard.bicep stops it."""
    guard_params = params_of(module(bicep(MAIN), "guard"))
    guard_doc = module_file("guard")
    for name in ("existingSystemTopicsMustMapListedSources", "existingSystemTopicsMustBeSystemTopicIds"):
        assert decorator(guard_doc["parameters"][name], "allowed") == [True], name

    def checks(existing: Json) -> tuple[bool, bool]:
        ev = _deploy_sources(existing)
        return (ev.value(guard_params["existingSystemTopicsMustMapListedSources"], {}),
                ev.value(guard_params["existingSystemTopicsMustBeSystemTopicIds"], {}))

    assert checks(EXISTING_TOPICS) == (True, True)
    assert checks({MAINTENANCE_CONFIGS[1].lower(): EXISTING_TOPICS[MAINTENANCE_CONFIGS[1]]}) == (False, True)
    assert checks({f"{SUB_A}/resourceGroups/rg-other": EXISTING_TOPICS[IMAGE_RGS[1]]}) == (False, True)
    custom_topic = f"{SUB_A}/resourceGroups/rg-images/providers/Microsoft.EventGrid/topics/t"
    assert checks({IMAGE_RGS[0]: custom_topic}) == (True, False)


def test_an_existing_topic_is_only_read_and_must_have_the_mapped_source() -> None:
    doc = module_file("eventgrid-existing-topic")
    (name, topic), = doc["resources"].items()
    assert topic["type"] == "Microsoft.EventGrid/systemTopics" and topic["existing"] is True
    assert set(doc["resources"]) == {name}, "the module must not deploy anything on a topic it does not own"
    outputs = {k: render(v["value"]) for k, v in doc["outputs"].items()}
    assert outputs["name"] == "topic.name"
    # The dead-letter writer is the existing topic's own system-assigned identity.
    assert outputs["principalId"] == "topic.identity.principalId"
    check = params_of(module(doc, "check"))
    assert render(check["topicSourceMustBeTheMappedSource"]) == ("equals(to_lower(topic.properties.source), "
                                                                 "to_lower(sourceId))")
    assert module(doc, "check")["detail"]["path"] == "guard-existing-topic.bicep"
    guard = module_file("guard-existing-topic")
    assert decorator(guard["parameters"]["topicSourceMustBeTheMappedSource"], "allowed") == [True]
    text = (MODULES / "eventgrid-existing-topic.bicep").read_text() + MAIN.read_text()
    for address in ("https://learn.microsoft.com/azure/event-grid/system-topics",
                    "https://learn.microsoft.com/azure/update-manager/pre-post-events-schedule-maintenance-configuration",
                    "https://learn.microsoft.com/azure/event-grid/enable-identity-system-topics"):
        assert address in text, address


def test_preprovision_checks_the_existing_topics_before_anything_is_deployed(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = load_hooks()
    env = {"REMEDIATOR_MANAGED_SCOPES": json.dumps([SUB_A]),
           "REMEDIATOR_IMAGE_RESOURCE_GROUP_IDS": json.dumps(IMAGE_RGS),
           "REMEDIATOR_MAINTENANCE_CONFIGURATION_IDS": json.dumps(MAINTENANCE_CONFIGS),
           "REMEDIATOR_EXISTING_SYSTEM_TOPICS": json.dumps(EXISTING_TOPICS)}
    assert hooks.check_config(env) == []
    assert hooks.check_config({**env, "REMEDIATOR_EXISTING_SYSTEM_TOPICS": ""}) == []
    misspelled = {IMAGE_RGS[1].upper(): EXISTING_TOPICS[IMAGE_RGS[1]]}
    unlisted = {**env, "REMEDIATOR_EXISTING_SYSTEM_TOPICS": json.dumps(misspelled)}
    assert any("spelled exactly" in p for p in hooks.check_config(unlisted))
    not_a_topic = {**env, "REMEDIATOR_EXISTING_SYSTEM_TOPICS": json.dumps({IMAGE_RGS[1]: IMAGE_RGS[1]})}
    assert any("is not a system topic id" in p for p in hooks.check_config(not_a_topic))
    assert hooks.check_config({**env, "REMEDIATOR_EXISTING_SYSTEM_TOPICS": "[]"})

    mc, topic = MAINTENANCE_CONFIGS[1], EXISTING_TOPICS[MAINTENANCE_CONFIGS[1]]
    good = {"properties": {"source": mc.lower(), "topicType": "Microsoft.Maintenance.MaintenanceConfigurations"},
            "identity": {"type": "SystemAssigned, UserAssigned", "principalId": "p"}}
    assert hooks.existing_topic_state_problems(mc, topic, 200, good) == []
    # Update Manager's pre/post events create the topic without an identity.
    (no_identity,) = hooks.existing_topic_state_problems(mc, topic, 200, {**good, "identity": None})
    assert "system-assigned identity" in no_identity and "enable-identity-system-topics" in no_identity
    assert hooks.existing_topic_state_problems(mc, topic, 200, {**good, "identity": {"type": "UserAssigned"}})
    (other,) = hooks.existing_topic_state_problems(mc, topic, 200, {**good, "properties": {"source": IMAGE_RGS[0]}})
    assert "has source" in other
    assert "does not exist" in hooks.existing_topic_state_problems(mc, topic, 404, {})[0]

    calls: list[str] = []

    def fake_arm(method: str, path: str, api: str, body: Json | None = None, query: str = "") -> Any:
        calls.append(f"{method} {path}")
        source = next(s for s, t in EXISTING_TOPICS.items() if t == path)
        return hooks.Response(200, {"properties": {"source": source}, "identity": None}, {})

    monkeypatch.setattr(hooks, "arm", fake_arm)
    problems = hooks.check_existing_topics(env)
    assert sorted(calls) == sorted(f"GET {t}" for t in EXISTING_TOPICS.values())
    assert len(problems) == 2 and all("system-assigned identity" in p for p in problems)
    monkeypatch.setattr(hooks, "check_config", lambda e: [])
    monkeypatch.setattr(hooks.os, "environ", env)
    with pytest.raises(hooks.HookError, match="refusing to provision"):
        hooks.preprovision()


def test_teardown_never_deletes_an_existing_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment's subscription on an existing topic is removed; the topic itself never is,
    even when a deployment record lists it (it belongs to whoever created it)."""
    hooks = load_hooks()
    topic = EXISTING_TOPICS[MAINTENANCE_CONFIGS[1]]
    ours = f"{SUB_A}/resourceGroups/rg-images/providers/Microsoft.EventGrid/systemTopics/evgt-remediator-x"
    subscription_on_existing = f"{topic}/eventSubscriptions/remediator-dev-abcde-mc"
    record = {"name": "d1", "properties": {"outputResources": [{"id": topic}, {"id": subscription_on_existing},
                                                                {"id": ours}]}}
    deleted: list[str] = []

    def fake_arm(method: str, path: str, api: str, body: Json | None = None, query: str = "") -> Any:
        if method == "DELETE":
            deleted.append(path)
        return hooks.Response(404 if method == "GET" else 200, {}, {})

    settings = {"AZURE_SUBSCRIPTION_ID": SUB_A.split("/")[2], "AZURE_ENV_NAME": "dev", "AZURE_RESOURCE_GROUP": "rg-dev",
                "REMEDIATOR_EXISTING_SYSTEM_TOPICS": json.dumps(EXISTING_TOPICS)}
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(hooks, "environment_deployments", lambda subscription, env_name: [record])
    monkeypatch.setattr(hooks, "arm", fake_arm)
    monkeypatch.setattr(hooks, "arm_list", lambda path, api, query="": [])
    monkeypatch.setattr(hooks, "azd_env_set", lambda name, value: None)
    hooks.teardown(confirmed=True)
    assert subscription_on_existing in deleted and ours in deleted
    assert topic not in deleted


def test_the_functions_the_infra_calls_exist_in_the_app() -> None:
    """Event Grid delivers to on_event, the action group posts to /api/alerts, the timer reads the schedule."""
    source = (ROOT / "function_app.py").read_text()
    assert re.search(r"@app\.event_grid_trigger\([^)]*\)\s*\ndef on_event\(", source), "function on_event not found"
    assert re.search(r"@app\.route\([^)]*route=\"alerts\"[^)]*\"POST\"", source), "POST /api/alerts not found"
    assert "%REMEDIATOR_SWEEP_SCHEDULE%" in source


# ---------------------------------------------------------------- alerts


def test_action_group_calls_the_alerts_function_with_its_own_key_in_the_second_phase() -> None:
    """listKeys on the host before any code exists fails with "error from host runtime": the
    action group is created in the second phase, with the alerts function's own key (POST
    .../functions/alerts/listkeys returns {"default": ...}), never the host key, which would also
    open POST /api/remediations/{name}."""
    main = bicep(MAIN)
    alerts_mod = module(main, "alerts")
    assert condition(alerts_mod) == "secondPhase"
    ap = params_of(alerts_mod)
    assert render(ap["functionAppId"]) == "functionApp.outputs.id"
    assert render(ap["functionAppHostName"]) == "functionApp.outputs.defaultHostName"

    alerts = module_file("alerts")
    assert var(alerts, "alertsFunctionId") == "${functionAppId}/functions/alerts"
    url = var(alerts, "alertsUrl")
    assert url == "https://${functionAppHostName}/api/alerts?code=${listKeys(alertsFunctionId, '2024-04-01').default}"
    for path in BICEP_FILES:
        text = path.read_text()
        assert "/host/default" not in text and "functionKeys" not in text and "masterKey" not in text, path.name
    (receiver,) = body(resource(alerts, "actionGroup"))["properties"]["webhookReceivers"]
    assert receiver["serviceUri"] == "alertsUrl"
    assert receiver["useCommonAlertSchema"] is True
    assert condition(module(main, "imageRunAlerts")) == "secondPhase"


def test_alert_rules_fire_into_the_action_group() -> None:
    alerts = module_file("alerts")
    rules = dict(resources_of_type(alerts, "Microsoft.Insights/scheduledQueryRules"))
    assert set(rules) == {"automationFailedRuns", "updateManagerFailedRuns"}
    for name, rule in rules.items():
        props = body(rule)["properties"]
        assert [render(a) for a in props["actions"]["actionGroups"]] == ["actionGroup.id"], name
        (criterion,) = props["criteria"]["allOf"]
        assert criterion["operator"] == "GreaterThan" and criterion["threshold"] == 0
    assert "UpdateRunProgress" in var(alerts, "automationFailedRunsQuery")
    assert "InstallationStatus" in var(alerts, "automationFailedRunsQuery")
    assert "AzureActivity" in var(alerts, "updateManagerFailedRunsQuery")
    assert body(rules["automationFailedRuns"])["properties"]["scopes"] == ["automationWorkspaceId"]
    assert body(rules["updateManagerFailedRuns"])["properties"]["scopes"] == ["activityLogWorkspaceId"]

    image_alert = module_file("image-run-alert")
    (_, rule), = resources_of_type(image_alert, "Microsoft.Insights/activityLogAlerts")
    props = body(rule)["properties"]
    conditions = {c["field"]: c["equals"] for c in props["condition"]["allOf"]}
    assert conditions == {
        "category": "Administrative",
        "operationName": "Microsoft.VirtualMachineImages/imageTemplates/run/action",
        "status": "Failed",
    }
    assert props["actions"]["actionGroups"] == [{"actionGroupId": "actionGroupId"}]

    main = bicep(MAIN)
    image_alerts = module(main, "imageRunAlerts")
    assert loop_array(image_alerts) == "imageResourceGroupIds"
    assert render(params_of(image_alerts)["actionGroupId"]) == \
        "conditional(secondPhase, alerts.outputs.actionGroupId, )"
    assert render(alerts["outputs"]["actionGroupId"]["value"]) == "actionGroup.id"


def test_log_alert_rules_do_not_validate_queries_against_missing_tables() -> None:
    """Azure Monitor validates a rule's query on creation; UpdateRunProgress is gone from a
    workspace once Update Management is retired, and AzureActivity appears only after the first
    export: both rules skip query validation, and the Automation rule can be turned off."""
    alerts = module_file("alerts")
    for name in ("automationFailedRuns", "updateManagerFailedRuns"):
        assert body(resource(alerts, name))["properties"]["skipQueryValidation"] is True, name
    assert condition(resource(alerts, "automationFailedRuns")) == \
        "and(automationRunAlert, not(empty(automationWorkspaceId)))"
    assert param_default(bicep(MAIN), "automationRunAlert") is True
    assert params_of(module(bicep(MAIN), "alerts"))["automationRunAlert"] == "automationRunAlert"


# ---------------------------------------------------------------- azd, host.json, packaging


def read_yaml_subset(text: str) -> Json:
    """The mappings, scalars and `|` blocks azure.yaml uses (no lists, anchors or flow style)."""
    root: Json = {}
    stack: list[tuple[int, Json]] = [(-1, root)]
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        key, _, value = line.strip().partition(":")
        value = value.strip()
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if value == "|":
            block: list[str] = []
            while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                block.append(lines[i].strip())
                i += 1
            parent[key] = "\n".join(block).strip() + "\n"
        elif value:
            parent[key] = value.strip("'\"")
        else:
            child: Json = {}
            parent[key] = child
            stack.append((indent, child))
    return root


def load_hooks() -> Any:
    """infra/hooks/remediator_hooks.py as a module (it is run by azd, not imported by the app)."""
    import importlib.util
    import sys

    name = "remediator_hooks_under_test"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, INFRA / "hooks" / "remediator_hooks.py")
        assert spec is not None and spec.loader is not None
        hooks = importlib.util.module_from_spec(spec)
        sys.modules[name] = hooks
        spec.loader.exec_module(hooks)
    return sys.modules[name]


HOOKS = ("preprovision", "postprovision", "postdeploy", "predown", "postdown")


def test_azure_yaml_deploys_this_folder_as_a_python_function_app() -> None:
    doc = read_yaml_subset((ROOT / "azure.yaml").read_text())
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["name"])
    assert doc["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    assert doc["services"] == {"api": {"project": ".", "language": "python", "host": "function"}}
    # azd finds the app by this tag.
    assert params_of(module(bicep(MAIN), "functionApp"))["serviceName"] == "api"


def test_every_hook_runs_the_python_hook_script_and_needs_no_second_login() -> None:
    """The README has the user run `azd auth login` only: no hook calls the Azure CLI; every call to
    Azure uses `azd auth token` (the command azure-identity's AzureDeveloperCliCredential runs)."""
    doc = read_yaml_subset((ROOT / "azure.yaml").read_text())
    assert set(doc["hooks"]) == set(HOOKS)
    for hook in HOOKS:
        for platform, python in (("posix", "python3"), ("windows", "python")):
            entry = doc["hooks"][hook][platform]
            assert entry["run"] == f"{python} infra/hooks/remediator_hooks.py {hook}", (hook, platform)
            assert entry["continueOnError"] == "false", (hook, platform)
    assert doc["hooks"]["postprovision"]["posix"]["interactive"] == "true"  # the Teams webhook prompt
    script = (INFRA / "hooks" / "remediator_hooks.py").read_text()
    yaml_text = (ROOT / "azure.yaml").read_text()
    for text in (script, yaml_text):
        assert not re.search(r"""["'\s(\[]az\s+(keyvault|login|account|rest|role|ad)\b""", text)
        assert not re.search(r"""\["az",""", text)
    assert '"auth", "token", "--output", "json", "--no-prompt", "--scope"' in script
    hooks = load_hooks()
    assert set(hooks.COMMANDS) == set(HOOKS)


def test_postprovision_waits_for_role_propagation_with_backoff() -> None:
    """Azure RBAC changes can take up to 10 minutes to apply: the hook keeps retrying a 403 from
    Key Vault with backoff for 15 minutes, printing each wait, before it gives up."""
    hooks = load_hooks()
    delays = hooks.backoff_delays(hooks.DEFAULT_RBAC_WAIT_SECONDS)
    assert delays[:4] == [5.0, 10.0, 20.0, 40.0] and max(delays) == 60.0
    assert sum(delays) == hooks.DEFAULT_RBAC_WAIT_SECONDS >= 600

    answers = [hooks.Response(403, {"error": {"code": "Forbidden"}}, {})] * 3 + [hooks.Response(404, {}, {})]
    slept: list[float] = []
    result = hooks.with_rbac_wait("reading", lambda: answers.pop(0), 900, sleep=slept.append)
    assert result.status == 404 and slept == [5.0, 10.0, 20.0]
    with pytest.raises(hooks.HookError, match="Secrets Officer"):
        hooks.with_rbac_wait("reading", lambda: hooks.Response(403, {}, {}), 30, sleep=lambda _: None)
    assert hooks.vault_scope("https://kv-abc.vault.azure.net/") == "https://vault.azure.net/.default"


def test_second_phase_is_recorded_only_after_its_provision_succeeded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The postdeploy hook passes REMEDIATOR_SECOND_PHASE=true to its child `azd provision` only
    (azd reads parameters from .env first, then the process environment), and writes
    REMEDIATOR_SECOND_PHASE_DONE after that provision succeeded, never before."""
    hooks = load_hooks()
    events: list[str] = []

    class Done:
        def __init__(self, code: int) -> None:
            self.returncode = code

    codes = [1, 0]

    def run(args: list[str], env: dict[str, str], check: bool) -> Done:
        events.append(f"{' '.join(args)} phase={env.get('REMEDIATOR_SECOND_PHASE')}")
        return Done(codes.pop(0))

    monkeypatch.setattr(hooks, "azd_env_persisted", lambda name: False)
    monkeypatch.setattr(hooks, "azd_env_set", lambda name, value: events.append(f"set {name}"))
    monkeypatch.setattr(hooks.subprocess, "run", run)
    hooks.postdeploy(sleep=lambda seconds: events.append(f"sleep {int(seconds)}"))
    assert events == ["azd provision --no-prompt phase=true", "sleep 60", "azd provision --no-prompt phase=true",
                      "set REMEDIATOR_SECOND_PHASE_DONE"]

    events.clear()
    codes[:] = [1, 1, 1]
    with pytest.raises(hooks.HookError):
        hooks.postdeploy(sleep=lambda seconds: None)
    assert not [e for e in events if e.startswith("set ")]
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert params["secondPhase"]["value"] == "${REMEDIATOR_SECOND_PHASE=false}"
    assert param_default(bicep(MAIN), "secondPhase") is False


def test_azd_down_is_refused_because_it_deletes_every_touched_resource_group() -> None:
    """azd down deletes every resource group in the deployment's outputResources (Azure/azure-dev
    #2916), which here includes managed, image and maintenance groups: predown refuses it and the
    teardown command removes only what the environment created outside its own group."""
    hooks = load_hooks()
    with pytest.raises(hooks.HookError, match="teardown"):
        hooks.predown()
    assert hooks.resource_type_of("/subscriptions/s/resourceGroups/r/providers/Microsoft.EventGrid/systemTopics/t/"
                                  "eventSubscriptions/e") == "microsoft.eventgrid/systemtopics/eventsubscriptions"
    assert hooks.resource_type_of("/subscriptions/s/resourceGroups/r/providers/Microsoft.ManagedIdentity/"
                                  "userAssignedIdentities/i/providers/Microsoft.Authorization/roleAssignments/g") \
        == "microsoft.authorization/roleassignments"
    order = [hooks.teardown_order(t) for t in ("microsoft.eventgrid/systemtopics/eventsubscriptions",
                                               "microsoft.authorization/roleassignments",
                                               "microsoft.authorization/roledefinitions",
                                               "microsoft.eventgrid/systemtopics")]
    assert order == sorted(order)
    assert hooks.teardown_order("microsoft.resources/deployments") is None
    assert set(hooks.TEARDOWN_API) == {t for t in hooks.TEARDOWN_API if hooks.teardown_order(t) is not None}


def test_parameters_file_covers_main_bicep_and_agrees_with_its_defaults() -> None:
    main = bicep(MAIN)
    declared = main["parameters"]
    given = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert set(given) <= set(declared), set(given) - set(declared)
    required = {name for name, p in declared.items() if p.get("default") is None}
    assert required <= set(given), required - set(given)
    assert given["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert given["location"]["value"] == "${AZURE_LOCATION}"
    assert given["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"
    for name, entry in given.items():
        match = re.fullmatch(r"\$\{[A-Z0-9_]+=(.*)\}", str(entry["value"]))
        if match is None:
            continue
        default = declared[name]["default"]
        if isinstance(default, str):
            assert match.group(1) == default, name
        else:
            assert json.loads(match.group(1)) == default, name


def test_host_json() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}
    assert host["functionTimeout"] == "00:30:00"
    assert host["extensions"]["queues"]["maxDequeueCount"] == 5
    sampling = host["logging"]["applicationInsights"]["samplingSettings"]
    assert sampling["isEnabled"] is True
    assert set(sampling["excludedTypes"].split(";")) >= {"Request", "Exception"}


def test_funcignore_keeps_everything_but_the_app_out_of_the_package() -> None:
    entries = {line.strip().rstrip("/") for line in (ROOT / ".funcignore").read_text().splitlines()}
    for needed in ("tests", "bench", "scripts", ".venv", "node_modules", "infra", ".git", "__pycache__",
                   ".mypy_cache", ".ruff_cache", ".pytest_cache", ".tools", "local.settings.json"):
        assert needed in entries, needed
    for shipped in ("shared", "remediations", "function_app.py", "host.json", "requirements.txt"):
        assert shipped not in entries, shipped


def test_local_settings_example_runs_against_azurite() -> None:
    values = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert {s for s in APP_SETTINGS if s.startswith("REMEDIATOR_")} <= set(values)
    assert values["REMEDIATOR_MODE"] in {"observe", "suggest", "auto"}
    assert values["REMEDIATOR_TEAMS_WEBHOOK_URL"] == "" and values["REMEDIATOR_SIGNING_KEY"] == ""


def test_no_secrets_in_deployment_files() -> None:
    suspicious = re.compile(r"webhook\.office\.com|logic\.azure\.com|AccountKey=|SharedAccessSignature|[?&]sig=|"
                            r"InstrumentationKey=[0-9a-f]{8}-", re.IGNORECASE)
    files = [*BICEP_FILES, INFRA / "main.parameters.json", ROOT / "azure.yaml", ROOT / "local.settings.json.example",
             ROOT / "host.json", INFRA / "README.md"]
    for path in files:
        assert not suspicious.search(path.read_text()), path.name


def test_infra_readme_documents_every_parameter_with_its_default() -> None:
    readme = (INFRA / "README.md").read_text()
    for name, block in bicep(MAIN)["parameters"].items():
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{name}`")), None)
        assert row is not None, f"infra/README.md has no table row for parameter {name}"
        if block.get("default") is not None and not isinstance(block["default"], dict):
            default = block["default"]
            shown = json.dumps(default) if not isinstance(default, str) else default
            assert f"`{shown}`" in row or (shown == "" and "`''`" in row), f"{name}: default {shown!r} not in {row!r}"
    for path in BICEP_FILES:
        assert path.name in readme, f"infra/README.md does not mention {path.name}"


# ---------------------------------------------------------------- checkov


def test_checkov_reports_no_failed_checks() -> None:
    env = dict(os.environ)
    if (CHECKOV_VENV / "bin" / "checkov").exists():
        env["PIP_NO_INDEX"] = "1"  # the tools venv is there: nothing may be downloaded
    proc = subprocess.run([str(CHECKOV)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.stdout.strip(), f"checkov printed nothing (exit {proc.returncode}): {proc.stderr[-2000:]}"
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    (bicep_report,) = [r for r in reports if r.get("check_type") == "bicep"]
    summary = bicep_report["summary"]
    results = bicep_report["results"]
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in results.get("failed_checks", [])]
    assert summary["failed"] == 0, failed
    assert summary["parsing_errors"] == 0, bicep_report["results"].get("parsing_errors")
    assert summary["passed"] > 0 and summary["resource_count"] > 0
    assert proc.returncode == 0, proc.stderr[-2000:]
    for skipped in bicep_report["results"].get("skipped_checks", []):
        reason = (skipped.get("check_result") or {}).get("suppress_comment") or ""
        what = f"{skipped['check_id']} on {skipped['resource']}"
        assert len(reason.strip()) >= 40, f"{what} is skipped without a real reason"
