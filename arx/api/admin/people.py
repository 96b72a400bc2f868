"""People and admin tokens of an org."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, get, patch, post
from litestar.params import FromPath

from arx.admin import people as service
from arx.admin.types import (
    AddMember,
    AdminTokenInfo,
    CreateAdminToken,
    IssuedAdminToken,
    Member,
    RotatedAdminToken,
    RotateKey,
    UpdateMember,
)
from arx.api import body
from arx.api.admin import docs
from arx.api.guards import access
from arx.api.state import runtime
from arx.identity.roles import AUDIT, MANAGE

_LIST = docs.read(AUDIT)
_ADD = docs.write(MANAGE, AddMember)
_UPDATE = docs.write(MANAGE, UpdateMember)
_CREATE_TOKEN = docs.write(MANAGE, CreateAdminToken)
_ROTATE_TOKEN = docs.write(MANAGE, RotateKey)
_REVOKE_TOKEN = docs.action(MANAGE)


@get(
    "/orgs/{org_id:uuid}/members",
    opt=_LIST.opt,
    operation_class=_LIST.operation_class,
    responses=_LIST.responses,
    summary="The org's people and their roles",
)
async def list_members(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> list[Member]:
    return await service.list_members(runtime(request).control_pool, org_id)


@post(
    "/orgs/{org_id:uuid}/members",
    status_code=201,
    opt=_ADD.opt,
    operation_class=_ADD.operation_class,
    responses=_ADD.responses,
    summary="Add a person (they sign in with the IdP) with roles",
)
async def add_member(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> Member:
    data = await body.read(request, AddMember)
    return await service.add_member(
        runtime(request).control_pool,
        access(request),
        email=data.email,
        display_name=data.display_name,
        roles=list(data.roles),
    )


@patch(
    "/orgs/{org_id:uuid}/members/{user_id:uuid}",
    opt=_UPDATE.opt,
    operation_class=_UPDATE.operation_class,
    responses=_UPDATE.responses,
    summary="Change a person's roles, or deactivate them (access ends at once)",
)
async def update_member(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], user_id: FromPath[UUID]
) -> Member:
    data = await body.read(request, UpdateMember)
    return await service.update_member(
        runtime(request).control_pool,
        access(request),
        user_id,
        roles=list(data.roles) if data.roles is not None else None,
        active=data.active,
    )


@get(
    "/orgs/{org_id:uuid}/admin-tokens",
    opt=_LIST.opt,
    operation_class=_LIST.operation_class,
    responses=_LIST.responses,
    summary="The org's admin tokens (never their secrets)",
)
async def list_tokens(
    request: Request[Any, Any, Any], org_id: FromPath[UUID]
) -> list[AdminTokenInfo]:
    return await service.list_tokens(runtime(request).control_pool, org_id)


@post(
    "/orgs/{org_id:uuid}/admin-tokens",
    status_code=201,
    opt=_CREATE_TOKEN.opt,
    operation_class=_CREATE_TOKEN.operation_class,
    responses=_CREATE_TOKEN.responses,
    summary="Issue a named admin token with roles (shown once)",
)
async def create_token(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> IssuedAdminToken:
    data = await body.read(request, CreateAdminToken)
    return await service.create_token(
        runtime(request).control_pool,
        access(request),
        name=data.name,
        roles=list(data.roles),
        lifetime=data.expires_in_seconds,
    )


@post(
    "/orgs/{org_id:uuid}/admin-tokens/{token_id:str}/rotate",
    status_code=201,
    opt=_ROTATE_TOKEN.opt,
    operation_class=_ROTATE_TOKEN.operation_class,
    responses=_ROTATE_TOKEN.responses,
    summary="Issue a successor token; the old one keeps working for the overlap",
)
async def rotate_token(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], token_id: FromPath[str]
) -> RotatedAdminToken:
    overlap = await docs.rotation_overlap(request)
    return await service.rotate_token(
        runtime(request).control_pool, access(request), token_id, overlap_seconds=overlap
    )


@post(
    "/orgs/{org_id:uuid}/admin-tokens/{token_id:str}/revoke",
    status_code=200,
    opt=_REVOKE_TOKEN.opt,
    operation_class=_REVOKE_TOKEN.operation_class,
    responses=_REVOKE_TOKEN.responses,
    summary="Revoke an admin token at once",
)
async def revoke_token(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], token_id: FromPath[str]
) -> AdminTokenInfo:
    return await service.revoke_token(runtime(request).control_pool, access(request), token_id)


ROUTES = [
    list_members,
    add_member,
    update_member,
    list_tokens,
    create_token,
    rotate_token,
    revoke_token,
]
