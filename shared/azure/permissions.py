"""The Azure RBAC actions the code performs, declared where each call is made.

Adapters decorate every method that calls Azure with `@requires(...)`; the custom role
in `infra/` is checked against `required_actions()`, so the deployed identity holds
exactly what the code uses — no more, no less.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

_ACTIONS: set[str] = set()
_DATA_ACTIONS: set[str] = set()
# Every module that calls Azure; importing them fills the sets above.
ADAPTER_MODULES = (
    "shared.azure.providers",
    "shared.azure.automation",
    "shared.azure.maintenance",
    "shared.azure.imagebuilder",
    "shared.azure.insights",
    "shared.azure.resourcegraph",
    "shared.azure.compute",
    "shared.azure.patching",
)


def requires(*actions: str, data: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Records the control-plane `actions` and `data` actions a method needs."""

    def mark(fn: F) -> F:
        _ACTIONS.update(actions)
        _DATA_ACTIONS.update(data)
        return fn

    return mark


def required_actions() -> tuple[frozenset[str], frozenset[str]]:
    """(actions, dataActions) used by every adapter."""
    for name in ADAPTER_MODULES:
        importlib.import_module(name)
    return frozenset(_ACTIONS), frozenset(_DATA_ACTIONS)
