"""Google Cloud KMS: encrypt and decrypt a data key with the org's CryptoKey.

ARX authenticates as its own service account (a JWT signed with its key,
exchanged at the account's token URI for an access token with the
``cloudkms`` scope); the org grants that account
``roles/cloudkms.cryptoKeyEncrypterDecrypter`` on its key, and revoking it
makes the org's credentials unusable, nobody else's. The binding is KMS's
additional authenticated data.
"""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path

import httpx
import msgspec
from joserfc import jwt
from joserfc.jwk import RSAKey

from arx.errors import KeyUnavailableError, VaultError
from arx.tokens import TokenCache
from arx.vault.secret import Secret, secret_dec_hook

PREFIX = "gcp-kms:"
SCOPE = "https://www.googleapis.com/auth/cloudkms"
ENDPOINT = "https://cloudkms.googleapis.com"
KEY_NAME = re.compile(
    r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/locations/[a-z0-9-]{1,63}"
    r"/keyRings/[A-Za-z0-9_-]{1,63}/cryptoKeys/[A-Za-z0-9_-]{1,63}$"
)
_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def check_key_ref(ref: str) -> str:
    if not KEY_NAME.match(ref):
        raise ValueError(
            "a Cloud KMS key is named projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>"
        )
    return ref


class ServiceAccount(msgspec.Struct, frozen=True):
    """The fields of a service account key file ARX uses."""

    client_email: str
    private_key: Secret
    token_uri: str
    private_key_id: str | None = None


def load_service_account(path: str) -> ServiceAccount:
    try:
        return msgspec.json.decode(
            Path(path).read_bytes(), type=ServiceAccount, dec_hook=secret_dec_hook
        )
    except (OSError, msgspec.DecodeError) as exc:
        # Never the file's content: it holds the private key.
        raise ValueError(
            f"ARX_GCP_CREDENTIALS_FILE is not a readable service account key ({type(exc).__name__})"
        ) from None


class _Token(msgspec.Struct):
    access_token: Secret
    expires_in: int


class _Reply(msgspec.Struct):
    """EncryptResponse / DecryptResponse: the fields ARX reads (bytes as base64)."""

    ciphertext: str | None = None
    plaintext: str | None = None


class GcpKms:
    """ARX's service account, calling any org's keys."""

    def __init__(
        self, http: httpx.AsyncClient, account: ServiceAccount, *, endpoint: str = ENDPOINT
    ) -> None:
        self._http = http
        self._account = account
        self._endpoint = endpoint.rstrip("/")
        self.tokens = TokenCache()
        self._token_key = ("gcp", self._account.token_uri)

    def key(self, name: str) -> GcpKey:
        if not KEY_NAME.match(name):
            raise VaultError("a stored Cloud KMS key id is not a CryptoKey name")
        return GcpKey(self, name)

    async def _token(self) -> Secret:
        return await self.tokens.get(self._token_key, self._exchange)

    async def _exchange(self) -> tuple[Secret, float]:
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT"}
        if self._account.private_key_id:
            header["kid"] = self._account.private_key_id
        claims = {
            "iss": self._account.client_email,
            "scope": SCOPE,
            "aud": self._account.token_uri,
            "iat": now,
            "exp": now + 3600,
        }
        key = RSAKey.import_key(self._account.private_key.reveal())
        assertion = jwt.encode(header, claims, key)
        try:
            resp = await self._http.post(
                self._account.token_uri,
                data={"grant_type": _JWT_BEARER, "assertion": assertion},
            )
        except httpx.TransportError as exc:
            raise _unreachable("Google's token endpoint", exc) from None
        if not resp.is_success:
            raise KeyUnavailableError(
                f"Google refused ARX's service account (HTTP {resp.status_code})",
                extra={"kms": "gcp", "kms_error": f"token HTTP {resp.status_code}"},
            )
        try:
            token = msgspec.json.decode(resp.content, type=_Token, dec_hook=secret_dec_hook)
        except msgspec.DecodeError:
            raise KeyUnavailableError("Google answered without a usable token") from None
        return token.access_token, float(token.expires_in)

    async def call(self, name: str, verb: str, body: dict[str, str], field: str) -> bytes:
        url = f"{self._endpoint}/v1/{name}:{verb}"
        token = await self._token()
        try:
            resp = await self._send(url, body, token)
            if resp.status_code == 401:
                self.tokens.drop(self._token_key, token)
                resp = await self._send(url, body, await self._token())
        except httpx.TransportError as exc:
            raise _unreachable("Cloud KMS", exc) from None
        status = _status(resp)
        if resp.status_code == 400 and status == "INVALID_ARGUMENT" and verb == "decrypt":
            # Not this key's ciphertext, or other associated data.
            raise VaultError("the stored credential failed authentication")
        if not resp.is_success:
            raise KeyUnavailableError(
                f"Cloud KMS refused to {verb} with the org's key (HTTP {resp.status_code}"
                f"{', ' + status if status else ''})",
                extra={"kms": "gcp", "kms_error": status or f"HTTP {resp.status_code}"},
            )
        try:
            value = getattr(msgspec.json.decode(resp.content, type=_Reply), field)
            return base64.b64decode(value, validate=True)
        except (msgspec.DecodeError, TypeError, ValueError):
            raise KeyUnavailableError(f"Cloud KMS answered {verb} without a usable value") from None

    async def _send(self, url: str, body: dict[str, str], token: Secret) -> httpx.Response:
        return await self._http.post(
            url, json=body, headers={"Authorization": f"Bearer {token.reveal()}"}
        )


class GcpKey:
    def __init__(self, kms: GcpKms, name: str) -> None:
        self._kms = kms
        self._name = name

    def __repr__(self) -> str:
        return f"GcpKey({self._name})"

    @property
    def key_id(self) -> str:
        return PREFIX + self._name

    async def wrap(self, dek: bytes, aad: bytes) -> bytes:
        body = {"plaintext": _b64(dek), "additionalAuthenticatedData": _b64(aad)}
        return await self._kms.call(self._name, "encrypt", body, "ciphertext")

    async def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        body = {"ciphertext": _b64(wrapped), "additionalAuthenticatedData": _b64(aad)}
        return await self._kms.call(self._name, "decrypt", body, "plaintext")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _status(resp: httpx.Response) -> str:
    try:
        error = msgspec.json.decode(resp.content, type=dict[str, dict[str, object]])["error"]
    except (msgspec.DecodeError, KeyError):
        return ""
    return str(error.get("status", ""))


def _unreachable(what: str, exc: httpx.TransportError) -> KeyUnavailableError:
    return KeyUnavailableError(
        f"{what} could not be reached ({type(exc).__name__})",
        extra={"kms": "gcp", "kms_error": type(exc).__name__},
    )
