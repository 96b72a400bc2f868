"""Replay a candidate bundle against the org's recorded decisions.

The candidate travels as a push does (``application/gzip``, the same size
limit); nothing is stored and nothing is activated. Auditors may replay too:
the answer quotes recorded calls (agents, operations, reasons), which they
already read in the audit trail.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Request, post
from litestar.params import FromPath, QueryParameter

from arx.api.admin.policy import read_bundle
from arx.api.guards import access
from arx.api.openapi import ADMIN_TOKEN, RouteDoc
from arx.api.state import runtime
from arx.identity.roles import AUDIT
from arx.policy.lifecycle import replay
from arx.policy.lifecycle.replay_types import ReplayReport

# Those who may read the audit trail: a replay's examples are recorded calls
# (agent, operation, time, risk). A policy author replays with the auditor
# role as well.
REPLAY = AUDIT

_REPLAY = RouteDoc(
    security=ADMIN_TOKEN,
    errors=(400, 401, 403, 404, 413, 415, 422, 500, 503),
    roles=REPLAY,
    body={
        "type": "string",
        "format": "binary",
        "description": "The candidate bundle as a gzipped tar, as for a push: its .manifest "
        '(roots exactly ["orgs/<slug>"]) and data.json; tests are not run.',
    },
    body_media="application/gzip",
)

_MOMENT = (
    "An ISO 8601 time (2025-01-31T08:00Z, 2025-01-31T08:00:00.5+02:00; UTC without an "
    "offset) or a duration before now (30m, 24h, 7d)."
)
Since = Annotated[
    str,
    QueryParameter(
        description="Start of the window. " + _MOMENT,
        max_length=40,
        schema_extra={"pattern": replay.MOMENT_PATTERN},
    ),
]
Until = Annotated[
    str | None,
    QueryParameter(
        description="End of the window (excluded); now by default. " + _MOMENT,
        max_length=40,
        schema_extra={"pattern": replay.MOMENT_PATTERN},
    ),
]
Limit = Annotated[
    int,
    QueryParameter(
        description="At most this many decisions, the newest of the window "
        "(the answer's truncated says when it held more).",
        ge=1,
        le=replay.MAX_DECISIONS,
    ),
]
Examples = Annotated[
    int,
    QueryParameter(
        description="Examples kept per change, newest first.", ge=0, le=replay.MAX_EXAMPLES
    ),
]


@post(
    "/orgs/{org_id:uuid}/policy/replay",
    status_code=200,
    opt=_REPLAY.opt,
    operation_class=_REPLAY.operation_class,
    responses=_REPLAY.responses,
    request_max_body_size=64 * 1024 * 1024,  # ARX_MAX_BUNDLE_BYTES is checked below
    summary="Replay a candidate bundle against the org's recorded decisions (ARX's own opa, "
    "never the sidecars): what would change, per rule, with examples. Nothing is stored",
)
async def replay_bundle(
    request: Request[Any, Any, Any],
    org_id: FromPath[UUID],
    *,
    since: Since,
    until: Until = None,
    limit: Limit = replay.MAX_DECISIONS,
    examples: Examples = replay.DEFAULT_EXAMPLES,
) -> ReplayReport:
    rt = runtime(request)
    data = await read_bundle(request, rt.settings.max_bundle_bytes)
    start, end = replay.window(since, until)
    return await replay.replay(
        rt.control_pool,
        rt.toolchain,
        access(request).org_id,
        data,
        since=start,
        until=end,
        limit=limit,
        examples=examples,
    )


ROUTES = [replay_bundle]
