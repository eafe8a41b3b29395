"""Resource provider registration (Microsoft.Resources)."""

from __future__ import annotations

from shared.azure.base import Adapter, is_not_found, rid
from shared.azure.permissions import requires

# What register-resource-provider may register (remediations.limits.REGISTER_NAMESPACES, scenarios.md's
# allow-list): registration is per namespace (`<ns>/register/action`), so each is declared; the deployment
# grants the configured ones.
REGISTRABLE = ("Microsoft.Automation", "Microsoft.Compute", "Microsoft.Maintenance", "Microsoft.HybridCompute",
               "Microsoft.GuestConfiguration")


class Providers(Adapter):
    @requires("Microsoft.Resources/subscriptions/providers/read")
    def state(self, subscription: str, namespace: str) -> str:
        client = self.clients.resources(subscription)
        provider = self.retry.call(client.providers.get, namespace)
        return str(provider.registration_state or "NotRegistered")

    @requires(*(f"{namespace}/register/action" for namespace in REGISTRABLE))
    def register(self, subscription: str, namespace: str) -> str:
        """Registration is asynchronous: the answer is usually `Registering`."""
        client = self.clients.resources(subscription)
        provider = self.retry.call(client.providers.register, namespace)
        return str(provider.registration_state or "Registering")


# api-versions for the resource types whose existence the remediations check.
EXISTS_API = {
    "microsoft.compute/virtualmachines": "2024-07-01",
    "microsoft.hybridcompute/machines": "2024-07-10",
}


class Resources(Adapter):
    @requires("Microsoft.Compute/virtualMachines/read", "Microsoft.HybridCompute/machines/read")
    def exists(self, resource_id: str) -> bool:
        """True/False from ARM itself; any answer but 200 or 404 is raised, never guessed."""
        r = rid(resource_id)
        kind = f"{r.namespace}/{r.types[0]}".lower()
        if kind not in EXISTS_API:
            raise ValueError(f"no existence check for resource type {kind}")
        client = self.clients.resources(r.subscription)
        try:
            self.retry.call(client.resources.get_by_id, resource_id, api_version=EXISTS_API[kind])
        except Exception as exc:
            if is_not_found(exc):
                return False
            raise
        return True
