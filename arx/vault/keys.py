"""Key-encryption keys: who wraps the data keys that seal credentials.

A ``KeyProvider`` is one key-encryption key (KEK). It wraps a 256-bit data
key under associated data and unwraps what it wrapped; the vault never sees
the KEK itself, so a key that never leaves a KMS (arx.vault.kms) fits the
same contract as ARX's own. Each wrap is stored beside the provider's
``key_id``, which names the key for opening (arx.vault.keyring).
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
        """The key's stored name: ``local:…``, ``aws-kms:…``, ``azure-kv:…`` or ``gcp-kms:…``."""
        ...

    async def wrap(self, dek: bytes, aad: bytes) -> bytes: ...

    async def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        """The data key; ``VaultError`` if ``wrapped`` is not this key's for ``aad``,
        ``KeyUnavailableError`` if the key cannot be used now."""
        ...


class LocalKey:
    """AES-256-GCM under a 32-byte key of ARX's own (``ARX_KEK``, ``ARX_KEK_RETIRED``)."""

    def __init__(self, kek: bytes) -> None:
        self._aead = AESGCM(kek) if len(kek) == 32 else None
        # A short public fingerprint: names the key without revealing it.
        self._id = "local:" + hashlib.sha256(b"arx-kek-id" + kek).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"LocalKey({self._id if self._aead else 'unconfigured'})"

    @property
    def key_id(self) -> str:
        return self._id

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            raise VaultError("no key-encryption key is configured (ARX_KEK / ARX_KEK_FILE)")
        return self._aead

    async def wrap(self, dek: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._cipher().encrypt(nonce, dek, aad)

    async def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        cipher = self._cipher()
        try:
            return cipher.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], aad)
        except (InvalidTag, ValueError):
            raise VaultError("the stored credential failed authentication") from None
