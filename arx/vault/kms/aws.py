"""AWS KMS: Encrypt and Decrypt a data key under the org's symmetric KMS key.

Through boto3 (the vendor's client: SigV4, retries, the credential chain),
in a worker thread, one client per region. ARX's own AWS identity calls
KMS; the org grants it kms:Encrypt and kms:Decrypt in its key policy, and
revoking that grant makes the org's credentials unusable, nobody else's.

The encryption context carries the org's id in clear (``arx-org``) and the
binding (the vault's associated data) hashed: KMS logs the context in
CloudTrail. ARX calls KMS as one identity for every org, so the org's key
policy should allow it only with its own id:
``"Condition": {"StringEquals": {"kms:EncryptionContext:arx-org": "<org id>"}}``;
then no other org can name that key.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any
from uuid import UUID

from botocore.exceptions import BotoCoreError, ClientError

from arx.errors import KeyUnavailableError, VaultError

PREFIX = "aws-kms:"
# A key ARN (not an alias: a decrypt names the exact key it expects).
KEY_ARN = re.compile(
    r"^arn:aws(-[a-z]+)*:kms:(?P<region>[a-z]{2}(-[a-z]+)+-[0-9]):[0-9]{12}"
    r":key/(mrk-)?[0-9a-f-]{32,36}$"
)
# Refusals that say the ciphertext is not this key's, or was changed.
_NOT_OURS = {"InvalidCiphertextException", "IncorrectKeyException"}


def check_key_ref(ref: str) -> str:
    if not KEY_ARN.match(ref):
        raise ValueError(
            "an AWS KMS key is named by its key ARN, arn:aws:kms:<region>:<account>:key/<id>"
        )
    return ref


class AwsKms:
    """boto3 KMS clients, one per region, for every org's keys."""

    def __init__(self, *, endpoint_url: str | None = None) -> None:
        self._endpoint_url = endpoint_url
        self._clients: dict[str, Any] = {}

    def client(self, region: str) -> Any:
        client = self._clients.get(region)
        if client is None:
            # Imported here: boto3 takes a while to load, and most deployments never use it.
            import boto3  # noqa: PLC0415
            from botocore.config import Config  # noqa: PLC0415

            client = boto3.session.Session().client(
                "kms",
                region_name=region,
                endpoint_url=self._endpoint_url,
                config=Config(
                    connect_timeout=3,
                    read_timeout=5,
                    retries={"max_attempts": 3, "mode": "standard"},
                ),
            )
            self._clients[region] = client
        return client

    def key(self, arn: str, org_id: UUID) -> AwsKmsKey:
        match = KEY_ARN.match(arn)
        if match is None:
            raise VaultError("a stored AWS KMS key id is not a key ARN")
        try:
            client = self.client(match["region"])
        except BotoCoreError as exc:
            raise KeyUnavailableError(
                f"AWS KMS cannot be used in that region ({type(exc).__name__})",
                extra={"kms": "aws", "kms_error": type(exc).__name__},
            ) from None
        return AwsKmsKey(arn, client, org_id)


class AwsKmsKey:
    def __init__(self, arn: str, client: Any, org_id: UUID) -> None:
        self._arn = arn
        self._client = client
        self._org = str(org_id)

    def __repr__(self) -> str:
        return f"AwsKmsKey({self._arn})"

    @property
    def key_id(self) -> str:
        return PREFIX + self._arn

    async def wrap(self, dek: bytes, aad: bytes) -> bytes:
        reply = await self._call(
            "encrypt", KeyId=self._arn, Plaintext=dek, EncryptionContext=self._context(aad)
        )
        return bytes(reply["CiphertextBlob"])

    async def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        reply = await self._call(
            "decrypt", KeyId=self._arn, CiphertextBlob=wrapped, EncryptionContext=self._context(aad)
        )
        return bytes(reply["Plaintext"])

    def _context(self, aad: bytes) -> dict[str, str]:
        return {"arx-org": self._org, "arx-binding": hashlib.sha256(aad).hexdigest()}

    async def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            reply: dict[str, Any] = await asyncio.to_thread(
                getattr(self._client, operation), **kwargs
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "error"))
            if code in _NOT_OURS:
                raise VaultError("the stored credential failed authentication") from None
            raise KeyUnavailableError(
                f"AWS KMS refused to {operation} with the org's key ({code})",
                extra={"kms": "aws", "kms_error": code},
            ) from None
        except BotoCoreError as exc:
            raise KeyUnavailableError(
                f"AWS KMS could not be reached ({type(exc).__name__})",
                extra={"kms": "aws", "kms_error": type(exc).__name__},
            ) from None
        return reply
