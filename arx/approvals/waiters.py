"""Agents waiting for a decision, woken by the database rather than a timer.

A decision on an approval request fires ``NOTIFY arx_approvals`` at commit
(migration 0006), on whichever API process a reviewer used; every process
hears it (``arx.db.notify``) and wakes the requests waiting on that id. A
waiter registers before it reads the request's state, so a decision that
lands between the read and the wait still wakes it. No database connection
is held while waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ApprovalWaiters:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._counts: dict[str, int] = {}

    def notified(self, approval_id: str) -> None:
        event = self._events.get(approval_id)
        if event is not None:
            event.set()

    def wake_all(self) -> None:
        """After the listener (re)connects: a decision may have gone unheard."""
        for event in self._events.values():
            event.set()

    @asynccontextmanager
    async def registered(self, approval_id: str) -> AsyncIterator[asyncio.Event]:
        """An event set when ``approval_id`` may have been decided."""
        event = self._events.setdefault(approval_id, asyncio.Event())
        self._counts[approval_id] = self._counts.get(approval_id, 0) + 1
        try:
            yield event
        finally:
            self._counts[approval_id] -= 1
            if not self._counts[approval_id]:
                del self._counts[approval_id]
                del self._events[approval_id]


async def wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
