"""People signing in through ARX's own web routes, end to end.

A local password (CSRF double-submit, throttling, logout with the session's
CSRF token), OpenID Connect against a real hydra, SAML 2.0 against a local
IdP, and hydra's access tokens on the admin API. Each way ends in a session
cookie whose holder's orgs and roles are re-read on every page, so a
deactivated member loses an org at once. People are never created at sign-in.
Every page carries a CSP that allows no script and no framing, and shows what
people and IdPs typed only escaped.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import msgspec
import pytest
from defusedxml import ElementTree  # type: ignore[import-untyped]

from arx.admin.orgs import found_org
from arx.admin.people import add_member, update_member
from arx.admin.types import Bootstrap, Bootstrapped, Member
from arx.config import Settings
from arx.db.pool import connection
from arx.identity.principal import Access, Principal, PrincipalKind
from arx.identity.roles import Role
from tests.fixtures.hydra import Hydra, OAuthClient
from tests.fixtures.saml_idp import ACS_URL, IDP_SSO_URL, SP_ENTITY_ID, LocalIdp
from tests.fixtures.signin import (
    OIDC_CALLBACK,
    PUBLIC_URL,
    OpenSite,
    Site,
    assert_page_headers,
    set_cookie,
)

pytestmark = pytest.mark.anyio

OWNER_EMAIL = "ann@acme.test"
PASSWORD = "correct horse battery staple"
WRONG = "incorrect horse battery staple"
MEMBER_EMAIL = "alice@example.org"  # the local SAML IdP's default NameID
OPERATOR = Principal(kind=PrincipalKind.BOOTSTRAP, id="bootstrap", name="test")
ME = "/auth/me"
LOGIN = "/auth/login"
TO_LOGIN = re.compile(r"^/auth/login(\?|$)")
SESSION = "arx_session"
MD = "{urn:oasis:names:tc:SAML:2.0:metadata}"


# -- helpers ---------------------------------------------------------------------------


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]*)"', page)
    assert match is not None, page
    return match.group(1)


def _error(page: str) -> str:
    match = re.search(r'<p role="alert" id="error">([^<]*)</p>', page)
    return html.unescape(match.group(1)) if match else ""


async def _login_form(browser: httpx.AsyncClient) -> str:
    page = await browser.get(LOGIN)
    assert page.status_code == 200
    return _csrf(page.text)


async def _sign_in(browser: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    token = await _login_form(browser)
    return await browser.post(
        LOGIN, data={"csrf_token": token, "email": email, "password": password}
    )


def _signed_in(resp: httpx.Response) -> None:
    assert resp.status_code == 303, f"{resp.status_code}: {_error(resp.text)}"
    assert resp.headers["location"] == ME
    assert set_cookie(resp, SESSION) is not None


def _refused(resp: httpx.Response, status: int, message: str) -> None:
    assert resp.status_code == status, resp.text
    assert message in _error(resp.text), _error(resp.text)
    assert set_cookie(resp, SESSION) is None


async def _signed_out(browser: httpx.AsyncClient) -> None:
    resp = await browser.get(ME)
    assert resp.status_code == 303
    assert TO_LOGIN.match(resp.headers["location"])


def _orgs(page: str) -> list[tuple[str, str, str]]:
    """The rows of /auth/me's org table, as served (escaped): (name, slug, roles)."""
    table = re.search(r'<table id="orgs">(.*?)</table>', page, re.S)
    if table is None:
        assert 'id="no-orgs"' in page
        return []
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", table.group(1))
    return [(name, slug, roles) for name, slug, roles in rows]


async def _me(browser: httpx.AsyncClient, email: str) -> list[tuple[str, str, str]]:
    resp = await browser.get(ME)
    assert resp.status_code == 200, resp.headers.get("location")
    assert f'<span id="email">{email}</span>' in resp.text
    return _orgs(resp.text)


async def _found(site: Site, slug: str, name: str, email: str) -> Bootstrapped:
    return await found_org(
        site.runtime.control_pool,
        Bootstrap(org_slug=slug, org_name=name, owner_email=email, owner_password=PASSWORD),
        actor=OPERATOR,
    )


def _as_owner(org: Bootstrapped) -> Access:
    return Access(principal=OPERATOR, org_id=org.org.id, roles=frozenset({Role.OWNER}))


