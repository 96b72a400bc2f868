"""``GET /health``: database reachability and OPA bundle readiness."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from arx.api.state import runtime
from arx.api.types import Health
from arx.db.pool import connection
from arx.errors import DatabaseUnavailableError


@get("/health", tags=["ops"], summary="Readiness: database and policy bundles")
async def health(request: Request[Any, Any, Any]) -> Response[Health]:
    rt = runtime(request)
    try:
        async with connection(rt.pool) as conn:
            await conn.execute("SELECT 1")
        database = "ok"
    except DatabaseUnavailableError:
        database = "unavailable"
    policy = "ok" if await rt.policy.ready() else "unavailable"
    ok = database == "ok" and policy == "ok"
    return Response(
        Health(status="ok" if ok else "degraded", database=database, policy_engine=policy),
        status_code=200 if ok else 503,
    )
