"""azd hooks of the Azure Update Remediator (see infra/README.md, "Deploying with azd").

Python standard library only, and no Azure CLI: every call to Azure uses the token of the
`azd auth login` session, obtained with `azd auth token` exactly as azure-identity's
AzureDeveloperCliCredential does (`azd auth token --output json --no-prompt --scope ...`).

    preprovision   check parameter combinations and the existing system topics named in
                   REMEDIATOR_EXISTING_SYSTEM_TOPICS; set AZURE_PRINCIPAL_TYPE from the signed-in
                   token; pick the Key Vault name suffix and the custom roles' home scopes once;
                   remove the app identity's role assignments at scopes that were dropped
                   (ARM refuses to shrink a role's assignableScopes while assignments exist)
    postprovision  create the approval signing key in Key Vault once; write the Teams webhook
                   URL to Key Vault when one is given (process environment or prompt, never
                   .azure/<env>/.env); waits up to 15 minutes for the deployer's new Key Vault
                   Secrets Officer role to take effect
    postdeploy     second phase: `azd provision` again with REMEDIATOR_SECOND_PHASE=true in the
                   child's environment only; REMEDIATOR_SECOND_PHASE_DONE is written after it
                   succeeded
    predown        refuse `azd down`: it deletes every resource group the deployment touched,
                   which here includes the managed / image / maintenance groups; use teardown
    postdown       forget the Key Vault suffix and the role homes (when azd down was allowed)
    teardown       remove what the environment created outside its resource group (event
                   subscriptions, alert rules, diagnostic settings, role assignments and
                   definitions, its own system topics; never an existing topic it only
                   subscribed to), delete the app resource group and the deployment records

Usage: python3 infra/hooks/remediator_hooks.py <command> [--yes]
"""

from __future__ import annotations

import base64
import getpass
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ARM = os.environ.get("REMEDIATOR_HOOK_ARM_ENDPOINT", "https://management.azure.com").rstrip("/")
ARM_SCOPE = "https://management.azure.com/.default"
AUTHZ_API = "2022-04-01"
RESOURCES_API = "2022-09-01"
KEYVAULT_API = "7.4"
SIGNING_KEY_SECRET = "approval-signing-key"
TEAMS_SECRET = "teams-webhook-url"
TEAMS_HOSTS = (".logic.azure.com", ".api.powerplatform.com")
ASSIGNMENT_PREFIX = "Azure Update Remediator ("
# Built-in roles the deployment assigns on single resources (same GUIDs in every tenant).
LOG_ANALYTICS_READER = "73c42c96-874c-492b-b04d-ab87d138a893"
MANAGED_IDENTITY_OPERATOR = "f1a07417-d97a-45cb-824c-7a7467783830"
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
# RBAC changes can take up to 10 minutes to apply; wait a little longer than that.
DEFAULT_RBAC_WAIT_SECONDS = 900

Json = dict[str, Any]


class HookError(Exception):
    """A problem the operator must fix; printed without a traceback."""


def say(message: str) -> None:
    print(f"remediator: {message}", flush=True)


# ---------------------------------------------------------------- pure decisions (unit-tested)


def parse_json_list(name: str, raw: str | None, required: bool = False) -> list[str]:
    """An azd array variable (JSON text) as a list of non-empty strings."""
    if raw is None or not raw.strip():
        if required:
            raise HookError(f"{name} is not set: azd env set {name} '[\"/subscriptions/<id>\"]'")
        return []
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise HookError(f"{name} must be a JSON array of strings, got {raw!r} ({exc.msg})") from None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise HookError(f"{name} must be a JSON array of non-empty strings, got {raw!r}")
    if required and not value:
        raise HookError(f"{name} must list at least one scope")
    return [v.strip() for v in value]


SCOPE = re.compile(r"^/subscriptions/[0-9a-fA-F-]{36}(/resourceGroups/[-\w._()]+)?$")
SYSTEM_TOPIC = re.compile(r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-\w._()]+"
                          r"/providers/Microsoft\.EventGrid/systemTopics/[^/]+$", re.IGNORECASE)
SYSTEM_TOPIC_API = "2022-06-15"


