"""Which key-encryption key wraps an org's new data keys, and which opens a
stored one; and the brief cache of unwrapped data keys.

Every wrap is stored with its ``kek_id`` (arx.vault.keys): ``local:<id>`` for
ARX's own keys (the current ``ARX_KEK`` and any ``ARX_KEK_RETIRED``),
``aws-kms:<key ARN>``, ``azure-kv:<versioned key URL>`` or
``gcp-kms:<CryptoKey name>`` for an org's own key. Opening needs no org
setting: the id says which key, and ARX's identity at that KMS is the
deployment's (settings), never the org's.

Unwrapped data keys are kept for ``cache_seconds`` (the plaintext secrets
never are), so a KMS is asked once per credential version per interval
rather than once per call. Revoking ARX's access to an org's key therefore
takes effect within that interval.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from uuid import UUID

from arx.errors import KeyUnavailableError, VaultError
from arx.vault.keys import KeyProvider, LocalKey
from arx.vault.kms import aws, azure, gcp

PROVIDERS = ("local", "aws-kms", "azure-key-vault", "gcp-kms")
_MAX_CACHED = 10_000


@dataclass(frozen=True, slots=True)
class OrgKey:
    """An org's choice of key-encryption key (``arx.org_keys``)."""

    provider: str
    key_ref: str


class KeyRing:
    def __init__(
        self,
        local: bytes,
        *,
        retired: Iterable[bytes] = (),
        aws_kms: aws.AwsKms | None = None,
        azure_kv: azure.AzureKeyVault | None = None,
        gcp_kms: gcp.GcpKms | None = None,
        cache_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._local = LocalKey(local)
        self._retired = {k.key_id: k for k in map(LocalKey, retired)}
        self._aws = aws_kms
        self._azure = azure_kv
        self._gcp = gcp_kms
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[tuple[str, bytes, bytes], tuple[bytes, float]] = {}

    def __repr__(self) -> str:
        return f"KeyRing({self._local!r}, retired={len(self._retired)})"

    @property
    def local(self) -> LocalKey:
        return self._local

    def current(self, org_key: OrgKey | None, org_id: UUID) -> KeyProvider:
        """The key that wraps the org's new data keys."""
        if org_key is None or org_key.provider == "local":
            return self._local
        return self.provider(_PREFIX[org_key.provider] + org_key.key_ref, org_id)

    def provider(self, kek_id: str, org_id: UUID) -> KeyProvider:
        """The key named by a stored ``kek_id``, used for ``org_id``."""
        scheme, _, ref = kek_id.partition(":")
        if scheme == "local":
            key = self._local if kek_id == self._local.key_id else self._retired.get(kek_id)
            if key is None:
                raise VaultError(
                    "the credential was sealed under a local key-encryption key this deployment "
                    "does not hold (ARX_KEK, ARX_KEK_RETIRED)"
                )
            return key
        if scheme == "aws-kms" and self._aws is not None:
            return self._aws.key(ref, org_id)
        if scheme == "azure-kv" and self._azure is not None:
            return self._azure.key(ref)
        if scheme == "gcp-kms" and self._gcp is not None:
            return self._gcp.key(ref)
        if scheme in ("aws-kms", "azure-kv", "gcp-kms"):
            raise KeyUnavailableError(
                f"the org's key is in {scheme}, which this deployment is not configured to reach",
                extra={"kms": scheme},
            )
        raise VaultError("the credential names a key-encryption key ARX does not know")

    async def unwrap(self, kek_id: str, wrapped: bytes, aad: bytes, org_id: UUID) -> bytes:
        now = self._clock()
        key = (kek_id, wrapped, aad)
        cached = self._cache.get(key)
        if cached is not None and now < cached[1]:
            return cached[0]
        dek = await self.provider(kek_id, org_id).unwrap(wrapped, aad)
        if self._cache_seconds > 0:
            if len(self._cache) >= _MAX_CACHED:
                self._prune(now)
            self._cache[key] = (dek, now + self._cache_seconds)
        return dek

    def forget(self) -> None:
        """Drop every cached data key (a test, or an operator's rotation)."""
        self._cache.clear()

    def _prune(self, now: float) -> None:
        for key in [k for k, (_, until) in self._cache.items() if now >= until]:
            del self._cache[key]
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()


_PREFIX = {"aws-kms": aws.PREFIX, "azure-key-vault": azure.PREFIX, "gcp-kms": gcp.PREFIX}


def check_key_ref(provider: str, ref: str) -> str:
    """An org's key reference, normalised, or ``ValueError`` saying what is expected."""
    if provider == "local":
        if ref:
            raise ValueError("the local key takes no key reference")
        return ""
    if provider == "aws-kms":
        return aws.check_key_ref(ref)
    if provider == "azure-key-vault":
        return azure.check_key_ref(ref)
    if provider == "gcp-kms":
        return gcp.check_key_ref(ref)
    raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}")
