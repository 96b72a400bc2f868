"""Agents' lifecycle: listing, the kill switch, and their API keys.

Keys: created (shown once), listed (id and metadata only), rotated with an
overlap (the old key keeps working until then, never longer than it would
have), revoked, and expired. Every change is an audit event naming the actor
and, through the triggers of migration 0004, a NOTIFY that makes every API
process forget the key or agent at commit.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
from psycopg_pool import AsyncConnectionPool

from arx.admin import repo
from arx.admin.types import AgentInfo, ApiKeyInfo, IssuedKey, RotatedKey
from arx.audit.service import record_admin_event
from arx.db.pool import Conn, fetch_all, fetch_dict, org_transaction
from arx.errors import ConflictError, NotFoundError
from arx.identity import keys
from arx.identity.orgs import require_member
from arx.identity.principal import Access


async def list_agents(pool: AsyncConnectionPool[Conn], org_id: UUID) -> list[AgentInfo]:
    async with org_transaction(pool, org_id) as conn:
        return await fetch_all(conn, repo.AGENTS, None, AgentInfo)


async def get_agent(pool: AsyncConnectionPool[Conn], org_id: UUID, agent_id: UUID) -> AgentInfo:
    async with org_transaction(pool, org_id) as conn:
        row = await fetch_dict(conn, repo.AGENT, {"agent_id": agent_id})
    if row is None:
        raise NotFoundError("no such agent in this org")
    return msgspec.convert(row, AgentInfo)


async def set_agent_switch(
    pool: AsyncConnectionPool[Conn], access: Access, agent_id: UUID, *, disabled: bool, reason: str
) -> AgentInfo:
    """The per-agent kill switch: disabled, the agent's every call is refused
    (403 agent_disabled) before policy is asked, on every connector."""
    async with org_transaction(pool, access.org_id) as conn:
        row = await fetch_dict(
            conn,
            repo.SET_AGENT_SWITCH,
            {"agent_id": agent_id, "disabled": disabled, "reason": reason or None},
        )
        if row is None:
            raise NotFoundError("no such agent in this org")
        await record_admin_event(
            conn,
            access.org_id,
            action="agent.disabled" if disabled else "agent.enabled",
            actor=access.actor,
            details={"agent_id": str(agent_id), "reason": reason},
        )
    return msgspec.convert(row, AgentInfo)


async def set_agent_owner(
    pool: AsyncConnectionPool[Conn], access: Access, agent_id: UUID, owner: UUID | None
) -> AgentInfo:
    async with org_transaction(pool, access.org_id) as conn:
        if owner is not None:
            await require_member(conn, owner)
        row = await fetch_dict(conn, repo.SET_AGENT_OWNER, {"agent_id": agent_id, "owner": owner})
        if row is None:
            raise NotFoundError("no such agent in this org")
        await record_admin_event(
            conn,
            access.org_id,
            action="agent.owner_set",
            actor=access.actor,
            details={"agent_id": str(agent_id), "owner_user_id": str(owner) if owner else None},
        )
    return msgspec.convert(row, AgentInfo)


async def _issue(
    conn: Conn,
    access: Access,
    agent_id: UUID,
    *,
    name: str,
    lifetime: int | None,
    not_after: datetime | None = None,
) -> IssuedKey:
    if await fetch_dict(conn, repo.AGENT, {"agent_id": agent_id}) is None:
        raise NotFoundError("no such agent in this org")
    key_id, full_key, secret_hash = keys.generate()
    row = await fetch_dict(
        conn,
        repo.INSERT_KEY,
        {
            "id": key_id,
            "org_id": access.org_id,
            "agent_id": agent_id,
            "secret_hash": secret_hash,
            "name": name,
            "created_by": access.actor,
            "lifetime": lifetime,
            "cap": not_after,
        },
    )
    expires_at: datetime | None = row["expires_at"] if row else None
    return IssuedKey(
        key_id=key_id, agent_id=agent_id, name=name, api_key=full_key, expires_at=expires_at
    )


async def create_key(
    pool: AsyncConnectionPool[Conn],
    access: Access,
    agent_id: UUID,
    *,
    name: str = "",
    lifetime: int | None = None,
) -> IssuedKey:
    async with org_transaction(pool, access.org_id) as conn:
        issued = await _issue(conn, access, agent_id, name=name, lifetime=lifetime)
        await record_admin_event(
            conn,
            access.org_id,
            action="api_key.created",
            actor=access.actor,
            details={
                "key_id": issued.key_id,
                "agent_id": str(agent_id),
                "name": name,
                "expires_at": issued.expires_at.isoformat() if issued.expires_at else None,
            },
        )
    return issued


async def list_keys(
    pool: AsyncConnectionPool[Conn], org_id: UUID, agent_id: UUID
) -> list[ApiKeyInfo]:
    async with org_transaction(pool, org_id) as conn:
        if await fetch_dict(conn, repo.AGENT, {"agent_id": agent_id}) is None:
            raise NotFoundError("no such agent in this org")
        return await fetch_all(conn, repo.KEYS_OF_AGENT, {"agent_id": agent_id}, ApiKeyInfo)


async def _live_key(conn: Conn, agent_id: UUID, key_id: str) -> ApiKeyInfo:
    row = await fetch_dict(conn, repo.KEY, {"key_id": key_id})
    if row is None or row["agent_id"] != agent_id:
        raise NotFoundError("no such key for this agent")
    return msgspec.convert(row, ApiKeyInfo)


async def rotate_key(
    pool: AsyncConnectionPool[Conn],
    access: Access,
    agent_id: UUID,
    key_id: str,
    *,
    overlap_seconds: int,
) -> RotatedKey:
    async with org_transaction(pool, access.org_id) as conn:
        old = await _live_key(conn, agent_id, key_id)
        if old.status != "active" or old.replaced_by is not None:
            state = "already rotated" if old.status == "active" else old.status
            raise ConflictError(f"key {key_id} is {state}; only an active key is rotated")
        # The successor lives no longer than the key it replaces.
        issued = await _issue(
            conn, access, agent_id, name=old.name, lifetime=None, not_after=old.expires_at
        )
        row = await fetch_dict(
            conn,
            repo.RETIRE_KEY,
            {"key_id": key_id, "new_id": issued.key_id, "overlap": overlap_seconds},
        )
        assert row is not None  # locked above
        old_expires: datetime = row["expires_at"]
        await record_admin_event(
            conn,
            access.org_id,
            action="api_key.rotated",
            actor=access.actor,
            details={
                "agent_id": str(agent_id),
                "old_key_id": key_id,
                "new_key_id": issued.key_id,
                "old_key_expires_at": old_expires.isoformat(),
            },
        )
    return RotatedKey(new=issued, old_key_id=key_id, old_key_expires_at=old_expires)


async def revoke_key(
    pool: AsyncConnectionPool[Conn], access: Access, agent_id: UUID, key_id: str
) -> ApiKeyInfo:
    """Revoked at commit, on every API process (NOTIFY arx_auth)."""
    async with org_transaction(pool, access.org_id) as conn:
        await _live_key(conn, agent_id, key_id)
        await conn.execute(repo.REVOKE_KEY, {"key_id": key_id, "actor": access.actor})
        await record_admin_event(
            conn,
            access.org_id,
            action="api_key.revoked",
            actor=access.actor,
            details={"agent_id": str(agent_id), "key_id": key_id},
        )
        return await _live_key(conn, agent_id, key_id)
