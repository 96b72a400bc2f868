"""Envelope encryption with AES-256-GCM.

Each credential version gets a fresh 256-bit data key (DEK). The secret is
sealed under the DEK; the DEK is wrapped by the key provider's
key-encryption key (KEK). Both use associated data naming org, connector and
version, so a ciphertext or a wrapped key moved to another row fails
authentication (InvalidTag) instead of decrypting under the wrong identity.
"""

from __future__ import annotations

import os
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from arx.errors import VaultError
from arx.vault.keys import KeyProvider
from arx.vault.types import Sealed

_NONCE = 12


def _aad(org_id: UUID, connector: str, version: int) -> bytes:
    return f"arx/credential/v1|{org_id}|{connector}|{version}".encode()


def seal(keys: KeyProvider, org_id: UUID, connector: str, version: int, plaintext: bytes) -> Sealed:
    aad = _aad(org_id, connector, version)
    dek = AESGCM.generate_key(bit_length=256)
    wrapped = keys.wrap(dek, aad + b"|dek")
    nonce = os.urandom(_NONCE)
    return Sealed(keys.key_id, wrapped, nonce, AESGCM(dek).encrypt(nonce, plaintext, aad))


def open_sealed(
    keys: KeyProvider, org_id: UUID, connector: str, version: int, sealed: Sealed
) -> bytes:
    aad = _aad(org_id, connector, version)
    dek = keys.unwrap(sealed.kek_id, sealed.wrapped_dek, aad + b"|dek")
    try:
        return AESGCM(dek).decrypt(sealed.nonce, sealed.ciphertext, aad)
    except (InvalidTag, ValueError):
        raise VaultError("the stored credential failed authentication") from None
