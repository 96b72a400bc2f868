"""How long an escalated execute is held: RFC 7240's Prefer header, read strictly."""

from __future__ import annotations

import pytest

from arx.api.sdk import MAX_APPROVAL_WAIT_SECONDS, _hold_seconds


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