def parse_json_object(name: str, raw: str | None) -> dict[str, str]:
    """An azd object variable (JSON text) of non-empty strings by non-empty string keys."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise HookError(f"{name} must be a JSON object, got {raw!r} ({exc.msg})") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and k.strip() and isinstance(v, str) and v.strip()
                                              for k, v in value.items()):
        raise HookError(f"{name} must be a JSON object of non-empty strings, got {raw!r}")
    return {k.strip(): v.strip() for k, v in value.items()}


def existing_topic_problems(env: Mapping[str, str]) -> list[str]:
    """REMEDIATOR_EXISTING_SYSTEM_TOPICS must map listed sources (exact spelling) to system topic ids."""
    name = "REMEDIATOR_EXISTING_SYSTEM_TOPICS"
    try:
        topics = parse_json_object(name, env.get(name))
        sources = [source for var in ("REMEDIATOR_IMAGE_RESOURCE_GROUP_IDS", "REMEDIATOR_MAINTENANCE_CONFIGURATION_IDS")
                   for source in parse_json_list(var, env.get(var))]
    except HookError as exc:
        return [str(exc)]
    problems = []
    for source, topic in topics.items():
        if source not in sources:
            problems.append(f"{name}: {source!r} is not in REMEDIATOR_IMAGE_RESOURCE_GROUP_IDS or "
                            "REMEDIATOR_MAINTENANCE_CONFIGURATION_IDS (the key must be spelled exactly the same)")
        if not SYSTEM_TOPIC.match(topic):
            problems.append(f"{name}: {topic!r} (for {source}) is not a system topic id "
                            "(/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.EventGrid/systemTopics/<name>)")
    return problems


def existing_topic_state_problems(source: str, topic_id: str, status: int, body: Mapping[str, Any]) -> list[str]:
    """What is wrong with an existing system topic (GET answer) for subscribing `source` to it."""
    if status == 404:
        return [f"system topic {topic_id} (for {source}) does not exist"]
    if status != 200:
        return [f"could not read system topic {topic_id} (for {source}): HTTP {status}"]
    problems = []
    topic_source = str(body.get("properties", {}).get("source", ""))
    if topic_source.lower() != source.lower():
        problems.append(f"system topic {topic_id} has source {topic_source!r}, not {source}")
    identity = str((body.get("identity") or {}).get("type", "None"))
    if "systemassigned" not in identity.replace(" ", "").lower():
        problems.append(
            f"system topic {topic_id} (for {source}) has no system-assigned identity (identity type {identity!r}); "
            "it writes this environment's dead letters. Enable it on the topic (portal: the topic's Identity page, "
            "or Update-AzEventGridSystemTopic -EnableSystemAssignedIdentity $true; see "
            "https://learn.microsoft.com/azure/event-grid/enable-identity-system-topics) and provision again")
    return problems


def check_config(env: Mapping[str, str]) -> list[str]:
    """The parameter combinations that must never deploy, as messages (empty: fine)."""
    problems = []
    if env.get("REMEDIATOR_APPROVERS", "").strip() and not env.get("REMEDIATOR_APPROVER_AUTH_CLIENT_ID", "").strip():
        problems.append(
            "REMEDIATOR_APPROVERS is set without REMEDIATOR_APPROVER_AUTH_CLIENT_ID. The approver allow-list is "
            "checked against the X-MS-CLIENT-PRINCIPAL header, which only App Service authentication makes "
            "unforgeable: create the app registration (infra/README.md, Approvers) and azd env set "
            "REMEDIATOR_APPROVER_AUTH_CLIENT_ID <client id>, or clear REMEDIATOR_APPROVERS.")
    try:
        scopes = parse_json_list("REMEDIATOR_MANAGED_SCOPES", env.get("REMEDIATOR_MANAGED_SCOPES"), required=True)
    except HookError as exc:
        return [*problems, str(exc)]
    for scope in scopes:
        if not SCOPE.match(scope):
            problems.append(f"REMEDIATOR_MANAGED_SCOPES: {scope!r} is neither /subscriptions/<id> nor "
                            "/subscriptions/<id>/resourceGroups/<name>")
    pinned = env.get("REMEDIATOR_ROLE_DEFINITION_SCOPE", "").strip()
    if pinned and pinned.lower() not in {s.lower() for s in scopes} and env.get("REMEDIATOR_HOOK_REPIN") == "never":
        problems.append(f"REMEDIATOR_ROLE_DEFINITION_SCOPE {pinned} is not one of REMEDIATOR_MANAGED_SCOPES")
    problems.extend(existing_topic_problems(env))
    return problems


def pin_home(current: str, scopes: Sequence[str]) -> str:
    """The home scope of a role: the pinned one while it is still assignable, else the first in sorted order.

    Sorting (case-insensitively) makes the choice independent of the order the operator lists
    the scopes in; pinning keeps it stable when scopes are added or reordered later.
    """
    if not scopes:
        return ""
    lowered = {s.lower(): s for s in scopes}
    if current and current.lower() in lowered:
        return lowered[current.lower()]
    return sorted(scopes, key=str.lower)[0]


def subscription_scopes(scopes: Iterable[str]) -> list[str]:
    """/subscriptions/<id> of every scope, deduplicated, in first-seen order (as the Bicep union() keeps them)."""
    seen: dict[str, str] = {}
    for scope in scopes:
        sub = "/".join(scope.split("/")[:3])
        seen.setdefault(sub.lower(), sub)
    return list(seen.values())


def is_within(scope: str, parents: Iterable[str]) -> bool:
    """True when `scope` is one of `parents` or below one of them (case-insensitive ARM ids)."""
    s = scope.rstrip("/").lower()
    return any(s == p.rstrip("/").lower() or s.startswith(p.rstrip("/").lower() + "/") for p in parents)


def removed_scopes(old: Iterable[str], new: Iterable[str]) -> list[str]:
    new_lower = {n.lower() for n in new}
    return [o for o in old if o.lower() not in new_lower]


def principal_type(claims: Mapping[str, Any]) -> str:
    """User or ServicePrincipal from an Entra access token's claims.

    `idtyp` says it when present (user / app); otherwise delegated tokens carry `scp`
    (scopes) and app-only tokens (service principals, managed identities) do not.
    """
    idtyp = str(claims.get("idtyp", "")).lower()
    if idtyp == "user":
        return "User"
    if idtyp == "app":
        return "ServicePrincipal"
    return "User" if claims.get("scp") else "ServicePrincipal"


def jwt_claims(token: str) -> Json:
    try:
        payload = token.split(".")[1]
        decoded: Json = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return decoded
    except (IndexError, ValueError) as exc:
        raise HookError(f"azd returned a token that is not a JWT ({exc})") from None


def valid_teams_url(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and any(host.endswith(suffix) for suffix in TEAMS_HOSTS)


def new_signing_key() -> str:
    """32 random bytes, URL-safe base64 (the app needs base64 of at least 16 bytes)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def backoff_delays(deadline_seconds: float) -> list[float]:
    """5 s, 10 s, 20 s, 40 s, then every 60 s, until the deadline is used up."""
    delays: list[float] = []
    step, total = 5.0, 0.0
    while total < deadline_seconds:
        delay = min(step, deadline_seconds - total)
        delays.append(delay)
        total += delay
        step = min(step * 2, 60.0)
    return delays


