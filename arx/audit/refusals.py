"""Refused attempts that never reach policy leave a trace in the audit trail.

Each is an audit event of kind ``refusal`` whose action is the answer's code:

- a key that is not valid (``invalid_api_key``: an unknown id, a wrong
  secret, a revoked or expired key) is recorded in the org of the key its
  id names (``arx.record_key_refusal``, migration 0015): the id is the
  key's public half, and the secret never leaves this process. An id that
  names no key has no org to be recorded in (row-level security): it is
  logged instead (``arx.audit.refusals``, with the id, never the secret). A
  missing or malformed key has no id at all: its access log line (401) is
  its trace;
- an agent or org switched off, an address outside the org's allowlist;
- a call ARX cannot run, from an authenticated agent: an unknown connector
  or operation, invalid params, a body that is not a call (``arx.api.sdk``).

Probing leaves a trace without a write per request: each process records
at most one refusal per key id and code every ``EVERY_SECONDS``, and the
next one carries how many were left out meanwhile (``left_out_before``).
Random key ids defeat a per-key limit, so at most ``MAX_KEY_LOOKUPS``
records of refused keys are in flight at once; past that they are logged.

The answer never depends on the record: refusing is fail-closed whether or
not the write succeeds, and a write waits at most ``WRITE_SECONDS`` (the
pool wait included), however slow the database.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, LiteralString

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from arx.db.pool import Conn, call
from arx.deadline import Deadline
from arx.identity.types import AgentIdentity
from arx.logs import client_request_id_var, get_logger, request_id_var

log = get_logger("arx.audit.refusals")

EVERY_SECONDS = 10.0
WRITE_SECONDS = 1.0
MAX_KEY_LOOKUPS = 2
_MAX_TRACKED = 10_000
# What an agent sent (a connector's name, say) is kept this long at most.
_MAX_TEXT = 200

RECORD_REFUSAL = (
    "SELECT arx.record_refusal(%(id)s, %(org_id)s, %(agent_id)s, %(action)s, %(details)s,"
    " %(actor)s, %(request_id)s, %(client_request_id)s)"
)
RECORD_KEY_REFUSAL = (
    "SELECT arx.record_key_refusal(%(id)s, %(key_id)s, %(action)s, %(details)s,"
    " %(request_id)s, %(client_request_id)s)"
)


def _clean(details: dict[str, Any]) -> dict[str, Any]:
    """Strings cut short and without NUL (which jsonb refuses)."""
    return {
        k: v.replace("\x00", "\ufffd")[:_MAX_TEXT] if isinstance(v, str) else v
        for k, v in details.items()
    }


class Refusals:
    def __init__(self, pool: AsyncConnectionPool[Conn], *, pool_wait: float) -> None:
        self._pool = pool
        self._pool_wait = pool_wait
        self._last: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}
        self._key_lookups = 0

    def _admit(self, key_id: str, code: str) -> int | None:
        """How many refusals of this key and code were left out since the last
        one recorded; ``None``: leave this one out too."""
        slot = (key_id, code)
        now = time.monotonic()
        if now - self._last.get(slot, -EVERY_SECONDS) < EVERY_SECONDS:
            self._suppressed[slot] = self._suppressed.get(slot, 0) + 1
            return None
        if len(self._last) > _MAX_TRACKED:
            self._last.clear()
            self._suppressed.clear()
        self._last[slot] = now
        return self._suppressed.pop(slot, 0)

    async def record(
        self,
        who: AgentIdentity,
        code: str,
        deadline: Deadline,
        *,
        details: dict[str, Any],
    ) -> None:
        """A refusal of an authenticated agent, in its org."""
        left_out = self._admit(who.key_id, code)
        if left_out is None:
            return
        await self._write(
            RECORD_REFUSAL,
            {
                "id": uuid.uuid4(),
                "org_id": who.org_id,
                "agent_id": who.agent_id,
                "action": code,
                "details": Jsonb(
                    _clean({**details, "key_id": who.key_id, "left_out_before": left_out})
                ),
                "actor": f"agent:{who.agent_id} ({who.agent_name})",
                "request_id": request_id_var.get(),
                "client_request_id": client_request_id_var.get(),
            },
            deadline,
        )

    async def record_bad_key(
        self, key_id: str, code: str, deadline: Deadline, *, details: dict[str, Any]
    ) -> None:
        """A key refused for itself, in the org of the key ``key_id`` names
        (logged when it names none). ``key_id`` is the public half of the key
        presented; the secret is never passed here."""
        left_out = self._admit(key_id, code)
        if left_out is None:
            return
        details = _clean({**details, "left_out_before": left_out})
        if self._key_lookups >= MAX_KEY_LOOKUPS:
            _log_unrecorded(key_id, code, details, "too many refused keys at once")
            return
        self._key_lookups += 1
        try:
            recorded = await self._write(
                RECORD_KEY_REFUSAL,
                {
                    "id": uuid.uuid4(),
                    "key_id": key_id,
                    "action": code,
                    "details": Jsonb(details),
                    "request_id": request_id_var.get(),
                    "client_request_id": client_request_id_var.get(),
                },
                deadline,
            )
        finally:
            self._key_lookups -= 1
        if recorded is False:
            _log_unrecorded(key_id, code, details, "the key id names no key")

    async def _write(self, query: LiteralString, params: dict[str, Any], deadline: Deadline) -> Any:
        """The statement's one value, or ``None`` when it could not be written."""
        try:
            row = await call(
                self._pool,
                query,
                params,
                deadline=Deadline(deadline.budget(WRITE_SECONDS)),
                pool_wait=min(self._pool_wait, WRITE_SECONDS),
            )
        except Exception as exc:  # the refusal stands whether or not it was recorded
            log.warning("a refusal could not be recorded", extra={"exc_type": type(exc).__name__})
            return None
        return row[0] if row else None


def _log_unrecorded(key_id: str, code: str, details: dict[str, Any], why: str) -> None:
    # The key id only: it is public (the secret never reaches this module).
    log.warning(
        "refused API key not recorded in the audit trail",
        extra={"why": why, "key_id": key_id, "code": code, **details},
    )
