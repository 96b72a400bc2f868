"""Agents: create, list, the kill switch, and the key lifecycle."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, get, post, put
from litestar.params import FromPath

from arx.admin import agents as service
from arx.admin.service import create_agent as create
from arx.admin.types import (
    AgentInfo,
    ApiKeyInfo,
    CreateApiKey,
    IssuedKey,
    RotatedKey,
    RotateKey,
    SetAgentOwner,
    SetSwitch,
)
from arx.api import body
from arx.api.admin import docs
from arx.api.guards import access
from arx.api.state import runtime
from arx.api.types import CreateAgent
from arx.identity.principal import PrincipalKind
from arx.identity.roles import MANAGE, READ

_CREATE = docs.write(MANAGE, CreateAgent)
_LIST = docs.read(READ)
_SWITCH = docs.write(MANAGE, SetSwitch)
_OWNER = docs.write(MANAGE, SetAgentOwner)
_CREATE_KEY = docs.write(MANAGE, CreateApiKey)
_ROTATE_KEY = docs.write(MANAGE, RotateKey)
_REVOKE_KEY = docs.action(MANAGE)


@post(
    "/orgs/{org_id:uuid}/agents",
    status_code=201,
    opt=_CREATE.opt,
    operation_class=_CREATE.operation_class,
    responses=_CREATE.responses,
    summary="Register an agent with its intent manifest",
)
async def create_agent(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> AgentInfo:
    data = await body.read(request, CreateAgent)
    rt = runtime(request)
    who = access(request)
    # Unless told otherwise, a person who registers an agent owns it.
    owner = data.owner_user_id
    if owner is None and who.principal.kind is PrincipalKind.USER:
        owner = who.principal.person
    agent = await create(
        rt.control_pool, org_id, name=data.name, intent=data.intent, actor=who.actor, owner=owner
    )
    return await service.get_agent(rt.control_pool, org_id, agent.id)


@get(
    "/orgs/{org_id:uuid}/agents",
    opt=_LIST.opt,
    operation_class=_LIST.operation_class,
    responses=_LIST.responses,
    summary="The org's agents and whether each is switched off",
)
async def list_agents(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> list[AgentInfo]:
    return await service.list_agents(runtime(request).control_pool, org_id)


@get(
    "/orgs/{org_id:uuid}/agents/{agent_id:uuid}",
    opt=_LIST.opt,
    operation_class=_LIST.operation_class,
    responses=_LIST.responses,
    summary="One agent",
)
async def get_agent(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], agent_id: FromPath[UUID]
) -> AgentInfo:
    return await service.get_agent(runtime(request).control_pool, org_id, agent_id)


@put(
    "/orgs/{org_id:uuid}/agents/{agent_id:uuid}/kill-switch",
    opt=_SWITCH.opt,
    operation_class=_SWITCH.operation_class,
    responses=_SWITCH.responses,
    summary="Disable (quarantine) or re-enable one agent on every connector at once",
)
async def set_agent_switch(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], agent_id: FromPath[UUID]
) -> AgentInfo:
    data = await body.read(request, SetSwitch)
    rt = runtime(request)
    agent = await service.set_agent_switch(
        rt.control_pool, access(request), agent_id, disabled=data.disabled, reason=data.reason
    )
    # Other processes learn it from NOTIFY; this one need not wait for its own.
    rt.auth.forget(f"agents:{agent_id}")
    return agent


@post(
    "/orgs/{org_id:uuid}/agents/{agent_id:uuid}/keys",
    status_code=201,
    opt=_CREATE_KEY.opt,
    operation_class=_CREATE_KEY.operation_class,
    responses=_CREATE_KEY.responses,
    summary="Issue an API key for the agent (shown once)",
)
async def create_key(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], agent_id: FromPath[UUID]
) -> IssuedKey:
    data = await body.read_optional(request, CreateApiKey, CreateApiKey())
    return await service.create_key(
        runtime(request).control_pool,
        access(request),
        agent_id,
        name=data.name,
        lifetime=data.expires_in_seconds,
    )


@get(
    "/orgs/{org_id:uuid}/agents/{agent_id:uuid}/keys",
    opt=_LIST.opt,
    operation_class=_LIST.operation_class,
    responses=_LIST.responses,
    summary="The agent's keys: id (the key's public prefix) and metadata, never a secret",
)
async def list_keys(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], agent_id: FromPath[UUID]
) -> list[ApiKeyInfo]:
    return await service.list_keys(runtime(request).control_pool, org_id, agent_id)


@post(
    "/orgs/{org_id:uuid}/agents/{agent_id:uuid}/keys/{key_id:str}/rotate",
    status_code=201,
    opt=_ROTATE_KEY.opt,
    operation_class=_ROTATE_KEY.operation_class,
    responses=_ROTATE_KEY.responses,
    summary="Issue a successor key; the old one keeps working for the overlap",
)
async def rotate_key(
    request: Request[Any, Any, Any],
    org_id: FromPath[UUID],
    agent_id: FromPath[UUID],
    key_id: FromPath[str],
) -> RotatedKey:
    overlap = await docs.rotation_overlap(request)
    rt = runtime(request)
    rotated = await service.rotate_key(
        rt.control_pool, access(request), agent_id, key_id, overlap_seconds=overlap
    )
    rt.auth.forget(f"api_keys:{key_id}")
    return rotated


@post(
    "/orgs/{org_id:uuid}/agents/{agent_id:uuid}/keys/{key_id:str}/revoke",
    status_code=200,
    opt=_REVOKE_KEY.opt,
    operation_class=_REVOKE_KEY.operation_class,
    responses=_REVOKE_KEY.responses,
    summary="Revoke the key at once, on every API process",
)
async def revoke_key(
    request: Request[Any, Any, Any],
    org_id: FromPath[UUID],
    agent_id: FromPath[UUID],
    key_id: FromPath[str],
) -> ApiKeyInfo:
    return await service.revoke_key(
        runtime(request).control_pool, access(request), agent_id, key_id
    )


@put(
    "/orgs/{org_id:uuid}/agents/{agent_id:uuid}/owner",
    opt=_OWNER.opt,
    operation_class=_OWNER.operation_class,
    responses=_OWNER.responses,
    summary="Set the person accountable for the agent (who may not approve its requests "
    "unless the org allows it)",
)
async def set_agent_owner(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], agent_id: FromPath[UUID]
) -> AgentInfo:
    data = await body.read(request, SetAgentOwner)
    return await service.set_agent_owner(
        runtime(request).control_pool, access(request), agent_id, data.owner_user_id
    )


ROUTES = [
    set_agent_owner,
    create_agent,
    list_agents,
    get_agent,
    set_agent_switch,
    create_key,
    list_keys,
    rotate_key,
    revoke_key,
]
