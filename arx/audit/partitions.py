"""The trail's months: created ahead, and dropped whole for retention.

``arx.audit_events`` is partitioned by calendar month (UTC, migration 0019)
with no default partition, so an event for a month that has no partition
cannot be written and the execute path fails closed. Months are created
ahead three ways, each enough alone: by the migration, by every ``arx db
migrate``, and by every API process with a control plane, at start and
then daily. Creating a month takes no lock that the trail's inserts or
reads wait on; cloning the trail's foreign keys onto it holds writes to
``orgs``, ``agents`` and ``approval_requests`` for a moment.

Retention is the other end: ``arx db retention --drop-before YYYY-MM``,
with the administrative connection only, drops whole months through
``arx.drop_audit_months`` (see the migration for what it refuses and what
it records).
"""

from __future__ import annotations

import asyncio
import re
from datetime import date

import psycopg
from psycopg_pool import AsyncConnectionPool

from arx.db.migrate import AUDIT_MONTHS_AHEAD
from arx.db.pool import Conn, connection
from arx.errors import InvalidFieldError
from arx.logs import get_logger

log = get_logger("arx.audit.partitions")

# This month and the next three: three months of daily retries before an
# insert could find no month, should every API process fail to create one.
MONTHS_AHEAD = AUDIT_MONTHS_AHEAD
ENSURE_EVERY_SECONDS = 24 * 3600.0
# After a failure (a lock not granted in time), try again sooner.
RETRY_SECONDS = 600.0

_ENSURE = "SELECT arx.ensure_audit_partitions(%s)"
_DROP = "SELECT partition, org_id, events FROM arx.drop_audit_months(%s, %s)"
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


async def ensure_months(pool: AsyncConnectionPool[Conn]) -> list[str]:
    """Create the missing months from this one to MONTHS_AHEAD on; their names."""
    async with connection(pool) as conn:
        cur = await conn.execute(_ENSURE, (MONTHS_AHEAD,))
        return [name for (name,) in await cur.fetchall()]


async def ensure_forever(pool: AsyncConnectionPool[Conn]) -> None:
    while True:
        try:
            made = await ensure_months(pool)
            if made:
                log.info("audit months created", extra={"partitions": made})
            wait = ENSURE_EVERY_SECONDS
        except Exception as exc:  # the loop must outlive any one failure
            log.warning(
                "creating audit months ahead failed", extra={"exc_type": type(exc).__name__}
            )
            wait = RETRY_SECONDS
        await asyncio.sleep(wait)


def first_of(month: str) -> date:
    """``YYYY-MM`` → the first day of that month."""
    found = _MONTH.match(month)
    if found is None:
        raise InvalidFieldError(f"{month!r} is not a month as YYYY-MM", field="drop_before")
    return date(int(found[1]), int(found[2]), 1)


def drop_months(admin_url: str, before: date, actor: str) -> list[tuple[str, str, int]]:
    """Drop every month before ``before``, in one transaction: (partition,
    org id, events removed) per org and month. Nothing is dropped if any
    month is refused."""
    with psycopg.connect(admin_url) as conn, conn.transaction():
        rows = conn.execute(_DROP, (before, actor)).fetchall()
    return [(str(p), str(org), int(n)) for (p, org, n) in rows]
