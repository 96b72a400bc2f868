"""Org lookups shared by every service that takes an org id or slug."""

from __future__ import annotations

from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from arx.db.pool import Conn, connection
from arx.errors import NotFoundError
from arx.identity import repo


async def require_org(conn: Conn, org_id: UUID) -> None:
    """Raise 404 unless the org exists (inside an org-scoped transaction)."""
    cur = await conn.execute(repo.SELECT_ORG_BY_ID, (org_id,))
    if await cur.fetchone() is None:
        raise NotFoundError(f"no org {org_id}")


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
