"""``GET /health``: database reachability and OPA bundle readiness."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from arx.api.openapi import RouteDoc
from arx.api.state import runtime
from arx.api.types import Health
from arx.db.pool import call
from arx.deadline import Deadline
from arx.errors import ServiceUnavailableError

_DOC = RouteDoc(
    security=None,
    success={503: (Health, "Degraded: the database or the policy bundles are not ready.")},
    errors=(500,),
)


@get(
    "/health",
    tags=["ops"],
    summary="Readiness: database and policy bundles",
    operation_class=_DOC.operation_class,
    responses=_DOC.responses,
)
async def health(request: Request[Any, Any, Any]) -> Response[Health]:
    rt = runtime(request)
    wait = rt.settings.db_pool_wait_seconds
    try:
        await call(rt.pool, "SELECT 1", (), deadline=Deadline(wait), pool_wait=wait)
        database = "ok"
    except ServiceUnavailableError:
        database = "unavailable"
    policy = "ok" if await rt.policy.ready() else "unavailable"
    ok = database == "ok" and policy == "ok"
    return Response(
        Health(status="ok" if ok else "degraded", database=database, policy_engine=policy),
        status_code=200 if ok else 503,
    )
