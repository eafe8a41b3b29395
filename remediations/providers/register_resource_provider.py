"""Register a resource provider on a subscription and wait until it is `Registered`.

Only namespaces on the configured allow-list (`register_namespaces`, default Microsoft.Automation,
Microsoft.Compute, Microsoft.Maintenance, Microsoft.HybridCompute, Microsoft.GuestConfiguration, as
scenarios.md names them; the adapter declares `<ns>/register/action` for each and the deployed role grants
exactly the configured ones). A namespace off the list is refused with the list, before anything is read.
Update Manager needs Microsoft.Maintenance for schedules and Microsoft.Compute on the subscriptions of
Arc-enabled servers for their periodic assessment data (learn.microsoft.com/azure/update-manager/troubleshoot,
"Unable to generate periodic assessment for Arc-enabled servers").
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from remediations.base import Change, Plan, RemediationError, noop, register
from remediations.context import Context
from remediations.limits import REGISTER_NAMESPACES
from shared.azure.providers import REGISTRABLE
from shared.core.domain import Diagnosis, Mode

NAME = "register-resource-provider"
# Where ARM and the services name the namespace: "is not registered to use namespace 'Microsoft.Maintenance'",
# "MissingSubscriptionRegistration [...] Microsoft.Compute", "Microsoft.Maintenance is not registered".
_NAMED = re.compile(r"(?:namespace|registration|register\w*)\W+(?:\w+\W+){0,6}?['\"]?(microsoft\.[a-z][a-z0-9]+)\b|"
                    r"\b(microsoft\.[a-z][a-z0-9]+)['\"]?\W+(?:\w+\W+){0,4}?(?:not ?registered|unregistered)",
                    re.IGNORECASE)


def subscription_of(target: str) -> str:
    parts = [p for p in target.strip().split("/") if p]
    if len(parts) >= 2 and parts[0].lower() == "subscriptions":
        return parts[1]
    raise RemediationError(f"target {target!r} is not a subscription (/subscriptions/<id>) or a resource in one")


@register
class RegisterResourceProvider:
    name = NAME
    fixes = ("um.rp_not_registered", "aum.provider_not_registered")
    mode = Mode.AUTO
    summary = "registers a resource provider (default Microsoft.Automation; allow-listed) and waits for Registered"
    target_kind = "subscription"
    params = (("namespace", "the provider namespace (default Microsoft.Automation; one of register_namespaces: "
                            + ", ".join(REGISTER_NAMESPACES) + " by default)"),)
    limit_names = ("register_namespaces", "register_wait_seconds")
    param_patterns = (("namespace", r"[A-Za-z][A-Za-z0-9]{0,40}\.[A-Za-z][A-Za-z0-9.]{0,80}"),)

    @staticmethod
    def params_from(diagnosis: Diagnosis) -> Mapping[str, str]:
        """The namespace the failure names; else the one its scenario needs (Update Manager: Microsoft.Maintenance
        for schedules, Microsoft.Compute for Arc-enabled servers' assessment data; Update Management: none, the
        default Microsoft.Automation). A named namespace off the allow-list is passed on and refused with the list."""
        named = dict(diagnosis.details).get("namespace")
        if named:
            return {"namespace": named}
        texts = (*diagnosis.evidence, *(diagnosis.failure.texts if diagnosis.failure else ()))
        for text in texts:
            found = _NAMED.search(text)
            if found:
                return {"namespace": found.group(1) or found.group(2)}
        if diagnosis.scenario == "aum.provider_not_registered":
            arc = any(word in t.lower() for t in texts for word in ("arc", "hybridcompute", "hybrid machine"))
            return {"namespace": "Microsoft.Compute" if arc else "Microsoft.Maintenance"}
        return {}

    def _namespace(self, params: Mapping[str, str], ctx: Context) -> str:
        wanted = params.get("namespace") or "Microsoft.Automation"
        allowed = {n.lower(): n for n in ctx.limits.register_namespaces}
        if wanted.lower() not in allowed:
            raise RemediationError(f"namespace {wanted} is not in register_namespaces ({', '.join(allowed.values())})")
        if wanted.lower() not in {n.lower() for n in REGISTRABLE}:
            raise RemediationError(f"namespace {wanted} is allowed by register_namespaces but the app declares no "
                                   f"{wanted}/register/action (it registers {', '.join(REGISTRABLE)})")
        return allowed[wanted.lower()]

    def plan(self, target: str, params: Mapping[str, str], ctx: Context) -> Plan:
        subscription = subscription_of(target)
        namespace = self._namespace(params, ctx)
        limits = (("register_namespaces", ",".join(ctx.limits.register_namespaces)),)
        state = ctx.providers.state(subscription, namespace)
        sub_id = f"/subscriptions/{subscription}"
        if state == "Registered":
            return noop(NAME, sub_id, f"{namespace} is already Registered", limits)
        change = Change(f"{sub_id}/providers/{namespace}", "register", "registrationState", state, "Registered")
        return Plan(NAME, sub_id, (change,), f"{namespace} is {state} on the subscription", limits,
                    {"subscription": subscription, "namespace": namespace})

    def apply(self, plan: Plan, ctx: Context) -> None:
        subscription, namespace = plan.request["subscription"], plan.request["namespace"]
        state = ctx.providers.register(subscription, namespace)
        waited, delay = 0.0, 1.0
        while state != "Registered":
            if waited >= ctx.limits.register_wait_seconds:  # counted in sleeps, so an injected sleep bounds it too
                raise RemediationError(f"{namespace} still {state} after {waited:.0f} s")
            ctx.sleep(delay)
            waited += delay
            delay = min(delay * 2, 15.0)
            state = ctx.providers.state(subscription, namespace)

    def verify(self, plan: Plan, ctx: Context) -> bool:
        return ctx.providers.state(plan.request["subscription"], plan.request["namespace"]) == "Registered"
