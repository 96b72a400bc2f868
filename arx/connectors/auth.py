"""How connectors authenticate: one ``httpx.Auth`` per family the vendors use.

- ``StaticToken``: a header built from a stored token (Okta ``SSWS``, Splunk
  ``Splunk``/``Bearer``, PagerDuty ``Token token=``).
- ``Basic``: user and password or API token (Jira Cloud, ServiceNow).
- ``ClientCredentials``: an OAuth 2.0 client-credentials exchange whose access
  token is shared by every call of one credential version (Falcon,
  Entra/Graph, Sentinel, Prisma…), and ``SessionLogin``, a login that hands
  back a session token (Splunk's session key); both through ``TokenSource``.
- ``SigV4``: AWS request signing by botocore's signer (Security Hub).

Every secret is a ``Secret``, revealed in the header or form that sends it.
A token source is fetched in ``prepare`` (before the operation is sent, so a
failure there means nothing was sent) and refreshed once after a 401.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from arx.connectors.http import DestinationRefused, transport_failure
from arx.errors import (
    ConnectorAuthError,
    ConnectorRequestError,
    ConnectorUnreachableError,
)
from arx.tokens import TokenCache
from arx.vault.secret import Secret, secret_dec_hook


class ConnectorAuth(httpx.Auth):
    """An ``httpx.Auth`` that may need a network step before the first request."""

    async def prepare(self, http: httpx.AsyncClient) -> None:
        """Fetch what the requests need; raise if that fails (nothing sent yet)."""
        return

    def rejected(self) -> bool:
        """The tool answered 401: drop what is cached; True if one retry may help."""
        return False

    def hidden(self) -> tuple[Secret, ...]:
        """Values to scrub from anything the tool answers."""
        return ()


class StaticToken(ConnectorAuth):
    def __init__(
        self, token: Secret, *, template: str = "Bearer {}", header: str = "Authorization"
    ):
        self._token = token
        self._template = template
        self._header = header

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._header] = self._template.format(self._token.reveal())
        yield request

    def hidden(self) -> tuple[Secret, ...]:
        return (self._token,)


class Basic(ConnectorAuth):
    def __init__(self, username: str, password: Secret) -> None:
        self._username = username
        self._password = password

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        pair = f"{self._username}:{self._password.reveal()}".encode()
        request.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        yield request

    def hidden(self) -> tuple[Secret, ...]:
        return (self._password,)


class _TokenReply(msgspec.Struct):
    access_token: Secret
    expires_in: int = 3600


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """How to get a token: a form POSTed to ``url``, and how to read the answer."""

    url: str
    form: Mapping[str, str | Secret]
    vendor: str
    # The answer's token and lifetime in seconds; the default reads OAuth 2.0's.
    read: Callable[[bytes], tuple[Secret, float]] | None = None
    headers: Mapping[str, str] | None = None


class TokenSource(ConnectorAuth):
    """A bearer-style token got from the tool itself (OAuth 2.0, a login)."""

    def __init__(
        self,
        cache: TokenCache,
        key: tuple[str, str],
        request: TokenRequest,
        *,
        template: str = "Bearer {}",
        errors: Callable[[httpx.Response], dict[str, Any]] | None = None,
    ) -> None:
        self._cache = cache
        self._key = key
        self._request = request
        self._template = template
        self._errors = errors or (lambda _: {})
        self._token: Secret | None = None

    async def prepare(self, http: httpx.AsyncClient) -> None:
        self._token = await self._cache.get(self._key, lambda: self._exchange(http))

    def rejected(self) -> bool:
        if self._token is not None:
            self._cache.drop(self._key, self._token)
        return True

    def hidden(self) -> tuple[Secret, ...]:
        secrets = tuple(v for v in self._request.form.values() if isinstance(v, Secret))
        return (*secrets, self._token) if self._token is not None else secrets

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        assert self._token is not None, "prepare() first"
        request.headers["Authorization"] = self._template.format(self._token.reveal())
        yield request

    async def _exchange(self, http: httpx.AsyncClient) -> tuple[Secret, float]:
        spec = self._request
        form = {k: v.reveal() if isinstance(v, Secret) else v for k, v in spec.form.items()}
        headers = {"Accept": "application/json", **(spec.headers or {})}
        try:
            response = await http.post(spec.url, data=form, headers=headers)
        except DestinationRefused as exc:
            raise transport_failure(exc, spec.vendor, "the token exchange") from None
        except httpx.TransportError as exc:
            # No operation was sent yet, whatever happened to the token request.
            # ``from None``: the cause holds the request, whose body holds the secret.
            raise ConnectorUnreachableError(
                f"could not get a token from {spec.vendor} ({type(exc).__name__}); "
                "the operation was not sent",
                extra={"reason": type(exc).__name__},
            ) from None
        if response.status_code in {400, 401, 403}:
            raise ConnectorAuthError(
                f"{spec.vendor} rejected the stored credentials (HTTP "
                f"{response.status_code} from the token exchange)",
                upstream_status=response.status_code,
                extra=self._errors(response),
            )
        if not response.is_success:
            raise ConnectorRequestError(
                f"{spec.vendor} answered HTTP {response.status_code} to the token exchange",
                upstream_status=response.status_code,
                extra=self._errors(response),
            )
        try:
            if spec.read is not None:
                return spec.read(response.content)
            reply = msgspec.json.decode(
                response.content, type=_TokenReply, dec_hook=secret_dec_hook
            )
        except (msgspec.DecodeError, ValueError, KeyError):
            raise ConnectorRequestError(
                f"{spec.vendor} answered the token exchange without a usable token",
                upstream_status=response.status_code,
            ) from None
        return reply.access_token, float(reply.expires_in)


def client_credentials(
    cache: TokenCache,
    key: tuple[str, str],
    *,
    token_url: str,
    client_id: str,
    client_secret: Secret,
    vendor: str,
    scope: str | None = None,
    extra: Mapping[str, str] | None = None,
    errors: Callable[[httpx.Response], dict[str, Any]] | None = None,
    grant_type: str | None = "client_credentials",
) -> TokenSource:
    """OAuth 2.0 client credentials (RFC 6749 §4.4), the secret in the form.
    ``grant_type=None`` for a vendor whose token endpoint takes none (Falcon's)."""
    form: dict[str, str | Secret] = {"client_id": client_id, "client_secret": client_secret}
    if grant_type is not None:
        form["grant_type"] = grant_type
    if scope:
        form["scope"] = scope
    form.update(extra or {})
    return TokenSource(cache, key, TokenRequest(token_url, form, vendor), errors=errors)


class SigV4(ConnectorAuth):
    """AWS Signature Version 4, signed by botocore (never by hand)."""

    requires_request_body = True

    def __init__(
        self, *, access_key: str, secret_key: Secret, session_token: Secret | None, region: str,
        service: str,
    ) -> None:  # fmt: skip
        self._access_key = access_key
        self._secret_key = secret_key
        self._session_token = session_token
        self._region = region
        self._service = service

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # Imported here: botocore is large, and only AWS connectors sign.
        from botocore.auth import SigV4Auth  # noqa: PLC0415
        from botocore.awsrequest import AWSRequest  # noqa: PLC0415
        from botocore.credentials import Credentials  # noqa: PLC0415

        credentials = Credentials(
            self._access_key,
            self._secret_key.reveal(),
            self._session_token.reveal() if self._session_token else None,
        )
        # What AWS's own clients sign: host, the body's type and x-amz-*; the
        # rest (accept, length, encoding) may change on the way without harm.
        signed = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("host", "content-type") or k.lower().startswith("x-amz-")
        }
        aws = AWSRequest(
            method=request.method, url=str(request.url), data=request.content, headers=signed
        )
        SigV4Auth(credentials, self._service, self._region).add_auth(aws)
        for name, value in aws.headers.items():
            request.headers[name] = value
        yield request

    def hidden(self) -> tuple[Secret, ...]:
        return (self._secret_key,) + ((self._session_token,) if self._session_token else ())


__all__ = [
    "Basic",
    "ConnectorAuth",
    "SigV4",
    "StaticToken",
    "TokenCache",
    "TokenRequest",
    "TokenSource",
    "client_credentials",
]
