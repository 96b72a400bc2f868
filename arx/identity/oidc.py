"""OpenID Connect: people sign in with the code flow, machines bring JWT access tokens.

``OIDCClient`` is both ARX's relying party (authorization code + PKCE, the
``id_token`` checked before anyone is signed in) and the resource server of
the admin API (a bearer JWT checked on every request). Guarantees:

- A token is accepted only when signed, with an algorithm from the config's
  allowlist (never ``none`` or HMAC: the config refuses them), by a key the
  provider publishes; ``iss`` equals the configured issuer byte for byte, and
  the audience is ours. ``exp`` is required; ``exp``/``nbf``/``iat`` allow
  ``leeway_seconds`` of clock skew.
- Keys rotate without a restart: an unknown ``kid`` refetches the JWKS, at most
  once per ``jwks_min_refresh_seconds`` (so random kids cannot make us hammer
  the provider), and the set is refetched after ``jwks_max_age_seconds``
  anyway, so a key the provider deleted stops verifying. Concurrent callers
  share one fetch.
- Discovery is fetched once; its ``issuer`` must equal the configured one.
- Failures say which check failed and never quote a token or a secret. A
  provider that cannot be reached or answers garbage is a 503
  (``IdentityProviderUnavailableError``), never a 401.

All time, token validity and JWKS age alike, comes from the injected ``clock``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import time
import warnings
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Generic, TypeVar, cast
from urllib.parse import quote, urlencode

import httpx
import msgspec
from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
    SecurityWarning,
)
from joserfc.jwk import KeySet, KeySetSerialization
from joserfc.jwt import ClaimsOption

from arx.config import ConfigError
from arx.errors import (
    AdminAuthenticationError,
    AuthenticationError,
    IdentityProviderUnavailableError,
    SignInFailedError,
)

T = TypeVar("T")

DISCOVERY_PATH = "/.well-known/openid-configuration"
MAX_LEEWAY_SECONDS = 300
# RFC 7636 allows 43-128 characters; 64 random bytes give 86.
_VERIFIER_BYTES = 64
# state and nonce: 256 bits each, well above the 128 that makes them unguessable.
_RANDOM_BYTES = 32
# Values from a token or a provider that are quoted in a message must look like this.
_QUOTABLE = re.compile(r"[A-Za-z0-9_.+-]{1,32}")
_CLAIM_PROBLEMS = {
    "iss": "issuer does not match",
    "aud": "audience does not match",
    "nbf": "token is not valid yet",
    "iat": "token was issued in the future",
    "exp": "expiry is not a number",
    "sub": "subject is not a string",
}


class OIDCConfig(msgspec.Struct, frozen=True, kw_only=True):
    issuer: str  # exact issuer URL, compared exactly with `iss`
    client_id: str
    client_secret: str
    redirect_uri: str  # ARX's /auth/oidc/callback absolute URL
    audience: str  # the `aud` an admin-API bearer access token must carry
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    algorithms: tuple[str, ...] = ("RS256", "PS256", "ES256", "EdDSA")
    leeway_seconds: int = 60
    jwks_min_refresh_seconds: float = 30.0
    jwks_max_age_seconds: float = 3600.0

    def __post_init__(self) -> None:
        # "none" needs no key, and an HMAC "key" would be a public JWK anyone
        # can sign with: both would let a caller mint their own tokens.
        weak = [a for a in self.algorithms if a.lower() == "none" or a.upper().startswith("HS")]
        if weak or not self.algorithms:
            raise ConfigError(f"OIDC algorithms must be asymmetric; refused: {weak or 'empty'}")
        if "openid" not in self.scopes:
            raise ConfigError("OIDC scopes must include 'openid'")
        # Clock skew is seconds; a leeway of hours would quietly revive expired tokens.
        if not 0 <= self.leeway_seconds <= MAX_LEEWAY_SECONDS:
            raise ConfigError(f"OIDC leeway_seconds must be 0-{MAX_LEEWAY_SECONDS}")

    def __repr__(self) -> str:
        # The client secret must never reach a log line.
        return f"OIDCConfig(issuer={self.issuer!r}, client_id={self.client_id!r}, <redacted>)"

    __str__ = __repr__


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    expires_at: float  # epoch seconds of the token's exp


class AuthorizationRequest(msgspec.Struct, frozen=True, kw_only=True):
    url: str  # where to redirect the browser
    state: str
    nonce: str
    code_verifier: str  # PKCE (RFC 7636); its S256 challenge is in url


class _Discovery(msgspec.Struct, frozen=True):
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


class _JWKS(msgspec.Struct, frozen=True):
    keys: list[dict[str, Any]]


class _TokenResponse(msgspec.Struct, frozen=True):
    id_token: str


class _OAuthError(msgspec.Struct, frozen=True):
    error: str


class _Shared(Generic[T]):
    """At most one run of ``fetch`` at a time; callers that arrive meanwhile share its outcome.

    The run is shielded: one caller's cancellation does not fail the others.
    """

    def __init__(self, fetch: Callable[[], Coroutine[Any, Any, T]]) -> None:
        self._fetch = fetch
        self._task: asyncio.Future[T] | None = None

    async def __call__(self) -> T:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
            # Marks the outcome retrieved even if every caller was cancelled.
            self._task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return await asyncio.shield(self._task)

    async def _run(self) -> T:
        try:
            return await self._fetch()
        finally:
            self._task = None


class OIDCClient:
    def __init__(
        self,
        config: OIDCConfig,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._http = http
        self._clock = clock
        # RFC 6749 section 2.3.1: id and secret are form-encoded before Basic.
        self._client_auth = httpx.BasicAuth(
            quote(config.client_id, safe=""), quote(config.client_secret, safe="")
        )
        self._discovery: _Discovery | None = None
        self._fetch_discovery = _Shared(self._load_discovery)
        self._keys: KeySet | None = None
        self._keys_fetched_at = 0.0
        # Set when a JWKS fetch starts, success or not: the refetch rate limit.
        self._keys_attempted_at = float("-inf")
        self._fetch_keys = _Shared(self._load_keys)

    async def authorization_request(self) -> AuthorizationRequest:
        """A fresh state, nonce and PKCE verifier, and the provider URL that carries them."""
        meta = await self._metadata()
        state = secrets.token_urlsafe(_RANDOM_BYTES)
        nonce = secrets.token_urlsafe(_RANDOM_BYTES)
        verifier = secrets.token_urlsafe(_VERIFIER_BYTES)
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self._config.client_id,
                "redirect_uri": self._config.redirect_uri,
                "scope": " ".join(self._config.scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"),
                "code_challenge_method": "S256",
            }
        )
        endpoint = meta.authorization_endpoint
        url = f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
        return AuthorizationRequest(url=url, state=state, nonce=nonce, code_verifier=verifier)

    async def complete(self, *, code: str, code_verifier: str, nonce: str) -> Identity:
        """Redeem ``code`` and return who signed in, once the ``id_token`` checks out."""
        meta = await self._metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self._config.redirect_uri,
            "code_verifier": code_verifier,
        }
        try:
            resp = await self._http.post(
                meta.token_endpoint,
                data=form,
                auth=self._client_auth,
                headers={"accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise _unreachable("token endpoint", meta.token_endpoint, exc) from exc
        if resp.status_code in (400, 401):
            # A bad or replayed code, a wrong verifier, or ARX's client refused.
            raise SignInFailedError(f"the provider refused the code ({_oauth_error(resp)})")
        tokens = _decode(resp, _TokenResponse, what="token endpoint", url=meta.token_endpoint)
        claims = await self._verified_claims(tokens.id_token, SignInFailedError)
        self._check_claims(
            claims, audience=self._config.client_id, error=SignInFailedError, id_token=True
        )
        # OIDC Core 3.1.3.7: with several audiences, the token must say it was for us.
        azp = claims.get("azp")
        several = isinstance(claims["aud"], list) and len(claims["aud"]) > 1
        if (several or azp is not None) and azp != self._config.client_id:
            raise SignInFailedError("id_token authorized party does not match")
        got = claims.get("nonce")
        if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
            raise SignInFailedError("id_token nonce does not match")
        return self._identity(claims)

    async def verify_bearer(self, token: str) -> Identity:
        """The caller behind an admin-API bearer JWT; ``AdminAuthenticationError`` if none."""
        claims = await self._verified_claims(token, AdminAuthenticationError)
        self._check_claims(
            claims, audience=self._config.audience, error=AdminAuthenticationError, id_token=False
        )
        return self._identity(claims)

    # -- tokens -------------------------------------------------------------------

    async def _verified_claims(
        self, token: str, error: type[AuthenticationError]
    ) -> dict[str, Any]:
        """The claims of ``token`` once its signature verifies; nothing about them checked yet."""
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeError):
            raise error("token is not a well-formed JWS") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._config.algorithms:
            raise error(f"algorithm not allowed: {_quotable(alg)}")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise error("token key id is not a string")
        keys = await self._keys_for(kid)
        if keys is None:
            raise error("unknown signing key")
        try:
            with warnings.catch_warnings():
                # joserfc warns that "EdDSA" is deprecated by RFC 9864; our
                # allowlist decides what is accepted, and a warning per token
                # would only flood the log.
                warnings.simplefilter("ignore", SecurityWarning)
                decoded = jwt.decode(token, keys, algorithms=list(self._config.algorithms))
        except BadSignatureError:
            raise error("signature does not verify") from None
        except InvalidKeyIdError:
            raise error("unknown signing key (none published fits its kid and alg)") from None
        except (JoseError, ValueError):
            raise error("token is malformed or its key does not fit its algorithm") from None
        return decoded.claims

    def _check_claims(
        self,
        claims: dict[str, Any],
        *,
        audience: str,
        error: type[AuthenticationError],
        id_token: bool,
    ) -> None:
        required: dict[str, ClaimsOption] = {
            "iss": {"essential": True, "value": self._config.issuer},
            "aud": {"essential": True, "value": audience},
            "sub": {"essential": True},
            "exp": {"essential": True},
        }
        if id_token:
            required["iat"] = {"essential": True}  # OIDC Core 2: an id_token always has iat
        registry = jwt.JWTClaimsRegistry(
            now=int(self._clock()), leeway=self._config.leeway_seconds, **required
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise error("token expired") from None
        except MissingClaimError as exc:
            raise error(f"token lacks required claim(s): {exc.claim}") from None
        except ClaimError as exc:
            raise error(_CLAIM_PROBLEMS.get(exc.claim, f"claim {exc.claim} is invalid")) from None

    def _identity(self, claims: Mapping[str, Any]) -> Identity:
        # Hydra puts the consent session's access-token claims under "ext".
        ext = claims.get("ext")
        profile = {**(ext if isinstance(ext, dict) else {}), **claims}
        email, name = profile.get("email"), profile.get("name")
        return Identity(
            issuer=self._config.issuer,
            subject=claims["sub"],
            email=email if isinstance(email, str) else None,
            email_verified=profile.get("email_verified") is True,
            name=name if isinstance(name, str) else None,
            expires_at=float(claims["exp"]),
        )

    # -- provider metadata and keys -------------------------------------------------

    async def _metadata(self) -> _Discovery:
        if self._discovery is None:
            self._discovery = await self._fetch_discovery()
        return self._discovery

    async def _load_discovery(self) -> _Discovery:
        url = self._config.issuer.rstrip("/") + DISCOVERY_PATH
        meta = await self._get(url, _Discovery, what="discovery")
        if meta.issuer != self._config.issuer:
            # OIDC Discovery 4.3: a document for another issuer is not ours to trust.
            raise IdentityProviderUnavailableError(
                f"discovery at {url} names issuer {meta.issuer!r}, "
                f"not the configured {self._config.issuer!r}"
            )
        return meta

    async def _keys_for(self, kid: str | None) -> KeySet | None:
        """The JWKS if it has ``kid`` (refetched when old, or once when the kid is new), or None."""
        keys = self._keys
        age = self._clock() - self._keys_fetched_at
        if keys is None or age >= self._config.jwks_max_age_seconds:
            keys = await self._fetch_keys()
        if _has_kid(keys, kid):
            return keys
        if self._clock() - self._keys_attempted_at < self._config.jwks_min_refresh_seconds:
            return None
        keys = await self._fetch_keys()
        return keys if _has_kid(keys, kid) else None

    async def _load_keys(self) -> KeySet:
        self._keys_attempted_at = self._clock()
        meta = await self._metadata()
        doc = await self._get(meta.jwks_uri, _JWKS, what="JWKS")
        try:
            keys = KeySet.import_key_set(cast(KeySetSerialization, {"keys": doc.keys}))
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise IdentityProviderUnavailableError(
                f"JWKS at {meta.jwks_uri} holds no usable key ({type(exc).__name__})"
            ) from None
        self._keys, self._keys_fetched_at = keys, self._clock()
        return keys

    async def _get(self, url: str, kind: type[T], *, what: str) -> T:
        try:
            resp = await self._http.get(url, headers={"accept": "application/json"})
        except httpx.HTTPError as exc:
            raise _unreachable(what, url, exc) from exc
        return _decode(resp, kind, what=what, url=url)


def _decode(resp: httpx.Response, kind: type[T], *, what: str, url: str) -> T:
    if resp.status_code != 200:
        raise IdentityProviderUnavailableError(f"{what} at {url} answered HTTP {resp.status_code}")
    try:
        return msgspec.json.decode(resp.content, type=kind)
    except msgspec.DecodeError as exc:
        # msgspec names the path of a bad field, never its value.
        raise IdentityProviderUnavailableError(
            f"{what} at {url} answered an unusable document: {exc}"
        ) from None


def _unreachable(what: str, url: str, exc: httpx.HTTPError) -> IdentityProviderUnavailableError:
    return IdentityProviderUnavailableError(f"{what} at {url} unreachable: {type(exc).__name__}")


def _oauth_error(resp: httpx.Response) -> str:
    """The OAuth ``error`` code of a refusal (RFC 6749 5.2), if it is safe to quote."""
    try:
        return _quotable(msgspec.json.decode(resp.content, type=_OAuthError).error)
    except msgspec.DecodeError:
        return f"HTTP {resp.status_code}"


def _quotable(value: object) -> str:
    return value if isinstance(value, str) and _QUOTABLE.fullmatch(value) else "(unprintable)"


def _has_kid(keys: KeySet, kid: str | None) -> bool:
    # A token without a kid can only mean the one key of a single-key set.
    if kid is None:
        return len(keys.keys) == 1
    return any(key.kid == kid for key in keys)
