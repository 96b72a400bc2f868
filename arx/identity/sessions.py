"""People's web sessions, sign-in throttling and SAML replay protection.

A session id is 256 random bits in an ``HttpOnly`` cookie; only its SHA-256
is stored, so a copy of the table opens no session. Each session carries its
own CSRF token, which every form echoes. A session names a person, not an
org: what they may do in an org is re-read from their membership on every
request, so deactivating someone ends their access at once, open sessions
included.

Sign-in attempts are counted in PostgreSQL (every API process sees the same
count) per account and per client address, and each attempt is counted
before its password is checked, under a lock per account: a burst of
parallel guesses cannot all slip in under the limit. Past the limit, sign-in
answers 429 with Retry-After until the window has moved on; a success clears
the account's count.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from arx.db.pool import Conn, connection
from arx.errors import TooManyAttemptsError

SESSION_COOKIE = "arx_session"
THROTTLE_WINDOW_SECONDS = 15 * 60
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 30
# SAML AuthnRequests older than this are no longer answered.
SAML_REQUEST_SECONDS = 10 * 60

_INSERT = (
    "INSERT INTO arx.web_sessions (id_hash, user_id, email, csrf_token, method, expires_at)"
    " VALUES (%(id_hash)s, %(user_id)s, %(email)s, %(csrf)s, %(method)s,"
    " now() + make_interval(secs => %(ttl)s))"
)
_LOOKUP = (
    "SELECT user_id, email, csrf_token FROM arx.web_sessions"
    " WHERE id_hash = %(id_hash)s AND revoked_at IS NULL AND expires_at > now()"
)
_REVOKE = "UPDATE arx.web_sessions SET revoked_at = now() WHERE id_hash = %(id_hash)s"
_FAILURES = (
    "SELECT count(*),"
    " extract(epoch FROM min(failed_at) + make_interval(secs => %(window)s) - now())"
    " FROM arx.sign_in_failures"
    " WHERE throttle_key = %(key)s AND failed_at > now() - make_interval(secs => %(window)s)"
)
_FAIL = "INSERT INTO arx.sign_in_failures (throttle_key) VALUES (%(key)s)"
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%(key)s, 11))"
_PURGE = (
    "DELETE FROM arx.sign_in_failures WHERE failed_at < now() - make_interval(secs => %(window)s)"
)
_FORGET_FAILURES = (
    "DELETE FROM arx.sign_in_failures"
    " WHERE throttle_key = %(key)s OR failed_at < now() - make_interval(secs => %(window)s)"
)
_SAML_REQUEST = "INSERT INTO arx.saml_requests (request_id) VALUES (%(id)s)"
_SAML_PURGE = (
    "DELETE FROM arx.saml_requests WHERE created_at < now() - make_interval(secs => %(max_age)s)"
)
_SAML_SEEN_PURGE = "DELETE FROM arx.saml_assertions_seen WHERE not_on_or_after < now()"
_SAML_ANSWERED = (
    "DELETE FROM arx.saml_requests WHERE request_id = %(id)s"
    " AND created_at > now() - make_interval(secs => %(max_age)s) RETURNING request_id"
)
_SAML_FIRST_USE = (
    "INSERT INTO arx.saml_assertions_seen (assertion_id, not_on_or_after)"
    " VALUES (%(id)s, to_timestamp(%(until)s)) ON CONFLICT DO NOTHING RETURNING assertion_id"
)


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


@dataclass(frozen=True, slots=True)
class WebSession:
    user_id: UUID
    email: str
    csrf_token: str


async def create(
    pool: AsyncConnectionPool[Conn], *, user_id: UUID, email: str, method: str, ttl_seconds: int
) -> str:
    """Open a session; return the cookie value (shown to the browser only)."""
    session_id = secrets.token_urlsafe(32)
    async with connection(pool) as conn:
        await conn.execute(
            _INSERT,
            {
                "id_hash": _hash(session_id),
                "user_id": user_id,
                "email": email,
                "csrf": secrets.token_urlsafe(32),
                "method": method,
                "ttl": ttl_seconds,
            },
        )
    return session_id


async def lookup(pool: AsyncConnectionPool[Conn], session_id: str | None) -> WebSession | None:
    if not session_id or len(session_id) > 100:
        return None
    async with connection(pool) as conn:
        cur = await conn.execute(_LOOKUP, {"id_hash": _hash(session_id)})
        row = await cur.fetchone()
    return WebSession(user_id=row[0], email=row[1], csrf_token=row[2]) if row else None


async def end(pool: AsyncConnectionPool[Conn], session_id: str) -> None:
    async with connection(pool) as conn:
        await conn.execute(_REVOKE, {"id_hash": _hash(session_id)})


# --- throttling ----------------------------------------------------------------------


async def _count(conn: Conn, key: str, limit: int) -> None:
    """Count this attempt for ``key``; refuse it if the window already holds ``limit``."""
    await conn.execute(_LOCK, {"key": key})
    cur = await conn.execute(_FAILURES, {"key": key, "window": THROTTLE_WINDOW_SECONDS})
    row = await cur.fetchone()
    if row and row[0] >= limit:
        wait = max(1, int(row[1] or 1))
        raise TooManyAttemptsError(
            "too many failed sign-ins; try again later", headers={"retry-after": str(wait)}
        )
    await conn.execute(_FAIL, {"key": key})


async def attempt(pool: AsyncConnectionPool[Conn], *, account: str, address: str) -> None:
    """Count a sign-in attempt as failed until ``note_success`` says otherwise;
    raise ``TooManyAttemptsError`` (counting nothing) past either limit."""
    async with connection(pool) as conn, conn.transaction():
        await conn.execute(_PURGE, {"window": THROTTLE_WINDOW_SECONDS})
        await _count(conn, f"account:{account.lower()}", MAX_FAILURES_PER_ACCOUNT)
        await _count(conn, f"address:{address}", MAX_FAILURES_PER_ADDRESS)


async def note_success(pool: AsyncConnectionPool[Conn], *, account: str) -> None:
    async with connection(pool) as conn:
        await conn.execute(
            _FORGET_FAILURES,
            {"key": f"account:{account.lower()}", "window": THROTTLE_WINDOW_SECONDS},
        )


# --- SAML --------------------------------------------------------------------------------


async def saml_request_sent(pool: AsyncConnectionPool[Conn], request_id: str) -> None:
    async with connection(pool) as conn:
        await conn.execute(_SAML_PURGE, {"max_age": SAML_REQUEST_SECONDS})
        await conn.execute(_SAML_REQUEST, {"id": request_id})


async def saml_request_answered(pool: AsyncConnectionPool[Conn], request_id: str) -> bool:
    """True once per request ARX sent in the last ``SAML_REQUEST_SECONDS``."""
    async with connection(pool) as conn:
        cur = await conn.execute(
            _SAML_ANSWERED, {"id": request_id, "max_age": SAML_REQUEST_SECONDS}
        )
        return await cur.fetchone() is not None


class SamlReplayGuard:
    """``arx.identity.saml.ReplayGuard`` in PostgreSQL: an assertion id is
    accepted once, and remembered until it expires."""

    def __init__(self, pool: AsyncConnectionPool[Conn]) -> None:
        self._pool = pool

    async def first_use(self, assertion_id: str, not_on_or_after: float) -> bool:
        async with connection(self._pool) as conn:
            await conn.execute(_SAML_SEEN_PURGE)
            cur = await conn.execute(
                _SAML_FIRST_USE, {"id": assertion_id, "until": not_on_or_after}
            )
            return await cur.fetchone() is not None
