"""Creating agents and credentials.

Every change appends an ``admin`` audit event in the same transaction as the
change it records, so the trail never misses one. Responses never contain a
stored secret; an API key is returned exactly once, when it is created.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import msgspec
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from arx.audit.service import record_admin_event
from arx.connectors.registry import connector_class
from arx.db.pool import Conn, org_transaction
from arx.errors import ConflictError, InvalidFieldError
from arx.identity import repo
from arx.identity.orgs import require_member, require_org
from arx.identity.types import Agent, IntentManifest
from arx.vault import repo as vault_repo
from arx.vault.secret import secret_dec_hook
from arx.vault.service import Vault
from arx.vault.types import CredentialInfo


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


def _check_base_url(base_url: str, *, allow_insecure: bool) -> str:
    try:
        parts = urlsplit(base_url)
        _ = parts.port  # raises on a malformed or out-of-range port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in {"https", "http"} or not parts.hostname:
        raise InvalidFieldError("base_url must be an absolute http(s) URL", field="base_url")
    if parts.scheme != "https" and not allow_insecure:
        raise InvalidFieldError(
            "base_url must use https (plain http is allowed only for the local sandbox)",
            field="base_url",
        )
    return base_url.rstrip("/")


async def store_credential(
    pool: AsyncConnectionPool[Conn],
    vault: Vault,
    *,
    org_id: UUID,
    connector: str,
    secret: dict[str, Any],
    base_url: str | None,
    allow_insecure_urls: bool,
    actor: str,
) -> CredentialInfo:
    """Seal ``secret`` as the connector's next credential version."""
    cls = connector_class(connector)
    try:
        typed = msgspec.convert(secret, cls.secret_type, dec_hook=secret_dec_hook)
    except msgspec.ValidationError as exc:
        # msgspec names the path but never echoes the offending value.
        raise InvalidFieldError.from_validation(
            exc, prefix="secret", what=f"invalid secret for {connector}: "
        ) from None
    url = _check_base_url(base_url or cls.default_base_url, allow_insecure=allow_insecure_urls)
    try:
        async with org_transaction(pool, org_id) as conn:
            await require_org(conn, org_id)
            cur = await conn.execute(vault_repo.NEXT_VERSION, (org_id, connector))
            row = await cur.fetchone()
            version = int(row[0]) if row else 1
            sealed = vault.seal(org_id, connector, version, typed)
            info = CredentialInfo(
                id=uuid.uuid4(),
                connector=connector,
                version=version,
                base_url=url,
                kek_id=sealed.kek_id,
            )
            await conn.execute(
                vault_repo.INSERT,
                {
                    "id": info.id,
                    "org_id": org_id,
                    "connector": connector,
                    "version": version,
                    "base_url": url,
                    "kek_id": sealed.kek_id,
                    "wrapped_dek": sealed.wrapped_dek,
                    "nonce": sealed.nonce,
                    "ciphertext": sealed.ciphertext,
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
                    "base_url": url,
                    "kek_id": sealed.kek_id,
                },
            )
    except ConflictError:
        raise ConflictError(
            "a concurrent rotation stored the same credential version; retry"
        ) from None
    return info
