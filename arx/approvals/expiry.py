"""Requests nobody decided expire on time, with an event in the trail.

Every API process sweeps every few seconds: ``arx.expire_approvals`` (a
definer function, migration 0010) expires a batch of overdue pending
requests across orgs and records ``approval.expired`` for each, in one
transaction; rows another process is sweeping are skipped, not waited for.
The status change wakes any agent waiting on the request (NOTIFY). Voting,
resuming and polling never depend on the sweep: each reads an overdue
pending request as expired already.
"""

from __future__ import annotations

import asyncio

from psycopg_pool import AsyncConnectionPool

from arx.db.pool import Conn, connection
from arx.logs import get_logger

log = get_logger("arx.approvals.expiry")

SWEEP_SECONDS = 5.0
BATCH = 500
_EXPIRE = "SELECT arx.expire_approvals(%s)"


async def expire_due(pool: AsyncConnectionPool[Conn]) -> int:
    """Expire overdue requests until none is left; return how many."""
    total = 0
    while True:
        async with connection(pool) as conn:
            cur = await conn.execute(_EXPIRE, (BATCH,))
            row = await cur.fetchone()
        n = int(row[0]) if row else 0
        total += n
        if n < BATCH:
            return total


async def sweep_forever(pool: AsyncConnectionPool[Conn]) -> None:
    while True:
        try:
            expired = await expire_due(pool)
            if expired:
                log.info("approval requests expired", extra={"n": expired})
        except Exception as exc:  # the loop must outlive any one failure
            log.warning("approval expiry sweep failed", extra={"exc_type": type(exc).__name__})
        await asyncio.sleep(SWEEP_SECONDS)
