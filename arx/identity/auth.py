"""Who is calling: an API key resolved to its agent and org, with a short memory.

Every execute starts here, so a resolved key (and an unknown one) is
remembered for ``auth_cache_seconds``: a busy agent costs no database round
trip to authenticate, and a flood of requests with one bogus key costs one.
The secret is still checked on every request (SHA-256 and a constant-time
compare against the stored hash): the cache holds the hash, never a key.

Keys with random ids defeat any cache. Lookups of ids never resolved are
capped at half the pool, and a known key's periodic refresh has a budget of
its own, so a flood of bogus keys can neither starve agents of connections
nor keep a known agent from being re-resolved; the two memories are kept
apart for the same reason (bogus ids cannot evict known ones). Concurrent
requests for one key id share one lookup.

Revocation, rotation, the kill switches and allowlists take effect at once
on every API process: migration 0004's triggers NOTIFY ``arx_auth`` at
commit and ``forget()`` (fed by ``arx.db.notify``) drops what the notice
names. Should the listener lose its connection, memory still lapses after
``auth_cache_seconds`` (the bound without notifications), and everything is
forgotten when it is back (``forget_all``).
A key's expiry is checked on every request against the clock. Its last use
is written at most once a minute per process, in batches, never by the
request itself. (The execute path also asks the database itself, at its
decision point: arx.keyed_execute_context.)
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass

import msgspec
from psycopg_pool import AsyncConnectionPool

from arx.db.pool import Conn, call
from arx.deadline import Deadline
from arx.errors import AuthenticationError, DatabaseUnavailableError
from arx.identity import keys, repo
from arx.identity.types import AgentIdentity, IntentManifest
from arx.logs import get_logger

log = get_logger("arx.identity.auth")

# Compared against when a key id is unknown, so both paths hash and compare.
_DUMMY_HASH = keys.hash_secret("arx-dummy-secret")
MAX_REMEMBERED = 10_000


# A key's last use is recorded at most this often per process.
TOUCH_EVERY_SECONDS = 60.0
# Pending last-use times are flushed this often.
TOUCH_FLUSH_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class _Resolved:
    secret_hash: bytes
    identity: AgentIdentity | None  # None: no such key (or revoked)
    expires_at: float  # of this memory (monotonic)
    key_expires_at: float | None = None  # of the key itself (epoch seconds)


class Authenticator:
    def __init__(
        self,
        pool: AsyncConnectionPool[Conn],
        *,
        ttl_seconds: float,
        max_lookups: int,
        pool_wait: float,
    ) -> None:
        self._pool = pool
        self._pool_wait = pool_wait
        self._ttl = ttl_seconds
        # Least recently used first; bogus ids live in the other one.
        self._known: OrderedDict[str, _Resolved] = OrderedDict()
        self._unknown: OrderedDict[str, _Resolved] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[_Resolved]] = {}
        self._unknown_lookups = asyncio.Semaphore(max(1, max_lookups))
        self._known_lookups = asyncio.Semaphore(max(1, max_lookups))
        # Bumped by every invalidation: a lookup that raced one is not remembered.
        self._generation = 0
        self._touched: dict[str, float] = {}
        self._to_touch: set[str] = set()

    async def authenticate(self, authorization: str | None, deadline: Deadline) -> AgentIdentity:
        key_id, secret = keys.parse_bearer(authorization)
        resolved = await self._resolve(key_id, deadline)
        if not keys.verify(secret, resolved.secret_hash) or resolved.identity is None:
            raise AuthenticationError("the API key is not valid (unknown, expired or revoked)")
        if resolved.key_expires_at is not None and resolved.key_expires_at <= time.time():
            raise AuthenticationError("the API key is not valid (unknown, expired or revoked)")
        self._note_use(key_id)
        return resolved.identity

    # --- invalidation ----------------------------------------------------------------

    def forget(self, payload: str) -> None:
        """Drop what a NOTIFY arx_auth payload names: ``api_keys:<id>``,
        ``agents:<uuid>`` or ``orgs:<uuid>``; anything else empties the memory."""
        self._generation += 1
        table, _, ident = payload.partition(":")
        if table == "api_keys":
            self._known.pop(ident, None)
            self._unknown.pop(ident, None)
            return
        if table in ("agents", "orgs"):
            for key_id, entry in list(self._known.items()):
                who = entry.identity
                if (
                    who is not None
                    and str(who.agent_id if table == "agents" else who.org_id) == ident
                ):
                    del self._known[key_id]
            return
        self.forget_all()

    def forget_all(self) -> None:
        self._generation += 1
        self._known.clear()
        self._unknown.clear()

    # --- last use ---------------------------------------------------------------------

    def _note_use(self, key_id: str) -> None:
        now = time.monotonic()
        if now - self._touched.get(key_id, -TOUCH_EVERY_SECONDS) >= TOUCH_EVERY_SECONDS:
            self._touched[key_id] = now
            self._to_touch.add(key_id)
            if len(self._touched) > MAX_REMEMBERED:
                self._touched.clear()

    async def flush_last_use(self) -> int:
        """Write the pending last-use times in one statement; return how many."""
        if not self._to_touch:
            return 0
        batch, self._to_touch = sorted(self._to_touch), set()
        try:
            await call(
                self._pool,
                repo.TOUCH_KEYS,
                (batch,),
                deadline=Deadline(5.0),
                pool_wait=self._pool_wait,
            )
        except Exception:
            self._to_touch.update(batch)  # next time
            raise
        return len(batch)

    async def touch_forever(self) -> None:
        while True:
            await asyncio.sleep(TOUCH_FLUSH_SECONDS)
            try:
                await self.flush_last_use()
            except Exception as exc:  # last use is best effort; never stop
                log.warning(
                    "recording API keys' last use failed", extra={"exc_type": type(exc).__name__}
                )

    # --- resolution -------------------------------------------------------------------

    async def _resolve(self, key_id: str, deadline: Deadline) -> _Resolved:
        now = time.monotonic()
        known = self._known.get(key_id)
        if known is not None and known.expires_at > now:
            self._known.move_to_end(key_id)
            return known
        unknown = self._unknown.get(key_id)
        if unknown is not None and unknown.expires_at > now:
            return unknown
        pending = self._inflight.get(key_id)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this request was cancelled, not the shared lookup
                # The request that led the lookup went away: look up ourselves.
        future: asyncio.Future[_Resolved] = asyncio.get_running_loop().create_future()
        self._inflight[key_id] = future
        generation = self._generation
        budget = self._known_lookups if known is not None else self._unknown_lookups
        try:
            resolved = await self._lookup(key_id, budget, deadline)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no warning when nobody else waited
            raise
        finally:
            if self._inflight.get(key_id) is future:
                del self._inflight[key_id]
        future.set_result(resolved)
        if generation == self._generation:
            self._remember(key_id, resolved)
        return resolved

    async def _lookup(
        self, key_id: str, budget: asyncio.Semaphore, deadline: Deadline
    ) -> _Resolved:
        try:
            async with asyncio.timeout(max(deadline.remaining(), 0)):
                await budget.acquire()
        except TimeoutError:
            raise DatabaseUnavailableError(
                "too many API key lookups are waiting for the database"
            ) from None
        try:
            row = await call(
                self._pool,
                repo.RESOLVE_KEY,
                (key_id,),
                deadline=deadline,
                pool_wait=self._pool_wait,
            )
        finally:
            budget.release()
        expires_at = time.monotonic() + self._ttl
        if row is None:
            return _Resolved(_DUMMY_HASH, None, expires_at)
        identity = AgentIdentity(
            org_id=row[0],
            org_slug=row[1],
            agent_id=row[2],
            agent_name=row[3],
            intent=msgspec.convert(row[4], IntentManifest),
            key_id=key_id,
            agent_disabled=bool(row[7]),
            org_disabled=bool(row[8]),
            allowlist=tuple(row[9]) if row[9] is not None else None,
        )
        return _Resolved(bytes(row[5]), identity, expires_at, row[6])

    def _remember(self, key_id: str, resolved: _Resolved) -> None:
        memory = self._known if resolved.identity is not None else self._unknown
        (self._unknown if resolved.identity is not None else self._known).pop(key_id, None)
        memory[key_id] = resolved
        memory.move_to_end(key_id)
        while len(memory) > MAX_REMEMBERED:
            memory.popitem(last=False)
