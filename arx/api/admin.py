"""Admin routes (``/v1/admin``): orgs, agents, API keys, credentials, audit.

Guarded by the operator's admin token (``ARX_ADMIN_TOKEN``), compared in
constant time; with no token configured the admin API refuses everything.
Responses never contain a stored secret; an API key appears exactly once,
in the response that creates it.
"""

from __future__ import annotations

import hmac
from typing import Any
from uuid import UUID

from litestar import Request, Router, get, post, put
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath, FromQuery

from arx.api import body
from arx.api.state import runtime
from arx.api.types import CreateAgent, CreateOrg, StoreCredential
from arx.audit.service import list_events
from arx.audit.types import AuditEvent
from arx.errors import AdminAuthenticationError
from arx.identity import service as identity
from arx.identity.types import Agent, IssuedApiKey, Org
from arx.vault.service import CredentialInfo, store_credential

ACTOR = "admin-api"


def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    expected = connection.app.state.runtime.settings.admin_token
    header = connection.headers.get("authorization", "")
    scheme, _sep, token = header.partition(" ")
    if not expected:
        raise AdminAuthenticationError("the admin API is disabled (ARX_ADMIN_TOKEN is not set)")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise AdminAuthenticationError("a valid admin token is required")


@post("/orgs", status_code=201)
async def create_org(request: Request[Any, Any, Any]) -> Org:
    data = await body.read(request, CreateOrg)
    return await identity.create_org(
        runtime(request).pool, slug=data.slug, name=data.name, actor=ACTOR
    )


@post("/orgs/{org_id:uuid}/agents", status_code=201)
async def create_agent(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> Agent:
    data = await body.read(request, CreateAgent)
    return await identity.create_agent(
        runtime(request).pool, org_id, name=data.name, intent=data.intent, actor=ACTOR
    )


@post("/orgs/{org_id:uuid}/agents/{agent_id:uuid}/keys", status_code=201)
async def create_api_key(
    org_id: FromPath[UUID], agent_id: FromPath[UUID], request: Request[Any, Any, Any]
) -> IssuedApiKey:
    return await identity.create_api_key(runtime(request).pool, org_id, agent_id, actor=ACTOR)


@put("/orgs/{org_id:uuid}/credentials/{connector:str}", status_code=201)
async def put_credential(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], connector: FromPath[str]
) -> CredentialInfo:
    data = await body.read(request, StoreCredential)
    rt = runtime(request)
    return await store_credential(
        rt.pool,
        kek=rt.settings.kek,
        org_id=org_id,
        connector=connector,
        secret=data.secret,
        base_url=data.base_url,
        allow_insecure_urls=rt.settings.allow_insecure_connector_urls,
        actor=ACTOR,
    )


@get("/orgs/{org_id:uuid}/audit")
async def get_audit(
    request: Request[Any, Any, Any],
    org_id: FromPath[UUID],
    after_seq: FromQuery[int] = 0,
    limit: FromQuery[int] = 100,
) -> list[AuditEvent]:
    return await list_events(
        runtime(request).pool, org_id, after_seq=max(after_seq, 0), limit=min(max(limit, 1), 1000)
    )


admin_router = Router(
    path="/v1/admin",
    route_handlers=[create_org, create_agent, create_api_key, put_credential, get_audit],
    guards=[admin_guard],
    tags=["admin"],
)
