"""Idempotency-Key semantics for execute (after Stripe and the IETF draft).

- The first request with a key claims it before anything runs; its final
  response (200, 202, 403, 4xx, 502 ...) is stored and replayed byte for byte
  to any retry with the same key and the same request.
- A retry while the first is still running gets 409; the same key with a
  different request (connector, operation or params) gets 422.
- A 503, a tool that was never reached (502 ``connector_unreachable``) or one
  that refused with 429 means nothing was executed, so it releases the key:
  the agent's retry runs for real.
- Keys expire after 24 hours. The key is stored on the decision event it was
  decided under. A claim left unfinished for ``IDEMPOTENCY_ABANDONED_AFTER_SECONDS``
  (the process died, or the database was lost before the response was
  stored) is looked at again: if its request never reached a decision,
  nothing ran and the retry runs; if it did, the tool may have acted, so the
  retry answers 409 ``idempotency_outcome_unknown`` with that decision's id
  (and the result's outcome, if one was recorded) instead of running the
  operation a second time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, NamedTuple
from uuid import UUID

import msgspec
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from arx.config import IDEMPOTENCY_ABANDONED_AFTER_SECONDS
from arx.db.pool import Conn, call, call_function
from arx.deadline import Deadline
from arx.errors import (
    IdempotencyKeyInFlightError,
    IdempotencyKeyReusedError,
    IdempotencyOutcomeUnknownError,
    InvalidFieldError,
)
from arx.idempotency import repo
from arx.identity.types import AgentIdentity

KEY_TTL_SECONDS = 24 * 3600
MAX_KEY_LENGTH = 255
# Completing or releasing a key is bookkeeping after the answer is known: it
# gets this long of its own, whatever is left of the request's deadline.
BOOKKEEPING_SECONDS = 2.0

_canonical = msgspec.json.Encoder(order="sorted")


class _Claim(NamedTuple):
    """The one row of ``arx.claim_idempotency_key``."""

    claimed: bool
    request_hash: bytes | None
    status_code: int | None
    media_type: str | None
    response: bytes | None
    decision_id: UUID | None
    decision_outcome: str | None


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    media_type: str
    body: bytes


def check_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise InvalidFieldError(
            f"Idempotency-Key must be 1..{MAX_KEY_LENGTH} printable ASCII characters",
            field="Idempotency-Key",
        )
    return key


def request_hash(connector: str, operation: str, params: dict[str, Any]) -> bytes:
    doc = {"connector": connector, "operation": operation, "params": params}
    return hashlib.sha256(_canonical.encode(doc)).digest()


class IdempotencyKeys:
    def __init__(self, pool: AsyncConnectionPool[Conn], *, pool_wait: float) -> None:
        self._pool = pool
        self._pool_wait = pool_wait

    async def claim(
        self, who: AgentIdentity, key: str, digest: bytes, deadline: Deadline
    ) -> StoredResponse | None:
        """Own the key (None) or get the stored response of its first request."""
        row = await call_function(
            self._pool,
            repo.CLAIM,
            (
                who.org_id,
                who.agent_id,
                key,
                digest,
                KEY_TTL_SECONDS,
                IDEMPOTENCY_ABANDONED_AFTER_SECONDS,
            ),
            deadline=deadline,
            pool_wait=self._pool_wait,
            row_factory=class_row(_Claim),
        )
        if row.claimed:
            return None
        if row.request_hash is None:  # released between two statements: treat as in flight
            raise IdempotencyKeyInFlightError("retry shortly")
        if bytes(row.request_hash) != digest:
            raise IdempotencyKeyReusedError(
                "this Idempotency-Key was first used with a different connector, operation "
                "or params; use a new key for a new request",
                field="Idempotency-Key",
            )
        if row.status_code is not None and row.media_type is not None and row.response is not None:
            return StoredResponse(
                status_code=row.status_code, media_type=row.media_type, body=bytes(row.response)
            )
        if row.decision_id is not None:
            raise IdempotencyOutcomeUnknownError(
                "the first request with this Idempotency-Key stopped after its decision was "
                "recorded; the tool may have acted, so it is not run again. Check the audit "
                "trail (event_id) and the tool before sending a new request with a new key",
                extra={"event_id": str(row.decision_id), "outcome": row.decision_outcome},
            )
        raise IdempotencyKeyInFlightError(
            "the first request with this Idempotency-Key has not finished; retry later"
        )

    async def complete(self, who: AgentIdentity, key: str, response: StoredResponse) -> None:
        await call(
            self._pool,
            repo.COMPLETE,
            (
                who.org_id,
                who.agent_id,
                key,
                response.status_code,
                response.media_type,
                response.body,
            ),
            deadline=Deadline(BOOKKEEPING_SECONDS),
            pool_wait=self._pool_wait,
        )

    async def release(self, who: AgentIdentity, key: str) -> None:
        await call(
            self._pool,
            repo.RELEASE,
            (who.org_id, who.agent_id, key),
            deadline=Deadline(BOOKKEEPING_SECONDS),
            pool_wait=self._pool_wait,
        )
