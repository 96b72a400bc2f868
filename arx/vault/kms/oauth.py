"""Bearer tokens for the KMS REST APIs, cached until a minute before expiry.

One cache per token source (ARX's Entra app, ARX's Google service account),
one exchange at a time. A token is a ``Secret``; it never leaves the
provider that sends it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from arx.vault.secret import Secret

REFRESH_MARGIN = 60.0


class TokenCache:
    def __init__(self, fetch: Callable[[], Awaitable[tuple[Secret, float]]]) -> None:
        self._fetch = fetch
        self._token: Secret | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, *, stale: Secret | None = None) -> Secret:
        """A usable token; ``stale`` is one the service just refused."""
        if self._usable(stale):
            assert self._token is not None
            return self._token
        async with self._lock:
            if self._usable(stale):
                assert self._token is not None
                return self._token
            token, expires_in = await self._fetch()
            self._token = token
            self._refresh_at = time.monotonic() + max(0.0, expires_in - REFRESH_MARGIN)
            return token

    def _usable(self, stale: Secret | None) -> bool:
        return (
            self._token is not None and self._token != stale and time.monotonic() < self._refresh_at
        )
