"""The OpenAPI document, and fuzzing every HTTP route and the Event Grid handler against it.

The document (`shared.entry.openapi.spec`) is valid OpenAPI 3.0, lists exactly the routes
`function_app.py` binds (with their auth levels), and describes what the handlers really
answer. Then generated and mutated payloads
(huge bodies, deep nesting, wrong types, invalid UTF-8, random bytes, real payloads with
keys dropped, types changed, huge strings injected) must never get a 5xx or raise.

Each rejection is a 4xx the OpenAPI document lists for the route: for the JSON routes
a body naming the problem and the field, for the approval links an HTML page. The Event
Grid handler returns or raises `PayloadError`, nothing else. The routes are driven
through the real bindings: the `function_app` functions with `azure.functions`
requests, and the dev server over loopback HTTP (raw bytes, function key, framing).

Every test counts the payloads it sent and asserts its quota; the quotas add up to at
least MIN_PAYLOADS (`test_fuzz_quotas_add_up`). Run them alone with `-k fuzz -s` to
see the counts.
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, unquote, urlencode, urlsplit

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_schema_validator import OAS30Validator
from openapi_schema_validator import validate as validate_schema
from openapi_spec_validator import validate as validate_spec

import function_app
from sandbox import AzureDouble
from sandbox.devserver import DevServer, routes
from shared.approvals.flow import links as approval_links
from shared.core.errors import PayloadError
from shared.decisions.pipeline import handle_event
from shared.decisions.policy import Policy, PolicyMode
from shared.entry.openapi import openapi_document, spec
from shared.wiring import App
from tests.conftest import ROOT
from tests.pipeline_helpers import activity_alert, arm_failure_event, cards, principal_header
from tests.test_security import OutboundGuard

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "payloads"
MIN_PAYLOADS = 10_000
# Payloads each test sends (asserted by the test itself, from what it actually sent).
QUOTA: dict[str, int] = {
    "diagnose": 2_600,
    "alerts": 1_500,
    "remediations": 1_500,
    "reads": 1_200,
    "approvals": 1_400,
    "event_grid": 1_400,
    "devserver": 600,
}
# A deeper campaign: REMEDIATOR_FUZZ_SCALE=10 pytest -n 2 -k fuzz (never less than the quotas above).
SCALE = max(1.0, float(os.environ.get("REMEDIATOR_FUZZ_SCALE") or 1))
MAX_BODY = 4 * 1024 * 1024
KEY = "fuzz-function-key"


def quota(name: str) -> int:
    return int(QUOTA[name] * SCALE) // 4 * 4  # whole examples: some tests send 2 or 4 payloads each


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example, HealthCheck.filter_too_much])


class Tally:
    """Payloads sent by one test."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent = 0
        self.outcomes: dict[str, int] = {}
        self.started = time.monotonic()

    def add(self, outcome: int | str) -> None:
        self.sent += 1
        self.outcomes[str(outcome)] = self.outcomes.get(str(outcome), 0) + 1

    def check(self) -> None:
        took = time.monotonic() - self.started
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.outcomes.items()))
        print(f"\nfuzz {self.name}: {self.sent} payloads in {took:.1f}s ({statuses})")
        assert self.sent >= quota(self.name), f"{self.name}: only {self.sent} payloads sent"


# --- the OpenAPI document ----------------------------------------------------------------------

OPENAPI_ROUTE = ("GET", "/openapi.json")
OPENAPI_BINDING = '''
@app.route(route="openapi.json", methods=["GET"])
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    from shared.entry.openapi import openapi_document

    return _respond(openapi_document())
'''


def declared_routes() -> dict[tuple[str, str], bool]:
    """(method, path template under /api) -> anonymous, as function_app.py binds them."""
    out: dict[tuple[str, str], bool] = {}
    for route in routes():
        template = re.sub(r"\(\?P<(\w+)>\[\^/\]\+\)", r"{\1}", route.pattern.pattern)
        template = re.sub(r"\\(.)", r"\1", template.removeprefix("^/api").removesuffix("$"))
        for method in route.methods:
            out[(method, template)] = route.anonymous
    return out


def documented_routes() -> dict[tuple[str, str], bool]:
    """(method, path) -> anonymous (an empty `security`), as the document describes them."""
    document = spec()
    return {(method.upper(), path): op.get("security", document["security"]) == []
            for path, item in document["paths"].items() for method, op in item.items() if method != "parameters"}


def test_openapi_document_is_valid_openapi() -> None:
    for base in ("/api", "https://func-remediator.azurewebsites.net/api"):
        document = spec(base)
        validate_spec(cast("Mapping[Hashable, Any]", document))
        assert document["servers"] == [{"url": base}]
    json.dumps(spec())  # plain JSON, as the route serves it


def test_openapi_lists_exactly_the_routes_function_app_binds_with_their_auth_levels() -> None:
    declared, documented = declared_routes(), documented_routes()
    assert {k: v for k, v in documented.items() if k != OPENAPI_ROUTE} == \
        {k: v for k, v in declared.items() if k != OPENAPI_ROUTE}
    assert documented[OPENAPI_ROUTE] is False, "the document is served at function level"
    anonymous = sorted(k for k, v in documented.items() if v)
    assert anonymous == [("GET", "/approvals/{id}"), ("POST", "/approvals/{id}")]


def test_openapi_route_is_bound_at_function_level() -> None:
    assert declared_routes().get(OPENAPI_ROUTE) is False, f"add to function_app.py:\n{OPENAPI_BINDING}"


