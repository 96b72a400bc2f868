"""Azure Key Vault: wrapKey and unwrapKey with the org's RSA key (RSA-OAEP-256).

ARX authenticates as its own Entra application (client credentials, scope
``https://vault.azure.net/.default``) in its own tenant; the org grants that
application the key's wrapKey/unwrapKey permissions, and revoking them makes
the org's credentials unusable, nobody else's. Key Vault API version 7.4.
Only vaults that accept tokens of ARX's tenant work today (a multi-tenant
application would take the tenant from the vault's 401 challenge).

RSA-OAEP takes no associated data, so ARX wraps the data key followed by
the SHA-256 of the binding and checks it when unwrapping: a wrapped key
moved to another credential is refused here too, not only by AES-GCM.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from urllib.parse import urlsplit

import httpx
import msgspec

from arx.errors import KeyUnavailableError, VaultError
from arx.tokens import TokenCache
from arx.vault.secret import Secret, secret_dec_hook

PREFIX = "azure-kv:"
API_VERSION = "7.4"
SCOPE = "https://vault.azure.net/.default"
ALGORITHM = "RSA-OAEP-256"
# Vaults of Azure's public cloud (a vault name: 3-24 letters, digits and
# hyphens). Managed HSM, and the China and US Government clouds, need other
# scopes and authorities: not offered yet.
_VAULT_HOST = re.compile(r"^[a-z0-9-]{3,24}\.vault\.azure\.net$")
_KEY_PATH = re.compile(r"^/keys/[0-9A-Za-z-]{1,127}/[0-9a-f]{32}$")
_DIGEST = hashlib.sha256().digest_size


def check_key_ref(ref: str) -> str:
    """A versioned key URL: https://<vault>.vault.azure.net/keys/<name>/<version>."""
    parts = urlsplit(ref)
    host = (parts.hostname or "").lower()
    if (
        parts.scheme != "https"
        or not _VAULT_HOST.match(host)
        or parts.port not in (None, 443)
        or parts.username
        or parts.query
        or parts.fragment
        or not _KEY_PATH.match(parts.path)
    ):
        raise ValueError(
            "an Azure Key Vault key is named by its versioned URL, "
            "https://<vault>.vault.azure.net/keys/<name>/<version>"
        )
    return f"https://{host}{parts.path}"


class _Token(msgspec.Struct):
    access_token: Secret
    expires_in: int


class _Result(msgspec.Struct):
    value: str
    kid: str | None = None


class AzureKeyVault:
    """ARX's Entra application, calling any org's vault."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        tenant_id: str,
        client_id: str,
        client_secret: Secret,
        authority: str = "https://login.microsoftonline.com",
        endpoint: str | None = None,
    ) -> None:
        self._http = http
        self._token_url = f"{authority.rstrip('/')}/{tenant_id}/oauth2/v2.0/token"
        self._client_id = client_id
        self._client_secret = client_secret
        # Tests (and emulators): every vault's requests go here instead.
        self._endpoint = endpoint.rstrip("/") if endpoint else None
        self.tokens = TokenCache()
        self._token_key = ("azure", self._token_url)

    def key(self, url: str) -> AzureKey:
        try:
            ref = check_key_ref(url)
        except ValueError:
            raise VaultError("a stored Azure Key Vault key id is not a versioned key URL") from None
        parts = urlsplit(ref)
        base = self._endpoint or f"https://{parts.hostname}"
        return AzureKey(self, ref, f"{base}{parts.path}")

    async def _token(self) -> Secret:
        return await self.tokens.get(self._token_key, self._exchange)

    async def _exchange(self) -> tuple[Secret, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret.reveal(),
            "scope": SCOPE,
        }
        try:
            resp = await self._http.post(self._token_url, data=form)
        except httpx.TransportError as exc:
            raise _unreachable("Entra ID", exc) from None
        if not resp.is_success:
            raise KeyUnavailableError(
                f"Entra ID refused ARX's Key Vault credentials (HTTP {resp.status_code})",
                extra={"kms": "azure", "kms_error": f"token HTTP {resp.status_code}"},
            )
        try:
            token = msgspec.json.decode(resp.content, type=_Token, dec_hook=secret_dec_hook)
        except msgspec.DecodeError:
            raise KeyUnavailableError("Entra ID answered without a usable token") from None
        return token.access_token, float(token.expires_in)

    async def post(self, url: str, value: bytes) -> bytes:
        body = {"alg": ALGORITHM, "value": _b64url(value)}
        token = await self._token()
        try:
            resp = await self._send(url, body, token)
            if resp.status_code == 401:
                self.tokens.drop(self._token_key, token)
                resp = await self._send(url, body, await self._token())
        except httpx.TransportError as exc:
            raise _unreachable("Azure Key Vault", exc) from None
        if resp.status_code in (401, 403, 404):
            raise KeyUnavailableError(
                f"Azure Key Vault refused the org's key (HTTP {resp.status_code})",
                extra={"kms": "azure", "kms_error": f"HTTP {resp.status_code}"},
            )
        if resp.status_code == 400:
            # A value the key did not wrap (or one changed since).
            raise VaultError("the stored credential failed authentication")
        if not resp.is_success:
            raise KeyUnavailableError(
                f"Azure Key Vault answered HTTP {resp.status_code}",
                extra={"kms": "azure", "kms_error": f"HTTP {resp.status_code}"},
            )
        try:
            return _unb64url(msgspec.json.decode(resp.content, type=_Result).value)
        except (msgspec.DecodeError, ValueError):
            raise KeyUnavailableError("Azure Key Vault answered without a usable value") from None

    async def _send(self, url: str, body: dict[str, str], token: Secret) -> httpx.Response:
        return await self._http.post(
            url,
            params={"api-version": API_VERSION},
            json=body,
            headers={"Authorization": f"Bearer {token.reveal()}"},
        )


class AzureKey:
    def __init__(self, vault: AzureKeyVault, ref: str, url: str) -> None:
        self._vault = vault
        self._ref = ref
        self._url = url

    def __repr__(self) -> str:
        return f"AzureKey({self._ref})"

    @property
    def key_id(self) -> str:
        return PREFIX + self._ref

    async def wrap(self, dek: bytes, aad: bytes) -> bytes:
        return await self._vault.post(f"{self._url}/wrapkey", dek + hashlib.sha256(aad).digest())

    async def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        plain = await self._vault.post(f"{self._url}/unwrapkey", wrapped)
        dek, digest = plain[:-_DIGEST], plain[-_DIGEST:]
        if len(dek) != 32 or not hmac.compare_digest(digest, hashlib.sha256(aad).digest()):
            raise VaultError("the stored credential failed authentication")
        return dek


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _unreachable(what: str, exc: httpx.TransportError) -> KeyUnavailableError:
    return KeyUnavailableError(
        f"{what} could not be reached ({type(exc).__name__})",
        extra={"kms": "azure", "kms_error": type(exc).__name__},
    )