async def _sessions(site: Site, method: str) -> int:
    async with connection(site.runtime.control_pool) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM arx.web_sessions WHERE method = %s", (method,)
        )
        row = await cur.fetchone()
    assert row is not None
    count: int = row[0]
    return count


@pytest.fixture
async def acme(site: Site) -> Bootstrapped:
    """An org with a local owner (ann, password)."""
    return await _found(site, "acme", "Acme", OWNER_EMAIL)


@pytest.fixture
async def alice(site: Site, acme: Bootstrapped) -> Member:
    """A reviewer of acme, added by its owner; no password: she signs in with an IdP."""
    return await add_member(
        site.runtime.control_pool,
        _as_owner(acme),
        email=MEMBER_EMAIL,
        display_name="Alice",
        roles=[Role.REVIEWER],
    )


# -- local password ----------------------------------------------------------------------


@pytest.mark.parametrize("secure", [True, False], ids=["cookie_secure", "plain_http_demo"])
async def test_password_sign_in_opens_a_session(
    secure: bool, open_site: OpenSite, signin_settings: Settings
) -> None:
    async with (
        open_site(msgspec.structs.replace(signin_settings, cookie_secure=secure)) as site,
        site.open_browser() as browser,
    ):
        await _found(site, "acme", "Acme", OWNER_EMAIL)

        page = await browser.get(LOGIN)
        assert page.status_code == 200
        pre = set_cookie(page, "arx_csrf")
        assert pre is not None
        assert pre["httponly"] is True
        assert pre["samesite"].lower() == "strict"
        assert bool(pre["secure"]) is secure
        assert _csrf(page.text) == pre.value
        assert len(pre.value) >= 32

        resp = await browser.post(
            LOGIN, data={"csrf_token": pre.value, "email": OWNER_EMAIL, "password": PASSWORD}
        )
        _signed_in(resp)
        cookie = set_cookie(resp, SESSION)
        assert cookie is not None
        assert cookie["httponly"] is True
        assert cookie["samesite"].lower() == "lax"
        assert cookie["path"] == "/"
        assert bool(cookie["secure"]) is secure
        assert len(cookie.value) >= 32

        assert await _me(browser, OWNER_EMAIL) == [("Acme", "acme", "owner")]


async def test_email_is_matched_without_case(
    browser: httpx.AsyncClient, acme: Bootstrapped
) -> None:
    _signed_in(await _sign_in(browser, OWNER_EMAIL.upper(), PASSWORD))
    assert await _me(browser, OWNER_EMAIL) == [("Acme", "acme", "owner")]


async def test_a_wrong_password_or_unknown_account_is_refused(
    browser: httpx.AsyncClient, acme: Bootstrapped
) -> None:
    wrong = await _sign_in(browser, OWNER_EMAIL, WRONG)
    _refused(wrong, 401, "wrong email or password")
    # The same answer for an account that does not exist.
    unknown = await _sign_in(browser, "nobody@acme.test", PASSWORD)
    _refused(unknown, 401, "wrong email or password")
    await _signed_out(browser)


async def test_five_failures_lock_the_account_even_for_the_right_password(
    browser: httpx.AsyncClient, acme: Bootstrapped
) -> None:
    for _ in range(5):
        _refused(await _sign_in(browser, OWNER_EMAIL, WRONG), 401, "wrong email or password")
    locked = await _sign_in(browser, OWNER_EMAIL, PASSWORD)
    _refused(locked, 429, "too many failed sign-ins")
    assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
    # Per account, whatever the case of the email.
    _refused(await _sign_in(browser, OWNER_EMAIL.upper(), PASSWORD), 429, "too many")
    await _signed_out(browser)


