"""The PostgreSQL connection pool and the one way to open a tenant transaction.

Guarantees:
- every tenant query runs inside ``org_transaction``, which sets ``arx.org_id``
  for that transaction only (``set_config(..., true)``), from the authenticated
  identity and never from a request body;
- every connectivity failure surfaces as ``DatabaseUnavailableError`` (503),
  mapped here and nowhere else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from arx.config import Settings
from arx.errors import DatabaseUnavailableError

Conn = psycopg.AsyncConnection[Any]

# How long a request waits for a pooled connection before answering 503.
POOL_WAIT_SECONDS = 3.0
CONNECT_TIMEOUT_SECONDS = 3

# msgspec is several times faster than the stdlib for jsonb columns.
set_json_dumps(msgspec.json.encode)
set_json_loads(msgspec.json.decode)

_SET_ORG = "SELECT set_config('arx.org_id', %s, true)"


def create_pool(settings: Settings) -> AsyncConnectionPool[Conn]:
    """Build a closed pool; the caller opens it (without waiting for the DB)."""
    return AsyncConnectionPool(
        settings.database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        open=False,
        timeout=POOL_WAIT_SECONDS,
        # Autocommit: single-statement reads need no BEGIN/COMMIT round trips;
        # multi-statement work opens an explicit transaction.
        kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_SECONDS},
        name="arx",
        # psycopg_pool retries a lost connection with exponential backoff
        # (1 s, doubling) until reconnect_timeout, and no new attempt starts
        # meanwhile: a long outage would leave the pool idle for many seconds
        # after PostgreSQL is back. Giving up quickly lets the next request
        # start a fresh connection attempt instead.
        reconnect_timeout=POOL_WAIT_SECONDS,
    )


@asynccontextmanager
async def connection(pool: AsyncConnectionPool[Conn]) -> AsyncIterator[Conn]:
    """A pooled autocommit connection; connectivity failures become 503."""
    try:
        async with pool.connection() as conn:
            yield conn
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise DatabaseUnavailableError("the database is unreachable") from exc


@asynccontextmanager
async def org_transaction(pool: AsyncConnectionPool[Conn], org_id: UUID) -> AsyncIterator[Conn]:
    """One transaction scoped to ``org_id`` by row-level security."""
    # Pipeline mode was measured slower here (1.04 vs 0.86 ms per short
    # transaction on loopback), so statements go one by one.
    async with connection(pool) as conn, conn.transaction():
        await conn.execute(_SET_ORG, (str(org_id),))
        yield conn
