"""Connector credentials and the hosts they may go to, administered.

Every change appends an ``admin`` audit event in the same transaction as the
change it records. No answer ever holds a secret: a credential is described
by its version, URL and key id only. A rotation stores the next version; a
deletion stores a tombstone version, so the history stays whole.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import msgspec
from psycopg_pool import AsyncConnectionPool

from arx.audit.service import record_admin_event
from arx.config import Settings, sandbox_enabled
from arx.connectors.registry import connector_class
from arx.db.pool import Conn, fetch_all, fetch_dict, org_transaction
from arx.errors import ConflictError, CredentialNotFoundError, InvalidFieldError, NotFoundError
from arx.identity import repo as identity_repo
from arx.vault import destination
from arx.vault import repo as vault_repo
from arx.vault.secret import secret_dec_hook
from arx.vault.service import Vault, org_key
from arx.vault.types import ConnectorHost, ConnectorHosts, CredentialInfo, CredentialList


async def _org_slug(conn: Conn, org_id: UUID) -> str:
    """The org's slug; 404 unless it exists (inside an org-scoped transaction)."""
    cur = await conn.execute(identity_repo.SELECT_ORG_BY_ID, (org_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFoundError(f"no org {org_id}")
    return str(row[1])


async def _latest(conn: Conn) -> dict[str, CredentialInfo]:
    return {c.connector: c for c in await fetch_all(conn, vault_repo.LATEST, None, CredentialInfo)}


async def _insert(conn: Conn, row: dict[str, Any]) -> datetime:
    created = await fetch_dict(conn, vault_repo.INSERT, row)
    assert created is not None  # INSERT ... RETURNING
    return cast("datetime", created["created_at"])


async def _next_version(conn: Conn, org_id: UUID, connector: str) -> int:
    cur = await conn.execute(vault_repo.NEXT_VERSION, (org_id, connector))
    row = await cur.fetchone()
    return int(row[0]) if row else 1


async def store_credential(
    pool: AsyncConnectionPool[Conn],
    vault: Vault,
    settings: Settings,
    *,
    org_id: UUID,
    connector: str,
    secret: dict[str, Any],
    base_url: str | None,
    actor: str,
) -> CredentialInfo:
    """Seal ``secret`` as the connector's next version, bound to its URL."""
    cls = connector_class(connector)
    try:
        typed = msgspec.convert(secret, cls.secret_type, dec_hook=secret_dec_hook)
    except msgspec.ValidationError as exc:
        # msgspec names the path but never echoes the offending value.
        raise InvalidFieldError.from_validation(
            exc, prefix="secret", what=f"invalid secret for {connector}: "
        ) from None
    try:
        async with org_transaction(pool, org_id) as conn:
            slug = await _org_slug(conn, org_id)
            cur = await conn.execute(vault_repo.HOSTS_OF, (connector,))
            org_hosts = [str(r[0]) for r in await cur.fetchall()]
            if not (base_url or cls.default_base_url):
                raise InvalidFieldError(
                    f"base_url: {connector} has no default URL: give the tenant's", field="base_url"
                )
            try:
                url = destination.check(
                    base_url or cls.default_base_url,
                    connector=connector,
                    connector_hosts=cls.allowed_hosts,
                    org_hosts=org_hosts,
                    sandbox=sandbox_enabled(settings, slug),
                ).url
            except destination.DestinationError as exc:
                raise InvalidFieldError(f"base_url: {exc}", field="base_url") from None
            version = await _next_version(conn, org_id, connector)
            credential_id = uuid.uuid4()
            kek = vault.keys.current(await org_key(conn, org_id), org_id)
            sealed = await vault.seal_credential(
                org_id,
                connector,
                version,
                credential_id=credential_id,
                base_url=url,
                secret=typed,
                kek=kek,
            )
            created_at = await _insert(
                conn,
                {
                    "id": credential_id,
                    "org_id": org_id,
                    "connector": connector,
                    "version": version,
                    "base_url": url,
                    "kek_id": sealed.kek_id,
                    "wrapped_dek": sealed.wrapped_dek,
                    "nonce": sealed.nonce,
                    "ciphertext": sealed.ciphertext,
                    "deleted": False,
                    "created_by": actor,
                },
            )
            await record_admin_event(
                conn,
                org_id,
                action="credential.stored",
                actor=actor,
                details={
                    "connector": connector,
                    "version": version,
                    "credential_id": str(credential_id),
                    "base_url": url,
                    "kek_id": sealed.kek_id,
                },
            )
    except ConflictError:
        raise ConflictError(
            "a concurrent rotation stored the same credential version; retry"
        ) from None
    return CredentialInfo(
        id=credential_id,
        connector=connector,
        version=version,
        base_url=url,
        kek_id=sealed.kek_id,
        created_by=actor,
        created_at=created_at,
    )


async def list_credentials(pool: AsyncConnectionPool[Conn], org_id: UUID) -> CredentialList:
    async with org_transaction(pool, org_id) as conn:
        await _org_slug(conn, org_id)
        latest = await _latest(conn)
    return CredentialList(credentials=list(latest.values()))


async def delete_credential(
    pool: AsyncConnectionPool[Conn], *, org_id: UUID, connector: str, actor: str
) -> CredentialInfo:
    """Store a tombstone version: the connector has no credential from now on."""
    connector_class(connector)
    try:
        async with org_transaction(pool, org_id) as conn:
            await _org_slug(conn, org_id)
            current = (await _latest(conn)).get(connector)
            if current is None or current.deleted:
                raise CredentialNotFoundError(
                    f"the org has no credential for connector {connector!r}",
                    extra={"connector": connector},
                )
            version = current.version + 1
            tombstone_id = uuid.uuid4()
            created_at = await _insert(
                conn,
                {
                    "id": tombstone_id,
                    "org_id": org_id,
                    "connector": connector,
                    "version": version,
                    "base_url": "",
                    "kek_id": None,
                    "wrapped_dek": None,
                    "nonce": None,
                    "ciphertext": None,
                    "deleted": True,
                    "created_by": actor,
                },
            )
            await record_admin_event(
                conn,
                org_id,
                action="credential.deleted",
                actor=actor,
                details={"connector": connector, "version": version},
            )
    except ConflictError:
        raise ConflictError("a concurrent change stored the same version; retry") from None
    return CredentialInfo(
        id=tombstone_id,
        connector=connector,
        version=version,
        base_url="",
        kek_id=None,
        deleted=True,
        created_by=actor,
        created_at=created_at,
    )


def _host_pattern(host: str) -> str:
    try:
        return destination.check_pattern(host)
    except destination.DestinationError as exc:
        raise InvalidFieldError(f"host: {exc}", field="host") from None


async def list_hosts(
    pool: AsyncConnectionPool[Conn], *, org_id: UUID, connector: str
) -> ConnectorHosts:
    cls = connector_class(connector)
    async with org_transaction(pool, org_id) as conn:
        await _org_slug(conn, org_id)
        added = await fetch_all(conn, vault_repo.HOSTS, {"connector": connector}, ConnectorHost)
    return ConnectorHosts(connector=connector, defaults=list(cls.allowed_hosts), added=added)


async def add_host(
    pool: AsyncConnectionPool[Conn], *, org_id: UUID, connector: str, host: str, actor: str
) -> ConnectorHosts:
    """Let the connector's credentials go to ``host`` (a name or ``*.domain``) too."""
    connector_class(connector)
    pattern = _host_pattern(host)
    async with org_transaction(pool, org_id) as conn:
        await _org_slug(conn, org_id)
        row = await fetch_dict(
            conn,
            vault_repo.ADD_HOST,
            {"org_id": org_id, "connector": connector, "host": pattern, "added_by": actor},
        )
        if row is not None:
            await record_admin_event(
                conn,
                org_id,
                action="connector.host_added",
                actor=actor,
                details={"connector": connector, "host": pattern},
            )
    return await list_hosts(pool, org_id=org_id, connector=connector)


async def remove_host(
    pool: AsyncConnectionPool[Conn], *, org_id: UUID, connector: str, host: str, actor: str
) -> ConnectorHosts:
    """Stop allowing ``host``: a credential stored for it is refused from the next call."""
    connector_class(connector)
    pattern = _host_pattern(host)
    async with org_transaction(pool, org_id) as conn:
        await _org_slug(conn, org_id)
        cur = await conn.execute(vault_repo.REMOVE_HOST, (connector, pattern))
        if await cur.fetchone() is None:
            raise NotFoundError(f"{pattern} is not among the org's hosts for {connector}")
        await record_admin_event(
            conn,
            org_id,
            action="connector.host_removed",
            actor=actor,
            details={"connector": connector, "host": pattern},
        )
    return await list_hosts(pool, org_id=org_id, connector=connector)