async def test_parallel_guesses_cannot_outrun_the_limit(site: Site, acme: Bootstrapped) -> None:
    """Each attempt is counted before its password is checked: twelve guesses
    sent at once get at most five password checks."""
    async with AsyncExitStack() as stack:
        browsers = [await stack.enter_async_context(site.open_browser()) for _ in range(12)]
        tokens = [await _login_form(b) for b in browsers]

        async def guess(i: int) -> httpx.Response:
            return await browsers[i].post(
                LOGIN, data={"csrf_token": tokens[i], "email": OWNER_EMAIL, "password": WRONG}
            )

        answers = await asyncio.gather(*(guess(i) for i in range(12)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(401) == 5, statuses
    assert statuses.count(429) == 7, statuses


async def test_a_success_forgets_earlier_failures(
    browser: httpx.AsyncClient, acme: Bootstrapped
) -> None:
    for _ in range(4):
        _refused(await _sign_in(browser, OWNER_EMAIL, WRONG), 401, "wrong email or password")
    _signed_in(await _sign_in(browser, OWNER_EMAIL, PASSWORD))
    # Had the four been kept, this fifth failure would lock the next attempt.
    _refused(await _sign_in(browser, OWNER_EMAIL, WRONG), 401, "wrong email or password")
    _signed_in(await _sign_in(browser, OWNER_EMAIL, PASSWORD))


@pytest.mark.parametrize(
    "case", ["no_token", "wrong_token", "no_cookie", "neither", "token_of_other_browser"]
)
async def test_a_sign_in_without_the_csrf_pair_is_refused(
    case: str, site: Site, browser: httpx.AsyncClient, acme: Bootstrapped
) -> None:
    token = await _login_form(browser)
    form = {"email": OWNER_EMAIL, "password": PASSWORD, "csrf_token": token}
    if case == "no_token":
        del form["csrf_token"]
    elif case == "wrong_token":
        form["csrf_token"] = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    elif case == "no_cookie":
        browser.cookies.delete("arx_csrf")
    elif case == "neither":  # what a cross-site form gets: no SameSite=Strict cookie
        del form["csrf_token"]
        browser.cookies.delete("arx_csrf")
    else:
        async with site.open_browser() as other:
            form["csrf_token"] = await _login_form(other)
    resp = await browser.post(LOGIN, data=form)
    _refused(resp, 403, "anti-forgery token")
    await _signed_out(browser)


async def test_logout_needs_the_sessions_csrf_token(
    browser: httpx.AsyncClient, acme: Bootstrapped
) -> None:
    _signed_in(await _sign_in(browser, OWNER_EMAIL, PASSWORD))
    me = await browser.get(ME)
    session_token = _csrf(me.text)
    session_id = browser.cookies[SESSION]
    pre_sign_in_token = browser.cookies["arx_csrf"]

    for form in ({}, {"csrf_token": "forged"}, {"csrf_token": pre_sign_in_token}):
        refused = await browser.post("/auth/logout", data=form)
        assert refused.status_code == 403
        assert set_cookie(refused, SESSION) is None
        assert await _me(browser, OWNER_EMAIL) == [("Acme", "acme", "owner")]

    out = await browser.post("/auth/logout", data={"csrf_token": session_token})
    assert out.status_code == 303
    assert TO_LOGIN.match(out.headers["location"])
    cleared = set_cookie(out, SESSION)
    assert cleared is not None
    assert cleared["max-age"] == "0"
    await _signed_out(browser)
    # Ended at the server, not only forgotten by this browser.
    browser.cookies.set(SESSION, session_id, domain="arx.test")
    await _signed_out(browser)


# -- deactivation ------------------------------------------------------------------------


async def test_deactivation_ends_an_open_session_and_further_sign_ins(
    site: Site, browser: httpx.AsyncClient
) -> None:
    carol = "carol@solo.test"
    solo = await _found(site, "solo", "Solo", carol)
    # A second owner, so that the first can be deactivated.
    await add_member(
        site.runtime.control_pool,
        _as_owner(solo),
        email="dave@solo.test",
        display_name="Dave",
        roles=[Role.OWNER],
    )
    _signed_in(await _sign_in(browser, carol, PASSWORD))
    assert await _me(browser, carol) == [("Solo", "solo", "owner")]

    await update_member(
        site.runtime.control_pool, _as_owner(solo), solo.owner.user_id, roles=None, active=False
    )

    # The open session names the person, not the org: it grants solo no more.
    assert await _me(browser, carol) == []
    async with site.open_browser() as fresh:
        _refused(await _sign_in(fresh, carol, PASSWORD), 401, "not an active member")
        await _signed_out(fresh)


# -- OpenID Connect against hydra -----------------------------------------------------------


async def _oidc_start(browser: httpx.AsyncClient, hydra: Hydra) -> str:
    resp = await browser.get("/auth/oidc/login")
    assert resp.status_code == 303
    location: str = resp.headers["location"]
    assert location.startswith(f"{hydra.issuer}/oauth2/auth?")
    query = parse_qs(urlsplit(location).query)
    assert query["redirect_uri"] == [OIDC_CALLBACK]
    assert query["code_challenge_method"] == ["S256"]
    cookie = set_cookie(resp, "arx_oidc")
    assert cookie is not None
    assert cookie["path"] == "/auth/oidc"
    assert cookie["httponly"] is True
    assert cookie["secure"] is True
    state, _nonce, _verifier = cookie.value.split(".")
    assert query["state"] == [state]
    return location


def _path(url: str) -> str:
    """What the browser requests of ARX when the IdP sends it to ``url``."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL
    return f"{parts.path}?{parts.query}"


async def _oidc_sign_in(
    browser: httpx.AsyncClient,
    hydra: Hydra,
    *,
    subject: str,
    email: str | None,
    email_verified: bool = True,
) -> httpx.Response:
    location = await _oidc_start(browser, hydra)
    callback = await hydra.run_code_flow(
        location, subject=subject, email=email, email_verified=email_verified
    )
    return await browser.get(_path(callback.url))


async def test_oidc_signs_a_member_in(
    site: Site, browser: httpx.AsyncClient, hydra: Hydra, alice: Member
) -> None:
    resp = await _oidc_sign_in(
        browser, hydra, subject=f"sub-{secrets.token_hex(4)}", email=alice.email
    )
    _signed_in(resp)
    done = set_cookie(resp, "arx_oidc")
    assert done is not None
    assert done["max-age"] == "0"  # the flow's state, nonce and verifier are spent
    assert await _me(browser, MEMBER_EMAIL) == [("Acme", "acme", "reviewer")]
    assert await _sessions(site, "oidc") == 1


async def test_oidc_callback_must_match_the_browsers_state(
    site: Site, browser: httpx.AsyncClient, hydra: Hydra, alice: Member
) -> None:
    location = await _oidc_start(browser, hydra)
    callback = await hydra.run_code_flow(location, subject="alice-sub", email=alice.email)
    parts = urlsplit(callback.url)

    forged = urlencode({"code": callback.code, "state": secrets.token_urlsafe(32)})
    _refused(await browser.get(f"{parts.path}?{forged}"), 401, "could not be matched")
    missing = urlencode({"code": callback.code})
    _refused(await browser.get(f"{parts.path}?{missing}"), 401, "could not be matched")
    # Another browser (an attacker's link) carries no flow cookie at all.
    async with site.open_browser() as other:
        _refused(await other.get(_path(callback.url)), 401, "could not be matched")
        for bad in (missing, urlencode({"code": callback.code, "state": ""})):
            _refused(await other.get(f"{parts.path}?{bad}"), 401, "could not be matched")
    await _signed_out(browser)
    assert await _sessions(site, "oidc") == 0

    # The code was never redeemed: the refusals came from the state check alone.
    _signed_in(await browser.get(_path(callback.url)))


async def test_oidc_needs_a_verified_email_to_link_an_identity(
    site: Site, browser: httpx.AsyncClient, hydra: Hydra, alice: Member
) -> None:
    resp = await _oidc_sign_in(
        browser, hydra, subject="unverified-sub", email=alice.email, email_verified=False
    )
    _refused(resp, 401, "not an ARX user")
    await _signed_out(browser)
    # Nothing was linked: the same subject is still nobody.
    again = await _oidc_sign_in(browser, hydra, subject="unverified-sub", email=None)
    _refused(again, 401, "not an ARX user")
    assert await _sessions(site, "oidc") == 0


async def test_oidc_never_creates_a_person(
    site: Site, browser: httpx.AsyncClient, hydra: Hydra, acme: Bootstrapped
) -> None:
    resp = await _oidc_sign_in(browser, hydra, subject="stranger", email="stranger@example.org")
    _refused(resp, 401, "an admin must add the person")
    await _signed_out(browser)
    assert await _sessions(site, "oidc") == 0


async def test_oidc_refuses_a_deactivated_member(
    site: Site, browser: httpx.AsyncClient, hydra: Hydra, acme: Bootstrapped, alice: Member
) -> None:
    await update_member(
        site.runtime.control_pool, _as_owner(acme), alice.user_id, roles=None, active=False
    )
    resp = await _oidc_sign_in(browser, hydra, subject="alice-sub", email=alice.email)
    _refused(resp, 401, "not an active member")


# -- bearer access tokens on the admin API --------------------------------------------------

OTHER_AUDIENCE = "https://other-api.test"


@pytest.fixture
async def cli_client(hydra: Hydra, signin_settings: Settings) -> OAuthClient:
    """A client like ARX's CLI: it runs the code flow itself and asks for an audience."""
    return await hydra.create_client(
        redirect_uris=("http://127.0.0.1/cli-callback",),
        audience=(signin_settings.oidc_admin_audience, OTHER_AUDIENCE),
    )


async def _person_tokens(
    hydra: Hydra, client: OAuthClient, *, subject: str, audience: str
) -> dict[str, str]:
    """The code flow run by ``client`` for ``subject``, asking for ``audience``: its tokens."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": client.redirect_uris[0],
            "scope": "openid",
            "state": secrets.token_urlsafe(16),
            "audience": audience,
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        }
    )
    # No email in the tokens: ARX must find the person by the (issuer, subject) link.
    callback = await hydra.run_code_flow(f"{hydra.issuer}/oauth2/auth?{query}", subject=subject)
    async with httpx.AsyncClient(trust_env=False, timeout=10.0) as http:
        resp = await http.post(
            f"{hydra.issuer}/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": callback.code,
                "redirect_uri": client.redirect_uris[0],
                "code_verifier": verifier,
            },
            auth=(client.client_id, client.client_secret),
        )
    assert resp.status_code == 200, resp.text
    tokens: dict[str, str] = resp.json()
    return tokens


@pytest.fixture
async def api(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the admin API (no cookies of a signed-in browser)."""
    async with site.open_browser() as client:
        yield client


async def test_a_persons_access_token_answers_their_orgs(
    site: Site, api: httpx.AsyncClient, hydra: Hydra, cli_client: OAuthClient, alice: Member
) -> None:
    # Hydra's client_credentials tokens name the client (sub = client id), never a
    # person; a person's token comes from a code flow. Alice's first web sign-in
    # links her IdP subject to her ARX user (verified email)...
    subject = f"alice-{secrets.token_hex(4)}"
    async with site.open_browser() as browser:
        _signed_in(await _oidc_sign_in(browser, hydra, subject=subject, email=alice.email))
    # ...so a token that carries only that subject is hers.
    tokens = await _person_tokens(
        hydra, cli_client, subject=subject, audience=site.settings.oidc_admin_audience
    )
    resp = await api.get(
        "/v1/admin/me", headers={"authorization": f"Bearer {tokens['access_token']}"}
    )
    assert resp.status_code == 200, resp.text
    who = resp.json()
    assert (who["kind"], who["id"], who["name"]) == ("user", str(alice.user_id), MEMBER_EMAIL)
    assert [(o["slug"], o["roles"]) for o in who["orgs"]] == [("acme", ["reviewer"])]

    other = await _person_tokens(hydra, cli_client, subject=subject, audience=OTHER_AUDIENCE)
    for token in (other["access_token"], other["id_token"]):  # an id_token is not an access token
        refused = await api.get("/v1/admin/me", headers={"authorization": f"Bearer {token}"})
        assert refused.status_code == 401, refused.text
        assert refused.json()["code"] == "invalid_admin_token"
        assert "audience" in refused.json()["detail"]


# -- SAML 2.0 against the local IdP -----------------------------------------------------------


async def _saml_request_id(browser: httpx.AsyncClient, saml_idp: LocalIdp) -> str:
    resp = await browser.get("/auth/saml/login")
    assert resp.status_code == 303
    location = resp.headers["location"]
    assert location.startswith(f"{IDP_SSO_URL}?")
    (saml_request,) = parse_qs(urlsplit(location).query)["SAMLRequest"]
    request = saml_idp.parse_authn_request(saml_request)
    assert request.assertion_consumer_service_url == ACS_URL
    assert request.issuer.text == SP_ENTITY_ID
    request_id: str = request.id
    # The request is bound to this browser; the IdP posts back cross-site.
    cookie = set_cookie(resp, "arx_saml")
    assert cookie is not None
    assert cookie.value == request_id
    assert cookie["path"] == "/auth/saml"
    assert cookie["httponly"] is True
    assert cookie["secure"] is True
    assert cookie["samesite"].lower() == "none"
    return request_id


async def _post_response(browser: httpx.AsyncClient, saml_response: str) -> httpx.Response:
    return await browser.post("/auth/saml/acs", data={"SAMLResponse": saml_response})


async def test_saml_signs_a_member_in_once_per_response(
    site: Site, browser: httpx.AsyncClient, saml_idp: LocalIdp, alice: Member
) -> None:
    request_id = await _saml_request_id(browser, saml_idp)
    saml_response = saml_idp.good_response(request_id, name_id=MEMBER_EMAIL)
    resp = await _post_response(browser, saml_response)
    _signed_in(resp)
    done = set_cookie(resp, "arx_saml")
    assert done is not None
    assert done["max-age"] == "0"
    assert await _me(browser, MEMBER_EMAIL) == [("Acme", "acme", "reviewer")]
    assert await _sessions(site, "saml") == 1

    # A replay, from this browser or another one, opens no second session;
    # even from one that sets the request's id as its cookie (the id is in
    # the response, and a browser's cookies are its own to set).
    _refused(await _post_response(browser, saml_response), 401, "")
    async with site.open_browser() as other:
        other.cookies.set("arx_saml", request_id, domain="arx.test", path="/auth/saml")
        _refused(await _post_response(other, saml_response), 401, "answers it twice")
        await _signed_out(other)
    assert await _sessions(site, "saml") == 1


async def test_saml_brings_a_review_link_back_through_relay_state(
    site: Site, browser: httpx.AsyncClient, saml_idp: LocalIdp, alice: Member
) -> None:
    # The link opened before sign-in; the IdP's cross-site post carries no
    # Lax cookie, so it travels to the IdP and back as RelayState.
    link = "/review/acme/approvals/5f0c1b7e-0000-4000-8000-0000000000ff"
    await browser.get(f"{LOGIN}?next={link}")
    resp = await browser.get("/auth/saml/login")
    (relay,) = parse_qs(urlsplit(resp.headers["location"]).query)["RelayState"]
    assert relay == link
    request_id = saml_idp.parse_authn_request(
        parse_qs(urlsplit(resp.headers["location"]).query)["SAMLRequest"][0]
    ).id
    browser.cookies.delete("arx_next")  # as the cross-site post would arrive
    signed_in = await browser.post(
        "/auth/saml/acs",
        data={
            "SAMLResponse": saml_idp.good_response(request_id, name_id=MEMBER_EMAIL),
            "RelayState": relay,
        },
    )
    assert signed_in.status_code == 303, signed_in.text
    assert signed_in.headers["location"] == link
    # A RelayState naming another site is ignored.
    async with site.open_browser() as other:
        again = await other.get("/auth/saml/login")
        rid = saml_idp.parse_authn_request(
            parse_qs(urlsplit(again.headers["location"]).query)["SAMLRequest"][0]
        ).id
        evil = await other.post(
            "/auth/saml/acs",
            data={
                "SAMLResponse": saml_idp.good_response(rid, name_id=MEMBER_EMAIL),
                "RelayState": "//evil.example/x",
            },
        )
        assert evil.headers["location"] == ME


async def test_saml_refuses_a_tampered_response(
    site: Site, browser: httpx.AsyncClient, saml_idp: LocalIdp, acme: Bootstrapped, alice: Member
) -> None:
    # Mallory exists, so the refusal can only come from the broken signature.
    await add_member(
        site.runtime.control_pool,
        _as_owner(acme),
        email="mallory@example.org",
        display_name="Mallory",
        roles=[Role.OWNER],
    )
    request_id = await _saml_request_id(browser, saml_idp)
    _refused(
        await _post_response(browser, saml_idp.tampered_response(request_id)), 401, "signature"
    )
    await _signed_out(browser)
    assert await _sessions(site, "saml") == 0


async def test_saml_refuses_a_response_to_a_request_arx_never_sent(
    site: Site, browser: httpx.AsyncClient, saml_idp: LocalIdp, alice: Member
) -> None:
    await _saml_request_id(browser, saml_idp)  # ARX did send one, but not this one
    never_sent = f"id-{secrets.token_hex(16)}"
    unsolicited = saml_idp.good_response(never_sent, name_id=MEMBER_EMAIL)
    _refused(await _post_response(browser, unsolicited), 401, "this browser started")
    # A browser may claim any request id as its own: ARX must have sent it.
    browser.cookies.set("arx_saml", never_sent, domain="arx.test", path="/auth/saml")
    _refused(await _post_response(browser, unsolicited), 401, "does not answer a sign-in ARX")
    idp_initiated = saml_idp.response(None, name_id=MEMBER_EMAIL)
    _refused(await _post_response(browser, idp_initiated), 401, "does not answer the sign-in")
    await _signed_out(browser)
    assert await _sessions(site, "saml") == 0


async def test_saml_response_must_reach_the_browser_that_asked(
    site: Site, browser: httpx.AsyncClient, saml_idp: LocalIdp, acme: Bootstrapped, alice: Member
) -> None:
    # Login CSRF: mallory starts a sign-in in her own browser, lets the IdP
    # answer for her, and has alice's browser post that answer to ARX.
    await add_member(
        site.runtime.control_pool,
        _as_owner(acme),
        email="mallory@example.org",
        display_name="Mallory",
        roles=[Role.REVIEWER],
    )
    async with site.open_browser() as mallorys:
        request_id = await _saml_request_id(mallorys, saml_idp)
    hers = saml_idp.good_response(request_id, name_id="mallory@example.org")
    _refused(await _post_response(browser, hers), 401, "this browser started")
    await _signed_out(browser)
    # Nor does it help that alice started a sign-in of her own meanwhile.
    await _saml_request_id(browser, saml_idp)
    _refused(await _post_response(browser, hers), 401, "this browser started")
    await _signed_out(browser)
    assert await _sessions(site, "saml") == 0


async def test_saml_metadata_names_the_acs_url(site: Site, browser: httpx.AsyncClient) -> None:
    resp = await browser.get("/auth/saml/metadata")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/samlmetadata+xml")
    root = ElementTree.fromstring(resp.content)
    assert root.get("entityID") == SP_ENTITY_ID
    services = root.findall(f"{MD}SPSSODescriptor/{MD}AssertionConsumerService")
    assert [(s.get("Binding"), s.get("Location")) for s in services] == [
        ("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST", ACS_URL)
    ]


# -- what every page carries ---------------------------------------------------------------


async def test_every_page_forbids_script_and_framing(
    site: Site, browser: httpx.AsyncClient, hydra: Hydra, saml_idp: LocalIdp, acme: Bootstrapped
) -> None:
    # The browser checks every page on its own (tests/fixtures/signin.py); this
    # walks through each kind of page once, to be sure each one is seen.
    pages = [await browser.get(ME), await browser.get(LOGIN)]
    pages.append(await browser.post(LOGIN, data={"email": OWNER_EMAIL, "password": PASSWORD}))
    pages.append(await _sign_in(browser, OWNER_EMAIL, WRONG))
    pages.append(await _sign_in(browser, OWNER_EMAIL, PASSWORD))
    pages.append(await browser.get(ME))
    pages.append(await browser.post("/auth/logout", data={}))
    pages.append(await browser.post("/auth/logout", data={"csrf_token": _csrf(pages[-2].text)}))
    pages.append(await browser.get("/auth/oidc/login"))
    pages.append(await browser.get("/auth/oidc/callback?code=x&state=y"))
    pages.append(await browser.get("/auth/saml/login"))
    pages.append(await _post_response(browser, "bm90IHhtbA=="))
    statuses = [p.status_code for p in pages]
    assert statuses == [303, 200, 403, 401, 303, 200, 403, 303, 303, 401, 303, 401]
    for page in pages:
        assert_page_headers(page)


async def test_what_people_typed_is_shown_escaped(site: Site, browser: httpx.AsyncClient) -> None:
    script = "<script>alert(1)</script>"
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    email = f"{script}@evil.test"
    # The login form echoes the email it refused.
    refused = await _sign_in(browser, email, WRONG)
    assert refused.status_code == 401
    assert script not in refused.text
    assert f'value="{escaped}@evil.test"' in refused.text

    # /auth/me shows the person's email and their org's name.
    await _found(site, "xss", f'<img src=x onerror="alert(2)">{script}', email)
    _signed_in(await _sign_in(browser, email, PASSWORD))
    me = await browser.get(ME)
    assert me.status_code == 200
    assert "<script" not in me.text
    assert "<img" not in me.text
    assert f'<span id="email">{escaped}@evil.test</span>' in me.text
    assert _orgs(me.text) == [
        (f"&lt;img src=x onerror=&#34;alert(2)&#34;&gt;{escaped}", "xss", "owner")
    ]
