"""The PostgreSQL connection pool and the one way to open a tenant transaction.

Guarantees:
- every tenant query runs inside ``org_transaction`` or a function that sets
  ``arx.org_id`` for its own transaction (``set_config(..., true)``), from the
  authenticated identity and never from a request body;
- every driver failure surfaces as an ``ARXError`` (``arx.db.errors``), so a
  lost database is a 503 and a refused value a 4xx, never a 500;
- nothing waits on the database without a bound: the pool wait, the
  statement (server side), and on this side a deadline after which the
  connection is cut (``bounded_connection``): the request's own on the
  execute path (``call``), else ``ADMIN_BOUND_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, LiteralString, TypeVar
from uuid import UUID

import msgspec
import psycopg
from psycopg.rows import AsyncRowFactory, dict_row, tuple_row
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import AsyncConnectionPool

from arx.config import Settings
from arx.db.errors import translate
from arx.deadline import Deadline
from arx.errors import ARXError, DeadlineExceededError

Conn = psycopg.AsyncConnection[Any]
R = TypeVar("R")

CONNECT_TIMEOUT_SECONDS = 3
# Work outside the execute path (administration, reads of the trail) that is
# given no deadline of its own is cut off after this long.
ADMIN_BOUND_SECONDS = 30.0

# msgspec is several times faster than the stdlib for jsonb columns, and it
# encodes msgspec Structs handed to Jsonb() directly.
set_json_dumps(msgspec.json.encode)
set_json_loads(msgspec.json.decode)

_SET_ORG = "SELECT set_config('arx.org_id', %s, true)"


def _connection_kwargs(settings: Settings) -> dict[str, Any]:
    statement_ms = round(settings.db_statement_timeout_seconds * 1000)
    idle_ms = round(settings.db_idle_in_transaction_timeout_seconds * 1000)
    return {
        # Autocommit: a single statement (the hot path's functions) needs no
        # BEGIN/COMMIT round trips; multi-statement work opens a transaction.
        "autocommit": True,
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        # The server ends a statement, or a transaction left idle, that
        # outlives these; the role carries the same defaults (migration 0003).
        # No JIT: every ARX query is an index probe or a short page, and a
        # plan whose estimate crosses jit_above_cost on a big trail spent
        # ~90 ms compiling (bench/audit_scale.py) to save microseconds.
        "options": (
            f"-c statement_timeout={statement_ms} -c idle_in_transaction_session_timeout={idle_ms}"
            " -c jit=off"
        ),
        # A server that vanishes without closing the socket is noticed in
        # seconds rather than after the kernel's two hours.
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": 10_000,
    }


def create_pool(
    settings: Settings, *, url: str | None = None, name: str = "arx", max_size: int | None = None
) -> AsyncConnectionPool[Conn]:
    """Build a closed pool (by default the agent path's); the caller opens it
    (without waiting for the DB)."""
    size = max_size or settings.db_pool_max
    return AsyncConnectionPool(
        url or settings.database_url,
        min_size=min(settings.db_pool_min, size),
        max_size=size,
        open=False,
        timeout=settings.db_pool_wait_seconds,
        kwargs=_connection_kwargs(settings),
        name=name,
        # psycopg_pool retries a lost connection with exponential backoff
        # (1 s, doubling) until reconnect_timeout, and no new attempt starts
        # meanwhile: a long outage would leave the pool idle for many seconds
        # after PostgreSQL is back. Giving up quickly lets the next request
        # start a fresh connection attempt instead.
        reconnect_timeout=settings.db_pool_wait_seconds,
    )


@asynccontextmanager
async def connection(
    pool: AsyncConnectionPool[Conn], *, wait_seconds: float | None = None
) -> AsyncIterator[Conn]:
    """A pooled autocommit connection; every driver error becomes an ARXError."""
    try:
        async with pool.connection(timeout=wait_seconds) as conn:
            yield conn
    except Exception as exc:
        mapped = translate(exc)
        if mapped is None:
            raise
        raise mapped from exc


@asynccontextmanager
async def org_transaction(
    pool: AsyncConnectionPool[Conn], org_id: UUID, *, deadline: Deadline | None = None
) -> AsyncIterator[Conn]:
    """One transaction scoped to ``org_id`` by row-level security.

    It is cut off at ``deadline``, by default ``ADMIN_BOUND_SECONDS`` from now.
    """
    deadline = deadline or Deadline(ADMIN_BOUND_SECONDS)
    async with (
        bounded_connection(pool, deadline, pool_wait=pool.timeout) as conn,
        conn.transaction(),
    ):
        await conn.execute(_SET_ORG, (str(org_id),))
        yield conn


async def fetch_dict(conn: Conn, query: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """One row of a named-parameter query as a dict (``None`` when there is none)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query, params)
    return await cur.fetchone()