def teardown_order(resource_type: str) -> int | None:
    """Deletion order of a resource the environment created outside its resource group; None: left alone."""
    order = {
        "microsoft.eventgrid/systemtopics/eventsubscriptions": 1,
        "microsoft.insights/activitylogalerts": 2,
        "microsoft.insights/diagnosticsettings": 3,
        "microsoft.authorization/roleassignments": 4,
        "microsoft.authorization/roledefinitions": 5,
        "microsoft.eventgrid/systemtopics": 6,
    }
    return order.get(resource_type.lower())


TEARDOWN_API = {
    "microsoft.eventgrid/systemtopics/eventsubscriptions": "2022-06-15",
    "microsoft.eventgrid/systemtopics": "2022-06-15",
    "microsoft.insights/activitylogalerts": "2020-10-01",
    "microsoft.insights/diagnosticsettings": "2021-05-01-preview",
    "microsoft.authorization/roleassignments": AUTHZ_API,
    "microsoft.authorization/roledefinitions": AUTHZ_API,
}


def resource_type_of(resource_id: str) -> str:
    """`microsoft.eventgrid/systemtopics/eventsubscriptions` for a (possibly extension) resource id."""
    tail = resource_id.rsplit("/providers/", maxsplit=1)[-1].strip("/").split("/")
    if len(tail) < 3:
        return ""
    return "/".join([tail[0], *tail[1::2]]).lower()


# ---------------------------------------------------------------- azd and HTTP


