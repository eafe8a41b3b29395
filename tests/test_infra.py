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
    assert doc.get("resources") or doc.get("modules"), f"{path.name} declares nothing"
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


def test_custom_role_grants_exactly_what_the_code_declares() -> None:
    role_doc = module_file("role")
    actions = var(role_doc, "remediatorActions")
    data_actions = var(role_doc, "remediatorDataActions")
    want_actions, want_data = code_actions()

    for granted in (*actions, *data_actions):
        assert "*" not in granted, f"wildcard in the custom role: {granted}"
    assert len(actions) == len(set(actions)) and len(data_actions) == len(set(data_actions)), "duplicate action"
    assert set(actions) - want_actions == set(), "role grants actions the code does not use"
    assert want_actions - set(actions) == set(), "code uses actions the role lacks"
    assert set(data_actions) - want_data == set(), "role grants data actions the code does not use"
    assert want_data - set(data_actions) == set(), "code uses data actions the role lacks"

    (_, role), = resources_of_type(role_doc, "Microsoft.Authorization/roleDefinitions")
    props = body(role)["properties"]
    assert props["type"] == "CustomRole"
    (perms,) = props["permissions"]
    assert perms["actions"] == "remediatorActions"
    assert perms["dataActions"] == "remediatorDataActions"
    assert perms["notActions"] == [] and perms["notDataActions"] == []
    assert props["assignableScopes"] == "assignableScopes"
    assert role_doc["globals"]["scope"]["value"] == "subscription"