async def fetch_all(
    conn: Conn, query: str, params: dict[str, Any] | None, type_: type[R]
) -> list[R]:
    """Every row of a named-parameter query, each converted into ``type_``."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query, params)
    return [msgspec.convert(row, type_) for row in await cur.fetchall()]


class _Severance:
    """Cuts the connection under a query that outlives its deadline.

    Cancelling the awaiting task instead would make psycopg ask the server to
    cancel the query and wait for it, which on a frozen server takes seconds.
    Shutting the socket down makes the pending read fail at once. A connection
    cut this way is closed before it goes back, so that a cut that lands just
    as its query finishes cannot hand the pool a dead connection.
    """

    __slots__ = ("conn", "done", "timer")

    def __init__(self, conn: Conn, seconds: float) -> None:
        self.conn = conn
        self.done = False
        self.timer = asyncio.get_running_loop().call_later(seconds, self._cut)

    def _cut(self) -> None:
        self.done = True
        with (
            contextlib.suppress(OSError, psycopg.Error),
            socket.socket(fileno=os.dup(self.conn.pgconn.socket)) as sock,
        ):
            sock.shutdown(socket.SHUT_RDWR)

    async def release(self) -> None:
        self.timer.cancel()
        if self.done:
            await self.conn.close()


@asynccontextmanager
async def bounded_connection(
    pool: AsyncConnectionPool[Conn], deadline: Deadline, *, pool_wait: float
) -> AsyncIterator[Conn]:
    """A pooled connection whose use is cut off when ``deadline`` passes.

    Waiting for the connection takes at most ``pool_wait`` (or what is left);
    a statement still running at the deadline fails as a lost database (503).
    """
    async with connection(pool, wait_seconds=deadline.budget(pool_wait)) as conn:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise DeadlineExceededError("no time was left to ask the database")
        severance = _Severance(conn, remaining)
        try:
            yield conn
        finally:
            await severance.release()


async def _fetchone(
    pool: AsyncConnectionPool[Conn],
    query: LiteralString,
    params: tuple[Any, ...] | dict[str, Any],
    *,
    deadline: Deadline,
    pool_wait: float,
    row_factory: AsyncRowFactory[R],
) -> R | None:
    async with bounded_connection(pool, deadline, pool_wait=pool_wait) as conn:
        cur = conn.cursor(row_factory=row_factory)
        await cur.execute(query, params)
        return await cur.fetchone()


async def call(
    pool: AsyncConnectionPool[Conn],
    query: LiteralString,
    params: tuple[Any, ...] | dict[str, Any],
    *,
    deadline: Deadline,
    pool_wait: float,
) -> tuple[Any, ...] | None:
    """Run one statement (its own transaction) and return its first row.

    The execute path's only way to the database: one round trip, bounded by
    what is left of the request's deadline.
    """
    return await _fetchone(
        pool, query, params, deadline=deadline, pool_wait=pool_wait, row_factory=tuple_row
    )


async def call_function(
    pool: AsyncConnectionPool[Conn],
    query: LiteralString,
    params: tuple[Any, ...] | dict[str, Any],
    *,
    deadline: Deadline,
    pool_wait: float,
    row_factory: AsyncRowFactory[R],
) -> R:
    """``call`` for a SQL function, which answers with exactly one row, read
    into ``row_factory``'s type."""
    row = await _fetchone(
        pool, query, params, deadline=deadline, pool_wait=pool_wait, row_factory=row_factory
    )
    if row is None:
        raise ARXError(f"a database function answered with no row: {query.split('(')[0]}")
    return row
