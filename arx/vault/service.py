"""The vault: seals credentials and opens them for one connector call.

A plaintext secret exists only while it is being sealed and, in ``open``,
for the single connector call that needs it: it is never returned by an
API, logged, cached, or written to the audit trail, and in memory it is a
``Secret`` (arx.vault.secret). Data keys are unwrapped through the key ring,
which keeps them briefly (arx.vault.keyring). The vault owns its key ring,
so nobody threads a key-encryption key by hand.
"""

from __future__ import annotations

from typing import TypeVar
from uuid import UUID

import msgspec

from arx.db.pool import Conn, fetch_dict
from arx.errors import VaultError
from arx.vault import crypto, repo
from arx.vault.keyring import KeyRing, OrgKey
from arx.vault.keys import KeyProvider
from arx.vault.secret import reveal_hook, secret_dec_hook
from arx.vault.types import Sealed, StoredCredential

S = TypeVar("S")


class Vault:
    def __init__(self, keys: KeyRing) -> None:
        self.keys = keys

    def __repr__(self) -> str:
        return f"Vault({self.keys!r})"

    async def seal_credential(
        self,
        org_id: UUID,
        connector: str,
        version: int,
        *,
        credential_id: UUID,
        base_url: str,
        secret: msgspec.Struct,
        kek: KeyProvider,
    ) -> Sealed:
        """Seal a connector credential, bound to its id and base URL, under ``kek``."""
        aad = crypto.credential_aad(org_id, connector, version, credential_id, base_url)
        return await crypto.seal(kek, aad, _plaintext(secret))

    async def open_credential(self, credential: StoredCredential, secret_type: type[S]) -> S:
        """Decrypt a connector credential for one call to its (bound) base URL."""
        aad = crypto.credential_aad(
            credential.org_id,
            credential.connector,
            credential.version,
            credential.id,
            credential.base_url,
        )
        plaintext = await crypto.open_sealed(self.keys, aad, credential.sealed, credential.org_id)
        return _decoded(plaintext, secret_type)

    async def seal(
        self, org_id: UUID, purpose: str, version: int, secret: msgspec.Struct, kek: KeyProvider
    ) -> Sealed:
        """Seal a record's secrets (``purpose`` names the record, e.g. ``notify:slack``)."""
        aad = crypto.record_aad(org_id, purpose, version)
        return await crypto.seal(kek, aad, _plaintext(secret))

    async def open(
        self, org_id: UUID, purpose: str, version: int, sealed: Sealed, secret_type: type[S]
    ) -> S:
        aad = crypto.record_aad(org_id, purpose, version)
        return _decoded(await crypto.open_sealed(self.keys, aad, sealed, org_id), secret_type)

    async def rewrap(self, sealed: Sealed, aad: bytes, kek: KeyProvider, org_id: UUID) -> Sealed:
        return await crypto.rewrap(self.keys, aad, sealed, kek, org_id)


async def org_key(conn: Conn, org_id: UUID) -> OrgKey | None:
    """The org's key choice (inside an org-scoped transaction); None: ARX's own.

    Holds the org's key lock, shared, until the transaction ends: a key being
    set (or a rewrap) waits for this seal, and this seal for it."""
    await conn.execute(repo.ORG_KEY_SHARED, (str(org_id),))
    row = await fetch_dict(conn, repo.ORG_KEY, {})
    return OrgKey(row["provider"], row["key_ref"]) if row else None


def _plaintext(secret: msgspec.Struct) -> bytes:
    # Only here may a Secret be encoded: into the ciphertext.
    return msgspec.json.encode(secret, enc_hook=reveal_hook)


def _decoded(plaintext: bytes, secret_type: type[S]) -> S:
    try:
        return msgspec.json.decode(plaintext, type=secret_type, dec_hook=secret_dec_hook)
    except msgspec.ValidationError:
        # The message names a field of the secret, never its value.
        raise VaultError("the stored credential does not fit the connector's secret") from None