def test_openapi_document_route_answers_the_document_through_the_binding_adapter() -> None:
    response = function_app._respond(openapi_document())
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert json.loads(response.get_body()) == spec()


def test_openapi_limits_are_the_handlers_limits() -> None:
    from shared.approvals.links import MAX_TOKEN_CHARS
    from shared.diagnosis.envelopes._reader import MAX_ID_CHARS
    from shared.entry import diagnosis_api as http_api
    from shared.entry import openapi
    from shared.entry import operations_api as api

    assert (openapi.MAX_HISTORY, openapi.MAX_PARAMS, openapi.MAX_PARAM_CHARS, openapi.MAX_PARAM_NAME,
            openapi.MAX_PARAMS_JSON) == (api.MAX_HISTORY, api.MAX_PARAMS, api.MAX_PARAM_CHARS, api.MAX_PARAM_NAME,
                                         api.MAX_PARAMS_JSON)
    assert openapi.MAX_ID_CHARS == MAX_ID_CHARS and http_api.MAX_BODY == MAX_BODY
    document = spec()
    assert f"At most {MAX_BODY} bytes" in document["paths"]["/alerts"]["post"]["requestBody"]["description"]
    assert document["components"]["schemas"]["ApprovalForm"]["properties"]["token"]["maxLength"] == MAX_TOKEN_CHARS
    too_large = document["paths"]["/approvals/{id}"]["post"]["responses"]["413"]["description"]
    assert f"{openapi.MAX_FORM_BYTES} bytes" in too_large


