"""SCIM Users: the org's memberships, each with the person behind it.

Guarantees:
- a person is found or created by email (``arx.user_for_email``), so adding
  someone who already belongs to another org is the same call and answer;
- each change is one transaction with its audit event (``scim.user.*``),
  and a request that changes nothing records nothing;
- ``active: false`` only clears ``membership.active``: the control-plane
  guard and ``arx.effective_roles`` read it on every request, so every role
  in the org (direct or from a group) ends at once, and nothing else is
  revoked. DELETE removes the membership and its group memberships;
- a person's email is how they sign in to every org, so SCIM changes it only
  while they are an active member of this org alone: one org's IdP cannot
  move the sign-in of someone another org relies on (``mutability``).
"""

from __future__ import annotations

from typing import Any, LiteralString
from uuid import UUID

import msgspec
from psycopg_pool import AsyncConnectionPool
from scim2_models import Context, ListResponse, Meta, PatchOp, Reference, SearchRequest

from arx.audit.service import record_admin_event
from arx.db.pool import Conn, fetch_all, fetch_dict, org_transaction
from arx.errors import NotFoundError
from arx.identity.principal import Access
from arx.scim import repo
from arx.scim.filter import Lookup, user_lookup
from arx.scim.service import guarded, invalid_value, listing, present, scim_error
from arx.scim.types import (
    EMAIL,
    MAX_NAME,
    POLICY,
    WORK,
    Email,
    Group,
    GroupMembership,
    User,
    UserRow,
)


class _Wanted(msgspec.Struct, frozen=True, kw_only=True):
    """What a request asks a user to be, in the terms ARX stores."""

    user_name: str
    external_id: str | None
    active: bool
    email: str
    display_name: str


def resource(row: UserRow, base: str) -> User:
    return User(
        id=str(row.id),
        external_id=row.external_id,
        user_name=row.user_name,
        display_name=row.display_name or None,
        active=row.active,
        emails=[Email(value=row.email, type=WORK)],
        groups=[
            GroupMembership(
                value=str(g.id),
                ref=Reference[Group](f"{base}/Groups/{g.id}"),
                display=g.display_name,
            )
            for g in row.groups
        ]
        or None,
        meta=Meta(
            resource_type="User",
            created=row.created_at,
            last_modified=row.updated_at,
            location=f"{base}/Users/{row.id}",
        ),
    )


def _user_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise NotFoundError(f"no user {text!r} in this org") from None


async def _rows(conn: Conn, lookup: Lookup | None) -> list[UserRow]:
    if lookup is None:
        return await fetch_all(conn, repo.USERS, None, UserRow)
    return await fetch_all(conn, lookup.query, lookup.params, UserRow)


async def _row(conn: Conn, user_id: UUID, *, lock: bool = False) -> UserRow:
    query = repo.USER_FOR_UPDATE if lock else repo.USERS_BY_ID
    row = await fetch_dict(conn, query, {"user_id": user_id})
    if row is None:
        raise NotFoundError(f"no user {user_id} in this org")
    return msgspec.convert(row, UserRow)


# --- reading ------------------------------------------------------------------------------


async def list_users(
    pool: AsyncConnectionPool[Conn], org_id: UUID, request: SearchRequest[User], base: str
) -> ListResponse[User]:
    async with org_transaction(pool, org_id) as conn:
        rows = await _rows(conn, user_lookup(request.filter.ast if request.filter else None))
    return await listing(request, rows, lambda row: resource(row, base), User)


async def user_rows(pool: AsyncConnectionPool[Conn], org_id: UUID) -> list[UserRow]:
    async with org_transaction(pool, org_id) as conn:
        return await _rows(conn, None)


async def get_user(pool: AsyncConnectionPool[Conn], org_id: UUID, user_id: str, base: str) -> User:
    async with org_transaction(pool, org_id) as conn:
        return resource(await _row(conn, _user_id(user_id)), base)


# --- reading a request --------------------------------------------------------------------


def _field(data: dict[str, Any], name: str) -> Any:
    return next((v for k, v in data.items() if k.lower() == name.lower()), None)


