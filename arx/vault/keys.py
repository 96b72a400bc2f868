"""Key-encryption keys: who wraps the data keys that seal credentials.

A ``KeyProvider`` wraps and unwraps a credential's 256-bit data key; the
vault never sees the key-encryption key itself, so a KMS-backed provider
(the key never leaves the KMS) fits the same contract as the local one.
"""

from __future__ import annotations

import hashlib
import os
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from arx.errors import VaultError

_NONCE = 12


class KeyProvider(Protocol):
    @property
    def key_id(self) -> str:
        """A public name for the key-encryption key (stored beside each wrap)."""
        ...

    def wrap(self, dek: bytes, aad: bytes) -> bytes: ...

    def unwrap(self, key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        """The data key, or ``VaultError`` if ``wrapped`` was not made by this key."""
        ...


class LocalKeyProvider:
    """AES-256-GCM under a 32-byte key from ``ARX_KEK`` / ``ARX_KEK_FILE``."""

    def __init__(self, kek: bytes) -> None:
        self._kek = kek
        self._aead = AESGCM(kek) if len(kek) == 32 else None
        # A short public fingerprint: names the key without revealing it.
        self._id = "local:" + hashlib.sha256(b"arx-kek-id" + kek).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"LocalKeyProvider({self._id if self._aead else 'unconfigured'})"

    @property
    def key_id(self) -> str:
        return self._id

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            raise VaultError("no key-encryption key is configured (ARX_KEK / ARX_KEK_FILE)")
        return self._aead

    def wrap(self, dek: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._cipher().encrypt(nonce, dek, aad)

    def unwrap(self, key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        cipher = self._cipher()
        if key_id != self._id:
            raise VaultError("the credential was sealed under a different key-encryption key")
        try:
            return cipher.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], aad)
        except (InvalidTag, ValueError):
            raise VaultError("the stored credential failed authentication") from None