def test_openapi_module_imports_nothing_heavy() -> None:
    code = ("import sys, shared.entry.openapi as o; o.spec(); print(sorted(m for m in sys.modules "
            "if m.startswith(('azure', 'remediations', 'shared.wiring', 'shared.state', "
            "'shared.decisions.pipeline'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT, check=True, timeout=60)
    assert out.stdout.strip() == b"[]"


def conforms(method: str, path: str, response: func.HttpResponse) -> None:
    """The answer is one the document lists, of the documented media type and schema."""
    document = spec()
    listed = document["paths"][path][method.lower()]["responses"]
    status = str(response.status_code)
    assert status in listed, (method, path, status, response.get_body()[:300])
    content = listed[status].get("content", {})
    assert response.mimetype in content, (method, path, status, response.mimetype)
    if response.mimetype == "application/json":
        schema = {**content["application/json"]["schema"], "components": document["components"]}
        validate_schema(json.loads(response.get_body()), schema, cls=OAS30Validator)
    for header in listed[status].get("headers", {}):
        assert header in response.headers, (method, path, status, header)


def test_openapi_describes_what_the_handlers_answer(wired: App, double: AzureDouble) -> None:
    """Real answers of every route, good and bad, validated against the document's schemas."""
    tpl = double.refs["template:tpl-rhel-noartifacts"]
    batch = (FIXTURES / "eventgrid_batch_mixed.json").read_bytes()
    handshake = (FIXTURES / "eventgrid_subscription_validation.json").read_bytes()
    for body, params in ((b"Failed to enable the Update solution", {}), (batch, {}), (handshake, {}), (b"", {}),
                         (b"{", {}), (b"text", {"source": "windows"}), (b"x" * (MAX_BODY + 1), {})):
        conforms("POST", "/diagnose", call("diagnose", "POST", body=body, params=params))
    conforms("GET", "/scenarios", call("scenarios", "GET"))
    conforms("GET", "/remediations", call("remediations", "GET"))
    wired.policy = Policy(PolicyMode.SUGGEST)
    fired = json.dumps(activity_alert(tpl)).encode()
    for body in (fired, fired, json.dumps(activity_alert(tpl, condition="Resolved")).encode(), b"", b"[]",
                 b'{"schemaId": "azureMonitorCommonAlertSchema", "data": {}}'):
        conforms("POST", "/alerts", call("alerts", "POST", body=body))
    handle_event(arm_failure_event(double.refs["template:tpl-win2022-timeout"]), wired)  # an approval to link to
    wired.policy = Policy(PolicyMode.AUTO)  # a manual run obeys policy: in auto an auto fix is queued
    queued = call("run_remediation", "POST", body=json.dumps({"target": tpl}).encode(),
                  route={"name": "rerun-image-build"})
    conforms("POST", "/remediations/{name}", queued)
    for name, body in (("rerun-image-build", b"[]"), ("nope", b"{}"), ("rerun-image-build", b'{"target": "x"}'),
                       ("rerun-image-build", b"{" * 10)):
        conforms("POST", "/remediations/{name}", call("run_remediation", "POST", body=body, route={"name": name}))
    operation_id = json.loads(queued.get_body())["operation_id"]
    for ident in (operation_id, "0" * 32, "nope"):
        conforms("GET", "/operations/{id}", call("operation", "GET", route={"id": ident}))
    for params in ({}, {"target": tpl, "limit": "5"}, {"limit": "0"}, {"colour": "red"}):
        conforms("GET", "/history", call("history", "GET", params=params))
    [approval] = wired.approvals.pending()
    token = unquote(approval_links(wired, approval).approve.split("token=", 1)[1])
    link = {"decision": "approve", "token": token}
    for ident, params in ((approval.id, link), (approval.id, {}), ("0" * 32, link),
                          (approval.id, {"decision": "approve", "token": "A" * 80})):
        conforms("GET", "/approvals/{id}", call("approval_page", "GET", params=params, route={"id": ident}))
    for body in (urlencode(link).encode(), urlencode(link).encode(), b"\xff", b"x" * 20_000):
        conforms("POST", "/approvals/{id}", call("approval_decision", "POST", body=body, route={"id": approval.id}))
    wired.policy = Policy(PolicyMode.AUTO, allowed_scopes=("/subscriptions/00000000-0000-0000-0000-000000000000",))
    forbidden = call("run_remediation", "POST", body=json.dumps({"target": tpl}).encode(),
                     route={"name": "rerun-image-build"})
    assert forbidden.status_code == 403
    conforms("POST", "/remediations/{name}", forbidden)


# --- the mutation engine ---------------------------------------------------------------------

# Sentinel strings, swapped in the serialised bytes for what `json.dumps` cannot write.
_DEEP = "\u0000deep\u0000"
_LONE = "\u0000lone\u0000"
_EDGE_STRINGS = (
    "", " ", "\t\n", "null", "0", "-1", "1e309", "true", "[]", "{}", "Fired", "Resolved", "Failed",
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "2026-13-45T99:99:99Z", "2026-11-21T02:14:09.5123456789Z",
    "/subscriptions/", "/subscriptions/x/resourceGroups/r/providers/Microsoft.VirtualMachineImages/imageTemplates/",
    "/subscriptions/../../etc/passwd", "/subscriptions/a b?c#d%zz'\"<>", "../../../../etc/passwd",
    "http://169.254.169.254/metadata/packerlogs/x/customization.log",
    "https://evil.example/packerlogs/x/customization.log",
    "https://acct.blob.core.windows.net.evil.com/packerlogs/x/customization.log",
    "http://127.0.0.1:99999/packerlogs/x/customization.log", "http://localhost:0/packerlogs/customization.log",
    "<script>alert(1)</script>", "'; DROP TABLE audit; --", "' or 1 eq 1 or '", "\u202eevil\u202c", "\ufeff",
    "\u0000", "😀" * 10, "Ω≈ç√∫", "azureMonitorCommonAlertSchema", "Microsoft.EventGrid.SubscriptionValidationEvent",
    "Microsoft.Resources.ResourceActionFailure", "Microsoft.Maintenance.PostMaintenanceEvent", "1.0",
)
_HUGE_CHARS = ("A", "é", "😀", "\u0000", "\\", '"', "\u202e", " ")


class Mutator:
    """Mutates JSON values the way a broken or hostile sender would."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.deep: list[tuple[str, bytes]] = []

    def scalar(self) -> Any:
        r = self.rng
        return r.choice([
            None, True, False, 0, -1, 1, 2**63, -(2**64), 1.5, 1e308, -0.0,
            r.choice(_EDGE_STRINGS), r.choice(_EDGE_STRINGS) * r.choice([1, 2, 50]),
            [], {}, [None], {"": None}, r.randint(-(10**30), 10**30),
        ])

    def huge(self) -> str:
        size = self.rng.choice([1_000, 40_000, 70_000, 300_000, 1_100_000])
        return self.rng.choice(_HUGE_CHARS) * size

    def deep_marker(self) -> str:
        """A placeholder for nesting `json.dumps` would refuse to write."""
        depth = self.rng.choice([60, 600, 3_000, 50_000])
        opener, closer = self.rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
        inner = b"1" if opener == b"[" else b"null"
        marker = f"{_DEEP}{len(self.deep)}"
        self.deep.append((marker, opener * depth + inner + closer * depth))
        return marker

    def replace(self, node: Any) -> Any:
        r = self.rng.random()
        if r < 0.30:
            return self.scalar()
        if r < 0.40:
            return self.huge()
        if r < 0.50:
            return self.deep_marker()
        if r < 0.56:
            return _LONE
        if isinstance(node, str) and r < 0.80:
            cut = self.rng.randrange(len(node) + 1)
            return self.rng.choice([node[:cut], node + node, node.upper(), node[:cut] + self.rng.choice(
                _EDGE_STRINGS) + node[cut:], node * 3])
        if isinstance(node, (dict, list)) and r < 0.80:
            return self.rng.choice([[node], {"value": [node]}, {"data": node}, str(node)[:200], list(node)])
        return self.rng.choice([[self.scalar()], {self.rng.choice(_EDGE_STRINGS): self.scalar()}])

    def mutate_node(self, node: Any, depth: int = 0) -> Any:
        r = self.rng
        if isinstance(node, dict) and node and r.random() < 0.8 and depth < 40:
            key = r.choice(list(node))
            roll = r.random()
            if roll < 0.18:
                del node[key]
            elif roll < 0.26:
                node[r.choice([str(key).upper(), str(key).lower(), str(key) + " ", "", str(key)[::-1]])] = node.pop(key)
            elif roll < 0.32:
                node[r.choice(_EDGE_STRINGS) or "x"] = self.scalar()
            else:
                node[key] = self.mutate_node(node[key], depth + 1)
            return node
        if isinstance(node, list) and node and r.random() < 0.8 and depth < 40:
            i = r.randrange(len(node))
            roll = r.random()
            if roll < 0.12:
                del node[i]
            elif roll < 0.18:
                node.extend([copy.deepcopy(node[i])] * r.choice([2, 50, 5_001]))
            else:
                node[i] = self.mutate_node(node[i], depth + 1)
            return node
        return self.replace(node)

    def leaf(self, node: Any) -> Any:
        """A value of the same type (mostly): the structure stays valid, the content does not."""
        r = self.rng
        if isinstance(node, bool):
            return not node if r.random() < 0.8 else self.scalar()
        if isinstance(node, (int, float)):
            return r.choice([0, -1, node * 1000, 2**53 + 1, 1e300, float(node), str(node)])
        if isinstance(node, str):
            roll = r.random()
            if roll < 0.3:
                return r.choice(_EDGE_STRINGS)
            if roll < 0.45:
                return self.huge()
            if roll < 0.55:
                return _LONE
            cut = r.randrange(len(node) + 1)
            return node[:cut] + r.choice((*_EDGE_STRINGS, "\n", "/", "%", "😀", "\u0000")) + node[cut:]
        return self.replace(node)

    def gentle(self, node: Any, depth: int = 0) -> Any:
        """One leaf changed, keeping the shape around it."""
        if isinstance(node, dict) and node and depth < 40:
            key = self.rng.choice(list(node))
            node[key] = self.gentle(node[key], depth + 1)
            return node
        if isinstance(node, list) and node and depth < 40:
            i = self.rng.randrange(len(node))
            node[i] = self.gentle(node[i], depth + 1)
            return node
        return self.leaf(node)

    def fresh(self, node: Any) -> Any:
        """New event and alert ids, so a payload is not answered as a duplicate delivery."""
        suffix = self.rng.randbytes(6).hex()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("id", "alertId", "originAlertId") and isinstance(value, str):
                    node[key] = f"{value}-{suffix}"
                else:
                    self.fresh(value)
        elif isinstance(node, list):
            for item in node:
                self.fresh(item)
        return node

    def mutate(self, value: Any, rounds: int) -> Any:
        out = copy.deepcopy(value)
        for _ in range(rounds):
            out = self.mutate_node(out)
        return out

    def dumps(self, value: Any) -> bytes:
        """JSON bytes with the placeholders filled in, sometimes damaged on the wire."""
        text = json.dumps(value, ensure_ascii=self.rng.random() < 0.5)
        raw = text.encode("utf-8", "surrogatepass")
        raw = raw.replace(json.dumps(_LONE).encode(), b'"\\ud800 lone \\udfff"')
        for marker, nested in self.deep:
            raw = raw.replace(json.dumps(marker).encode(), nested)
        return self.damage(raw) if self.rng.random() < 0.15 else raw

    def damage(self, raw: bytes) -> bytes:
        r = self.rng
        at = r.randrange(len(raw) + 1)
        return r.choice([
            raw[:at],
            raw[:at] + b"\xff\xfe\xc3" + raw[at:],
            raw[:at] + bytes([r.randrange(256)]) + raw[at + 1:],
            b"\xef\xbb\xbf" + raw,
            raw.decode("utf-8", "replace").encode("utf-16"),
            raw + b"\x00" * 10,
            raw + b" garbage",
        ])


def random_body(rng: random.Random) -> bytes:
    """Bytes of no particular shape: random, text, oversized, deep, almost JSON."""
    roll = rng.random()
    size = rng.choice([0, 1, 2, 10, 100, 5_000])
    if roll < 0.2:
        return rng.randbytes(size)
    if roll < 0.35:
        return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x3000), 0x1F600, 0]))
                       for _ in range(size)).encode("utf-8", "surrogatepass")
    if roll < 0.42:
        return rng.choice([b"x", b" ", b"{", b"\xff"]) * rng.choice([MAX_BODY - 1, MAX_BODY + 1, 64_000])
    if roll < 0.52:
        depth = rng.choice([100, 1_000, 100_000, 1_500_000])
        return rng.choice([b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth, b"[" * depth])
    if roll < 0.65:
        return rng.choice([b"{}", b"[]", b"null", b"0", b'""', b'"text"', b"true", b"{not json", b"[1,]",
                           b'{"a":NaN}', b'{"a":Infinity}', b"1e999999", b'{"text": "\\ud800"}', b"\x00",
                           b'{"text": ""}', b'{"text": "a", "source": "windows"}', b"[[]]", b"[{}]",
                           b'{"schemaId": null}', b'{"schemaId": "azureMonitorCommonAlertSchema"}',
                           b'{"target": "/subscriptions/x"}', b'"' + b"9" * 5000 + b'"', b"9" * 5000])
    return Mutator(rng).dumps(_generated(rng, 0))


def _generated(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth > 4 or roll < 0.4:
        return Mutator(rng).scalar()
    if roll < 0.7:
        return [_generated(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice((*_EDGE_STRINGS, "id", "data", "eventType", "schemaId", "text", "target", "params")):
            _generated(rng, depth + 1) for _ in range(rng.randrange(5))}


def mutated(rng: random.Random, seeds: list[Any]) -> bytes:
    m = Mutator(rng)
    return m.dumps(m.mutate(rng.choice(seeds), rng.choice([1, 1, 2, 3, 5])))


def gently_mutated(rng: random.Random, seeds: list[Any]) -> bytes:
    m = Mutator(rng)
    value = m.fresh(copy.deepcopy(rng.choice(seeds)))
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        value = m.gentle(value)
    return m.dumps(value)


def body_from(rng: random.Random, seeds: list[Any]) -> bytes:
    """Real-shaped payloads: some as they are, most with leaves changed or the shape broken;
    and some bodies of no shape at all."""
    roll = rng.random()
    if roll < 0.05:
        return json.dumps(rng.choice(seeds)).encode()
    if roll < 0.40:
        return gently_mutated(rng, seeds)
    if roll < 0.78:
        return mutated(rng, seeds)
    return random_body(rng)


# --- the seeds: real-shaped payloads, on resources the double has ------------------------------

@cache
def fixture_payloads() -> tuple[str, ...]:
    return tuple(p.read_text(encoding="utf-8") for p in sorted(FIXTURES.glob("*.json")) if p.name != "expected.json")


def real_payloads(double: AzureDouble) -> list[Any]:
    refs = double.refs
    templates = [v for k, v in refs.items() if k.startswith("template:")]
    config = refs["maintenance:mc-prod-weekly"]
    maintenance = {
        "id": "evt-maintenance", "topic": config, "subject": config,
        "eventType": "Microsoft.Maintenance.PostMaintenanceEvent", "eventTime": "2026-11-20T02:00:00Z",
        "dataVersion": "1.0", "metadataVersion": "1",
        "data": {"correlationId": refs["maintenance-run:mc-prod-weekly"], "maintenanceConfigurationId": config,
                 "status": "Failed", "startDateTime": "2026-11-20T00:00:00Z", "endDateTime": "2026-11-20T02:00:00Z",
                 "resourceSubscriptionIds": [refs["subscription"]]},
    }
    cloud = {"specversion": "1.0", "id": "ce-1", "source": config, "type": "Microsoft.Maintenance.PostMaintenanceEvent",
             "time": "2026-11-20T02:00:00Z", "subject": config, "data": maintenance["data"]}
    out: list[Any] = [json.loads(text) for text in fixture_payloads()]
    out += [arm_failure_event(t) for t in templates]
    out += [activity_alert(t) for t in templates[:3]] + [activity_alert(templates[0], condition="Resolved")]
    out += [maintenance, cloud, [maintenance, arm_failure_event(templates[1])], {"text": "Failed to enable the Update "
            "solution", "source": "update"}]
    out += [double.state.get(t) for t in templates[:3]]
    account = refs["automation_account"]
    for kind, key in (("softwareUpdateConfigurationRuns", "run:weekly-windows-critical"),
                      ("softwareUpdateConfigurationRuns", "run:monthly-linux-security"),
                      ("softwareUpdateConfigurationMachineRuns", "machine-run:vm-web-02")):
        run = double.state.get(f"{account}/{kind}/{refs[key]}")
        assert run is not None
        out.append(run)
    return out


def alert_payloads(double: AzureDouble) -> list[Any]:
    return [p for p in real_payloads(double) if isinstance(p, dict) and "schemaId" in p]


def remediation_requests(double: AzureDouble) -> list[Any]:
    refs = double.refs
    return [
        {"target": refs["template:tpl-win2019-lowres"], "params": {"size": "Standard_D4ds_v4"}},
        {"target": refs["suc:weekly-windows-critical"], "dry_run": True},
        {"target": refs["template:tpl-rhel-noartifacts"], "params": {}, "dry_run": False},
        {"target": "/subscriptions/" + refs["subscription"]},
    ]


# --- driving the bindings -----------------------------------------------------------------------

@cache
def user_function(name: str) -> Callable[..., Any]:
    fn: Callable[..., Any] = getattr(function_app, name).build().get_user_function()
    return fn


def call(name: str, method: str, *, body: bytes = b"", params: Mapping[str, str] | None = None,
         route: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    req = func.HttpRequest(method=method, url=f"/api/{name}", body=body, params=dict(params or {}),
                           route_params=dict(route or {}), headers=dict(headers or {}))
    response: func.HttpResponse = user_function(name)(req)
    return response


@cache
def documented() -> dict[tuple[str, str], set[str]]:
    """(method, path) -> the statuses the OpenAPI document lists."""
    out: dict[tuple[str, str], set[str]] = {}
    for path, item in spec()["paths"].items():
        for method, op in item.items():
            if method != "parameters":
                out[(method.upper(), path)] = set(op["responses"])
    return out


def check_answer(method: str, path: str, status: int, *, content_type: str, body: bytes, sent: bytes = b"") -> None:
    """A documented status; a 4xx names its problem (JSON) or is an HTML page (approval links)."""
    what = f"{method} {path} -> {status} for {sent[:200]!r}: {body[:300]!r}"
    assert status < 500, what
    assert str(status) in documented()[(method, path)], what
    if status < 400:
        return
    if path.startswith("/approvals/"):
        assert content_type.startswith("text/html") and b"<html" in body and b"<h1>" in body, what
        return
    assert content_type.startswith("application/json"), what
    error = json.loads(body)
    assert isinstance(error, dict), what
    assert isinstance(error.get("error"), str) and error["error"], what
    assert isinstance(error.get("problem"), str) and error["problem"].strip(), what
    assert isinstance(error.get("field"), str) and error["field"], what
    assert set(error) <= {"error", "problem", "field"}, what


def answer(response: func.HttpResponse, method: str, path: str, sent: bytes = b"") -> int:
    body = response.get_body()
    check_answer(method, path, response.status_code, content_type=response.mimetype or "", body=body, sent=sent)
    if response.mimetype == "application/json":
        json.loads(body)  # every JSON answer is JSON
    status: int = response.status_code
    return status


def send(tally: Tally, name: str, method: str, path: str, body: bytes = b"", **kwargs: Any) -> None:
    """Calls the binding, checks and counts the answer."""
    tally.add(answer(call(name, method, body=body, **kwargs), method, path, body))


def text_values(rng: random.Random) -> str:
    return rng.choice([
        rng.choice(_EDGE_STRINGS), "x" * rng.choice([1, 100, 5_000, 70_000]), str(rng.randint(-5, 10**6)),
        "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(1, 40))), "9" * 5_000, "²", "١٢",
        "\ud800", "0" * 32, "a" * 32, "0" * 32 + "\n", rng.randbytes(16).hex(), "%00", "%ff", "%2F..%2F",
    ])


# --- the tests ----------------------------------------------------------------------------------

@pytest.fixture
def no_outbound(monkeypatch: pytest.MonkeyPatch) -> Iterator[OutboundGuard]:
    """Payloads carry URLs (build logs): whatever they say, nothing leaves the machine."""
    guard = OutboundGuard()
    guard.install(monkeypatch)
    yield guard


def test_fuzz_diagnose(no_outbound: OutboundGuard) -> None:
    tally = Tally("diagnose")
    seeds = [json.loads(text) for text in fixture_payloads()] + [{"text": "Failed to enable the Update solution"}]

    @_settings(quota("diagnose"))
    @given(rng=st.randoms(use_true_random=False), source=st.one_of(
        st.none(), st.sampled_from(["aib", "update", "AIB", "", "windows", "aib\x00"]), st.text(max_size=20)))
    def run(rng: random.Random, source: str | None) -> None:
        body = body_from(rng, seeds) if rng.random() < 0.8 else random_body(rng)
        params = {} if source is None else {"source": source}
        tally.add(answer(call("diagnose", "POST", body=body, params=params), "POST", "/diagnose", body))

    run()
    tally.check()


def test_fuzz_alerts(wired: App, double: AzureDouble, no_outbound: OutboundGuard) -> None:
    tally = Tally("alerts")
    seeds = alert_payloads(double)
    others = real_payloads(double)

    @_settings(quota("alerts"))
    @given(rng=st.randoms(use_true_random=False))
    def run(rng: random.Random) -> None:
        roll = rng.random()  # half of them close to real, so that many get through to diagnosis and dispatch
        body = gently_mutated(rng, seeds) if roll < 0.5 else body_from(rng, seeds if roll < 0.85 else others)
        send(tally, "alerts", "POST", "/alerts", body)

    wired.policy = Policy(PolicyMode.SUGGEST)  # proposals: approvals, cards, alert ids stored
    run()
    tally.check()


def test_fuzz_run_remediation(wired: App, double: AzureDouble, no_outbound: OutboundGuard) -> None:
    from remediations.base import registry

    tally = Tally("remediations")
    names = sorted(registry().items)
    seeds = remediation_requests(double)

    @_settings(quota("remediations"))
    @given(rng=st.randoms(use_true_random=False))
    def run(rng: random.Random) -> None:
        name = rng.choice(names) if rng.random() < 0.85 else text_values(rng)
        body = body_from(rng, seeds)
        response = call("run_remediation", "POST", body=body, route={"name": name})
        tally.add(answer(response, "POST", "/remediations/{name}", body))

    run()
    tally.check()


def test_fuzz_reads(wired: App, double: AzureDouble) -> None:
    """Operations, history and the two catalogs: ids, query strings and stray bodies."""
    tally = Tally("reads")
    op = wired.operations.create(kind="manual", remediation="rerun-image-build",
                                 target=double.refs["template:tpl-rhel-noartifacts"])
    names = ("target", "scenario", "since", "until", "limit", "code", "Limit", "", "x" * 300, "colour")

    @_settings(quota("reads") // 4)
    @given(rng=st.randoms(use_true_random=False))
    def run(rng: random.Random) -> None:
        ident = rng.choice([op.id, op.id.upper(), op.id + "\n", text_values(rng)])
        tally.add(answer(call("operation", "GET", route={"id": ident}), "GET", "/operations/{id}"))
        params = {rng.choice(names): text_values(rng) for _ in range(rng.randrange(4))}
        if rng.random() < 0.5:
            params["limit"] = rng.choice(["1", "500", "501", "0", "-1", "²", "١٢", "9" * 5000, " 5", "5 ", "0x10"])
        tally.add(answer(call("history", "GET", params=params), "GET", "/history", repr(params).encode()))
        stray = random_body(rng) if rng.random() < 0.3 else b""
        tally.add(answer(call("scenarios", "GET", params=params, body=stray), "GET", "/scenarios"))
        tally.add(answer(call("remediations", "GET", params=params, body=stray), "GET", "/remediations"))

    run()
    tally.check()


def test_fuzz_approvals(wired: App, double: AzureDouble, tmp_path: Path) -> None:
    """Approval links: real ids and tokens, altered; forms, headers and principals of every shape."""
    tally = Tally("approvals")
    wired.policy = Policy(PolicyMode.SUGGEST)
    for name in ("tpl-rhel-noartifacts", "tpl-win2022-timeout", "tpl-customizer-fails"):
        handle_event(arm_failure_event(double.refs[f"template:{name}"]), wired)
    tpl = double.refs["template:tpl-rhel-noartifacts"]
    urls = [action["url"] for card in cards(tmp_path) for action in card["attachments"][0]["content"]["actions"]]
    for n in range(40):  # more open approvals, so that decisions succeed too (each decides once)
        approval = wired.approvals.create(remediation="rerun-image-build", target=tpl, scenario="aib.no_artifacts",
                                          plan={"reason": f"fuzz {n}", "changes": []}, evidence=["fuzz"])
        made = approval_links(wired, approval)
        urls += [made.approve, made.reject]
    links: list[tuple[str, str, str]] = []  # (approval id, decision, token)
    for url in urls:
        parts = urlsplit(url)
        query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        if "token" in query:
            links.append((parts.path.rsplit("/", 1)[-1], query["decision"], unquote(query["token"])))
    assert len(links) >= 80
    wired.approvers = frozenset({"alice@contoso.com"})

    def token_of(rng: random.Random, token: str) -> str:
        at = rng.randrange(len(token))
        return rng.choice([
            token, token[:at], token + "A", token[:at] + rng.choice("Aa0_-=+/.%") + token[at + 1:], token * 2,
            token.upper(), base64.urlsafe_b64encode(rng.randbytes(rng.choice([0, 10, 90, 900]))).decode().rstrip("="),
            text_values(rng), "",
        ])

    def principal(rng: random.Random) -> dict[str, str]:
        raw = rng.choice([
            json.dumps({"claims": rng.choice([5, None, "abc", [1, 2], {"a": 1}, [{"typ": 5, "val": None}]])}),
            json.dumps({"claims": [{"typ": "preferred_username", "val": rng.choice(["alice@contoso.com",
                                                                                    "mallory@contoso.com"])}]}),
            "[" * 50_000 + "]" * 50_000, "not json", json.dumps([1, 2]), "null",
        ]).encode()
        encoded = base64.b64encode(raw).decode()
        return {"X-MS-CLIENT-PRINCIPAL": rng.choice([encoded, encoded[:-3], "%%%", "é" * 10, ""])}

    @_settings(quota("approvals") // 2)
    @given(rng=st.randoms(use_true_random=False))
    def run(rng: random.Random) -> None:
        approval_id, decision, token = rng.choice(links)
        if rng.random() < 0.25:
            approval_id = rng.choice([text_values(rng), approval_id.upper(), approval_id[:-1], "0" * 32])
        if rng.random() < 0.25:
            decision = rng.choice(["approve", "reject", "APPROVE", "", "maybe", text_values(rng)])
        token = token_of(rng, token) if rng.random() < 0.6 else token
        params: dict[str, str] = {"decision": decision, "token": token} if rng.random() < 0.7 else {}
        if rng.random() < 0.2:
            params = {k: v for k, v in params.items() if rng.random() < 0.5}
        headers = principal(rng) if rng.random() < 0.35 else (
            principal_header("alice@contoso.com") if rng.random() < 0.5 else {})
        page = call("approval_page", "GET", params=params, route={"id": approval_id}, headers=headers)
        tally.add(answer(page, "GET", "/approvals/{id}"))
        roll = rng.random()
        if roll < 0.5:
            form = urlencode({"decision": decision, "token": token}, errors="surrogatepass").encode()
        elif roll < 0.6:
            form = b"&".join(b"f%d=%d" % (i, i) for i in range(rng.choice([5, 11, 3_000])))
        elif roll < 0.7:
            form = b"token=" + b"A" * rng.choice([10, 16 * 1024, 100_000])
        else:
            form = random_body(rng) if rng.random() < 0.5 else b""
        decided = call("approval_decision", "POST", params=params if rng.random() < 0.5 else {}, body=form,
                       route={"id": approval_id}, headers=headers)
        tally.add(answer(decided, "POST", "/approvals/{id}", form))

    run()
    tally.check()


def test_fuzz_event_grid(wired: App, double: AzureDouble, no_outbound: OutboundGuard) -> None:
    """`handle_event` and the trigger binding: a return, or PayloadError; never anything else."""
    tally = Tally("event_grid")
    seeds = [p for p in real_payloads(double) if isinstance(p, dict)]
    events = [p for p in seeds if "eventType" in p]
    on_event = function_app.on_event.build().get_user_function()

    @_settings(quota("event_grid") // 2)
    @given(rng=st.randoms(use_true_random=False))
    def run(rng: random.Random) -> None:
        m = Mutator(rng)
        value = m.fresh(copy.deepcopy(rng.choice(seeds)))
        value = m.gentle(value) if rng.random() < 0.4 else m.mutate(value, rng.choice([1, 2, 3, 5]))
        try:
            event = json.loads(m.dumps(value).decode("utf-8"))
        except (ValueError, RecursionError):
            event = value if not m.deep else {"id": "x"}  # a trigger only ever hands over parsed JSON
        if not isinstance(event, dict):
            event = {"data": event, "eventType": "Microsoft.Resources.ResourceActionFailure"}
        tally.add(_outcome(lambda: handle_event(event, wired)))
        base = m.fresh(copy.deepcopy(rng.choice(events)))
        base = m.gentle(base) if rng.random() < 0.5 else m.mutate(base, rng.choice([1, 2]))
        base = base if isinstance(base, dict) else {}
        data = base.get("data")
        try:
            data = json.loads(json.dumps(data))
        except (ValueError, RecursionError):
            data = None
        grid = func.EventGridEvent(
            id=rng.choice([str(base.get("id")), text_values(rng), ""]),
            data=data,  # type: ignore[arg-type]  # Event Grid data is any JSON value, whatever the stub says
            topic=rng.choice(["", "t", text_values(rng)]), subject=rng.choice(["", text_values(rng),
                                                                              str(base.get("subject"))]),
            event_type=rng.choice([str(base.get("eventType")), text_values(rng)]),
            event_time=rng.choice([None, datetime(2026, 11, 20, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC)]),
            data_version=rng.choice(["", "1"]))
        tally.add(_outcome(lambda: on_event(grid)))

    run()
    tally.check()


def _outcome(handle: Callable[[], object]) -> str:
    """`returned`, or `PayloadError` (with its field and problem); anything else fails the test."""
    try:
        handle()
    except PayloadError as exc:
        assert exc.problem and exc.path, exc
        return "PayloadError"
    return "returned"


def test_fuzz_devserver(wired: App, double: AzureDouble, no_outbound: OutboundGuard) -> None:
    """Raw HTTP over loopback: methods, paths, percent-encoding, keys, headers, framing."""
    tally = Tally("devserver")
    some_id = "0" * 32
    bound = [("POST", "/api/diagnose"), ("GET", "/api/scenarios"), ("POST", "/api/alerts"),
             ("GET", "/api/remediations"), ("POST", "/api/remediations/rerun-image-build"),
             ("GET", f"/api/operations/{some_id}"), ("GET", "/api/history"), ("GET", f"/api/approvals/{some_id}"),
             ("POST", f"/api/approvals/{some_id}")]
    paths = [path for _, path in bound] + ["/api/nope", "/", "/api/remediations/%2e%2e", "/api/approvals/%00",
                                           "/api/history?limit=%ff&since=%zz"]
    seeds = alert_payloads(double) + remediation_requests(double)
    with DevServer(function_key=KEY) as server:
        port = urlsplit(server.url).port
        assert port is not None

        @_settings(quota("devserver"))
        @given(rng=st.randoms(use_true_random=False))
        def run(rng: random.Random) -> None:
            if rng.random() < 0.7:
                method, path = rng.choice(bound)
            else:
                method = rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
                path = rng.choice(paths)
            if rng.random() < 0.3:
                path += "/" + quote(text_values(rng)[:200], safe="", errors="surrogatepass")
            key = rng.choice([KEY, KEY, KEY, "", "wrong", KEY.upper()])
            query = {"code": key} if rng.random() < 0.5 else {}
            headers = {"x-functions-key": key} if not query and rng.random() < 0.8 else {}
            if rng.random() < 0.3:
                query[text_values(rng)[:50]] = text_values(rng)[:200]
            if query:
                path += ("&" if "?" in path else "?") + urlencode(query, errors="surrogatepass")
            body = body_from(rng, seeds) if method in ("POST", "PUT", "PATCH") else b""
            if len(body) > 600_000:
                body = body[:600_000]
            status = _raw_request(port, method, path, headers=headers, body=body, rng=rng)
            tally.add(status)

        run()
    tally.check()


def _raw_request(port: int, method: str, target: str, *, headers: dict[str, str], body: bytes,
                 rng: random.Random) -> int:
    """One request on a fresh connection, sometimes with broken framing; the answer's status."""
    framing = rng.random()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if framing < 0.05:
            lines.append("Content-Length: abc")
        elif framing < 0.10:
            lines.append("Content-Length: -5")
        elif framing < 0.13:
            lines.append(f"Content-Length: {MAX_BODY * 4}")
        elif body or rng.random() < 0.5:
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        sock.sendall(head + (body if framing >= 0.13 else b""))
        sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        data = response.read()
        status = response.status
        content_type = response.getheader("Content-Type") or ""
    assert status < 500, (method, target, status, data[:300])
    if framing < 0.13:  # the host refuses what it cannot frame, before any function sees it
        assert status in (400, 411, 413), (method, target, status, data[:300])
        return status
    route = _route_of(urlsplit(target).path)
    if route is not None and (method, route) in documented() and status not in (401, 404, 405):
        check_answer(method, route, status, content_type=content_type, body=data, sent=body)
    return status


def _route_of(path: str) -> str | None:
    parts = path.split("/")
    if len(parts) < 3 or parts[1] != "api":
        return None
    name = parts[2]
    if name in ("diagnose", "scenarios", "alerts", "history", "remediations") and len(parts) == 3:
        return f"/{name}"
    if len(parts) == 4 and name in ("remediations", "operations", "approvals"):
        return {"remediations": "/remediations/{name}", "operations": "/operations/{id}",
                "approvals": "/approvals/{id}"}[name]
    return None


@pytest.mark.parametrize("scope", ["/subscriptions/{sub}", "/subscriptions/{sub}/resourceGroups/rg-images",
                                   "/subscriptions/{sub}/providers/Microsoft.VirtualMachineImages/imageTemplates/x"])
def test_fuzz_found_a_scope_level_alert_target_is_answered_not_raised(wired: App, double: AzureDouble,
                                                                       scope: str) -> None:
    alert = activity_alert(double.refs["template:tpl-rhel-noartifacts"])
    alert["data"]["essentials"]["alertTargetIDs"] = [scope.format(sub=double.refs["subscription"])]
    body = json.dumps(alert).encode()
    assert answer(call("alerts", "POST", body=body), "POST", "/alerts", body) in (200, 202)


def test_fuzz_quotas_add_up() -> None:
    """What the fuzz tests above send between them (each asserts its own share)."""
    per_test = {
        "diagnose": QUOTA["diagnose"], "alerts": QUOTA["alerts"], "remediations": QUOTA["remediations"],
        "reads": QUOTA["reads"] // 4 * 4, "approvals": QUOTA["approvals"] // 2 * 2,
        "event_grid": QUOTA["event_grid"] // 2 * 2, "devserver": QUOTA["devserver"],
    }
    assert per_test == QUOTA
    assert sum(per_test.values()) >= MIN_PAYLOADS
