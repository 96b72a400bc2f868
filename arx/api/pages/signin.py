"""Sign-in for people: a local password, OpenID Connect, or SAML 2.0.

Each way ends the same: the person is found (never created: an admin or the
IdP's SCIM client adds people first), must be an active member of at least
one org, and gets a fresh session cookie (``HttpOnly``, ``SameSite=Lax``,
``Secure`` unless the deployment is the local demo on plain http).

CSRF: every form carries a token. Before sign-in it is double-submitted (a
``SameSite=Strict`` cookie and the same value in the form); after, it is the
session's own token. The OIDC callback is bound to the browser that started
the flow by a cookie holding state, nonce and PKCE verifier; a SAML response
must answer the request this browser was sent with (a cookie holding its id),
which ARX sent in the last ten minutes and accepts an answer to once, and its
assertion is accepted once. Without the cookie, anyone could start a sign-in,
let the IdP answer for themselves and have someone else's browser post that
answer: the victim would be signed in as the attacker (login CSRF).
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
from typing import Any, Literal
from urllib.parse import quote
from uuid import UUID

from defusedxml import ElementTree  # type: ignore[import-untyped]
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie

from arx.api.guards import address_of
from arx.api.pages.forms import read_form, same
from arx.api.pages.render import page, redirect
from arx.api.state import runtime
from arx.db.pool import connection
from arx.errors import ARXError, CSRFError, SignInFailedError, TooManyAttemptsError
from arx.identity import repo as identity_repo
from arx.identity import sessions
from arx.identity.passwords import verify_password
from arx.identity.principal import Principal
from arx.identity.saml import MAX_RELAY_STATE_BYTES
from arx.identity.sessions import SESSION_COOKIE
from arx.runtime import Runtime

# argon2 takes 64 MiB and tens of milliseconds per check: at most this many
# run at once per process, whatever arrives.
_VERIFYING = asyncio.Semaphore(2)
PRE_CSRF_COOKIE = "arx_csrf"
OIDC_COOKIE = "arx_oidc"
SAML_COOKIE = "arx_saml"
# Where to go once signed in (a page of ARX's own, e.g. a review link from Slack).
NEXT_COOKIE = "arx_next"
# A path of this site and nothing else: no scheme, no host, no "//" or "/\\"
# (which browsers read as another host), no characters that need escaping.
_LOCAL_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9._~/-]{0,300}")
_FIELDS = ("csrf_token", "email", "password", "SAMLResponse", "RelayState")


def _cookie(
    rt: Runtime,
    name: str,
    value: str,
    *,
    max_age: int,
    path: str = "/",
    same_site: Literal["lax", "strict", "none"] = "lax",
) -> Cookie:
    return Cookie(
        key=name,
        value=value,
        path=path,
        max_age=max_age,
        httponly=True,
        samesite=same_site,
        secure=rt.settings.cookie_secure,
    )


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    # A SAMLResponse is bounded by the body limit and checked whole by
    # consume(); cutting it would only break its signature.
    return await read_form(request, _FIELDS, whole=("SAMLResponse",))


async def _start_session(
    request: Request[Any, Any, Any],
    who: Principal,
    method: str,
    extra_cookies: list[Cookie] | None = None,
    follow: str | None = None,
) -> Response[str]:
    rt = runtime(request)
    pool = rt.control_pool
    async with connection(pool) as conn:
        cur = await conn.execute(identity_repo.USER_ORGS, (who.id,))
        orgs = await cur.fetchall()
    if not orgs:
        raise SignInFailedError("you are not an active member of any org")
    session_id = await sessions.create(
        pool,
        user_id=UUID(who.id),
        email=who.name,
        method=method,
        ttl_seconds=rt.settings.session_ttl_seconds,
    )
    cookie = _cookie(rt, SESSION_COOKIE, session_id, max_age=rt.settings.session_ttl_seconds)
    done = _cookie(rt, NEXT_COOKIE, "", max_age=0, path="/auth")
    return redirect(
        _next_path(follow) or _next_path(request.cookies.get(NEXT_COOKIE)) or "/auth/me",
        cookies=[cookie, done, *(extra_cookies or [])],
    )


def _next_path(value: str | None) -> str | None:
    return value if value and _LOCAL_PATH.fullmatch(value) else None


def _login_page(
    request: Request[Any, Any, Any],
    *,
    error: str = "",
    status: int = 200,
    email: str = "",
    headers: dict[str, str] | None = None,
) -> Response[str]:
    rt = runtime(request)
    token = secrets.token_urlsafe(32)
    cookies = [_cookie(rt, PRE_CSRF_COOKIE, token, max_age=3600, same_site="strict")]
    follow = _next_path(request.query_params.get("next"))
    if follow:
        cookies.append(_cookie(rt, NEXT_COOKIE, follow, max_age=600, path="/auth"))
    return page(
        "login.html",
        status=status,
        headers=headers,
        cookies=cookies,
        csrf_token=token,
        error=error,
        email=email,
        oidc=rt.oidc is not None,
        saml=rt.saml is not None,
    )


@get("/auth/login", include_in_schema=False)
async def login_page(request: Request[Any, Any, Any]) -> Response[str]:
    return _login_page(request)


@post("/auth/login", include_in_schema=False, status_code=303)
async def login(request: Request[Any, Any, Any]) -> Response[str]:
    rt = runtime(request)
    form = await _form(request)
    if not same(form.get("csrf_token"), request.cookies.get(PRE_CSRF_COOKIE)):
        return _login_page(request, error=CSRFError.title, status=403)
    email = form.get("email", "").strip()
    address = str(address_of(request) or "unknown")
    pool = rt.control_pool
    try:
        await sessions.attempt(pool, account=email, address=address)
    except TooManyAttemptsError as exc:
        return _login_page(request, error=exc.detail, status=429, email=email, headers=exc.headers)
    async with connection(pool) as conn:
        cur = await conn.execute(identity_repo.PASSWORD_FOR_EMAIL, (email,))
        row = await cur.fetchone()
    if row is not None and row[0] is None:
        row = None  # a function with OUT parameters answers a row of NULLs
    async with _VERIFYING:
        ok = await asyncio.to_thread(
            verify_password, form.get("password", ""), row[2] if row else None
        )
    if not ok or row is None:
        return _login_page(request, error="wrong email or password", status=401, email=email)
    await sessions.note_success(pool, account=email)
    try:
        return await _start_session(request, rt.control_plane().user(row[0], row[1]), "password")
    except SignInFailedError as exc:
        return _login_page(request, error=exc.detail, status=401, email=email)


@get("/auth/oidc/login", include_in_schema=False, status_code=303)
async def oidc_login(request: Request[Any, Any, Any]) -> Response[str]:
    rt = runtime(request)
    if rt.oidc is None:
        return _login_page(request, error="OpenID Connect is not configured", status=404)
    flow = await rt.oidc.authorization_request()
    value = ".".join((flow.state, flow.nonce, flow.code_verifier))
    cookie = _cookie(rt, OIDC_COOKIE, value, max_age=600, path="/auth/oidc")
    return redirect(flow.url, cookies=[cookie])


@get("/auth/oidc/callback", include_in_schema=False, status_code=303)
async def oidc_callback(request: Request[Any, Any, Any]) -> Response[str]:
    rt = runtime(request)
    if rt.oidc is None:
        return _login_page(request, error="OpenID Connect is not configured", status=404)
    state, nonce, verifier = ([*request.cookies.get(OIDC_COOKIE, "").split("."), "", "", ""])[:3]
    if request.query_params.get("error"):
        return _login_page(request, error="the identity provider refused the sign-in", status=401)
    code = request.query_params.get("code", "")
    if not code or not same(request.query_params.get("state"), state):
        return _login_page(
            request, error="the sign-in could not be matched to this browser", status=401
        )
    try:
        identity = await rt.oidc.complete(code=code, code_verifier=verifier, nonce=nonce)
        who = await rt.control_plane().user_for_identity(
            identity.issuer, identity.subject, identity.email, identity.email_verified
        )
        done = _cookie(rt, OIDC_COOKIE, "", max_age=0, path="/auth/oidc")
        return await _start_session(request, who, "oidc", [done])
    except ARXError as exc:
        return _login_page(request, error=exc.detail, status=exc.status_code)


@get("/auth/saml/login", include_in_schema=False, status_code=303)
async def saml_login(request: Request[Any, Any, Any]) -> Response[str]:
    rt = runtime(request)
    if rt.saml is None:
        return _login_page(request, error="SAML is not configured", status=404)
    # The IdP posts its answer cross-site, without the Lax arx_next cookie:
    # where to go afterwards travels as RelayState (checked again on return).
    follow = _next_path(request.cookies.get(NEXT_COOKIE)) or ""
    relay = follow if len(follow) <= MAX_RELAY_STATE_BYTES else ""
    url, request_id = await asyncio.to_thread(rt.saml.login_redirect, relay)
    await sessions.saml_request_sent(rt.control_pool, request_id)
    # The IdP's page posts the response cross-site, which carries no Lax
    # cookie: SameSite=None (Secure). On plain http (the local demo) browsers
    # refuse None without Secure; Lax still comes back from a same-site IdP.
    cookie = _cookie(
        rt,
        SAML_COOKIE,
        request_id,
        max_age=sessions.SAML_REQUEST_SECONDS,
        path="/auth/saml",
        same_site="none" if rt.settings.cookie_secure else "lax",
    )
    return redirect(url, cookies=[cookie])


@get("/auth/saml/metadata", include_in_schema=False, media_type="application/samlmetadata+xml")
async def saml_metadata(request: Request[Any, Any, Any]) -> Response[str]:
    rt = runtime(request)
    if rt.saml is None:
        return _login_page(request, error="SAML is not configured", status=404)
    return Response(rt.saml.metadata_xml(), media_type="application/samlmetadata+xml")


def _in_response_to(saml_response: str) -> str | None:
    """The request a response claims to answer, read before verification only
    to find that request; the signed value is checked again by ``consume``."""
    try:
        root = ElementTree.fromstring(base64.b64decode(saml_response, validate=False))
    except Exception:
        return None
    value = root.get("InResponseTo")
    return value if isinstance(value, str) and len(value) < 200 else None


@post("/auth/saml/acs", include_in_schema=False, status_code=303)
async def saml_acs(request: Request[Any, Any, Any]) -> Response[str]:
    rt = runtime(request)
    if rt.saml is None:
        return _login_page(request, error="SAML is not configured", status=404)
    form = await _form(request)
    saml_response = form.get("SAMLResponse", "")
    request_id = _in_response_to(saml_response)
    pool = rt.control_pool
    try:
        if request_id is None or not same(request_id, request.cookies.get(SAML_COOKIE)):
            raise SignInFailedError(
                "the SAML response does not answer the sign-in this browser started"
            )
        if not await sessions.saml_request_answered(pool, request_id):
            raise SignInFailedError(
                "the SAML response does not answer a sign-in ARX started (or answers it twice)"
            )
        assertion = await asyncio.to_thread(rt.saml.consume, saml_response, request_id=request_id)
        if not await sessions.SamlReplayGuard(pool).first_use(
            assertion.assertion_id, assertion.not_on_or_after
        ):
            raise SignInFailedError("this SAML assertion was already used")
        # The IdP is the operator's own: the email it asserts is as verified as its NameID.
        who = await rt.control_plane().user_for_identity(
            assertion.issuer, assertion.name_id, assertion.email, True
        )
        done = _cookie(rt, SAML_COOKIE, "", max_age=0, path="/auth/saml")
        return await _start_session(request, who, "saml", [done], form.get("RelayState"))
    except ARXError as exc:
        return _login_page(request, error=exc.detail, status=exc.status_code)


async def _session(request: Request[Any, Any, Any]) -> sessions.WebSession | None:
    return await sessions.lookup(runtime(request).control_pool, request.cookies.get(SESSION_COOKIE))


@get("/auth/me", include_in_schema=False)
async def me(request: Request[Any, Any, Any]) -> Response[str]:
    session = await _session(request)
    if session is None:
        return redirect("/auth/login?next=" + quote("/auth/me"))
    async with connection(runtime(request).control_pool) as conn:
        cur = await conn.execute(identity_repo.USER_ORGS, (session.user_id,))
        rows = await cur.fetchall()
    orgs = [{"name": r[2], "slug": r[1], "roles": list(r[3])} for r in rows]
    return page("me.html", email=session.email, orgs=orgs, csrf_token=session.csrf_token)


@post("/auth/logout", include_in_schema=False, status_code=303)
async def logout(request: Request[Any, Any, Any]) -> Response[str]:
    rt = runtime(request)
    session_id = request.cookies.get(SESSION_COOKIE, "")
    session = await _session(request)
    form = await _form(request)
    if session is None:
        return redirect("/auth/login")
    if not same(form.get("csrf_token"), session.csrf_token):
        # The session stays; the page offers a working sign-in form.
        return _login_page(request, error=CSRFError.title, status=403)
    await sessions.end(rt.control_pool, session_id)
    return redirect("/auth/login", cookies=[_cookie(rt, SESSION_COOKIE, "", max_age=0)])


ROUTES = [
    login_page,
    login,
    oidc_login,
    oidc_callback,
    saml_login,
    saml_metadata,
    saml_acs,
    me,
    logout,
]
