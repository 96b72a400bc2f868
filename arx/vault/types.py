"""What the vault stores and says about a credential (never the secret)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import msgspec


@dataclass(frozen=True, slots=True, repr=False)
class Sealed:
    kek_id: str
    wrapped_dek: bytes
    nonce: bytes
    ciphertext: bytes

    def __repr__(self) -> str:
        return f"Sealed(kek_id={self.kek_id!r}, <{len(self.ciphertext)} bytes>)"


@dataclass(frozen=True, slots=True, repr=False)
class StoredCredential:
    """A credential version as stored: where it goes and its sealed secret."""

    id: UUID
    org_id: UUID
    connector: str
    version: int
    base_url: str
    sealed: Sealed

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
