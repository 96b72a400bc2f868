"""The vault: seals credentials and opens them for one connector call.

A plaintext secret exists only while it is being sealed and, in ``open``,
for the single connector call that needs it: it is never returned by an
API, logged, cached, or written to the audit trail. The vault owns its key
provider, so nobody threads the key-encryption key by hand.
"""

from __future__ import annotations

from typing import TypeVar
from uuid import UUID

import msgspec

from arx.errors import VaultError
from arx.vault import crypto
from arx.vault.keys import KeyProvider
from arx.vault.secret import reveal_hook, secret_dec_hook
from arx.vault.types import Sealed, StoredCredential

S = TypeVar("S")


class Vault:
    def __init__(self, keys: KeyProvider) -> None:
        self._keys = keys

    def __repr__(self) -> str:
        return f"Vault({self._keys!r})"

    def seal(self, org_id: UUID, connector: str, version: int, secret: msgspec.Struct) -> Sealed:
        """Seal ``secret`` (its ``Secret`` fields revealed into the ciphertext only)."""
        plaintext = msgspec.json.encode(secret, enc_hook=reveal_hook)
        return crypto.seal(self._keys, org_id, connector, version, plaintext)

    def open(self, credential: StoredCredential, secret_type: type[S]) -> S:
        """Decrypt ``credential`` into ``secret_type`` for one call."""
        plaintext = crypto.open_sealed(
            self._keys,
            credential.org_id,
            credential.connector,
            credential.version,
            credential.sealed,
        )
        try:
            return msgspec.json.decode(plaintext, type=secret_type, dec_hook=secret_dec_hook)
        except msgspec.ValidationError:
            # The message names a field of the secret, never its value.
            raise VaultError("the stored credential does not fit the connector's secret") from None
