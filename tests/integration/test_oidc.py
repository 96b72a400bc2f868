"""``arx.identity.oidc`` against a real OpenID provider (ory/hydra).

People: the authorization-code flow with PKCE, end to end, and the ways it
must fail (wrong verifier, wrong nonce, a code used twice). Machines: JWT
access tokens from hydra's client_credentials grant, and every way a token
must be refused (audience, expiry, forgery with hydra's own kid, another
issuer signing with the same keys, ``alg: none``, HS256). Keys rotated at
hydra verify after one refetch and stop verifying once deleted.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.jwk import OctKey, RSAKey

from arx.config import ConfigError
from arx.devstack.ports import free_port
from arx.errors import (
    AdminAuthenticationError,
    AuthenticationError,
    IdentityProviderUnavailableError,
    SignInFailedError,
)
from arx.identity.oidc import OIDCClient, OIDCConfig
from tests.fixtures.hydra import Hydra, OAuthClient

pytestmark = pytest.mark.anyio

REDIRECT_URI = "http://arx.test/auth/oidc/callback"
AUDIENCE = "arx-admin-api"
LEEWAY = 60
JWKS = "/.well-known/jwks.json"
OTHER_AUDIENCE = "some-other-api"


class Clock:
    """Real time plus an offset the test can move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def fetched() -> Counter[str]:
    """How often the OIDCClient's HTTP client requested each path."""
    return Counter()


@pytest.fixture
async def http(fetched: Counter[str]) -> AsyncIterator[httpx.AsyncClient]:
    async def count(request: httpx.Request) -> None:
        fetched[request.url.path] += 1

    async with httpx.AsyncClient(
        trust_env=False, timeout=5.0, event_hooks={"request": [count]}
    ) as client:
        yield client


@pytest.fixture
async def web(hydra: Hydra) -> OAuthClient:
    return await hydra.create_client(redirect_uris=[REDIRECT_URI], audience=[AUDIENCE])


