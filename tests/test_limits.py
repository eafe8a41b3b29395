"""Limits are explicit, configurable, and cannot be loosened past what the services allow;
durations parse in both services' notations."""

from __future__ import annotations

from datetime import timedelta

import pytest

from remediations.limits import LimitError, Limits
from remediations.schedules.durations import format_hhmm, format_iso, parse_any, parse_hhmm, parse_iso


def test_defaults_are_the_service_limits() -> None:
    limits = Limits()
    assert limits.automation_max_window == timedelta(hours=6)
    assert limits.update_manager_max_window == timedelta(hours=3, minutes=55)
    assert limits.max_build_timeout == 960
    assert limits.vm_size_ladder[0] == "Standard_D1_v2"


def test_settings_tighten_limits() -> None:
    limits = Limits.from_env({"REMEDIATOR_MAX_BUILD_TIMEOUT": "480", "REMEDIATOR_AUTOMATION_MAX_WINDOW": "240",
                              "REMEDIATOR_VM_SIZE_LADDER": "Standard_D2s_v3, Standard_D4s_v3"})
    assert limits.max_build_timeout == 480
    assert limits.automation_max_window == timedelta(hours=4)
    assert limits.vm_size_ladder == ("Standard_D2s_v3", "Standard_D4s_v3")


@pytest.mark.parametrize(("name", "value", "problem"), [
    ("REMEDIATOR_MAX_BUILD_TIMEOUT", "2000", "max_build_timeout"),
    ("REMEDIATOR_AUTOMATION_MAX_WINDOW", "600", "PT6H"),
    ("REMEDIATOR_UPDATE_MANAGER_MAX_WINDOW", "300", "03:55"),
    ("REMEDIATOR_VM_SIZE_LADDER", "Standard_D2s_v3", "two distinct"),
    ("REMEDIATOR_MAX_MACHINES_PER_CHANGE", "many", "REMEDIATOR_MAX_MACHINES_PER_CHANGE"),
])
def test_settings_past_the_service_limits_are_refused_with_the_setting_named(name: str, value: str,
                                                                             problem: str) -> None:
    with pytest.raises(LimitError, match=problem):
        Limits.from_env({name: value})


def test_durations_in_both_notations() -> None:
    assert parse_iso("PT2H") == timedelta(hours=2)
    assert parse_iso("PT1H30M") == timedelta(minutes=90)
    assert format_iso(timedelta(hours=3)) == "PT3H" and format_iso(timedelta(minutes=90)) == "PT1H30M"
    assert parse_hhmm("03:55") == timedelta(hours=3, minutes=55) and format_hhmm(timedelta(minutes=150)) == "02:30"
    assert parse_any("240") == timedelta(hours=4) and parse_any("04:00") == parse_any("PT4H")
    for bad in ("2 hours", "PT", "25:99"):
        with pytest.raises(ValueError, match="duration"):
            parse_any(bad)