def _with_defaults(data: dict[str, Any], *, active: bool, email: str | None) -> dict[str, Any]:
    """``data`` with what ARX fills in when a request leaves it out: ``active``, and
    the email (the current one, else ``userName`` when it is an address)."""
    filled = dict(data)
    filled.setdefault("schemas", [str(User.__schema__)])
    if not present(filled, "active"):
        filled["active"] = active
    if not present(filled, "emails"):
        user_name = _field(filled, "userName")
        if email is None and isinstance(user_name, str) and EMAIL.match(user_name):
            email = user_name
        if email is not None:
            filled["emails"] = [{"value": email, "type": WORK}]
    return filled


def _sign_in_email(user: User) -> str:
    entries = [e for e in user.emails or [] if e.value]
    if not entries:
        raise invalid_value("emails: ARX needs the person's email address")

    def primary(entry: Email) -> bool:
        # ``primary`` is not kept (ARX holds one email), but it still chooses.
        flags = entry.unknown_attributes.items()
        return any(k.lower() == "primary" and v is True for k, v in flags)

    chosen = (
        next((e for e in entries if primary(e)), None)
        or next((e for e in entries if (e.type or "").lower() == WORK), None)
        or entries[0]
    )
    assert chosen.value is not None
    if not EMAIL.match(chosen.value):
        raise invalid_value(f"emails: {chosen.value!r} is not an email address")
    return chosen.value


def _display_name(user: User, *, from_name: bool) -> str:
    """``displayName``, else (on a creation or replacement) one made of ``name``,
    which ARX does not keep but IdPs send instead."""
    if user.display_name or not from_name:
        return user.display_name or ""
    name = _field(user.unknown_attributes, "name")
    if not isinstance(name, dict):
        return ""
    formatted = _field(name, "formatted")
    if isinstance(formatted, str) and formatted.strip():
        return formatted.strip()
    parts = (_field(name, "givenName"), _field(name, "familyName"))
    return " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())


def _wanted(user: User, *, from_name: bool) -> _Wanted:
    user_name = user.user_name or ""
    if not 1 <= len(user_name) <= MAX_NAME:
        raise invalid_value(f"userName: 1 to {MAX_NAME} characters")
    display_name = _display_name(user, from_name=from_name)
    if len(display_name) > MAX_NAME:
        raise invalid_value(f"displayName: at most {MAX_NAME} characters")
    if user.external_id is not None and len(user.external_id) > MAX_NAME:
        raise invalid_value(f"externalId: at most {MAX_NAME} characters")
    return _Wanted(
        user_name=user_name,
        external_id=user.external_id,
        active=user.active is not False,
        email=_sign_in_email(user),
        display_name=display_name,
    )


# --- writing ------------------------------------------------------------------------------


async def _exists(conn: Conn, query: LiteralString, params: dict[str, Any]) -> bool:
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    return bool(row and row[0])


async def _check_user_name(conn: Conn, user_id: UUID, user_name: str) -> None:
    params = {"user_id": user_id, "user_name": user_name}
    if await _exists(conn, repo.USER_NAME_TAKEN, params):
        raise scim_error(409, "uniqueness", f"userName {user_name!r} is taken in this org")


async def create_user(
    pool: AsyncConnectionPool[Conn], access: Access, data: dict[str, Any], base: str
) -> User:
    filled = _with_defaults(data, active=True, email=None)
    user = guarded(
        lambda: User.model_validate(
            filled, scim_ctx=Context.RESOURCE_CREATION_REQUEST, scim_policy=POLICY
        )
    )
    wanted = _wanted(user, from_name=True)
    async with org_transaction(pool, access.org_id) as conn:
        cur = await conn.execute(repo.USER_FOR_EMAIL, {"email": wanted.email})
        found = await cur.fetchone()
        assert found is not None  # the function returns an id or raises
        user_id: UUID = found[0]
        if await _exists(conn, repo.IS_MEMBER, {"user_id": user_id}):
            raise scim_error(409, "uniqueness", "this person is already a user of this org")
        await _check_user_name(conn, user_id, wanted.user_name)
        await conn.execute(
            repo.INSERT_MEMBERSHIP,
            {
                "org_id": access.org_id,
                "user_id": user_id,
                "user_name": wanted.user_name,
                "external_id": wanted.external_id,
                "active": wanted.active,
                "display_name": wanted.display_name or "",
            },
        )
        row = await _row(conn, user_id)
        await record_admin_event(
            conn,
            access.org_id,
            action="scim.user.created",
            actor=access.actor,
            details={
                "user_id": str(user_id),
                "user_name": row.user_name,
                "email": row.email,
                "active": row.active,
                "external_id": row.external_id,
            },
        )
    return resource(row, base)


