"""The root ``/.search`` (RFC 7644 §3.4.3): the org's users and groups at once."""

from __future__ import annotations

from uuid import UUID

from psycopg_pool import AsyncConnectionPool
from scim2_models import ListResponse, SearchRequest

from arx.db.pool import Conn
from arx.scim import groups, users
from arx.scim.service import listing
from arx.scim.types import Group, GroupRow, User, UserRow


async def search_all(
    pool: AsyncConnectionPool[Conn],
    org_id: UUID,
    request: SearchRequest[User | Group],
    base: str,
) -> ListResponse[User | Group]:
    """Users first, then groups, each in their stable order; an attribute only
    one of them has is false for the other (RFC 7644 §3.4.2.1)."""
    rows: list[UserRow | GroupRow] = [
        *await users.user_rows(pool, org_id),
        *await groups.group_rows(pool, org_id),
    ]

    def build(row: UserRow | GroupRow) -> User | Group:
        if isinstance(row, UserRow):
            return users.resource(row, base)
        return groups.resource(row, base)

    return await listing(request, rows, build, User | Group)
