"""Policy: the strictest of global, per-remediation and resource-tag modes decides; scopes
and change budgets hold."""

from __future__ import annotations

import pytest

from shared.core.domain import Mode
from shared.decisions.policy import Action, MemoryBudget, Policy, PolicyError, PolicyMode

VM_TEMPLATE = "/subscriptions/s1/resourceGroups/rg-images/providers/Microsoft.VirtualMachineImages/imageTemplates/t"


def test_auto_mode_applies_auto_remediations_and_proposes_approval_ones() -> None:
    policy = Policy(PolicyMode.AUTO)
    assert policy.decide("rerun-image-build", Mode.AUTO, VM_TEMPLATE).action is Action.APPLY
    assert policy.decide("recreate-image-template", Mode.APPROVAL, VM_TEMPLATE).action is Action.PROPOSE


def test_suggest_mode_proposes_everything_and_observe_changes_nothing() -> None:
    assert Policy(PolicyMode.SUGGEST).decide("rerun-image-build", Mode.AUTO, VM_TEMPLATE).action is Action.PROPOSE
    decision = Policy(PolicyMode.OBSERVE).decide("rerun-image-build", Mode.AUTO, VM_TEMPLATE)
    assert decision.action is Action.OBSERVE and "observe" in decision.reason


def test_a_resource_tag_can_hold_back_but_never_push_past_the_operator() -> None:
    auto = Policy(PolicyMode.AUTO)
    held = auto.decide("rerun-image-build", Mode.AUTO, VM_TEMPLATE, {"Remediator-Mode": "observe"})
    assert held.action is Action.OBSERVE and "tag" in held.reason
    pushed = Policy(PolicyMode.SUGGEST).decide("rerun-image-build", Mode.AUTO, VM_TEMPLATE,
                                               {"remediator-mode": "auto"})
    assert pushed.action is Action.PROPOSE
    garbage = auto.decide("rerun-image-build", Mode.AUTO, VM_TEMPLATE, {"remediator-mode": "yolo"})
    assert garbage.action is Action.OBSERVE and "not a mode" in garbage.reason


def test_per_remediation_mode_only_tightens() -> None:
    policy = Policy(PolicyMode.AUTO, {"rerun-image-build": PolicyMode.SUGGEST})
    assert policy.decide("rerun-image-build", Mode.AUTO, VM_TEMPLATE).action is Action.PROPOSE
    assert policy.decide("increase-image-build-vm-size", Mode.AUTO, VM_TEMPLATE).action is Action.APPLY


def test_targets_outside_the_allowed_scopes_are_denied() -> None:
    policy = Policy(PolicyMode.AUTO, allowed_scopes=("/subscriptions/s1/resourcegroups/rg-images",))
    assert policy.decide("rerun-image-build", Mode.AUTO, VM_TEMPLATE).action is Action.APPLY
    other = VM_TEMPLATE.replace("rg-images", "rg-images-prod")
    decision = policy.decide("rerun-image-build", Mode.AUTO, other)
    assert decision.action is Action.DENY and "outside" in decision.reason


def test_advice_is_never_applied_and_approval_overrides_suggest() -> None:
    policy = Policy(PolicyMode.SUGGEST)
    assert policy.decide("follow-guide", Mode.ADVICE, VM_TEMPLATE, approved=True).action is Action.OBSERVE
    assert policy.decide("recreate-image-template", Mode.APPROVAL, VM_TEMPLATE, approved=True).action is Action.APPLY


def test_budgets_stop_changes_per_target_and_globally() -> None:
    policy = Policy(PolicyMode.AUTO, max_changes_per_hour=3, max_changes_per_target_per_day=2)
    budget = MemoryBudget()
    assert policy.spend(budget, "a") is None and policy.spend(budget, "a") is None
    third = policy.spend(budget, "a")
    assert third is not None and "this target" in third.reason
    assert policy.spend(budget, "b") is None
    breaker = policy.spend(budget, "c")
    assert breaker is not None and "circuit breaker" in breaker.reason


def test_policy_settings_from_the_environment_and_their_errors() -> None:
    policy = Policy.from_env({"REMEDIATOR_MODE": "auto", "REMEDIATOR_REMEDIATION_MODES": "rerun-image-build=observe",
                              "REMEDIATOR_ALLOWED_SCOPES": "/subscriptions/S1/, /subscriptions/s2",
                              "REMEDIATOR_MAX_CHANGES_PER_HOUR": "5"})
    assert policy.mode is PolicyMode.AUTO and policy.max_changes_per_hour == 5
    assert policy.per_remediation == {"rerun-image-build": PolicyMode.OBSERVE}
    assert policy.in_scope("/subscriptions/s1/resourceGroups/x") and not policy.in_scope("/subscriptions/s3")
    with pytest.raises(PolicyError, match="observe, suggest, auto"):
        Policy.from_env({"REMEDIATOR_MODE": "yolo"})
