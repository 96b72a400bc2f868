"""SCIM Groups: the org's groups of users; ``arx-<role>`` groups give roles.

Guarantees:
- a member is a user of this org (its SCIM id); anything else is refused
  with ``invalidValue`` before anything is written;
- a group's roles follow its name and members at once: ``arx.effective_roles``
  reads them on every request, so adding a member to ``arx-reviewer`` (or
  renaming a group to it) grants the role and removing them withdraws it;
- each change is one transaction with its audit event (``scim.group.*``),
  which names the role a change touches, and a request that changes nothing
  records nothing.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import msgspec
from psycopg_pool import AsyncConnectionPool
from scim2_models import Context, ListResponse, Meta, PatchOp, Reference, SearchRequest

from arx.audit.service import record_admin_event
from arx.db.pool import Conn, fetch_all, fetch_dict, org_transaction
from arx.errors import NotFoundError
from arx.identity.principal import Access
from arx.identity.roles import PERSON_ROLES
from arx.scim import repo
from arx.scim.filter import Lookup, group_lookup
from arx.scim.service import guarded, invalid_value, listing, scim_error
from arx.scim.types import MAX_NAME, POLICY, USER_TYPE, Group, GroupMember, GroupRow, User

# "arx-reviewer" -> "reviewer": the names arx.effective_roles reads.
_ROLE_GROUPS = {f"arx-{role.value}": role.value for role in PERSON_ROLES}


def role_of(display_name: str) -> str | None:
    """The role a group of this name gives its members, if any."""
    return _ROLE_GROUPS.get(display_name.lower())


def resource(row: GroupRow, base: str) -> Group:
    return Group(
        id=str(row.id),
        external_id=row.external_id,
        display_name=row.display_name,
        members=[
            GroupMember(value=str(uid), ref=Reference[User](f"{base}/Users/{uid}"), type=USER_TYPE)
            for uid in row.members
        ]
        or None,
        meta=Meta(
            resource_type="Group",
            created=row.created_at,
            last_modified=row.updated_at,
            location=f"{base}/Groups/{row.id}",
        ),
    )


def _group_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise NotFoundError(f"no group {text!r} in this org") from None


async def _rows(conn: Conn, lookup: Lookup | None) -> list[GroupRow]:
    if lookup is None:
        return await fetch_all(conn, repo.GROUPS, None, GroupRow)
    return await fetch_all(conn, lookup.query, lookup.params, GroupRow)


async def _row(conn: Conn, group_id: UUID, *, lock: bool = False) -> GroupRow:
    query = repo.GROUP_FOR_UPDATE if lock else repo.GROUPS_BY_ID
    row = await fetch_dict(conn, query, {"group_id": group_id})
    if row is None:
        raise NotFoundError(f"no group {group_id} in this org")
    return msgspec.convert(row, GroupRow)


# --- reading ------------------------------------------------------------------------------


async def list_groups(
    pool: AsyncConnectionPool[Conn], org_id: UUID, request: SearchRequest[Group], base: str
) -> ListResponse[Group]:
    async with org_transaction(pool, org_id) as conn:
        rows = await _rows(conn, group_lookup(request.filter.ast if request.filter else None))
    return await listing(request, rows, lambda row: resource(row, base), Group)


async def group_rows(pool: AsyncConnectionPool[Conn], org_id: UUID) -> list[GroupRow]:
    async with org_transaction(pool, org_id) as conn:
        return await _rows(conn, None)


async def get_group(
    pool: AsyncConnectionPool[Conn], org_id: UUID, group_id: str, base: str
) -> Group:
    async with org_transaction(pool, org_id) as conn:
        return resource(await _row(conn, _group_id(group_id)), base)


# --- writing ------------------------------------------------------------------------------


def _name(group: Group) -> str:
    name = group.display_name or ""
    if not 1 <= len(name) <= MAX_NAME:
        raise invalid_value(f"displayName: 1 to {MAX_NAME} characters")
    if group.external_id is not None and len(group.external_id) > MAX_NAME:
        raise invalid_value(f"externalId: at most {MAX_NAME} characters")
    return name


async def _member_ids(conn: Conn, group: Group) -> set[UUID]:
    """The users ``group.members`` names, each checked to be a user of this org."""
    wanted: set[UUID] = set()
    for member in group.members or []:
        if member.type is not None and member.type.lower() != USER_TYPE.lower():
            raise invalid_value(f"members: {member.type!r} members are not supported")
        try:
            wanted.add(UUID(member.value or ""))
        except ValueError:
            raise invalid_value(f"members: no user {member.value!r} in this org") from None
    if wanted:
        cur = await conn.execute(repo.MEMBERS_AMONG, {"user_ids": list(wanted)})
        missing = wanted - {r[0] for r in await cur.fetchall()}
        if missing:
            raise invalid_value(f"members: no user {min(missing)} in this org")
    return wanted


async def _check_name(conn: Conn, group_id: UUID | None, name: str) -> None:
    cur = await conn.execute(repo.GROUPS_BY_NAME, {"display_name": name})
    if any(row[0] != group_id for row in await cur.fetchall()):
        raise scim_error(409, "uniqueness", f"a group named {name!r} exists in this org")


def _roles_touched(*names: str) -> list[str]:
    return sorted({r for r in map(role_of, names) if r})


async def create_group(
    pool: AsyncConnectionPool[Conn], access: Access, data: dict[str, Any], base: str
) -> Group:
    filled = {"schemas": [str(Group.__schema__)], **data}
    group = guarded(
        lambda: Group.model_validate(
            filled, scim_ctx=Context.RESOURCE_CREATION_REQUEST, scim_policy=POLICY
        )
    )
    name = _name(group)
    group_id = uuid.uuid4()
    async with org_transaction(pool, access.org_id) as conn:
        members = await _member_ids(conn, group)
        await _check_name(conn, None, name)
        await conn.execute(
            repo.INSERT_GROUP,
            {
                "group_id": group_id,
                "org_id": access.org_id,
                "display_name": name,
                "external_id": group.external_id,
            },
        )
        if members:
            await conn.execute(
                repo.ADD_GROUP_MEMBERS,
                {"org_id": access.org_id, "group_id": group_id, "user_ids": sorted(members)},
            )
        await record_admin_event(
            conn,
            access.org_id,
            action="scim.group.created",
            actor=access.actor,
            details={
                "group_id": str(group_id),
                "display_name": name,
                "external_id": group.external_id,
                "members_added": sorted(str(m) for m in members),
                "roles": _roles_touched(name),
            },
        )
        row = await _row(conn, group_id)
    return resource(row, base)


async def replace_group(
    pool: AsyncConnectionPool[Conn],
    access: Access,
    group_id: str,
    data: dict[str, Any],
    base: str,
) -> Group:
    gid = _group_id(group_id)
    filled = {"schemas": [str(Group.__schema__)], **data}
    new = guarded(
        lambda: Group.model_validate(
            filled, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST, scim_policy=POLICY
        )
    )
    async with org_transaction(pool, access.org_id) as conn:
        row = await _row(conn, gid, lock=True)
        guarded(lambda: new.replace(resource(row, base)))
        return await _apply(conn, access, row, new, base)


async def patch_group(
    pool: AsyncConnectionPool[Conn],
    access: Access,
    group_id: str,
    data: dict[str, Any],
    base: str,
) -> Group:
    gid = _group_id(group_id)
    patch = guarded(
        lambda: PatchOp[Group].model_validate(
            data, scim_ctx=Context.RESOURCE_PATCH_REQUEST, scim_policy=POLICY
        )
    )
    async with org_transaction(pool, access.org_id) as conn:
        row = await _row(conn, gid, lock=True)
        target = resource(row, base)
        guarded(lambda: patch.patch(target, scim_policy=POLICY))
        return await _apply(conn, access, row, target, base)


async def _apply(conn: Conn, access: Access, row: GroupRow, new: Group, base: str) -> Group:
    name = _name(new)
    members = await _member_ids(conn, new)
    added = sorted(members - set(row.members))
    removed = sorted(set(row.members) - members)
    changes = {
        field: {"before": before, "after": after}
        for field, before, after in (
            ("display_name", row.display_name, name),
            ("external_id", row.external_id, new.external_id),
        )
        if before != after
    }
    if not (changes or added or removed):
        return resource(row, base)
    if "display_name" in changes:
        await _check_name(conn, row.id, name)
    await conn.execute(
        repo.UPDATE_GROUP,
        {"group_id": row.id, "display_name": name, "external_id": new.external_id},
    )
    if added:
        await conn.execute(
            repo.ADD_GROUP_MEMBERS,
            {"org_id": access.org_id, "group_id": row.id, "user_ids": added},
        )
    if removed:
        await conn.execute(repo.REMOVE_GROUP_MEMBERS, {"group_id": row.id, "user_ids": removed})
    await record_admin_event(
        conn,
        access.org_id,
        action="scim.group.updated",
        actor=access.actor,
        details={
            "group_id": str(row.id),
            "display_name": name,
            "changes": changes,
            "members_added": [str(m) for m in added],
            "members_removed": [str(m) for m in removed],
            "roles": _roles_touched(row.display_name, name),
        },
    )
    return resource(await _row(conn, row.id), base)


async def delete_group(pool: AsyncConnectionPool[Conn], access: Access, group_id: str) -> None:
    gid = _group_id(group_id)
    async with org_transaction(pool, access.org_id) as conn:
        row = await _row(conn, gid, lock=True)
        await conn.execute(repo.DELETE_GROUP, {"group_id": gid})
        await record_admin_event(
            conn,
            access.org_id,
            action="scim.group.deleted",
            actor=access.actor,
            details={
                "group_id": str(gid),
                "display_name": row.display_name,
                "members_removed": [str(m) for m in row.members],
                "roles": _roles_touched(row.display_name),
            },
        )
