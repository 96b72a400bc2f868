"""Envelope encryption with AES-256-GCM.

Each sealed version gets a fresh 256-bit data key (DEK). The secret is
sealed under the DEK; the DEK is wrapped by the key provider's
key-encryption key (KEK). Both use the same associated data, so a
ciphertext or a wrapped key moved to another row fails authentication
(InvalidTag) instead of decrypting under the wrong identity.

A connector credential's associated data also names its id and base URL
(``credential_aad``): a base URL changed in the database, by a DBA or a
restored backup, no longer opens, so the secret is never sent anywhere but
where it was stored for. Other sealed records (notification channels keep
their URLs inside the secret) bind org, purpose and version (``record_aad``).
"""

from __future__ import annotations

import os
from uuid import UUID

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from arx.errors import VaultError
from arx.vault.keyring import KeyRing
from arx.vault.keys import KeyProvider
from arx.vault.types import Sealed

_NONCE = 12
# The wrapped data key's associated data: the binding, marked as the key's.
_DEK = b"|dek"


def record_aad(org_id: UUID, purpose: str, version: int) -> bytes:
    return f"arx/credential/v1|{org_id}|{purpose}|{version}".encode()


def credential_aad(
    org_id: UUID, connector: str, version: int, credential_id: UUID, base_url: str
) -> bytes:
    # A JSON array: no separator inside a URL can make two bindings read alike.
    return msgspec.json.encode(
        ["arx/credential/v2", str(org_id), connector, version, str(credential_id), base_url]
    )


async def seal(kek: KeyProvider, aad: bytes, plaintext: bytes) -> Sealed:
    dek = AESGCM.generate_key(bit_length=256)
    wrapped = await kek.wrap(dek, aad + _DEK)
    nonce = os.urandom(_NONCE)
    return Sealed(kek.key_id, wrapped, nonce, AESGCM(dek).encrypt(nonce, plaintext, aad))


async def open_sealed(keys: KeyRing, aad: bytes, sealed: Sealed, org_id: UUID) -> bytes:
    dek = await keys.unwrap(sealed.kek_id, sealed.wrapped_dek, aad + _DEK, org_id)
    try:
        return AESGCM(dek).decrypt(sealed.nonce, sealed.ciphertext, aad)
    except (InvalidTag, ValueError):
        raise VaultError("the stored credential failed authentication") from None


async def rewrap(
    keys: KeyRing, aad: bytes, sealed: Sealed, kek: KeyProvider, org_id: UUID
) -> Sealed:
    """``sealed`` with its data key wrapped by ``kek``. The ciphertext is neither
    decrypted nor changed; the old wrap's associated data (the row's binding)
    proves the data key is this row's."""
    dek = await keys.provider(sealed.kek_id, org_id).unwrap(sealed.wrapped_dek, aad + _DEK)
    return Sealed(kek.key_id, await kek.wrap(dek, aad + _DEK), sealed.nonce, sealed.ciphertext)
