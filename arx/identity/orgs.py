"""Org lookups shared by every service that takes an org id."""

from __future__ import annotations

from uuid import UUID

from arx.db.pool import Conn
from arx.errors import InvalidFieldError, NotFoundError
from arx.identity import repo


async def require_org(conn: Conn, org_id: UUID) -> None:
    """Raise 404 unless the org exists (inside an org-scoped transaction)."""
    cur = await conn.execute(repo.SELECT_ORG_BY_ID, (org_id,))
    if await cur.fetchone() is None:
        raise NotFoundError(f"no org {org_id}")


async def require_member(conn: Conn, user_id: UUID) -> None:
    """Raise 422 unless ``user_id`` is an active member of the transaction's org."""
    cur = await conn.execute(repo.ACTIVE_MEMBER, (user_id,))
    if await cur.fetchone() is None:
        raise InvalidFieldError(
            "owner_user_id must be an active member of this org", field="owner_user_id"
        )
