"""How long an escalated execute is held: RFC 7240's Prefer header, read strictly."""

from __future__ import annotations

import pytest

from arx.api.sdk import MAX_APPROVAL_WAIT_SECONDS, _hold_cap, _hold_seconds


@pytest.mark.parametrize(
    ("prefer", "default", "held"),
    [
        (None, 0, 0),
        (None, 15, 15),
        ("wait=10", 0, 10),
        ("WAIT=7", 0, 7),
        ("respond-async", 15, 0),
        ("respond-async, wait=10", 15, 0),
        ("handling=lenient, wait=3", 0, 3),
        ("wait=3; foo=bar", 0, 3),
        ("wait=600", 0, MAX_APPROVAL_WAIT_SECONDS),
        ("wait=-5", 9, 9),
        ("wait=soon", 9, 9),
        ("return=minimal", 9, 9),
        ("", 9, 9),
    ],
)
def test_prefer_wait(prefer: str | None, default: int, held: int) -> None:
    assert _hold_seconds(prefer, default) == held


@pytest.mark.parametrize("odd", ["wait=\u00b2", "wait=" + "9" * 5000, "wait=1e3", "wait= "])
def test_odd_waits_fall_back_to_the_default(odd: str) -> None:
    assert _hold_seconds(odd, 4) == 4


def test_a_hold_never_lets_a_held_execute_outlast_half_the_abandonment_window() -> None:
    assert _hold_cap(30.0) == 90  # 2 x 30 s of deadline + 90 s of hold = 150 s
    assert _hold_cap(75.0) == 0
    assert _hold_cap(120.0) == 0
