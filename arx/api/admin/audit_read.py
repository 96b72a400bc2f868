"""Reading an org's audit trail: list, one event, export, follow.

Which order each promises is in ``arx.audit.query``. Every route is
tenant-scoped (row-level security) and open to the roles that may read the
trail (``arx.identity.roles.AUDIT``: owner, admin, auditor).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, Parameter
from litestar.response import Stream

from arx.api.admin import docs
from arx.api.state import runtime
from arx.audit import export
from arx.audit.query import MAX_PAGE, AuditFilter, Kind, Outcome, Verdict
from arx.audit.reads import export_pages, follow, get_event, list_events
from arx.audit.service import result_overdue_seconds
from arx.audit.types import AuditEventDetail, AuditPage, FollowPage
from arx.errors import InvalidQueryError
from arx.identity.roles import AUDIT

# The longest a follow request waits for the sealer (a client asks again).
MAX_FOLLOW_WAIT_SECONDS = 25

# A connector or operation name as ARX records it (anything else matches nothing).
Name = Annotated[
    str | None, Parameter(max_length=200, pattern=r"^[^\x00]*$", description="exact match")
]
Wait = Annotated[
    int,
    Parameter(
        ge=0,
        le=MAX_FOLLOW_WAIT_SECONDS,
        description="seconds to wait for the first event when there is none yet",
    ),
]
Cursor = Annotated[
    str | None,
    Parameter(
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="next_cursor of the previous page (opaque; one not given out is a 400)",
    ),
]
Removed = Annotated[
    int | None,
    Parameter(
        description="Removed: listing is newest first with `cursor`; to read the trail in "
        "order from a position use `/audit/follow`. Any value is a 400.",
    ),
]
_OUTCOMES = (
    "A PERMIT decision whose result never arrived (the process died between the decision "
    'and the result, or the result was lost) reads `outcome: "outcome_unknown"` once the '
    "result is overdue (the execute deadline, plus the time its write may take); before "
    'that it has no outcome, as a call still running. A result event\'s `outcome: "unknown"` '
    "is different: the request reached the tool and no answer came back. `request_id` is "
    "ARX's id of the request that wrote the event, `client_request_id` the caller's "
    "X-Request-ID. `chain` is the event's place in the org's hash chain, once sealed."
)

_LIST = docs.read(AUDIT, errors_extra=(400,))
_ONE = docs.read(AUDIT)
_EXPORT = docs.read(
    AUDIT,
    errors_extra=(400,),
    streams={
        export.JSONL: "one audit event (as the list returns it) per line",
        export.CSV: "a header row, then one row per event; see arx.audit.export",
    },
)


def _where(
    *,
    kind: FromQuery[Kind | None] = None,
    agent_id: FromQuery[UUID | None] = None,
    connector: Name = None,
    operation: Name = None,
    verdict: FromQuery[Verdict | None] = None,
    outcome: FromQuery[Outcome | None] = None,
    since: FromQuery[datetime | None] = None,
    until: FromQuery[datetime | None] = None,
) -> AuditFilter:
    """The filters of a list or an export, from the query (a dependency)."""
    return AuditFilter(
        kind=kind,
        agent_id=agent_id,
        connector=connector,
        operation=operation,
        verdict=verdict,
        outcome=outcome,
        since=since,
        until=until,
    )


_FILTERS = {"where": Provide(_where, sync_to_thread=False)}


@get(
    "/orgs/{org_id:uuid}/audit",
    dependencies=_FILTERS,
    opt=_LIST.opt,
    operation_class=_LIST.operation_class,
    responses=_LIST.responses,
    summary="The org's audit trail, newest first, filtered, a page at a time",
    description="Filters narrow together; `since`/`until` bound `created_at` (RFC 3339 "
    "with a zone; since inclusive, until exclusive). Pass `next_cursor` back as `cursor` "
    "for the page before, with the same filters. " + _OUTCOMES,
)
async def list_audit(
    request: Request[Any, Any, Any],
    org_id: FromPath[UUID],
    *,
    where: NamedDependency[AuditFilter],
    cursor: Cursor = None,
    limit: FromQuery[int] = 100,
    after_seq: Removed = None,
) -> AuditPage:
    if after_seq is not None:
        raise InvalidQueryError(
            "after_seq was removed: pages go newest first with cursor; "
            "read the trail in order with /audit/follow",
            parameter="after_seq",
        )
    rt = runtime(request)
    return await list_events(
        rt.control_pool,
        org_id,
        where,
        overdue_seconds=result_overdue_seconds(rt.settings),
        cursor=cursor,
        limit=min(max(limit, 1), MAX_PAGE),
    )


@get(
    "/orgs/{org_id:uuid}/audit/events/{event_id:uuid}",
    opt=_ONE.opt,
    operation_class=_ONE.operation_class,
    responses=_ONE.responses,
    summary="One audit event: a decision with its results and approval, its chain "
    "position and the first signed checkpoint that covers it",
)
async def get_audit_event(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], event_id: FromPath[UUID]
) -> AuditEventDetail:
    rt = runtime(request)
    return await get_event(
        rt.control_pool, org_id, event_id, overdue_seconds=result_overdue_seconds(rt.settings)
    )


@get(
    "/orgs/{org_id:uuid}/audit/export",
    dependencies=_FILTERS,
    opt=_EXPORT.opt,
    operation_class=_EXPORT.operation_class,
    responses=_EXPORT.responses,
    summary="Export the org's audit trail, oldest first, as JSON Lines or CSV (streamed)",
    description="Every event that was final when the export began (its transaction had "
    "committed) and that the filters select, once each, oldest first; read a page at a "
    "time, so its size is not bounded by memory. CSV cells that a spreadsheet would run "
    "as a formula are prefixed with `'`; JSON Lines is the exact record. " + _OUTCOMES,
)
async def export_audit(
    request: Request[Any, Any, Any],
    org_id: FromPath[UUID],
    *,
    format: FromQuery[Literal["jsonl", "csv"]] = "jsonl",
    where: NamedDependency[AuditFilter],
) -> Stream:
    rt = runtime(request)
    # Raises (a problem answer) before anything is streamed.
    pages = await export_pages(
        rt.control_pool,
        org_id,
        where,
        overdue_seconds=result_overdue_seconds(rt.settings),
        limiter=rt.audit_reads,
    )

    async def body() -> AsyncIterator[bytes]:
        if format == "csv":
            yield export.csv_header()
        async for page in pages:
            yield export.csv_rows(page) if format == "csv" else export.jsonl(page)

    media = export.CSV if format == "csv" else export.JSONL
    suffix = "csv" if format == "csv" else "jsonl"
    return Stream(
        body(),
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="audit-{org_id}.{suffix}"',
            "Cache-Control": "no-store",
        },
    )


@get(
    "/orgs/{org_id:uuid}/audit/follow",
    opt=_LIST.opt,
    operation_class=_LIST.operation_class,
    responses=_LIST.responses,
    summary="Follow the org's trail in chain order: events after a cursor, exactly once",
    description="Returns the events the sealer has chained after `after` (an `org_seq`; 0 "
    "for the beginning), in chain order, and `cursor`, the `org_seq` to ask after next. "
    "The chain is gap-free and final (an event is chained only once every transaction "
    "that could precede it has ended), so a consumer that keeps its cursor sees every "
    "event exactly once, in the org's commit order, across restarts. With `wait` "
    f"(whole seconds, at most {MAX_FOLLOW_WAIT_SECONDS}) the request waits for the first event "
    "when there is none yet. Events appear a fraction of a second after they commit (the "
    "sealer's interval); with sealing off, never. " + _OUTCOMES,
)
async def follow_audit(
    request: Request[Any, Any, Any],
    org_id: FromPath[UUID],
    after: FromQuery[int] = 0,
    limit: FromQuery[int] = 100,
    wait: Wait = 0,
) -> FollowPage:
    rt = runtime(request)
    return await follow(
        rt.control_pool,
        org_id,
        after=min(max(after, 0), 2**63 - 1),
        limit=min(max(limit, 1), MAX_PAGE),
        overdue_seconds=result_overdue_seconds(rt.settings),
        wait_seconds=wait,
        limiter=rt.audit_reads,
    )


ROUTES = [list_audit, get_audit_event, export_audit, follow_audit]