@pytest.fixture
async def machine(hydra: Hydra) -> OAuthClient:
    return await hydra.create_client(
        grant_types=["client_credentials"], audience=[AUDIENCE, OTHER_AUDIENCE], scope=""
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


MakeOIDC = Callable[..., OIDCClient]


@pytest.fixture
def make_oidc(hydra: Hydra, web: OAuthClient, http: httpx.AsyncClient, clock: Clock) -> MakeOIDC:
    """An OIDCClient for ``web`` on ``http`` and ``clock``; keyword arguments set config fields."""

    def make(**more: Any) -> OIDCClient:
        return OIDCClient(hydra.oidc_config(web, audience=AUDIENCE, **more), http, clock=clock)

    return make


@pytest.fixture
def oidc(make_oidc: MakeOIDC) -> OIDCClient:
    return make_oidc()


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a JWS, unverified (to build forgeries from a real token)."""
    obj = jws.extract_compact(token.encode())
    return dict(obj.headers()), json.loads(obj.payload)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def _refused(
    oidc: OIDCClient,
    token: str,
    match: str,
    error: type[AuthenticationError] = AdminAuthenticationError,
) -> None:
    with pytest.raises(error, match=match) as caught:
        await oidc.verify_bearer(token)
    assert token not in str(caught.value)


# -- people: the authorization-code flow ---------------------------------------------


async def test_code_flow_with_pkce_signs_the_person_in(hydra: Hydra, oidc: OIDCClient) -> None:
    request = await oidc.authorization_request()
    query = parse_qs(urlsplit(request.url).query)
    assert request.url.startswith(f"{hydra.issuer}/oauth2/auth?")
    challenge = hashlib.sha256(request.code_verifier.encode()).digest()
    assert query["code_challenge"] == [base64.urlsafe_b64encode(challenge).rstrip(b"=").decode()]
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"] == [request.state]
    assert query["nonce"] == [request.nonce]
    # token_urlsafe(16) is 22 characters: at least 128 bits each.
    assert min(len(request.state), len(request.nonce)) >= 22
    assert 43 <= len(request.code_verifier) <= 128

    callback = await hydra.run_code_flow(
        request.url, subject="alice", email="alice@example.test", name="Alice Liddell"
    )
    assert callback.url.startswith(f"{REDIRECT_URI}?")
    assert callback.state == request.state

    identity = await oidc.complete(
        code=callback.code, code_verifier=request.code_verifier, nonce=request.nonce
    )
    assert identity.issuer == hydra.issuer
    assert identity.subject == "alice"
    assert identity.email == "alice@example.test"
    assert identity.email_verified is True
    assert identity.name == "Alice Liddell"
    assert time.time() < identity.expires_at <= time.time() + 3700


async def test_each_authorization_request_is_fresh(oidc: OIDCClient) -> None:
    first, second = await oidc.authorization_request(), await oidc.authorization_request()
    assert first.state != second.state
    assert first.nonce != second.nonce
    assert first.code_verifier != second.code_verifier


async def test_a_wrong_code_verifier_is_refused(hydra: Hydra, oidc: OIDCClient) -> None:
    request = await oidc.authorization_request()
    callback = await hydra.run_code_flow(request.url, subject="mallory")
    other = await oidc.authorization_request()
    with pytest.raises(SignInFailedError, match="refused the code"):
        await oidc.complete(
            code=callback.code, code_verifier=other.code_verifier, nonce=request.nonce
        )


async def test_a_wrong_nonce_is_refused(hydra: Hydra, oidc: OIDCClient) -> None:
    request = await oidc.authorization_request()
    callback = await hydra.run_code_flow(request.url, subject="mallory")
    other = await oidc.authorization_request()
    with pytest.raises(SignInFailedError, match="nonce does not match"):
        await oidc.complete(
            code=callback.code, code_verifier=request.code_verifier, nonce=other.nonce
        )


async def test_a_code_is_redeemed_once(hydra: Hydra, oidc: OIDCClient) -> None:
    request = await oidc.authorization_request()
    callback = await hydra.run_code_flow(request.url, subject="alice")
    done = {"code": callback.code, "code_verifier": request.code_verifier, "nonce": request.nonce}
    await oidc.complete(**done)
    with pytest.raises(SignInFailedError, match="refused the code"):
        await oidc.complete(**done)


# -- machines: bearer access tokens ---------------------------------------------------


async def test_a_bearer_access_token_verifies(
    hydra: Hydra, machine: OAuthClient, oidc: OIDCClient
) -> None:
    token = await hydra.client_credentials_token(machine, audience=AUDIENCE)
    identity = await oidc.verify_bearer(token)
    assert identity.issuer == hydra.issuer
    assert identity.subject == machine.client_id
    assert identity.email is None
    assert identity.expires_at > time.time()


async def test_a_token_for_another_audience_is_refused(
    hydra: Hydra, machine: OAuthClient, oidc: OIDCClient
) -> None:
    token = await hydra.client_credentials_token(machine, audience=OTHER_AUDIENCE)
    await _refused(oidc, token, "audience does not match")


async def test_an_expired_token_is_refused_after_the_leeway(
    hydra: Hydra, machine: OAuthClient, make_oidc: MakeOIDC, clock: Clock
) -> None:
    oidc = make_oidc(leeway_seconds=LEEWAY)
    token = await hydra.client_credentials_token(machine, audience=AUDIENCE)
    _, claims = _parts(token)
    clock.offset = claims["exp"] + LEEWAY - 5 - time.time()
    await oidc.verify_bearer(token)  # expired, but within the clock-skew allowance
    clock.offset = claims["exp"] + LEEWAY + 1 - time.time()
    await _refused(oidc, token, "token expired")


async def test_a_forgery_with_hydras_kid_is_refused(
    hydra: Hydra, machine: OAuthClient, oidc: OIDCClient
) -> None:
    real = await hydra.client_credentials_token(machine, audience=AUDIENCE)
    header, claims = _parts(real)
    await oidc.verify_bearer(real)  # the claims copied below are good ones
    forger = RSAKey.generate_key(2048, parameters={"kid": header["kid"]})
    forged = jwt.encode({"alg": "RS256", "kid": header["kid"]}, claims, forger)
    await _refused(oidc, forged, "signature does not verify")


async def test_a_token_from_another_issuer_is_refused(
    hydra: Hydra, hydra_twin: Hydra, machine: OAuthClient, oidc: OIDCClient
) -> None:
    # Same database, same keys: the signature verifies, only `iss` differs.
    token = await hydra.client_credentials_token(
        machine, audience=AUDIENCE, issuer=hydra_twin.issuer
    )
    header, claims = _parts(token)
    assert claims["iss"] == hydra_twin.issuer
    assert header["kid"] in {key["kid"] for key in await hydra.signing_keys()}
    await _refused(oidc, token, "issuer does not match")


@pytest.mark.parametrize("alg", ["none", "HS256"])
async def test_unsigned_and_hmac_tokens_are_refused(
    alg: str, hydra: Hydra, machine: OAuthClient, oidc: OIDCClient, http: httpx.AsyncClient
) -> None:
    header, claims = _parts(await hydra.client_credentials_token(machine, audience=AUDIENCE))
    if alg == "none":
        token = f"{_b64({'alg': 'none', 'kid': header['kid']})}.{_b64(claims)}."
    else:
        # The classic confusion: HMAC keyed with what the JWKS publishes.
        key = OctKey.import_key((await http.get(f"{hydra.issuer}{JWKS}")).content)
        token = jwt.encode(
            {"alg": "HS256", "kid": header["kid"]}, claims, key, algorithms=["HS256"]
        )
    await _refused(oidc, token, f"algorithm not allowed: {alg}")


async def test_garbage_is_refused_without_quoting_it(oidc: OIDCClient) -> None:
    await _refused(oidc, "not-a-jwt-secret-looking-value", "not a well-formed JWS")


# -- keys: rotation, rate limit, sharing ------------------------------------------------


async def test_keys_rotated_at_hydra_verify_and_deleted_ones_stop(
    hydra: Hydra, machine: OAuthClient, make_oidc: MakeOIDC, fetched: Counter[str], clock: Clock
) -> None:
    oidc = make_oidc(jwks_min_refresh_seconds=30.0, jwks_max_age_seconds=600.0)

    old = await hydra.client_credentials_token(machine, audience=AUDIENCE)
    old_kid = _parts(old)[0]["kid"]
    await oidc.verify_bearer(old)
    assert fetched[JWKS] == 1

    new_kid = await hydra.add_signing_key(alg="ES256")
    new = await hydra.client_credentials_token(machine, audience=AUDIENCE)
    assert _parts(new)[0] == {"alg": "ES256", "kid": new_kid, "typ": "JWT"}
    # Within jwks_min_refresh_seconds of the last fetch an unknown kid is not refetched.
    await _refused(oidc, new, "unknown signing key")
    assert fetched[JWKS] == 1

    clock.offset += 31
    assert (await oidc.verify_bearer(new)).subject == machine.client_id
    assert fetched[JWKS] == 2

    await hydra.delete_signing_key(old_kid)
    await oidc.verify_bearer(old)  # still cached: keys are dropped when the set is refetched
    clock.offset += 600
    await _refused(oidc, old, "unknown signing key")
    assert fetched[JWKS] == 3
    await oidc.verify_bearer(new)


async def test_concurrent_callers_share_one_fetch(
    hydra: Hydra, machine: OAuthClient, oidc: OIDCClient, fetched: Counter[str]
) -> None:
    token = await hydra.client_credentials_token(machine, audience=AUDIENCE)
    identities = await asyncio.gather(*(oidc.verify_bearer(token) for _ in range(20)))
    assert {i.subject for i in identities} == {machine.client_id}
    assert fetched["/.well-known/openid-configuration"] == 1
    assert fetched[JWKS] == 1


# -- the provider itself ---------------------------------------------------------------


async def test_an_unreachable_provider_is_unavailable_not_unauthorized(
    hydra: Hydra, machine: OAuthClient, make_oidc: MakeOIDC
) -> None:
    token = await hydra.client_credentials_token(machine, audience=AUDIENCE)
    nowhere = make_oidc(issuer=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(IdentityProviderUnavailableError, match="unreachable"):
        await nowhere.authorization_request()
    with pytest.raises(IdentityProviderUnavailableError, match="unreachable"):
        await nowhere.verify_bearer(token)
    with pytest.raises(IdentityProviderUnavailableError, match="unreachable"):
        await nowhere.complete(code="x", code_verifier="y", nonce="z")


async def test_discovery_for_another_issuer_is_refused(
    hydra: Hydra, machine: OAuthClient, make_oidc: MakeOIDC
) -> None:
    token = await hydra.client_credentials_token(machine, audience=AUDIENCE)
    # One trailing slash: the document's issuer is no longer exactly the configured one.
    client = make_oidc(issuer=f"{hydra.issuer}/")
    with pytest.raises(IdentityProviderUnavailableError, match="names issuer"):
        await client.authorization_request()
    with pytest.raises(IdentityProviderUnavailableError, match="names issuer"):
        await client.verify_bearer(token)


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize("algorithms", [("RS256", "none"), ("HS256",), ()])
def test_config_refuses_keyless_algorithms(algorithms: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError, match="asymmetric"):
        OIDCConfig(
            issuer="https://idp.test",
            client_id="arx",
            client_secret="s3cret-value",
            redirect_uri=REDIRECT_URI,
            audience=AUDIENCE,
            algorithms=algorithms,
        )


def test_config_repr_hides_the_client_secret() -> None:
    config = OIDCConfig(
        issuer="https://idp.test",
        client_id="arx",
        client_secret="s3cret-value",
        redirect_uri=REDIRECT_URI,
        audience=AUDIENCE,
    )
    assert "s3cret-value" not in repr(config)
    assert "s3cret-value" not in str(config)
