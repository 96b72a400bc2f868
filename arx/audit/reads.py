"""Reading the trail: a page, one event, an export, the follow cursor
(``arx.audit.query`` says which order each promises).

Reads never show a PERMIT decision as if nothing were missing: once any
result of it would have been written (``result_overdue_seconds``) and none
was, it reads ``outcome: "outcome_unknown"`` (``arx.audit.repo.OUTCOME_AS_READ``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any
from uuid import UUID

import anyio
import msgspec
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from arx.approvals import review
from arx.audit import query, repo
from arx.audit.query import AuditFilter
from arx.audit.types import (
    AuditEvent,
    AuditEventDetail,
    AuditPage,
    CoveringCheckpoint,
    FollowPage,
)
from arx.db.pool import Conn, fetch_dict, org_transaction
from arx.errors import NotFoundError
from arx.identity.orgs import require_org


def _event(row: dict[str, Any]) -> AuditEvent:
    org_seq, digest = row.pop("chain_org_seq"), row.pop("chain_hash")
    if org_seq is not None:
        row["chain"] = {"org_seq": org_seq, "hash": digest}
    return msgspec.convert(row, AuditEvent)


async def _events(conn: Conn, statement: str, params: dict[str, Any]) -> list[AuditEvent]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(statement, params)
    return [_event(r) for r in await cur.fetchall()]


async def list_events(
    pool: AsyncConnectionPool[Conn],
    org_id: UUID,
    where: AuditFilter,
    *,
    overdue_seconds: float,
    cursor: str | None = None,
    limit: int = 100,
) -> AuditPage:
    """A page of the org's events, newest first (``arx.audit.query``); a PERMIT
    decision older than ``overdue_seconds`` (``result_overdue_seconds``)
    without a result reads ``outcome_unknown``."""
    where.check()
    before = query.decode_cursor(cursor) if cursor else 2**63 - 1
    async with org_transaction(pool, org_id) as conn:
        await require_org(conn, org_id)
        events = await _events(
            conn,
            repo.LIST_HEAD + where.where() + repo.LIST_TAIL,
            {
                **where.params(),
                "org_id": org_id,
                "before": before,
                "limit": limit,
                "overdue_seconds": overdue_seconds,
            },
        )
    more = len(events) == limit and events[-1].seq > 1
    return AuditPage(
        events=events, next_cursor=query.encode_cursor(events[-1].seq) if more else None
    )


async def get_event(
    pool: AsyncConnectionPool[Conn], org_id: UUID, event_id: UUID, *, overdue_seconds: float
) -> AuditEventDetail:
    """One event with what belongs to it (``AuditEventDetail``)."""
    params = {"org_id": org_id, "event_id": event_id, "overdue_seconds": overdue_seconds}
    async with org_transaction(pool, org_id) as conn:
        await require_org(conn, org_id)
        found = await _events(conn, repo.ONE, params)
        if not found:
            raise NotFoundError("no such audit event in this org")
        event = found[0]
        results: list[AuditEvent] = []
        approval_id = event.approval_id
        if event.kind == "decision":
            results = await _events(conn, repo.RESULTS_OF, params)
            if approval_id is None:
                row = await fetch_dict(conn, repo.APPROVAL_OF, params)
                approval_id = row["id"] if row else None
        approval = await review.detail(conn, approval_id) if approval_id else None
        checkpoint = None
        if event.chain is not None:
            checkpoint = await fetch_dict(
                conn, repo.CHECKPOINT_OVER, {"org_id": org_id, "org_seq": event.chain.org_seq}
            )
    return AuditEventDetail(
        event=event,
        results=results,
        approval=approval,
        checkpoint=msgspec.convert(checkpoint, CoveringCheckpoint) if checkpoint else None,
    )


async def follow(
    pool: AsyncConnectionPool[Conn],
    org_id: UUID,
    *,
    after: int,
    limit: int,
    overdue_seconds: float,
    wait_seconds: float = 0.0,
    poll_seconds: float = 0.5,
    limiter: anyio.CapacityLimiter | None = None,
) -> FollowPage:
    """The chained events after ``after`` (``FollowPage``), waiting up to
    ``wait_seconds`` for the first one when there is none yet. Each read
    takes a slot of ``limiter`` (shared with the other reads of the trail),
    so followers cannot take the connections the sealer needs."""
    params = {"org_id": org_id, "after": after, "limit": limit, "overdue_seconds": overdue_seconds}
    give_up = time.monotonic() + wait_seconds
    first = True
    while True:
        async with _slot(limiter), org_transaction(pool, org_id) as conn:
            if first:
                await require_org(conn, org_id)
                first = False
            events = await _events(conn, repo.FOLLOW, params)
        if events or time.monotonic() >= give_up:
            break
        # The sealer chains every half second; no transaction or slot is held
        # while waiting for it.
        await anyio.sleep(min(poll_seconds, max(give_up - time.monotonic(), 0.0)))
    last = events[-1].chain if events else None
    return FollowPage(
        events=events,
        cursor=last.org_seq if last else after,
        result_overdue_seconds=overdue_seconds,
    )


def _slot(limiter: anyio.CapacityLimiter | None) -> AbstractAsyncContextManager[Any]:
    return limiter if limiter is not None else contextlib.nullcontext()


async def export_pages(
    pool: AsyncConnectionPool[Conn],
    org_id: UUID,
    where: AuditFilter,
    *,
    overdue_seconds: float,
    page_size: int = 500,
    limiter: anyio.CapacityLimiter | None = None,
) -> AsyncIterator[list[AuditEvent]]:
    """Every event final when the export began that ``where`` selects, oldest
    first, a page at a time, each page read in its own short transaction
    (``arx.audit.query``): memory and transactions stay small however long
    the trail. Raises before the first page for a bad filter or unknown org.
    Each page takes a slot of ``limiter``, never held while the client reads."""
    where.check()
    async with _slot(limiter), org_transaction(pool, org_id) as conn:
        await require_org(conn, org_id)
        cur = await conn.execute(repo.EXPORT_HORIZON)
        row = await cur.fetchone()
    if row is None:
        raise RuntimeError("PostgreSQL returned no snapshot")
    horizon = row[0]

    statement = repo.EXPORT_HEAD + where.where() + repo.EXPORT_TAIL

    async def pages() -> AsyncIterator[list[AuditEvent]]:
        after = 0
        while True:
            async with _slot(limiter), org_transaction(pool, org_id) as conn:
                page = await _events(
                    conn,
                    statement,
                    {
                        **where.params(),
                        "org_id": org_id,
                        "after": after,
                        "horizon": horizon,
                        "limit": page_size,
                        "overdue_seconds": overdue_seconds,
                    },
                )
            if page:
                yield page
            if len(page) < page_size:
                return
            after = page[-1].seq

    return pages()
