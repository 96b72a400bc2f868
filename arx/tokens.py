"""Bearer tokens ARX gets from a service (a tool's OAuth 2.0 endpoint, a KMS
provider's), cached until a minute before they expire.

Shared by connectors (one cache per connector, keyed by credential version
and URL, so a rotated credential never reuses the old version's token) and
the KMS providers (one key each). One exchange at a time per key. A token is
a ``Secret``; it never leaves the code that sends it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from arx.vault.secret import Secret

# Refresh this long before the announced expiry, so a token never dies in flight.
TOKEN_REFRESH_MARGIN = 60.0

Key = tuple[str, str]
# An exchange: the token and its lifetime in seconds.
Fetch = Callable[[], Awaitable[tuple[Secret, float]]]


@dataclass(slots=True)
class _Cached:
    token: Secret
    refresh_at: float  # monotonic seconds


class TokenCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._tokens: dict[Key, _Cached] = {}
        self._locks: dict[Key, asyncio.Lock] = {}
        # Monotonic, so a wall-clock jump cannot stretch a token's life; tests may replace it.
        self.clock = clock

    async def get(self, key: Key, fetch: Fetch) -> Secret:
        """The cached token for ``key`` while it is fresh, else one ``fetch`` gets."""
        token = self._fresh(key)
        if token is not None:
            return token
        # Locks are kept: one may be between a release and its next waiter's
        # wake-up, and dropping it then would allow a second concurrent exchange.
        async with self._locks.setdefault(key, asyncio.Lock()):
            # Another call may have exchanged while this one waited.
            token = self._fresh(key)
            if token is None:
                token, expires_in = await fetch()
                self._put(key, token, expires_in)
        return token

    def drop(self, key: Key, token: Secret) -> None:
        """The service refused ``token``: forget it, unless a newer one replaced it."""
        cached = self._tokens.get(key)
        if cached is not None and cached.token == token:
            del self._tokens[key]

    def _fresh(self, key: Key) -> Secret | None:
        cached = self._tokens.get(key)
        if cached is None or self.clock() >= cached.refresh_at:
            return None
        return cached.token

    def _put(self, key: Key, token: Secret, expires_in: float) -> None:
        now = self.clock()
        for old in [k for k, t in self._tokens.items() if now >= t.refresh_at]:
            del self._tokens[old]
        # A token too short-lived to cache serves the call that asked for it.
        if expires_in > TOKEN_REFRESH_MARGIN:
            self._tokens[key] = _Cached(token, now + expires_in - TOKEN_REFRESH_MARGIN)
