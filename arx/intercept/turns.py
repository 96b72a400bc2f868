"""One decision at a time per agent, within this process.

The agent's decisions must each see the ones before (DESIGN §4); the
database guarantees it across processes (``arx.record_decision`` records a
decision only on the session it was made on). Queuing one agent's calls
here first means that within a process they never race, so no policy
evaluation is thrown away; only calls of one agent spread over several
API processes ever read and decide again. The lock is an asyncio lock, not
a database connection: nothing is held while a caller waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

from arx.errors import SessionContentionError


class AgentTurns:
    def __init__(self) -> None:
        # agent -> (lock, number of holders and waiters); dropped at zero.
        self._locks: dict[UUID, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def turn(self, agent_id: UUID, wait_seconds: float) -> AsyncIterator[None]:
        lock, users = self._locks.get(agent_id, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[agent_id] = (lock, users + 1)
        try:
            try:
                async with asyncio.timeout(max(wait_seconds, 0)):
                    await lock.acquire()
            except TimeoutError:
                raise SessionContentionError(
                    "the agent's earlier calls are still being decided; nothing was executed",
                    headers={"retry-after": "1"},
                ) from None
            try:
                yield
            finally:
                lock.release()
        finally:
            lock, users = self._locks[agent_id]
            if users == 1:
                del self._locks[agent_id]
            else:
                self._locks[agent_id] = (lock, users - 1)