async def replace_user(
    pool: AsyncConnectionPool[Conn],
    access: Access,
    user_id: str,
    data: dict[str, Any],
    base: str,
) -> User:
    uid = _user_id(user_id)
    async with org_transaction(pool, access.org_id) as conn:
        row = await _row(conn, uid, lock=True)
        filled = _with_defaults(data, active=row.active, email=row.email)
        new = guarded(
            lambda: User.model_validate(
                filled, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST, scim_policy=POLICY
            )
        )
        guarded(lambda: new.replace(resource(row, base)))
        return await _apply(conn, access, row, _wanted(new, from_name=True), base)


async def patch_user(
    pool: AsyncConnectionPool[Conn],
    access: Access,
    user_id: str,
    data: dict[str, Any],
    base: str,
) -> User:
    uid = _user_id(user_id)
    patch = guarded(
        lambda: PatchOp[User].model_validate(
            data, scim_ctx=Context.RESOURCE_PATCH_REQUEST, scim_policy=POLICY
        )
    )
    async with org_transaction(pool, access.org_id) as conn:
        row = await _row(conn, uid, lock=True)
        target = resource(row, base)
        guarded(lambda: patch.patch(target, scim_policy=POLICY))
        return await _apply(conn, access, row, _wanted(target, from_name=False), base)


async def _change_email(conn: Conn, access: Access, row: UserRow, email: str) -> None:
    cur = await conn.execute(repo.CHANGE_EMAIL, {"user_id": row.id, "email": email})
    changed = await cur.fetchone()
    if not changed or not changed[0]:
        raise scim_error(
            400,
            "mutability",
            "emails: ARX changes a person's sign-in email only while they belong to this org alone",
        )


async def _apply(conn: Conn, access: Access, row: UserRow, wanted: _Wanted, base: str) -> User:
    before = _Wanted(
        user_name=row.user_name,
        external_id=row.external_id,
        active=row.active,
        email=row.email,
        display_name=row.display_name,
    )
    changes = {
        name: {"before": getattr(before, name), "after": getattr(wanted, name)}
        for name in _Wanted.__struct_fields__
        if getattr(before, name) != getattr(wanted, name)
    }
    # Addresses compare without regard to case (the unique index does too).
    if "email" in changes and wanted.email.lower() == row.email.lower():
        del changes["email"]
    if not changes:
        return resource(row, base)
    if "user_name" in changes:
        await _check_user_name(conn, row.id, wanted.user_name)
    if "email" in changes:
        await _change_email(conn, access, row, wanted.email)
    if "display_name" in changes:
        await conn.execute(
            repo.UPDATE_DISPLAY_NAME, {"user_id": row.id, "display_name": wanted.display_name}
        )
    await conn.execute(
        repo.UPDATE_MEMBERSHIP,
        {
            "user_id": row.id,
            "user_name": wanted.user_name,
            "external_id": wanted.external_id,
            "active": wanted.active,
        },
    )
    action = "scim.user.updated"
    if "active" in changes:
        action = "scim.user.reactivated" if wanted.active else "scim.user.deactivated"
    await record_admin_event(
        conn,
        access.org_id,
        action=action,
        actor=access.actor,
        details={"user_id": str(row.id), "user_name": wanted.user_name, "changes": changes},
    )
    return resource(await _row(conn, row.id), base)


async def delete_user(pool: AsyncConnectionPool[Conn], access: Access, user_id: str) -> None:
    uid = _user_id(user_id)
    async with org_transaction(pool, access.org_id) as conn:
        cur = await conn.execute(repo.DELETE_MEMBERSHIP, {"user_id": uid})
        deleted = await cur.fetchone()
        if deleted is None:
            raise NotFoundError(f"no user {uid} in this org")
        await record_admin_event(
            conn,
            access.org_id,
            action="scim.user.deleted",
            actor=access.actor,
            details={"user_id": str(uid), "user_name": deleted[0]},
        )
