"""An org's key-encryption key: ARX's own (default) or the org's KMS key (BYOK).

Setting a key proves ARX can use it (a probe data key wrapped and unwrapped)
before anything depends on it, then rewraps every sealed version of the org
(connector credentials and notification secrets) under it in the same
transaction: the ciphertexts are untouched, only each data key's wrap
changes. ``rewrap`` does the same for versions still under an older key
(after the operator rotated ``ARX_KEK``, or a failed earlier attempt).
Every change is an audit event.
"""

from __future__ import annotations

import hmac
import os
from typing import Any
from uuid import UUID

import msgspec
from psycopg_pool import AsyncConnectionPool

from arx.audit.service import record_admin_event
from arx.db.pool import Conn, fetch_all, org_transaction
from arx.errors import ARXError, InvalidFieldError
from arx.identity.orgs import require_org
from arx.vault import crypto
from arx.vault import repo as vault_repo
from arx.vault.keyring import OrgKey, check_key_ref
from arx.vault.keys import KeyProvider
from arx.vault.service import Vault, org_key
from arx.vault.types import OrgKeyInfo, Sealed

_PROBE_AAD = b"arx/kek-probe"


async def key_info(pool: AsyncConnectionPool[Conn], vault: Vault, org_id: UUID) -> OrgKeyInfo:
    async with org_transaction(pool, org_id) as conn:
        await require_org(conn, org_id)
        chosen = await org_key(conn, org_id)
        counts = await fetch_all(conn, vault_repo.SEALED_UNDER, None, _Count)
    kek = vault.keys.current(chosen, org_id)
    return OrgKeyInfo(
        provider=chosen.provider if chosen else "local",
        key=chosen.key_ref if chosen else "",
        kek_id=kek.key_id,
        sealed_under={c.kek_id: c.versions for c in counts},
    )


async def set_key(
    pool: AsyncConnectionPool[Conn],
    vault: Vault,
    *,
    org_id: UUID,
    provider: str,
    key: str,
    actor: str,
) -> OrgKeyInfo:
    try:
        ref = check_key_ref(provider, key)
    except ValueError as exc:
        raise InvalidFieldError(f"key: {exc}", field="key") from None
    kek = await _usable(vault, OrgKey(provider, ref), org_id)
    async with org_transaction(pool, org_id) as conn:
        await require_org(conn, org_id)
        await conn.execute(vault_repo.ORG_KEY_EXCLUSIVE, (str(org_id),))
        await conn.execute(
            vault_repo.SET_ORG_KEY,
            {"org_id": org_id, "provider": provider, "key_ref": ref, "set_by": actor},
        )
        moved = await _rewrap_all(conn, vault, org_id, kek)
        await record_admin_event(
            conn,
            org_id,
            action="org.key_set",
            actor=actor,
            details={"provider": provider, "key": ref, "kek_id": kek.key_id, "rewrapped": moved},
        )
    return await key_info(pool, vault, org_id)


async def rewrap(
    pool: AsyncConnectionPool[Conn], vault: Vault, *, org_id: UUID, actor: str
) -> OrgKeyInfo:
    async with org_transaction(pool, org_id) as conn:
        await require_org(conn, org_id)
        await conn.execute(vault_repo.ORG_KEY_EXCLUSIVE, (str(org_id),))
        kek = vault.keys.current(await org_key(conn, org_id), org_id)
        moved = await _rewrap_all(conn, vault, org_id, kek)
        await record_admin_event(
            conn,
            org_id,
            action="org.key_rewrapped",
            actor=actor,
            details={"kek_id": kek.key_id, "rewrapped": moved},
        )
    return await key_info(pool, vault, org_id)


async def _usable(vault: Vault, chosen: OrgKey, org_id: UUID) -> KeyProvider:
    """The key, once a throwaway data key was wrapped and unwrapped with it:
    it exists and ARX may use it (for this org)."""
    probe = os.urandom(32)
    try:
        kek = vault.keys.current(chosen, org_id)
        back = await kek.unwrap(await kek.wrap(probe, _PROBE_AAD), _PROBE_AAD)
    except ARXError as exc:
        detail = f"key: ARX cannot use this key: {exc.detail}"
        raise InvalidFieldError(detail, field="key") from None
    if not hmac.compare_digest(back, probe):
        raise InvalidFieldError("key: the key did not give back what it wrapped", field="key")
    return kek


async def _rewrap_all(conn: Conn, vault: Vault, org_id: UUID, kek: KeyProvider) -> int:
    """Every sealed version of the org not under ``kek``, rewrapped under it."""
    moved = 0
    not_under = {"kek_id": kek.key_id}
    for query, update in (
        (vault_repo.CREDENTIALS_TO_REWRAP, vault_repo.REWRAP_CREDENTIAL),
        (vault_repo.CHANNELS_TO_REWRAP, vault_repo.REWRAP_CHANNEL),
    ):
        for row in await fetch_all(conn, query, not_under, _Row):
            if row.id is not None:  # a connector credential
                aad = crypto.credential_aad(org_id, row.purpose, row.version, row.id, row.base_url)
            else:  # a notification channel's secrets
                aad = crypto.record_aad(org_id, row.purpose, row.version)
            sealed = Sealed(row.kek_id, row.wrapped_dek, row.nonce, row.ciphertext)
            new = await vault.rewrap(sealed, aad, kek, org_id)
            params: dict[str, Any] = {
                "kek_id": new.kek_id,
                "wrapped_dek": new.wrapped_dek,
                "key": row.key,
                "version": row.version,
            }
            await conn.execute(update, params)
            moved += 1
    return moved


class _Count(msgspec.Struct, frozen=True):
    kek_id: str
    versions: int


class _Row(msgspec.Struct, frozen=True):
    """A sealed version: a credential (``purpose``: its connector) or a
    notification channel (``notify:<channel>``); ``key`` names it for the update."""

    key: str
    id: UUID | None
    purpose: str
    version: int
    base_url: str
    kek_id: str
    wrapped_dek: bytes
    nonce: bytes
    ciphertext: bytes