def test_custom_role_is_assignable_and_assigned_at_every_managed_scope() -> None:
    main = bicep(MAIN)
    assert decorator(main["parameters"]["managedScopes"], "min_length") == 1
    role = module(main, "remediatorRole")
    assert params_of(role)["assignableScopes"] == "managedScopes"
    assert render(body(role)["scope"]) == "subscription(managedScopeTargets[0].subscriptionId)"

    targets = var(main, "managedScopeTargets")
    assert targets["loop_type"]["detail"]["array_name"] == "managedScopes"

    subs = module(main, "subscriptionRoleAssignments")
    rgs = module(main, "resourceGroupRoleAssignments")
    assert loop_array(subs) == loop_array(rgs) == "managedScopeTargets"
    assert condition(subs) == "not(target.isResourceGroup)"
    assert condition(rgs) == "target.isResourceGroup"
    assert render(body(subs)["scope"]) == "subscription(target.subscriptionId)"
    assert render(body(rgs)["scope"]) == "resource_group(target.groupName, target.groupSubscriptionId)"
    assert subs["detail"]["path"] == "modules/role-assignment-subscription.bicep"
    assert rgs["detail"]["path"] == "modules/role-assignment-resource-group.bicep"
    for mod in (subs, rgs):
        params = params_of(mod)
        assert render(params["roleDefinitionName"]) == "remediatorRole.outputs.roleDefinitionName"
        assert render(params["principalId"]) == "identity.outputs.principalId"
        assert params["principalType"] == "ServicePrincipal"

    for name, scope in (
        ("role-assignment-subscription", "subscription"),
        ("role-assignment-resource-group", "resourceGroup"),
    ):
        doc = module_file(name)
        assert doc["globals"]["scope"]["value"] == scope
        (_, ra), = resources_of_type(doc, "Microsoft.Authorization/roleAssignments")
        assert role_id(body(ra)["properties"]["roleDefinitionId"]) == "roleDefinitionName"
        assert body(ra)["properties"]["principalId"] == "principalId"

    role_out = module_file("role")["outputs"]["roleDefinitionName"]["value"]
    assert render(role_out) == "role.name"


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
    assert props["siteConfig"]["minTlsVersion"] == "1.2"
    config = props["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "pythonVersion"}
    assert fn["parameters"]["pythonVersion"]["default"] == "3.11"
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["value"] == "${storageBlobEndpoint}${deploymentContainerName}"
    assert storage["authentication"] == {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "identityId"}
    assert "azd-service-name" in json.dumps(site["tags"])


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
    assert render(remediator["REMEDIATOR_APPROVERS"]) == "join(approvers, ,)"
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
    for name, secret in (("teamsWebhookSecret", "teamsWebhookSecretName"),
                         ("signingKeySecret", "signingKeySecretName")):
        mod = module(keyvault, name)
        assert mod["detail"]["path"] == "keyvault-secret.bicep"
        assert params_of(mod)["name"] == secret
    main_kv = params_of(module(bicep(MAIN), "keyVault"))
    assert main_kv["teamsWebhookUrl"] == "teamsWebhookUrl"
    assert main_kv["signingKey"] == "approvalSigningKey"
    for name in ("teamsWebhookUrl", "approvalSigningKey"):
        assert any(d.get("type") == "secure" for d in bicep(MAIN)["parameters"][name]["decorators"]), name


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
    assert condition(subs) == "deployEventSubscriptions"
    sp = params_of(subs)
    assert render(sp["systemTopicName"]) == "imageTopics[i].outputs.name"
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
    _assert_dead_letter_wiring(main, sp, "imageDeadLetterAccess", "imageTopics")


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
    assert condition(subs) == "deployEventSubscriptions"
    sp = params_of(subs)
    assert render(sp["systemTopicName"]) == "maintenanceTopics[i].outputs.name"
    assert render(sp["functionAppId"]) == "functionApp.outputs.id"
    assert sp["functionName"] == "on_event"
    assert var(main, sp["includedEventTypes"]) == ["Microsoft.Maintenance.PostMaintenanceEvent"]
    assert body(subs)["dependsOn"] == ["maintenanceDeadLetterAccess"]
    _assert_dead_letter_wiring(main, sp, "maintenanceDeadLetterAccess", "maintenanceTopics")


def _assert_dead_letter_wiring(main: Json, sub_params: Json, access: str, topics: str) -> None:
    assert render(sub_params["deadLetterStorageAccountId"]) == "storage.outputs.id"
    assert render(sub_params["deadLetterContainerName"]) == "storage.outputs.deadLetterContainerName"
    assert render(sub_params["maxDeliveryAttempts"]) == "eventMaxDeliveryAttempts"
    assert render(sub_params["eventTimeToLiveInMinutes"]) == "eventTimeToLiveInMinutes"
    ap = params_of(module(main, access))
    assert render(ap["topicPrincipalId"]) == f"{topics}[i].outputs.principalId"
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


def test_the_functions_the_infra_calls_exist_in_the_app() -> None:
    """Event Grid delivers to on_event, the action group posts to /api/alerts, the timer reads the schedule."""
    source = (ROOT / "function_app.py").read_text()
    assert re.search(r"@app\.event_grid_trigger\([^)]*\)\s*\ndef on_event\(", source), "function on_event not found"
    assert re.search(r"@app\.route\([^)]*route=\"alerts\"[^)]*\"POST\"", source), "POST /api/alerts not found"
    assert "%REMEDIATOR_SWEEP_SCHEDULE%" in source


# ---------------------------------------------------------------- alerts


def test_action_group_calls_the_alerts_function_with_the_common_schema() -> None:
    main = bicep(MAIN)
    ap = params_of(module(main, "alerts"))
    assert render(ap["functionAppId"]) == "functionApp.outputs.id"
    assert render(ap["functionAppHostName"]) == "functionApp.outputs.defaultHostName"

    alerts = module_file("alerts")
    url = render(var(alerts, "alertsUrl"))
    assert url.startswith("https://${functionAppHostName}/api/alerts?code=${"), url
    assert "listKeys('${functionAppId}/host/default'" in (MODULES / "alerts.bicep").read_text()
    (receiver,) = body(resource(alerts, "actionGroup"))["properties"]["webhookReceivers"]
    assert receiver["serviceUri"] == "alertsUrl"
    assert receiver["useCommonAlertSchema"] is True


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
    assert render(params_of(image_alerts)["actionGroupId"]) == "alerts.outputs.actionGroupId"
    assert render(alerts["outputs"]["actionGroupId"]["value"]) == "actionGroup.id"


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


def test_azure_yaml_deploys_this_folder_as_a_python_function_app() -> None:
    doc = read_yaml_subset((ROOT / "azure.yaml").read_text())
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["name"])
    assert doc["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    assert doc["services"] == {"api": {"project": ".", "language": "python", "host": "function"}}
    hook = doc["hooks"]["postdeploy"]
    for platform in ("posix", "windows"):
        assert "REMEDIATOR_WIRE_EVENTS" in hook[platform]["run"]
        assert "azd provision" in hook[platform]["run"]
    # The signing key: created once in the vault azd learns from the outputs, never replaced.
    keys = doc["hooks"]["postprovision"]
    for platform in ("posix", "windows"):
        script = keys[platform]["run"]
        assert "AZURE_KEY_VAULT_NAME" in script and "approval-signing-key" in script
        assert "az keyvault secret set" in script and "SecretNotFound" in script
    assert "AZURE_KEY_VAULT_NAME" in bicep(MAIN)["outputs"]
    kv_params = bicep(MODULES / "keyvault.bicep")["parameters"]
    assert kv_params["signingKeySecretName"]["default"] == "approval-signing-key"
    # The hook's variable is what the parameters file feeds deployEventSubscriptions.
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["deployEventSubscriptions"]["value"] == "${REMEDIATOR_WIRE_EVENTS=false}"
    # azd finds the app by this tag.
    assert params_of(module(bicep(MAIN), "functionApp"))["serviceName"] == "api"


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
    # The signing key is made by the postprovision hook in Key Vault, never passed as a parameter.
    assert "approvalSigningKey" not in given
    for name, entry in given.items():
        match = re.fullmatch(r"\$\{[A-Z0-9_]+=(.*)\}", str(entry["value"]))
        if match is None:
            continue
        default = declared[name]["default"]
        assert match.group(1) == (json.dumps(default) if not isinstance(default, str) else default), name


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
