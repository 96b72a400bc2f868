"""Creating agents and credentials.

Every change appends an ``admin`` audit event in the same transaction as the
change it records, so the trail never misses one. Responses never contain a
stored secret; an API key is returned exactly once, when it is created.
"""

from __future__ import annotations

import uuid
from uuid import UUID

import msgspec
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from arx.audit.service import record_admin_event
from arx.db.pool import Conn, org_transaction
from arx.errors import ConflictError
from arx.identity import repo
from arx.identity.orgs import require_member, require_org
from arx.identity.types import Agent, IntentManifest


async def create_agent(
    pool: AsyncConnectionPool[Conn],
    org_id: UUID,
    *,
    name: str,
    intent: IntentManifest,
    actor: str,
    owner: UUID | None = None,
) -> Agent:
    """Register an agent; ``owner`` is the person accountable for it (see
    ``Org.owners_may_approve``), who must be an active member of the org."""
    agent = Agent(id=uuid.uuid4(), org_id=org_id, name=name, intent=intent)
    manifest = msgspec.to_builtins(intent)
    try:
        async with org_transaction(pool, org_id) as conn:
            await require_org(conn, org_id)
            if owner is not None:
                await require_member(conn, owner)
            await conn.execute(repo.INSERT_AGENT, (agent.id, org_id, name, Jsonb(manifest), owner))
            await record_admin_event(
                conn,
                org_id,
                action="agent.created",
                actor=actor,
                details={
                    "agent_id": str(agent.id),
                    "name": name,
                    "intent": manifest,
                    "owner_user_id": str(owner) if owner else None,
                },
            )
    except ConflictError:
        raise ConflictError(f"an agent named {name!r} already exists") from None
    return agent