def azd(*args: str, check: bool = True, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(["azd", *args], capture_output=True, text=True, check=False,
                              env=dict(env) if env is not None else None)
    except FileNotFoundError:
        raise HookError("azd is not on PATH (these hooks run from azd)") from None
    if check and proc.returncode != 0:
        raise HookError(f"azd {' '.join(args[:3])} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc


def azd_env_set(name: str, value: str) -> None:
    azd("env", "set", name, value)


def azd_env_persisted(name: str) -> bool:
    """True when `name` is stored in .azure/<env>/.env (not just in the process environment)."""
    proc = azd("env", "get-value", name, check=False)
    return proc.returncode == 0 and bool(proc.stdout.strip())


_TOKENS: dict[str, str] = {}


def token(scope: str) -> str:
    if scope not in _TOKENS:
        args = ["auth", "token", "--output", "json", "--no-prompt", "--scope", scope]
        tenant = os.environ.get("AZURE_TENANT_ID", "").strip()
        if tenant:
            args += ["--tenant-id", tenant]
        proc = azd(*args, check=False)
        if proc.returncode != 0:
            raise HookError("could not get a token from azd (run `azd auth login`, the only login these hooks use): "
                            + (proc.stderr or proc.stdout).strip()[-500:])
        try:
            _TOKENS[scope] = str(json.loads(proc.stdout)["token"])
        except (ValueError, KeyError) as exc:
            raise HookError(f"unexpected `azd auth token` output ({exc})") from None
    return _TOKENS[scope]


@dataclass
class Response:
    status: int
    body: Json
    headers: Mapping[str, str]

    @property
    def error_code(self) -> str:
        error = self.body.get("error")
        return str(error.get("code", "")) if isinstance(error, dict) else ""

    @property
    def error_message(self) -> str:
        error = self.body.get("error")
        return str(error.get("message", ""))[:500] if isinstance(error, dict) else ""


def http(method: str, url: str, scope: str, body: Json | None = None, attempts: int = 4) -> Response:
    """One call with the azd token; 429 and 5xx are retried (Retry-After honoured), the rest is returned."""
    data = None if body is None else json.dumps(body).encode()
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url, data=data, method=method, headers={
            "Authorization": f"Bearer {token(scope)}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as raw:
                text = raw.read().decode() or "{}"
                return Response(raw.status, json.loads(text), dict(raw.headers))
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            try:
                parsed: Json = json.loads(text) if text else {}
            except ValueError:
                parsed = {"error": {"code": str(exc.code), "message": text[:500]}}
            response = Response(exc.code, parsed, dict(exc.headers))
            if (exc.code == 429 or exc.code >= 500) and attempt < attempts:
                time.sleep(float(exc.headers.get("Retry-After") or 2 ** attempt))
                continue
            return response
        except urllib.error.URLError as exc:
            if attempt == attempts:
                raise HookError(f"{method} {url.split('?', maxsplit=1)[0]}: {exc.reason}") from None
            time.sleep(2 ** attempt)
    raise AssertionError("unreachable")


def arm(method: str, path: str, api: str, body: Json | None = None, query: str = "") -> Response:
    url = f"{ARM}{path}?api-version={api}" + (f"&{query}" if query else "")
    return http(method, url, ARM_SCOPE, body)


def arm_list(path: str, api: str, query: str = "") -> list[Json]:
    url: str | None = f"{ARM}{path}?api-version={api}" + (f"&{query}" if query else "")
    items: list[Json] = []
    while url:
        response = http("GET", url, ARM_SCOPE)
        if response.status != 200:
            raise HookError(f"GET {path}: HTTP {response.status} {response.error_code} {response.error_message}")
        items.extend(response.body.get("value", []))
        url = response.body.get("nextLink")
    return items


# ---------------------------------------------------------------- preprovision


def env_value(name: str) -> str:
    return os.environ.get(name, "").strip()


def assignments_of(principal_id: str, subscription_scope: str) -> list[Json]:
    """Every role assignment of the principal at, above or below a subscription."""
    return arm_list(f"{subscription_scope}/providers/Microsoft.Authorization/roleAssignments", AUTHZ_API,
                    urllib.parse.quote(f"$filter=principalId eq '{principal_id}'", safe="$=&'"))


def delete_assignment(assignment: Json, why: str) -> None:
    response = arm("DELETE", str(assignment["id"]), AUTHZ_API)
    if response.status not in (200, 204, 404):
        raise HookError(f"could not delete role assignment {assignment['id']} ({why}): HTTP {response.status} "
                        f"{response.error_code} {response.error_message}")
    say(f"removed role assignment at {assignment.get('properties', {}).get('scope')} ({why})")


def role_guid_of(assignment: Json) -> str:
    return str(assignment.get("properties", {}).get("roleDefinitionId", "")).rsplit("/", 1)[-1].lower()


def role_definition_path(home: str, guid: str) -> str:
    return f"{'/'.join(home.split('/')[:3])}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def reconcile_custom_role(label: str, *, guid: str, home: str, new_home: str, new_scopes: Sequence[str],
                          principal_id: str) -> None:
    """Keep a custom role deployable: drop its assignments where it loses a scope, or all of them when it moves."""
    if not guid or not home:
        return
    definition = arm("GET", role_definition_path(home, guid), AUTHZ_API)
    if definition.status == 404:
        return
    if definition.status != 200:
        raise HookError(f"could not read the {label} role {guid}: HTTP {definition.status} {definition.error_code}")
    old_scopes = [str(s) for s in definition.body.get("properties", {}).get("assignableScopes", [])]
    moving = new_home.lower() != home.lower()
    dropped = old_scopes if moving else removed_scopes(old_scopes, new_scopes)
    if not dropped:
        return
    for subscription_scope in subscription_scopes(dropped):
        for assignment in assignments_of(principal_id, subscription_scope):
            scope = str(assignment.get("properties", {}).get("scope", ""))
            if role_guid_of(assignment) == guid.lower() and is_within(scope, dropped):
                delete_assignment(assignment, f"{label} role no longer assignable there")
    if moving:
        # The definition is re-created under a new GUID at its new home; the old one has no
        # assignments left and would otherwise linger.
        response = arm("DELETE", role_definition_path(home, guid), AUTHZ_API)
        if response.status in (200, 204, 404):
            say(f"removed the {label} role definition {guid} (its home {home} is no longer a managed scope)")
        else:
            say(f"warning: could not remove the old {label} role definition {guid}: HTTP {response.status} "
                f"{response.error_code}; delete it by hand once its assignments are gone")


def desired_builtin_scopes(env: Mapping[str, str]) -> dict[str, set[str]]:
    workspace = env.get("REMEDIATOR_AUTOMATION_WORKSPACE_ID", "").strip()
    return {
        LOG_ANALYTICS_READER: {workspace.lower()} if workspace else set(),
        MANAGED_IDENTITY_OPERATOR: {s.lower() for s in parse_json_list(
            "REMEDIATOR_IMAGE_BUILDER_IDENTITY_IDS", env.get("REMEDIATOR_IMAGE_BUILDER_IDENTITY_IDS"))},
        STORAGE_BLOB_DATA_READER: {s.lower() for s in parse_json_list(
            "REMEDIATOR_IMAGE_STAGING_RESOURCE_GROUP_IDS", env.get("REMEDIATOR_IMAGE_STAGING_RESOURCE_GROUP_IDS"))},
    }


def remove_stale_builtin_grants(env: Mapping[str, str], principal_id: str, subscriptions: Iterable[str]) -> None:
    """Least privilege across re-runs: a workspace, identity or staging group dropped from the
    parameters loses the app's built-in role there too (incremental deployments never delete)."""
    desired = desired_builtin_scopes(env)
    for subscription_scope in subscriptions:
        for assignment in assignments_of(principal_id, subscription_scope):
            props = assignment.get("properties", {})
            role = role_guid_of(assignment)
            ours = role in desired and str(props.get("description", "")).startswith(ASSIGNMENT_PREFIX)
            if ours and str(props.get("scope", "")).lower() not in desired[role]:
                delete_assignment(assignment, "no longer in the parameters")


def check_existing_topics(env: Mapping[str, str]) -> list[str]:
    """Reads every topic of REMEDIATOR_EXISTING_SYSTEM_TOPICS: it must exist, have the source and an identity."""
    problems = []
    for source, topic_id in parse_json_object("REMEDIATOR_EXISTING_SYSTEM_TOPICS",
                                              env.get("REMEDIATOR_EXISTING_SYSTEM_TOPICS")).items():
        response = arm("GET", topic_id, SYSTEM_TOPIC_API)
        problems.extend(existing_topic_state_problems(source, topic_id, response.status, response.body))
    return problems


def preprovision() -> None:
    env = dict(os.environ)
    problems = check_config(env)
    if not problems:
        problems = check_existing_topics(env)
    if problems:
        raise HookError("refusing to provision:\n  - " + "\n  - ".join(problems))
    scopes = parse_json_list("REMEDIATOR_MANAGED_SCOPES", env.get("REMEDIATOR_MANAGED_SCOPES"), required=True)
    subscriptions = subscription_scopes(scopes)

    kind = principal_type(jwt_claims(token(ARM_SCOPE)))
    if env_value("AZURE_PRINCIPAL_TYPE") != kind:
        azd_env_set("AZURE_PRINCIPAL_TYPE", kind)
        say(f"AZURE_PRINCIPAL_TYPE={kind} (from the azd login)")

    if not env_value("REMEDIATOR_KEY_VAULT_SUFFIX"):
        azd_env_set("REMEDIATOR_KEY_VAULT_SUFFIX", secrets.token_hex(3))
        say("picked a new Key Vault name suffix for this environment (REMEDIATOR_KEY_VAULT_SUFFIX)")

    principal_id = env_value("REMEDIATOR_IDENTITY_PRINCIPAL_ID")
    roles = (
        ("managed-scopes", "REMEDIATOR_ROLE_DEFINITION_SCOPE", "REMEDIATOR_ROLE_DEFINITION_NAME",
         "REMEDIATOR_ROLE_DEFINITION_HOME", scopes),
        ("registration", "REMEDIATOR_REGISTRATION_ROLE_SCOPE", "REMEDIATOR_REGISTRATION_ROLE_DEFINITION_NAME",
         "REMEDIATOR_REGISTRATION_ROLE_HOME", subscriptions),
    )
    for label, pin_var, guid_var, home_var, assignable in roles:
        current = env_value(pin_var)
        home = pin_home(current, assignable)
        if home != current:
            azd_env_set(pin_var, home)
            say(f"{label} role definition home: {home} ({pin_var})")
        if principal_id:
            reconcile_custom_role(label, guid=env_value(guid_var), home=env_value(home_var), new_home=home,
                                  new_scopes=assignable, principal_id=principal_id)

    if principal_id:
        seen = set(subscriptions) | set(env_value("REMEDIATOR_GRANT_SUBSCRIPTIONS").split(",")) - {""}
        for raw in ("REMEDIATOR_AUTOMATION_WORKSPACE_ID",):
            if env_value(raw):
                seen |= set(subscription_scopes([env_value(raw)]))
        for raw in ("REMEDIATOR_IMAGE_BUILDER_IDENTITY_IDS", "REMEDIATOR_IMAGE_STAGING_RESOURCE_GROUP_IDS"):
            seen |= set(subscription_scopes(parse_json_list(raw, env.get(raw))))
        remove_stale_builtin_grants(env, principal_id, sorted(seen))
        azd_env_set("REMEDIATOR_GRANT_SUBSCRIPTIONS", ",".join(sorted(seen)))


# ---------------------------------------------------------------- postprovision


def vault_scope(vault_uri: str) -> str:
    """https://vault.azure.net/.default for https://<name>.vault.azure.net/ (and the sovereign equivalents)."""
    host = urllib.parse.urlsplit(vault_uri).hostname or ""
    if "." not in host:
        raise HookError(f"AZURE_KEY_VAULT_ENDPOINT {vault_uri!r} is not a vault URI")
    return f"https://{host.split('.', 1)[1]}/.default"


def secret_call(method: str, vault_uri: str, name: str, body: Json | None = None) -> Response:
    url = f"{vault_uri.rstrip('/')}/secrets/{name}?api-version={KEYVAULT_API}"
    return http(method, url, vault_scope(vault_uri), body)


def with_rbac_wait(what: str, call: Callable[[], Response], deadline_seconds: float,
                   sleep: Callable[[float], None] = time.sleep) -> Response:
    """Retries `call` while Key Vault answers 403: a new role assignment can take up to 10 minutes to apply."""
    started = time.monotonic()
    delays = backoff_delays(deadline_seconds)
    attempt = 0
    while True:
        response = call()
        if response.status != 403:
            return response
        if attempt >= len(delays):
            raise HookError(
                f"{what}: still forbidden after {int(time.monotonic() - started)} s ({response.error_code}: "
                f"{response.error_message}). The deployer needs Key Vault Secrets Officer on the vault (principalId is "
                "AZURE_PRINCIPAL_ID, which azd sets); run `azd provision` again once it applies.")
        delay = delays[attempt]
        attempt += 1
        say(f"{what}: Key Vault says 403 (the Secrets Officer role is still propagating; that can take up to "
            f"10 minutes), {int(time.monotonic() - started)} s so far, next try in {int(delay)} s")
        sleep(delay)


def postprovision() -> None:
    vault = env_value("AZURE_KEY_VAULT_ENDPOINT")
    if not vault:
        raise HookError("AZURE_KEY_VAULT_ENDPOINT is not set: the provision did not finish; run azd provision again")
    deadline = float(os.environ.get("REMEDIATOR_HOOK_RBAC_WAIT_SECONDS") or DEFAULT_RBAC_WAIT_SECONDS)

    # The signing key: created once, never replaced here (rotation is by hand, see infra/README.md).
    existing = with_rbac_wait("reading approval-signing-key", lambda: secret_call("GET", vault, SIGNING_KEY_SECRET),
                              deadline)
    if existing.status == 200:
        say("approval-signing-key already exists in Key Vault; left unchanged")
    elif existing.status == 404:
        created = with_rbac_wait("creating approval-signing-key", lambda: secret_call(
            "PUT", vault, SIGNING_KEY_SECRET, {"value": new_signing_key(), "contentType": "text/plain"}), deadline)
        if created.status != 200:
            raise HookError(f"could not create approval-signing-key: HTTP {created.status} {created.error_code} "
                            f"{created.error_message}")
        say("created approval-signing-key in Key Vault (32 random bytes; it never left this process)")
    else:
        raise HookError(f"reading approval-signing-key: HTTP {existing.status} {existing.error_code} "
                        f"{existing.error_message}")

    # The Teams webhook: from this process's environment or a prompt, never from .azure/<env>/.env.
    url = os.environ.get("REMEDIATOR_TEAMS_WEBHOOK_URL", "").strip()
    if url and azd_env_persisted("REMEDIATOR_TEAMS_WEBHOOK_URL"):
        say("warning: REMEDIATOR_TEAMS_WEBHOOK_URL is stored in .azure/<env>/.env; delete that line (anyone who can "
            "read the file can post to the channel). It is still written to Key Vault below.")
    current = with_rbac_wait("reading teams-webhook-url", lambda: secret_call("GET", vault, TEAMS_SECRET), deadline)
    if not url and current.status == 404 and sys.stdin.isatty():
        url = getpass.getpass("remediator: Teams Workflows webhook URL for approval cards (Enter to skip): ").strip()
    if not url:
        if current.status == 404:
            say("no Teams webhook configured: cards are not posted until one is set (infra/README.md, Secrets)")
        return
    if not valid_teams_url(url):
        raise HookError("the Teams webhook URL must be https on *.logic.azure.com or *.api.powerplatform.com "
                        "(a Teams Workflows webhook)")
    if current.status == 200 and current.body.get("value") == url:
        say("teams-webhook-url in Key Vault is already this URL; left unchanged")
        return
    written = secret_call("PUT", vault, TEAMS_SECRET, {"value": url, "contentType": "text/uri-list"})
    if written.status != 200:
        raise HookError(f"could not write teams-webhook-url: HTTP {written.status} {written.error_code}")
    say("wrote teams-webhook-url to Key Vault (new version; the app reads the latest)")


# ---------------------------------------------------------------- postdeploy, down, teardown


def postdeploy(sleep: Callable[[float], None] = time.sleep) -> None:
    if azd_env_persisted("REMEDIATOR_SECOND_PHASE"):
        raise HookError("REMEDIATOR_SECOND_PHASE is stored in .azure/<env>/.env, which would decide every provision; "
                        "delete that line: the postdeploy hook passes it to its own provision only")
    say("code deployed: second phase (Event Grid subscriptions, action group with the alerts function key, custom "
        "role assignments): azd provision with REMEDIATOR_SECOND_PHASE=true")
    child = {**os.environ, "REMEDIATOR_SECOND_PHASE": "true"}
    waits = [0.0, 60.0, 180.0]
    for attempt, wait in enumerate(waits, start=1):
        if wait:
            say(f"second phase failed; the Functions host or fresh role definitions may need a few minutes, "
                f"trying again in {int(wait)} s ({attempt}/{len(waits)})")
            sleep(wait)
        proc = subprocess.run(["azd", "provision", "--no-prompt"], env=child, check=False)
        if proc.returncode == 0:
            azd_env_set("REMEDIATOR_SECOND_PHASE_DONE", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            say("second phase done")
            return
    raise HookError("the second phase did not succeed; fix the error above and run `azd deploy` (or "
                    "REMEDIATOR_SECOND_PHASE=true azd provision) again")


def predown() -> None:
    if env_value("REMEDIATOR_ALLOW_AZD_DOWN") == "true":
        say("REMEDIATOR_ALLOW_AZD_DOWN=true: letting azd down delete every resource group the deployment touched")
        return
    raise HookError(
        "azd down deletes every resource group that appears in the deployment, and this deployment also writes into "
        "the managed, image, maintenance, workspace and identity resource groups (role assignments, system topics, "
        "event subscriptions, alert rules). Run `python3 infra/hooks/remediator_hooks.py teardown` instead: it removes "
        "only what this environment created there, then deletes the app resource group. (Set "
        "REMEDIATOR_ALLOW_AZD_DOWN=true only when every one of those groups may be deleted.)")


def forget_lifecycle_values() -> None:
    for name in ("REMEDIATOR_KEY_VAULT_SUFFIX", "REMEDIATOR_SECOND_PHASE_DONE", "REMEDIATOR_ROLE_DEFINITION_SCOPE",
                 "REMEDIATOR_REGISTRATION_ROLE_SCOPE"):
        azd_env_set(name, "")
    say("the next azd up creates a new Key Vault name (the old vault stays soft-deleted with purge protection for 90 "
        "days; see infra/README.md to recover its secrets)")


def postdown() -> None:
    forget_lifecycle_values()


def environment_deployments(subscription: str, env_name: str) -> list[Json]:
    deployments = arm_list(f"/subscriptions/{subscription}/providers/Microsoft.Resources/deployments", RESOURCES_API)
    return [d for d in deployments if (d.get("tags") or {}).get("azd-env-name") == env_name]


def teardown(confirmed: bool) -> None:
    subscription = env_value("AZURE_SUBSCRIPTION_ID")
    env_name = env_value("AZURE_ENV_NAME")
    app_group = env_value("AZURE_RESOURCE_GROUP")
    if not (subscription and env_name and app_group):
        raise HookError("run from the project with the environment selected (azd env select <name>): "
                        "AZURE_SUBSCRIPTION_ID, AZURE_ENV_NAME and AZURE_RESOURCE_GROUP are needed")
    app_prefix = f"/subscriptions/{subscription}/resourcegroups/{app_group}/".lower()
    deployments = environment_deployments(subscription, env_name)
    # Existing topics are only read by the deployment (never in outputResources); kept anyway,
    # should a record list one, because this environment did not create them.
    existing = {t.lower() for t in parse_json_object(
        "REMEDIATOR_EXISTING_SYSTEM_TOPICS", os.environ.get("REMEDIATOR_EXISTING_SYSTEM_TOPICS")).values()}
    foreign: dict[str, str] = {}
    for deployment in deployments:
        for ref in deployment.get("properties", {}).get("outputResources") or []:
            rid = str(ref.get("id", ""))
            if rid and not (rid.lower() + "/").startswith(app_prefix) and rid.lower() not in existing:
                foreign.setdefault(rid.lower(), rid)
    plan = sorted(((teardown_order(resource_type_of(r)), r) for r in foreign.values()),
                  key=lambda item: (item[0] is None, item[0] or 0, item[1]))
    say(f"environment {env_name}: {len(deployments)} deployment record(s), {len(plan)} resource(s) outside {app_group}")
    for order, rid in plan:
        say(f"  {'delete' if order is not None else 'keep  '} {rid}")
    if not confirmed:
        question = f"remediator: delete the above and resource group {app_group}? [y/N] "
        answer = input(question) if sys.stdin.isatty() else ""
        if answer.strip().lower() not in ("y", "yes"):
            raise HookError("nothing deleted (pass --yes to skip this question)")
    for order, rid in plan:
        if order is None:
            continue
        rtype = resource_type_of(rid)
        if rtype == "microsoft.eventgrid/systemtopics":
            remaining = arm_list(f"{rid}/eventSubscriptions", TEARDOWN_API[rtype])
            if remaining:
                say(f"kept {rid}: other environments still subscribe to it ({len(remaining)} subscription(s))")
                continue
        response = arm("DELETE", rid, TEARDOWN_API[rtype])
        if response.status not in (200, 202, 204, 404):
            raise HookError(f"could not delete {rid}: HTTP {response.status} {response.error_code} "
                            f"{response.error_message}")
        say(f"deleted {rid}")
    response = arm("DELETE", f"/subscriptions/{subscription}/resourcegroups/{app_group}", RESOURCES_API)
    if response.status not in (200, 202, 404):
        raise HookError(f"could not delete resource group {app_group}: HTTP {response.status} {response.error_code}")
    say(f"deleting resource group {app_group} (this takes a few minutes)")
    while response.status != 404:
        time.sleep(20)
        response = arm("GET", f"/subscriptions/{subscription}/resourcegroups/{app_group}", RESOURCES_API)
        if response.status == 200:
            say(f"  {app_group}: {response.body.get('properties', {}).get('provisioningState')}")
    for deployment in deployments:
        arm("DELETE", f"/subscriptions/{subscription}/providers/Microsoft.Resources/deployments/{deployment['name']}",
            RESOURCES_API)
    say(f"removed {len(deployments)} deployment record(s) of {env_name}")
    forget_lifecycle_values()


COMMANDS: dict[str, Callable[[], None]] = {
    "preprovision": preprovision,
    "postprovision": postprovision,
    "postdeploy": postdeploy,
    "predown": predown,
    "postdown": postdown,
}


def main(argv: Sequence[str]) -> int:
    if not argv or (argv[0] not in COMMANDS and argv[0] != "teardown"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        if argv[0] == "teardown":
            teardown(confirmed="--yes" in argv[1:])
        else:
            COMMANDS[argv[0]]()
    except HookError as exc:
        print(f"remediator {argv[0]}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
