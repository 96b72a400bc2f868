"""Envelope encryption with AES-256-GCM.

Each credential version gets a fresh 256-bit data key (DEK). The secret is
sealed under the DEK; the DEK is wrapped under the key-encryption key (KEK).
Both use associated data naming org, connector and version, so a ciphertext
or a wrapped key moved to another row fails authentication (InvalidTag)
instead of decrypting under the wrong identity.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from arx.errors import VaultError

_NONCE = 12


@dataclass(frozen=True, slots=True, repr=False)
class Sealed:
    kek_id: str
    wrapped_dek: bytes
    nonce: bytes
    ciphertext: bytes

    def __repr__(self) -> str:
        return f"Sealed(kek_id={self.kek_id!r}, <{len(self.ciphertext)} bytes>)"


def kek_id(kek: bytes) -> str:
    """A short public fingerprint naming which KEK wrapped a row."""
    return "local:" + hashlib.sha256(b"arx-kek-id" + kek).hexdigest()[:16]


def _aad(org_id: UUID, connector: str, version: int) -> bytes:
    return f"arx/credential/v1|{org_id}|{connector}|{version}".encode()


def seal(kek: bytes, org_id: UUID, connector: str, version: int, plaintext: bytes) -> Sealed:
    if len(kek) != 32:
        raise VaultError("no key-encryption key is configured (ARX_KEK / ARX_KEK_FILE)")
    aad = _aad(org_id, connector, version)
    dek = AESGCM.generate_key(bit_length=256)
    wrap_nonce = os.urandom(_NONCE)
    wrapped = wrap_nonce + AESGCM(kek).encrypt(wrap_nonce, dek, aad + b"|dek")
    nonce = os.urandom(_NONCE)
    return Sealed(kek_id(kek), wrapped, nonce, AESGCM(dek).encrypt(nonce, plaintext, aad))


def open_sealed(kek: bytes, org_id: UUID, connector: str, version: int, sealed: Sealed) -> bytes:
    if len(kek) != 32:
        raise VaultError("no key-encryption key is configured (ARX_KEK / ARX_KEK_FILE)")
    if sealed.kek_id != kek_id(kek):
        raise VaultError("the credential was sealed under a different key-encryption key")
    aad = _aad(org_id, connector, version)
    try:
        wrap_nonce, wrapped = sealed.wrapped_dek[:_NONCE], sealed.wrapped_dek[_NONCE:]
        dek = AESGCM(kek).decrypt(wrap_nonce, wrapped, aad + b"|dek")
        return AESGCM(dek).decrypt(sealed.nonce, sealed.ciphertext, aad)
    except (InvalidTag, ValueError):
        raise VaultError("the stored credential failed authentication") from None
