"""Storing and opening connector credentials.

A plaintext secret exists only while it is being sealed and, in
``open_secret``, for the single connector call that needs it: it is never
returned by an API, logged, cached, or written to the audit trail.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import msgspec
import psycopg
from psycopg_pool import AsyncConnectionPool

from arx.audit.service import record_admin_event
from arx.connectors.registry import connector_class
from arx.db.pool import Conn, org_transaction
from arx.errors import ConflictError, CredentialNotFoundError, InvalidFieldError
from arx.identity.orgs import require_org
from arx.vault import crypto, repo


@dataclass(frozen=True, slots=True, repr=False)
class StoredCredential:
    id: UUID
    org_id: UUID
    connector: str
    version: int
    base_url: str
    sealed: crypto.Sealed

    @property
    def cache_key(self) -> str:
        return f"{self.id}:{self.version}"

    def __repr__(self) -> str:
        return f"StoredCredential({self.connector!r}, v{self.version})"


class CredentialInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the admin API may say about a credential: never the secret."""

    id: UUID
    connector: str
    version: int
    base_url: str
    kek_id: str


async def locate(conn: Conn, org_id: UUID, connector: str) -> StoredCredential:
    cur = await conn.execute(repo.LATEST, (org_id, connector))
    row = await cur.fetchone()
    if row is None:
        raise CredentialNotFoundError(
            f"the org has no credential for connector {connector!r}; an admin must add one",
            extra={"connector": connector},
        )
    return StoredCredential(
        id=row[0],
        org_id=org_id,
        connector=connector,
        version=row[1],
        base_url=row[2],
        sealed=crypto.Sealed(kek_id=row[3], wrapped_dek=row[4], nonce=row[5], ciphertext=row[6]),
    )


def open_secret(kek: bytes, cred: StoredCredential, secret_type: type[Any]) -> Any:
    plaintext = crypto.open_sealed(kek, cred.org_id, cred.connector, cred.version, cred.sealed)
    return msgspec.json.decode(plaintext, type=secret_type)


def _check_base_url(base_url: str, *, allow_insecure: bool) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise InvalidFieldError("base_url must be an absolute http(s) URL", field="base_url")
    if parts.scheme != "https" and not allow_insecure:
        raise InvalidFieldError(
            "base_url must use https (plain http is allowed only for the local sandbox)",
            field="base_url",
        )
    return base_url.rstrip("/")


async def store_credential(
    pool: AsyncConnectionPool[Conn],
    *,
    kek: bytes,
    org_id: UUID,
    connector: str,
    secret: dict[str, Any],
    base_url: str | None,
    allow_insecure_urls: bool,
    actor: str,
) -> CredentialInfo:
    cls = connector_class(connector)
    try:
        typed = msgspec.convert(secret, cls.secret_type)
    except msgspec.ValidationError as exc:
        # msgspec names the path but never echoes the offending value.
        raise InvalidFieldError.from_validation(
            exc, prefix="secret", what=f"invalid secret for {connector}: "
        ) from None
    url = _check_base_url(base_url or cls.default_base_url, allow_insecure=allow_insecure_urls)
    plaintext = msgspec.json.encode(typed)
    try:
        async with org_transaction(pool, org_id) as conn:
            await require_org(conn, org_id)
            cur = await conn.execute(repo.NEXT_VERSION, (org_id, connector))
            row = await cur.fetchone()
            version = int(row[0]) if row else 1
            sealed = crypto.seal(kek, org_id, connector, version, plaintext)
            cred_id = uuid.uuid4()
            await conn.execute(
                repo.INSERT,
                (
                    cred_id,
                    org_id,
                    connector,
                    version,
                    url,
                    sealed.kek_id,
                    sealed.wrapped_dek,
                    sealed.nonce,
                    sealed.ciphertext,
                ),
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
    except psycopg.errors.UniqueViolation:
        raise ConflictError(
            "a concurrent rotation stored the same credential version; retry"
        ) from None
    return CredentialInfo(
        id=cred_id, connector=connector, version=version, base_url=url, kek_id=sealed.kek_id
    )
