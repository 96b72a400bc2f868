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
from litestar.openapi.spec import Reference
from litestar.params import FromPath, FromQuery

from arx.admin import service as admin
from arx.api import body
from arx.api.openapi import ADMIN_TOKEN, RouteDoc, json_schema, refuse_nul
from arx.api.state import runtime
from arx.api.types import CreateAgent, CreateOrg, StoreCredential
from arx.audit.service import list_events
from arx.audit.types import AuditEvent
from arx.connectors.catalog import connectors
from arx.errors import AdminAuthenticationError
from arx.identity.types import Agent, IssuedApiKey, Org
from arx.vault.types import CredentialInfo

ACTOR = "admin-api"
# An int the database's bigint holds: audit paging is clamped into it.
_MAX_SEQ = 2**63 - 1

# Each body is stored as text or jsonb: its strings may not hold NUL.
_ORG_DOC = RouteDoc(
    security=ADMIN_TOKEN,
    errors=(400, 401, 409, 413, 415, 422, 500, 503),
    body=refuse_nul(json_schema(CreateOrg)),
)
_AGENT_DOC = RouteDoc(
    security=ADMIN_TOKEN,
    errors=(400, 401, 404, 409, 413, 415, 422, 500, 503),
    body=refuse_nul(json_schema(CreateAgent)),
)
_KEY_DOC = RouteDoc(security=ADMIN_TOKEN, errors=(401, 404, 500, 503))
_CREDENTIAL_DOC = RouteDoc(
    security=ADMIN_TOKEN,
    errors=(400, 401, 404, 409, 413, 415, 422, 500, 503),
    # Its base_url rule depends on the deployment: see arx.api.openapi.components.
    body=Reference(ref="#/components/requestBodies/StoreCredential"),
    path_enums={"connector": tuple(sorted(connectors()))},
)
_AUDIT_DOC = RouteDoc(security=ADMIN_TOKEN, errors=(400, 401, 404, 500, 503))


def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    expected = connection.app.state.runtime.settings.admin_token
    header = connection.headers.get("authorization", "")
    scheme, _sep, token = header.partition(" ")
    if not expected:
        raise AdminAuthenticationError("the admin API is disabled (ARX_ADMIN_TOKEN is not set)")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise AdminAuthenticationError("a valid admin token is required")


@post(
    "/orgs",
    status_code=201,
    operation_class=_ORG_DOC.operation_class,
    responses=_ORG_DOC.responses,
)
async def create_org(request: Request[Any, Any, Any]) -> Org:
    data = await body.read(request, CreateOrg)
    return await admin.create_org(
        runtime(request).pool, slug=data.slug, name=data.name, actor=ACTOR
    )


@post(
    "/orgs/{org_id:uuid}/agents",
    status_code=201,
    operation_class=_AGENT_DOC.operation_class,
    responses=_AGENT_DOC.responses,
)
async def create_agent(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> Agent:
    data = await body.read(request, CreateAgent)
    return await admin.create_agent(
        runtime(request).pool, org_id, name=data.name, intent=data.intent, actor=ACTOR
    )


@post(
    "/orgs/{org_id:uuid}/agents/{agent_id:uuid}/keys",
    status_code=201,
    operation_class=_KEY_DOC.operation_class,
    responses=_KEY_DOC.responses,
)
async def create_api_key(
    org_id: FromPath[UUID], agent_id: FromPath[UUID], request: Request[Any, Any, Any]
) -> IssuedApiKey:
    return await admin.create_api_key(runtime(request).pool, org_id, agent_id, actor=ACTOR)


@put(
    "/orgs/{org_id:uuid}/credentials/{connector:str}",
    status_code=201,
    operation_class=_CREDENTIAL_DOC.operation_class,
    responses=_CREDENTIAL_DOC.responses,
)
async def put_credential(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], connector: FromPath[str]
) -> CredentialInfo:
    data = await body.read(request, StoreCredential)
    rt = runtime(request)
    return await admin.store_credential(
        rt.pool,
        rt.vault,
        org_id=org_id,
        connector=connector,
        secret=data.secret,
        base_url=data.base_url,
        allow_insecure_urls=rt.settings.allow_insecure_connector_urls,
        actor=ACTOR,
    )


@get(
    "/orgs/{org_id:uuid}/audit",
    operation_class=_AUDIT_DOC.operation_class,
    responses=_AUDIT_DOC.responses,
)
async def get_audit(
    request: Request[Any, Any, Any],
    org_id: FromPath[UUID],
    after_seq: FromQuery[int] = 0,
    limit: FromQuery[int] = 100,
) -> list[AuditEvent]:
    return await list_events(
        runtime(request).pool,
        org_id,
        after_seq=min(max(after_seq, 0), _MAX_SEQ),
        limit=min(max(limit, 1), 1000),
    )


admin_router = Router(
    path="/v1/admin",
    route_handlers=[create_org, create_agent, create_api_key, put_credential, get_audit],
    guards=[admin_guard],
    tags=["admin"],
)
