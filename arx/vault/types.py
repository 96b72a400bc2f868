"""What the vault stores and says about a credential (never the secret)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal
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


class OrgKeyInfo(msgspec.Struct, frozen=True, kw_only=True):
    """The org's key-encryption key, and how many sealed versions each key holds."""

    # local (ARX's own), aws-kms, azure-key-vault or gcp-kms.
    provider: str
    # The org's key: a key ARN, a versioned Key Vault key URL or a CryptoKey
    # name; empty for ARX's own.
    key: str
    # The id new wraps are stored under.
    kek_id: str
    # Sealed versions (credentials and notification secrets) per key: after a
    # rotation, everything is under kek_id once the rewrap is done.
    sealed_under: dict[str, int]


class SetOrgKey(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    provider: Literal["local", "aws-kms", "azure-key-vault", "gcp-kms"]
    key: Annotated[str, msgspec.Meta(max_length=512)] = ""
