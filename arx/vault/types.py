"""What the vault stores and says about a credential (never the secret)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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
    """What the admin API may say about a credential version: never the secret."""

    id: UUID
    connector: str
    version: int
    # Empty for a deletion.
    base_url: str
    # None for a deletion (a version with no secret).
    kek_id: str | None
    deleted: bool = False
    created_by: str | None = None
    created_at: datetime | None = None


class CredentialList(msgspec.Struct, frozen=True, kw_only=True):
    """Each connector's current version (a deleted one says so)."""

    credentials: list[CredentialInfo]


class ConnectorHost(msgspec.Struct, frozen=True, kw_only=True):
    connector: str
    host: str
    added_by: str
    added_at: datetime


class ConnectorHosts(msgspec.Struct, frozen=True, kw_only=True):
    """Where the connector's credentials may go: its own hosts and the org's."""

    connector: str
    defaults: list[str]
    added: list[ConnectorHost]
