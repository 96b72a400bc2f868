"""Orgs: the bootstrap, new orgs, and org-wide settings (kill switch, allowlists,
approvals).

The bootstrap token creates the first org with its owner and nothing else;
an advisory lock makes "no owner exists yet" and the creation one step, so
two racing bootstraps cannot both succeed.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from uuid import UUID

import msgspec
from psycopg.errors import UniqueViolation
from psycopg_pool import AsyncConnectionPool

from arx.admin import repo
from arx.admin.people import add_member_in, issue_token_in
from arx.admin.types import Bootstrap, Bootstrapped, OrgInfo, SetApprovalSettings
from arx.audit.service import record_admin_event
from arx.db.pool import Conn, fetch_dict, org_transaction
from arx.errors import BootstrapClosedError, ConflictError, InvalidFieldError
from arx.identity import repo as identity_repo
from arx.identity.network import parse_networks
from arx.identity.passwords import hash_password
from arx.identity.principal import Access, Principal
from arx.identity.roles import Role

_BOOTSTRAP_LOCK = 0x41525801  # "ARX\1"


async def _org(conn: Conn, org_id: UUID) -> OrgInfo:
    row = await fetch_dict(conn, repo.ORG, {"org_id": org_id})
    assert row is not None  # the guard let the caller in: the org exists
    return msgspec.convert(row, OrgInfo)


async def get_org(pool: AsyncConnectionPool[Conn], org_id: UUID) -> OrgInfo:
    async with org_transaction(pool, org_id) as conn:
        return await _org(conn, org_id)


# Org bundles are served under the org's slug beside the base library's.
RESERVED_SLUGS = frozenset({"arx-base"})


async def _insert_org(conn: Conn, org_id: UUID, slug: str, name: str, actor: str) -> None:
    if slug in RESERVED_SLUGS:
        raise InvalidFieldError(f"the slug {slug!r} is reserved", field=None)
    try:
        async with conn.transaction():
            await conn.execute(identity_repo.INSERT_ORG, (org_id, slug, name))
    except UniqueViolation:
        raise ConflictError(f"an org with slug {slug!r} already exists") from None
    await record_admin_event(
        conn, org_id, action="org.created", actor=actor, details={"slug": slug}
    )


async def _found_in(
    conn: Conn, org_id: UUID, request: Bootstrap, password_hash: str | None, actor: Principal
) -> Bootstrapped:
    await _insert_org(conn, org_id, request.org_slug, request.org_name, actor.actor)
    access = Access(principal=actor, org_id=org_id, roles=frozenset({Role.OWNER}))
    owner = await add_member_in(
        conn,
        access,
        email=request.owner_email,
        display_name=request.owner_display_name,
        roles=[Role.OWNER],
        password_hash=password_hash,
    )
    token = await issue_token_in(
        conn, access, name="owner token", roles=[Role.OWNER], lifetime=None
    )
    return Bootstrapped(org=await _org(conn, org_id), owner=owner, owner_token=token)


async def _password_hash(request: Bootstrap) -> str | None:
    if not request.owner_password:
        return None
    return await asyncio.to_thread(hash_password, request.owner_password)


async def bootstrap(
    pool: AsyncConnectionPool[Conn], request: Bootstrap, *, actor: Principal
) -> Bootstrapped:
    """The first org, its owner and an owner token; refused once any owner exists."""
    password_hash = await _password_hash(request)
    org_id = uuid.uuid4()
    async with org_transaction(pool, org_id) as conn:
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_BOOTSTRAP_LOCK,))
        cur = await conn.execute(identity_repo.OWNER_EXISTS)
        row = await cur.fetchone()
        if row and row[0]:
            raise BootstrapClosedError(
                "an owner already exists: the bootstrap token is closed; owners create orgs"
            )
        return await _found_in(conn, org_id, request, password_hash, actor)


async def found_org(
    pool: AsyncConnectionPool[Conn], request: Bootstrap, *, actor: Principal
) -> Bootstrapped:
    """An org with its owner, whether or not other orgs have owners: what an
    operator's own tooling (the seed, tests) does with database access. Not
    reachable through the API, where only bootstrap and signed-in people found orgs."""
    password_hash = await _password_hash(request)
    org_id = uuid.uuid4()
    async with org_transaction(pool, org_id) as conn:
        return await _found_in(conn, org_id, request, password_hash, actor)


async def create_org(
    pool: AsyncConnectionPool[Conn], *, slug: str, name: str, creator: Principal
) -> OrgInfo:
    """A signed-in person creates an org and becomes its owner."""
    org_id = uuid.uuid4()
    async with org_transaction(pool, org_id) as conn:
        await _insert_org(conn, org_id, slug, name, creator.actor)
        await conn.execute(
            repo.INSERT_MEMBER,
            {
                "org_id": org_id,
                "user_id": UUID(creator.id),
                "roles": [Role.OWNER.value],
                "user_name": creator.name,
                "display_name": "",
            },
        )
        await record_admin_event(
            conn,
            org_id,
            action="member.added",
            actor=creator.actor,
            details={"user_id": creator.id, "email": creator.name, "roles": ["owner"]},
        )
        return await _org(conn, org_id)


async def set_org_switch(
    pool: AsyncConnectionPool[Conn], access: Access, *, disabled: bool, reason: str
) -> OrgInfo:
    """The org-wide kill switch: every agent of the org is refused at once."""
    async with org_transaction(pool, access.org_id) as conn:
        await conn.execute(
            repo.SET_ORG_SWITCH,
            {"org_id": access.org_id, "disabled": disabled, "reason": reason or None},
        )
        await record_admin_event(
            conn,
            access.org_id,
            action="org.agents_disabled" if disabled else "org.agents_enabled",
            actor=access.actor,
            details={"reason": reason},
        )
        return await _org(conn, access.org_id)


async def set_approval_settings(
    pool: AsyncConnectionPool[Conn], access: Access, settings: SetApprovalSettings
) -> OrgInfo:
    changed = {k: v for k, v in msgspec.structs.asdict(settings).items() if v is not msgspec.UNSET}
    params = {
        "org_id": access.org_id,
        "set_ttl": "approval_ttl_seconds" in changed,
        "ttl": changed.get("approval_ttl_seconds"),
        "owners_may_approve": changed.get("owners_may_approve"),
    }
    async with org_transaction(pool, access.org_id) as conn:
        await conn.execute(repo.SET_APPROVAL_SETTINGS, params)
        await record_admin_event(
            conn,
            access.org_id,
            action="org.approval_settings_set",
            actor=access.actor,
            details=changed,
        )
        return await _org(conn, access.org_id)


def _networks(field: str, values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    try:
        return [str(n) for n in parse_networks(values)]
    except ValueError as exc:
        raise InvalidFieldError(str(exc), field=field) from None


async def set_allowlists(
    pool: AsyncConnectionPool[Conn],
    access: Access,
    *,
    agent: list[str] | msgspec.UnsetType | None,
    admin: list[str] | msgspec.UnsetType | None,
) -> OrgInfo:
    """Set either list (null: any address); a list not given stays as it is."""
    params: dict[str, Any] = {"org_id": access.org_id}
    changed: dict[str, Any] = {}
    for name, value in (("agent", agent), ("admin", admin)):
        params[f"set_{name}"] = value is not msgspec.UNSET
        params[name] = None if value is msgspec.UNSET else _networks(name, value)
        if params[f"set_{name}"]:
            changed[name] = params[name]
    async with org_transaction(pool, access.org_id) as conn:
        await conn.execute(repo.SET_ALLOWLISTS, params)
        await record_admin_event(
            conn, access.org_id, action="org.allowlists_set", actor=access.actor, details=changed
        )
        return await _org(conn, access.org_id)
