"""Orgs: bootstrap, who am I, new orgs, and org-wide switches and allowlists."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, get, post, put
from litestar.params import FromPath

from arx.admin import orgs as service
from arx.admin.types import (
    Bootstrap,
    Bootstrapped,
    OrgInfo,
    OrgMembership,
    SetAllowlists,
    SetApprovalSettings,
    SetSwitch,
    WhoAmI,
)
from arx.api import body
from arx.api.admin import docs
from arx.api.guards import access, principal
from arx.api.openapi import ADMIN_TOKEN, BOOTSTRAP_TOKEN, RouteDoc, json_schema, refuse_nul
from arx.api.state import runtime
from arx.api.types import CreateOrg
from arx.db.pool import connection
from arx.errors import BootstrapClosedError, ConflictError, RoleRequiredError
from arx.identity import repo as identity_repo
from arx.identity.principal import PrincipalKind
from arx.identity.roles import MANAGE, READ

_BOOTSTRAP = RouteDoc(
    security=BOOTSTRAP_TOKEN,
    errors=(400, 401, 403, 409, 413, 415, 422, 500, 503),
    body=refuse_nul(json_schema(Bootstrap)),
    bootstrap=True,
)
_WHOAMI = RouteDoc(security=ADMIN_TOKEN, errors=(401, 403, 500, 503))
_CREATE_ORG = RouteDoc(
    security=ADMIN_TOKEN,
    errors=(400, 401, 403, 409, 413, 415, 422, 500, 503),
    body=refuse_nul(json_schema(CreateOrg)),
)
_GET_ORG = docs.read(READ)
_SWITCH = docs.write(MANAGE, SetSwitch)
_ALLOWLISTS = docs.write(MANAGE, SetAllowlists)
_APPROVALS = docs.write(MANAGE, SetApprovalSettings)


@post(
    "/bootstrap",
    status_code=201,
    opt=_BOOTSTRAP.opt,
    operation_class=_BOOTSTRAP.operation_class,
    responses=_BOOTSTRAP.responses,
    summary="Create the first org, its owner and an owner token (bootstrap token only)",
)
async def bootstrap(request: Request[Any, Any, Any]) -> Bootstrapped:
    if principal(request).kind is not PrincipalKind.BOOTSTRAP:
        raise BootstrapClosedError("only the bootstrap token bootstraps")
    data = await body.read(request, Bootstrap)
    return await service.bootstrap(runtime(request).control_pool, data, actor=principal(request))


@get(
    "/me",
    opt=_WHOAMI.opt,
    operation_class=_WHOAMI.operation_class,
    responses=_WHOAMI.responses,
    summary="The caller, and the orgs and roles they hold",
)
async def whoami(request: Request[Any, Any, Any]) -> WhoAmI:
    who = principal(request)
    rt = runtime(request)
    orgs: list[OrgMembership] = []
    if who.kind is PrincipalKind.TOKEN and who.token_org is not None:
        info = await service.get_org(rt.control_pool, who.token_org)
        orgs = [
            OrgMembership(
                org_id=info.id, slug=info.slug, name=info.name, roles=sorted(who.token_roles)
            )
        ]
    elif who.kind is PrincipalKind.USER:
        async with connection(rt.control_pool) as conn:
            cur = await conn.execute(identity_repo.USER_ORGS, (UUID(who.id),))
            rows = await cur.fetchall()
        orgs = [OrgMembership(org_id=r[0], slug=r[1], name=r[2], roles=list(r[3])) for r in rows]
    return WhoAmI(kind=who.kind.value, id=who.id, name=who.name, orgs=orgs)


@post(
    "/orgs",
    status_code=201,
    opt=_CREATE_ORG.opt,
    operation_class=_CREATE_ORG.operation_class,
    responses=_CREATE_ORG.responses,
    summary="A signed-in person creates an org and becomes its owner",
)
async def create_org(request: Request[Any, Any, Any]) -> OrgInfo:
    who = principal(request)
    if who.kind is not PrincipalKind.USER:
        raise RoleRequiredError(
            "orgs are created by people (an IdP access token), not by an org's admin token"
        )
    async with connection(runtime(request).control_pool) as conn:
        cur = await conn.execute(identity_repo.USER_ORGS, (UUID(who.id),))
        if not await cur.fetchall():
            raise RoleRequiredError("only an active member of some org creates orgs")
    data = await body.read(request, CreateOrg)
    if data.slug in runtime(request).settings.sandbox_orgs:
        # Whoever founds it would reach this host's loopback with its credentials.
        raise ConflictError(
            f"the slug {data.slug!r} is reserved: the operator runs a sandbox for it"
        )
    return await service.create_org(
        runtime(request).control_pool, slug=data.slug, name=data.name, creator=who
    )


@get(
    "/orgs/{org_id:uuid}",
    opt=_GET_ORG.opt,
    operation_class=_GET_ORG.operation_class,
    responses=_GET_ORG.responses,
    summary="The org, its kill switch and allowlists",
)
async def get_org(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> OrgInfo:
    return await service.get_org(runtime(request).control_pool, org_id)


@put(
    "/orgs/{org_id:uuid}/kill-switch",
    opt=_SWITCH.opt,
    operation_class=_SWITCH.operation_class,
    responses=_SWITCH.responses,
    summary="Disable (or re-enable) every agent of the org at once",
)
async def set_org_switch(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> OrgInfo:
    data = await body.read(request, SetSwitch)
    rt = runtime(request)
    org = await service.set_org_switch(
        rt.control_pool, access(request), disabled=data.disabled, reason=data.reason
    )
    # Other processes learn it from NOTIFY; this one need not wait for its own.
    rt.auth.forget(f"orgs:{org_id}")
    return org


@put(
    "/orgs/{org_id:uuid}/allowlists",
    opt=_ALLOWLISTS.opt,
    operation_class=_ALLOWLISTS.operation_class,
    responses=_ALLOWLISTS.responses,
    summary="The networks agent keys and admin credentials of this org may be used from",
)
async def set_allowlists(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> OrgInfo:
    data = await body.read(request, SetAllowlists)
    rt = runtime(request)
    org = await service.set_allowlists(
        rt.control_pool, access(request), agent=data.agent, admin=data.admin
    )
    rt.auth.forget(f"orgs:{org_id}")
    return org


@put(
    "/orgs/{org_id:uuid}/approval-settings",
    opt=_APPROVALS.opt,
    operation_class=_APPROVALS.operation_class,
    responses=_APPROVALS.responses,
    summary="How long escalations wait by default, and whether agents' owners may approve them",
)
async def set_approval_settings(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> OrgInfo:
    data = await body.read(request, SetApprovalSettings)
    return await service.set_approval_settings(runtime(request).control_pool, access(request), data)


ROUTES = [
    bootstrap,
    whoami,
    create_org,
    get_org,
    set_org_switch,
    set_allowlists,
    set_approval_settings,
]
