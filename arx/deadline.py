"""Deadlines: every execute answers by a fixed time, whatever a dependency does.

A ``Deadline`` is fixed when the request arrives; each step gets what is
left of it (a database call, ``arx.db.pool.call``; the policy engine; the
tool), never more than its own limit.
"""

from __future__ import annotations

import time


class Deadline:
    __slots__ = ("at",)

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def budget(self, step_limit: float) -> float:
        """What a step may take: its own limit, or what is left if that is less."""
        return min(step_limit, self.remaining())
