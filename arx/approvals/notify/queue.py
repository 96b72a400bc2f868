"""The notification queue: the worker's claims and outcomes, and the admin view.

The worker claims due jobs across orgs through ``arx.claim_notification_jobs``
(SKIP LOCKED: concurrent workers take disjoint jobs; a claim leases a job for
longer than a delivery and its recording can take, and gives it a random
claim token) and records each outcome through ``arx.finish_notification_job``,
which only the holder of that claim's token can do. Claimed rows are read one
by one: a row that cannot be read fails its own job, never the others of the
batch. People see one org's deliveries and requeue a failed one; a requeue is
an audit event and wakes every process's worker at commit.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from arx.approvals.notify import repo
from arx.approvals.notify.types import Delivery, DeliveryStatus, Job
from arx.audit.service import record_admin_event
from arx.db.pool import Conn, bounded_connection, fetch_all, fetch_dict, org_transaction
from arx.deadline import Deadline
from arx.errors import ConflictError, NotFoundError
from arx.identity.principal import Access
from arx.logs import get_logger

log = get_logger("arx.approvals.notify")

MAX_LISTED = 200
# The worker's own statements are short; a database slower than this is down.
# Each claim and each recording of an outcome is bounded by it.
WORKER_BOUND_SECONDS = 10.0
UNREADABLE = "the notification's stored data cannot be read"


async def claim(
    pool: AsyncConnectionPool[Conn], *, limit: int, lease_seconds: float, max_attempts: int
) -> list[Job]:
    """Claim up to ``limit`` due jobs; the ones that can be read.

    A claimed row that does not decode (data no message can be built from)
    fails its own job at once, with the others of the batch unaffected.
    """
    deadline = Deadline(WORKER_BOUND_SECONDS)
    async with bounded_connection(pool, deadline, pool_wait=pool.timeout) as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            repo.CLAIM, {"limit": limit, "lease": lease_seconds, "max_attempts": max_attempts}
        )
        rows = await cur.fetchall()
        jobs: list[Job] = []
        for row in rows:
            try:
                jobs.append(msgspec.convert(row, Job))
            except msgspec.ValidationError as exc:
                await _fail_unreadable(conn, row, exc)
    return jobs


async def _fail_unreadable(conn: Conn, row: dict[str, Any], exc: msgspec.ValidationError) -> None:
    # The validation message names a path (``$.reasons[0]``) and a type, never a value.
    log.warning(
        "a claimed notification cannot be read",
        extra={
            "job_id": str(row.get("job_id")),
            "org_id": str(row.get("org_id")),
            "problem": str(exc),
        },
    )
    await conn.execute(
        repo.FINISH,
        {
            "job_id": row.get("job_id"),
            "claim_token": row.get("claim_token"),
            "status": "failed",
            "error": UNREADABLE,
            "retry_seconds": 0.0,
        },
    )


async def finish(
    pool: AsyncConnectionPool[Conn],
    job: Job,
    *,
    status: DeliveryStatus,
    error: str | None,
    retry_seconds: float = 0.0,
) -> bool:
    """Record the outcome of ``job``'s claim; False if the claim is no longer
    its holder's (the lease ran out and the job was claimed again, or requeued)."""
    deadline = Deadline(WORKER_BOUND_SECONDS)
    async with bounded_connection(pool, deadline, pool_wait=pool.timeout) as conn:
        cur = await conn.execute(
            repo.FINISH,
            {
                "job_id": job.job_id,
                "claim_token": job.claim_token,
                "status": status,
                "error": error,
                "retry_seconds": retry_seconds,
            },
        )
        row = await cur.fetchone()
    return bool(row and row[0])


async def list_deliveries(
    pool: AsyncConnectionPool[Conn], org_id: UUID, *, status: DeliveryStatus | None
) -> list[Delivery]:
    async with org_transaction(pool, org_id) as conn:
        return await fetch_all(
            conn, repo.LIST_DELIVERIES, {"status": status, "limit": MAX_LISTED}, Delivery
        )


async def retry(
    pool: AsyncConnectionPool[Conn], access: Access, delivery_id: UUID, *, comment: str = ""
) -> Delivery:
    """Requeue a failed delivery with a fresh set of attempts."""
    async with org_transaction(pool, access.org_id) as conn:
        row = await fetch_dict(conn, repo.RETRY, {"id": delivery_id})
        if row is None:
            current = await fetch_dict(conn, repo.DELIVERY, {"id": delivery_id})
            if current is None:
                raise NotFoundError("no such notification in this org")
            raise ConflictError(
                f"only a failed notification can be retried; this one is {current['status']}"
            )
        await record_admin_event(
            conn,
            access.org_id,
            action="notifications.delivery_retried",
            actor=access.actor,
            details={
                "delivery_id": str(delivery_id),
                "approval_id": str(row["approval_id"]),
                "channel": row["channel"],
                "comment": comment,
            },
        )
        await conn.execute(repo.WAKE_WORKERS, {"org_id": str(access.org_id)})
    return msgspec.convert(row, Delivery)
