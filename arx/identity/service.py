"""Authentication of agents and administration of orgs, agents and keys.

Every admin action appends an ``admin`` audit event in the same transaction
as the change it records, so the trail never misses one.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from arx.audit.service import record_admin_event
from arx.db.pool import Conn, connection, org_transaction
from arx.errors import AuthenticationError, ConflictError, NotFoundError
from arx.identity import keys, repo
from arx.identity.orgs import require_org
from arx.identity.types import Agent, AgentIdentity, IntentManifest, IssuedApiKey, Org

# Compared against when a key id is unknown, so both paths hash and compare.
_DUMMY_HASH = keys.hash_secret("arx-dummy-secret")


async def authenticate(pool: AsyncConnectionPool[Conn], authorization: str | None) -> AgentIdentity:
    key_id, secret = keys.parse_bearer(authorization)
    async with connection(pool) as conn:
        cur = await conn.execute(repo.RESOLVE_KEY, (key_id,))
        row = await cur.fetchone()
    stored = row[5] if row else _DUMMY_HASH
    if not keys.verify(secret, stored) or row is None:
        raise AuthenticationError("the API key is not valid")
    return AgentIdentity(
        org_id=row[0],
        org_slug=row[1],
        agent_id=row[2],
        agent_name=row[3],
        intent=msgspec.convert(row[4], IntentManifest),
    )


def _conflict(what: str) -> ConflictError:
    return ConflictError(f"{what} already exists")


async def create_org(pool: AsyncConnectionPool[Conn], *, slug: str, name: str, actor: str) -> Org:
    org = Org(id=uuid.uuid4(), slug=slug, name=name)
    try:
        async with org_transaction(pool, org.id) as conn:
            await conn.execute(repo.INSERT_ORG, (org.id, org.slug, org.name))
            await record_admin_event(
                conn, org.id, action="org.created", actor=actor, details={"slug": slug}
            )
    except psycopg.errors.UniqueViolation:
        raise _conflict(f"an org with slug {slug!r}") from None
    return org


def _agent(row: tuple[Any, ...]) -> Agent:
    return Agent(
        id=row[0], org_id=row[1], name=row[2], intent=msgspec.convert(row[3], IntentManifest)
    )


async def create_agent(
    pool: AsyncConnectionPool[Conn],
    org_id: UUID,
    *,
    name: str,
    intent: IntentManifest,
    actor: str,
) -> Agent:
    agent = Agent(id=uuid.uuid4(), org_id=org_id, name=name, intent=intent)
    try:
        async with org_transaction(pool, org_id) as conn:
            await require_org(conn, org_id)
            await conn.execute(
                repo.INSERT_AGENT,
                (agent.id, org_id, name, Jsonb(msgspec.to_builtins(intent))),
            )
            await record_admin_event(
                conn,
                org_id,
                action="agent.created",
                actor=actor,
                details={
                    "agent_id": str(agent.id),
                    "name": name,
                    "intent": msgspec.to_builtins(intent),
                },
            )
    except psycopg.errors.UniqueViolation:
        raise _conflict(f"an agent named {name!r}") from None
    return agent


async def find_agent(pool: AsyncConnectionPool[Conn], org_id: UUID, name: str) -> Agent:
    async with org_transaction(pool, org_id) as conn:
        cur = await conn.execute(repo.SELECT_AGENT_BY_NAME, (name,))
        row = await cur.fetchone()
    if row is None:
        raise NotFoundError(f"no agent named {name!r} in this org")
    return _agent(row)


async def create_api_key(
    pool: AsyncConnectionPool[Conn], org_id: UUID, agent_id: UUID, *, actor: str
) -> IssuedApiKey:
    key_id, full_key, secret_hash = keys.generate()
    async with org_transaction(pool, org_id) as conn:
        cur = await conn.execute(repo.SELECT_AGENT, (agent_id,))
        if await cur.fetchone() is None:
            raise NotFoundError(f"no agent {agent_id} in this org")
        await conn.execute(repo.INSERT_API_KEY, (key_id, org_id, agent_id, secret_hash))
        await record_admin_event(
            conn,
            org_id,
            action="api_key.created",
            actor=actor,
            details={"key_id": key_id, "agent_id": str(agent_id)},
        )
    return IssuedApiKey(key_id=key_id, agent_id=agent_id, api_key=full_key)


async def org_id_for(pool: AsyncConnectionPool[Conn], ref: str) -> UUID:
    """Resolve an org given as a UUID or a slug."""
    try:
        return UUID(ref)
    except ValueError:
        pass
    async with connection(pool) as conn:
        cur = await conn.execute(repo.ORG_ID_FOR_SLUG, (ref,))
        row = await cur.fetchone()
    if row is None or row[0] is None:
        raise NotFoundError(f"no org with slug {ref!r}")
    org_id: UUID = row[0]
    return org_id
