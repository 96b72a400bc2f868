"""Idempotency-Key semantics for execute (after Stripe and the IETF draft).

- The first request with a key claims it before anything runs; its final
  response (200, 202, 403, 4xx, 502 ...) is stored and replayed byte for byte
  to any retry with the same key and the same request.
- A retry while the first is still running gets 409; the same key with a
  different request (connector, operation or params) gets 422.
- A 503 means nothing was executed, so it releases the key: the agent's retry
  runs for real.
- Keys expire after 24 hours. A claim left unfinished for 5 minutes (the
  process died, or the database was lost before the response was stored) can
  be claimed again: that retry runs the operation again, and the trail shows
  the first attempt's decision without (or with) its result.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import msgspec
from psycopg_pool import AsyncConnectionPool

from arx.db.pool import Conn, org_transaction
from arx.errors import (
    IdempotencyKeyInFlightError,
    IdempotencyKeyReusedError,
    InvalidFieldError,
)
from arx.idempotency import repo
from arx.identity.types import AgentIdentity

KEY_TTL_SECONDS = 24 * 3600
# A claim still unfinished after this long belongs to a request that died
# (process killed, or the database was lost before completion); it may be
# claimed again. Far longer than any execute can take (OPA 2 s, tool 15 s).
ABANDONED_AFTER_SECONDS = 300
MAX_KEY_LENGTH = 255

_canonical = msgspec.json.Encoder(order="sorted")


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


async def claim(
    pool: AsyncConnectionPool[Conn], who: AgentIdentity, key: str, digest: bytes
) -> StoredResponse | None:
    """Own the key (None) or get the stored response of its first request."""
    async with org_transaction(pool, who.org_id) as conn:
        cur = await conn.execute(
            repo.CLAIM,
            (who.org_id, who.agent_id, key, digest, KEY_TTL_SECONDS, ABANDONED_AFTER_SECONDS),
        )
        if await cur.fetchone() is not None:
            return None
        cur = await conn.execute(repo.EXISTING, (who.org_id, who.agent_id, key))
        row = await cur.fetchone()
    if row is None:  # released between the two statements: treat as in flight
        raise IdempotencyKeyInFlightError("retry shortly")
    stored_hash, status, media_type, body = row
    if bytes(stored_hash) != digest:
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was first used with a different connector, operation "
            "or params; use a new key for a new request",
            field="Idempotency-Key",
        )
    if status is None:
        raise IdempotencyKeyInFlightError(
            "the first request with this Idempotency-Key has not finished; retry later"
        )
    return StoredResponse(status_code=status, media_type=media_type, body=bytes(body))


async def complete(
    pool: AsyncConnectionPool[Conn], who: AgentIdentity, key: str, response: StoredResponse
) -> None:
    async with org_transaction(pool, who.org_id) as conn:
        await conn.execute(
            repo.COMPLETE,
            (
                response.status_code,
                response.media_type,
                response.body,
                who.org_id,
                who.agent_id,
                key,
            ),
        )


async def release(pool: AsyncConnectionPool[Conn], who: AgentIdentity, key: str) -> None:
    async with org_transaction(pool, who.org_id) as conn:
        await conn.execute(repo.RELEASE, (who.org_id, who.agent_id, key))
