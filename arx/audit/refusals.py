"""Refused attempts that never reach policy leave a trace in the audit trail.

A disabled agent (or org) or an address outside the org's allowlist is
refused before policy is asked; the refusal is an audit event of kind
``refusal``. A refused agent that keeps hammering must not turn into a write
per request, so each process records at most one refusal per agent and
reason every ``EVERY_SECONDS``, and the next event carries how many were
left out meanwhile. The answer to the agent never waits on this record
longer than the request's deadline and never depends on it: refusing is
fail-closed whether or not the write succeeds.
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from arx.db.pool import Conn, call
from arx.deadline import Deadline
from arx.identity.types import AgentIdentity
from arx.logs import get_logger, request_id_var

log = get_logger("arx.audit.refusals")

EVERY_SECONDS = 10.0
_MAX_TRACKED = 10_000

RECORD_REFUSAL = "SELECT arx.record_refusal(%s, %s, %s, %s, %s, %s, %s)"


class Refusals:
    def __init__(self, pool: AsyncConnectionPool[Conn], *, pool_wait: float) -> None:
        self._pool = pool
        self._pool_wait = pool_wait
        self._last: dict[tuple[UUID, str], float] = {}
        self._suppressed: dict[tuple[UUID, str], int] = {}

    async def record(
        self,
        who: AgentIdentity,
        code: str,
        deadline: Deadline,
        *,
        details: dict[str, Any],
    ) -> None:
        slot = (who.agent_id, code)
        now = time.monotonic()
        if now - self._last.get(slot, -EVERY_SECONDS) < EVERY_SECONDS:
            self._suppressed[slot] = self._suppressed.get(slot, 0) + 1
            return
        if len(self._last) > _MAX_TRACKED:
            self._last.clear()
            self._suppressed.clear()
        self._last[slot] = now
        left_out = self._suppressed.pop(slot, 0)
        try:
            await call(
                self._pool,
                RECORD_REFUSAL,
                (
                    uuid.uuid4(),
                    who.org_id,
                    who.agent_id,
                    code,
                    Jsonb({**details, "key_id": who.key_id, "left_out_before": left_out}),
                    f"agent:{who.agent_id} ({who.agent_name})",
                    request_id_var.get(),
                ),
                deadline=deadline,
                pool_wait=self._pool_wait,
            )
        except Exception as exc:  # the refusal stands whether or not it was recorded
            log.warning("a refusal could not be recorded", extra={"exc_type": type(exc).__name__})
