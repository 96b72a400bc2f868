"""People in an org (members and their roles) and the org's admin tokens.

Nobody grants more than they hold (``arx.identity.roles.may_grant``), and
the last active owner cannot be demoted or deactivated: an org always has
someone who can administer it. Each change is an audit event naming the actor.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
from psycopg.errors import UniqueViolation
from psycopg_pool import AsyncConnectionPool

from arx.admin import repo
from arx.admin.types import (
    AdminTokenInfo,
    IssuedAdminToken,
    Member,
    RotatedAdminToken,
)
from arx.audit.service import record_admin_event
from arx.db.pool import Conn, fetch_all, fetch_dict, org_transaction
from arx.errors import ConflictError, NotFoundError, RoleRequiredError
from arx.identity import keys
from arx.identity import repo as identity_repo
from arx.identity.principal import Access
from arx.identity.roles import Role, may_grant


def _check_grant(access: Access, roles: list[str]) -> None:
    if not may_grant(access.roles, frozenset(roles)):
        raise RoleRequiredError(
            f"you cannot grant {', '.join(sorted(roles))}: nobody grants more than they "
            "hold, and only owners make owners or provisioning tokens"
        )


async def _member(conn: Conn, user_id: UUID) -> Member:
    row = await fetch_dict(conn, repo.MEMBER, {"user_id": user_id})
    if row is None:
        raise NotFoundError("no such member in this org")
    return msgspec.convert(row, Member)


async def add_member_in(
    conn: Conn,
    access: Access,
    *,
    email: str,
    display_name: str,
    roles: list[str],
    password_hash: str | None = None,
) -> Member:
    _check_grant(access, roles)
    cur = await conn.execute(identity_repo.USER_FOR_EMAIL, (email,))
    row = await cur.fetchone()
    assert row is not None
    user_id: UUID = row[0]
    try:
        async with conn.transaction():
            await conn.execute(
                repo.INSERT_MEMBER,
                {
                    "org_id": access.org_id,
                    "user_id": user_id,
                    "roles": sorted(set(roles)),
                    "user_name": email,
                    "display_name": display_name,
                },
            )
    except UniqueViolation:
        raise ConflictError(f"{email} is already a member of this org") from None
    if password_hash is not None:
        cur = await conn.execute(identity_repo.SET_PASSWORD, (user_id, password_hash))
        row = await cur.fetchone()
        if not row or not row[0]:
            # Only a founding owner who belongs to no other org gets a password.
            raise ConflictError(f"{email} already has an account; sign in with it")
    await record_admin_event(
        conn,
        access.org_id,
        action="member.added",
        actor=access.actor,
        details={"user_id": str(user_id), "email": email, "roles": sorted(set(roles))},
    )
    return await _member(conn, user_id)


async def add_member(
    pool: AsyncConnectionPool[Conn],
    access: Access,
    *,
    email: str,
    display_name: str,
    roles: list[str],
) -> Member:
    async with org_transaction(pool, access.org_id) as conn:
        return await add_member_in(
            conn, access, email=email, display_name=display_name, roles=roles
        )


async def list_members(pool: AsyncConnectionPool[Conn], org_id: UUID) -> list[Member]:
    async with org_transaction(pool, org_id) as conn:
        return await fetch_all(conn, repo.MEMBERS, None, Member)


async def update_member_in(
    conn: Conn,
    access: Access,
    user_id: UUID,
    *,
    roles: list[str] | None,
    active: bool | None,
    action: str = "member.updated",
) -> Member:
    # One change to an org's people at a time: two admins demoting the last
    # two owners at once must not both see "another owner remains".
    await conn.execute(repo.LOCK_PEOPLE, {"org_id": access.org_id})
    before = await _member(conn, user_id)
    # What the member holds whether or not active: reactivating grants it again.
    held = set(before.roles) | set(before.effective_roles)
    if Role.OWNER in held and Role.OWNER not in access.roles:
        raise RoleRequiredError("only an owner changes an owner")
    if roles is not None:
        # Taking a role away is as strong as giving it.
        _check_grant(access, sorted(set(roles) ^ set(before.roles)))
    if active and not before.active:
        _check_grant(access, sorted(set(roles) if roles is not None else held))
    if roles is None and (active is None or active == before.active):
        return before  # nothing changes, nothing to record
    if Role.OWNER in held and (active is False or (roles is not None and Role.OWNER not in roles)):
        cur = await conn.execute(repo.OTHER_ACTIVE_OWNERS, {"user_id": user_id})
        row = await cur.fetchone()
        if not row or row[0] == 0:
            raise ConflictError("the org's last owner cannot be demoted or deactivated")
    await conn.execute(
        repo.UPDATE_MEMBER,
        {
            "user_id": user_id,
            "roles": sorted(set(roles)) if roles is not None else None,
            "active": active,
        },
    )
    after = await _member(conn, user_id)
    await record_admin_event(
        conn,
        access.org_id,
        action=action,
        actor=access.actor,
        details={
            "user_id": str(user_id),
            "email": after.email,
            "roles": {"before": before.roles, "after": after.roles},
            "active": {"before": before.active, "after": after.active},
        },
    )
    return after


async def update_member(
    pool: AsyncConnectionPool[Conn],
    access: Access,
    user_id: UUID,
    *,
    roles: list[str] | None,
    active: bool | None,
) -> Member:
    async with org_transaction(pool, access.org_id) as conn:
        return await update_member_in(conn, access, user_id, roles=roles, active=active)


# --- admin tokens -------------------------------------------------------------------------


async def issue_token_in(
    conn: Conn,
    access: Access,
    *,
    name: str,
    roles: list[str],
    lifetime: int | None,
    not_after: datetime | None = None,
) -> IssuedAdminToken:
    """A token no wider than its maker's roles, expiring no later than ``not_after``
    nor than the token that makes it."""
    _check_grant(access, roles)
    caps = [t for t in (not_after, access.principal.token_expires_at) if t is not None]
    token_id, token, secret_hash = keys.generate(keys.ADMIN_PREFIX)
    row = await fetch_dict(
        conn,
        repo.INSERT_TOKEN,
        {
            "id": token_id,
            "org_id": access.org_id,
            "name": name,
            "roles": sorted(set(roles)),
            "secret_hash": secret_hash,
            "created_by": access.actor,
            "created_by_user": access.principal.person,
            "lifetime": lifetime,
            "cap": min(caps) if caps else None,
        },
    )
    expires_at: datetime | None = row["expires_at"] if row else None
    await record_admin_event(
        conn,
        access.org_id,
        action="admin_token.created",
        actor=access.actor,
        details={"token_id": token_id, "name": name, "roles": sorted(set(roles))},
    )
    return IssuedAdminToken(
        token_id=token_id, name=name, roles=sorted(set(roles)), token=token, expires_at=expires_at
    )


async def create_token(
    pool: AsyncConnectionPool[Conn],
    access: Access,
    *,
    name: str,
    roles: list[str],
    lifetime: int | None,
) -> IssuedAdminToken:
    async with org_transaction(pool, access.org_id) as conn:
        return await issue_token_in(conn, access, name=name, roles=roles, lifetime=lifetime)


async def list_tokens(pool: AsyncConnectionPool[Conn], org_id: UUID) -> list[AdminTokenInfo]:
    async with org_transaction(pool, org_id) as conn:
        return await fetch_all(conn, repo.TOKENS, None, AdminTokenInfo)


async def _token(conn: Conn, token_id: str) -> AdminTokenInfo:
    row = await fetch_dict(conn, repo.TOKEN, {"token_id": token_id})
    if row is None:
        raise NotFoundError("no such admin token in this org")
    return msgspec.convert(row, AdminTokenInfo)


async def rotate_token(
    pool: AsyncConnectionPool[Conn], access: Access, token_id: str, *, overlap_seconds: int
) -> RotatedAdminToken:
    async with org_transaction(pool, access.org_id) as conn:
        old = await _token(conn, token_id)
        if old.status != "active" or old.replaced_by is not None:
            raise ConflictError(f"admin token {token_id} cannot be rotated: it is not active")
        # The successor lives no longer than the token it replaces.
        issued = await issue_token_in(
            conn, access, name=old.name, roles=old.roles, lifetime=None, not_after=old.expires_at
        )
        row = await fetch_dict(
            conn,
            repo.RETIRE_TOKEN,
            {"token_id": token_id, "new_id": issued.token_id, "overlap": overlap_seconds},
        )
        assert row is not None
        old_expires: datetime = row["expires_at"]
        await record_admin_event(
            conn,
            access.org_id,
            action="admin_token.rotated",
            actor=access.actor,
            details={
                "old_token_id": token_id,
                "new_token_id": issued.token_id,
                "old_token_expires_at": old_expires.isoformat(),
            },
        )
    return RotatedAdminToken(new=issued, old_token_id=token_id, old_token_expires_at=old_expires)


async def revoke_token(
    pool: AsyncConnectionPool[Conn], access: Access, token_id: str
) -> AdminTokenInfo:
    async with org_transaction(pool, access.org_id) as conn:
        old = await _token(conn, token_id)
        # Revoking a token is as strong as issuing it: admins leave owners' and
        # provisioning tokens alone.
        _check_grant(access, old.roles)
        await conn.execute(repo.REVOKE_TOKEN, {"token_id": token_id, "actor": access.actor})
        await record_admin_event(
            conn,
            access.org_id,
            action="admin_token.revoked",
            actor=access.actor,
            details={"token_id": token_id},
        )
        return await _token(conn, token_id)
