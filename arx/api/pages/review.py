"""The review pages: an org's queue of escalations, one request in full, a vote.

Server-rendered, no script: everything works with plain links and forms. A
page needs a signed-in person (the session cookie) who is a member of the org
named in the path; seeing needs any role of the org (``READ``), voting needs
the reviewer role, which ``arx.approvals.review.vote`` checks itself along
with every other voting rule. Votes post the session's CSRF token.

Params, agent names, intents and reasons come from agents or from policy and
are shown only through autoescaped templates (``render.page``), under a CSP
that allows no script at all: an agent that puts HTML in its params gets that
HTML shown as text.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.params import FromPath

from arx.api.guards import address_of
from arx.api.pages.forms import read_form, same
from arx.api.pages.render import page, redirect
from arx.api.state import runtime
from arx.approvals import review
from arx.approvals.types import ApprovalDetail
from arx.db.pool import connection
from arx.errors import ARXError, CSRFError, NotFoundError
from arx.identity import repo as identity_repo
from arx.identity import sessions
from arx.identity.principal import Access
from arx.identity.roles import READ, REVIEW
from arx.identity.sessions import SESSION_COOKIE, WebSession

_MAX_COMMENT = 2000
_OUTCOMES = {"approve": True, "reject": False}
_NOTICES = {"approve": "Your approval is recorded.", "reject": "Your rejection is recorded."}


async def _orgs(request: Request[Any, Any, Any], session: WebSession) -> list[dict[str, Any]]:
    async with connection(runtime(request).control_pool) as conn:
        cur = await conn.execute(identity_repo.USER_ORGS, (session.user_id,))
        rows = await cur.fetchall()
    return [{"id": r[0], "slug": r[1], "name": r[2], "roles": list(r[3])} for r in rows]


def _sign_in(request: Request[Any, Any, Any], back: str | None = None) -> Response[str]:
    """To the sign-in page, and back to ``back`` (a page: never a form's target)."""
    return redirect("/auth/login?next=" + quote(back or request.url.path, safe="/"))


def _error(session: WebSession, status: int, message: str) -> Response[str]:
    return page(
        "error.html",
        status=status,
        email=session.email,
        csrf_token=session.csrf_token,
        message=message,
    )


_NOT_FOUND = "No such org among yours, or no such request in it."
Entered = tuple[WebSession, Access, dict[str, Any]]


async def _enter(
    request: Request[Any, Any, Any], slug: str, *, back: str | None = None
) -> Entered | Response[str]:
    """The session and the person's access to the org of the path; else the
    page to show instead: sign-in (then ``back``), or 404 whether the org
    exists or not."""
    rt = runtime(request)
    session = await sessions.lookup(rt.control_pool, request.cookies.get(SESSION_COOKIE))
    if session is None:
        return _sign_in(request, back)
    org = next((o for o in await _orgs(request, session) if o["slug"] == slug), None)
    if org is None:
        return _error(session, 404, _NOT_FOUND)
    plane = rt.control_plane()
    try:
        access = await plane.access(
            plane.user(session.user_id, session.email), org["id"], address_of(request)
        )
    except ARXError as exc:  # the org's admin allowlist
        return _error(session, exc.status_code, exc.detail)
    if not access.roles.intersection(READ):
        return _error(session, 404, _NOT_FOUND)
    return session, access, org


@get("/review", include_in_schema=False)
async def review_home(request: Request[Any, Any, Any]) -> Response[str]:
    session = await sessions.lookup(
        runtime(request).control_pool, request.cookies.get(SESSION_COOKIE)
    )
    if session is None:
        return _sign_in(request)
    orgs = [o for o in await _orgs(request, session) if set(o["roles"]) & set(READ)]
    if len(orgs) == 1:
        return redirect(f"/review/{quote(orgs[0]['slug'])}")
    return page("review_home.html", email=session.email, csrf_token=session.csrf_token, orgs=orgs)


@get("/review/{slug:str}", include_in_schema=False)
async def review_queue(request: Request[Any, Any, Any], slug: FromPath[str]) -> Response[str]:
    entered = await _enter(request, slug)
    if isinstance(entered, Response):
        return entered
    session, access, org = entered
    pool = runtime(request).control_pool
    pending = await review.list_approvals(pool, access.org_id, pending_only=True)
    decided = await review.recently_decided(pool, access.org_id)
    return page(
        "review_queue.html",
        email=session.email,
        csrf_token=session.csrf_token,
        org=org,
        pending=pending,
        decided=decided,
        can_vote=bool(access.roles.intersection(REVIEW)),
    )


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _detail_page(
    entered: Entered,
    detail: ApprovalDetail,
    *,
    status: int = 200,
    error: str = "",
    done: str = "",
    comment: str = "",
) -> Response[str]:
    session, access, org = entered
    mine = next((v for v in detail.votes if v.user_id == session.user_id), None)
    # Said only when it is true: a link carrying ?done= cannot fake a vote.
    notice = _NOTICES.get(done, "") if mine is not None and mine.vote == done else ""
    execution = detail.execution
    return page(
        "review_detail.html",
        status=status,
        email=session.email,
        csrf_token=session.csrf_token,
        org=org,
        a=detail,
        params_json=_pretty(detail.params),
        scope_json=_pretty(detail.agent_intent.get("scope", {})),
        response_json=_pretty(execution.response) if execution and execution.response else "",
        approvals=sum(1 for v in detail.votes if v.vote == "approve"),
        can_vote=(
            detail.status == "pending" and mine is None and bool(access.roles.intersection(REVIEW))
        ),
        my_vote=mine,
        error=error,
        notice=notice,
        comment=comment,
    )


@get("/review/{slug:str}/approvals/{approval_id:uuid}", include_in_schema=False)
async def review_detail(
    request: Request[Any, Any, Any], slug: FromPath[str], approval_id: FromPath[UUID]
) -> Response[str]:
    entered = await _enter(request, slug)
    if isinstance(entered, Response):
        return entered
    try:
        detail = await review.get_approval(
            runtime(request).control_pool, entered[1].org_id, approval_id
        )
    except NotFoundError:
        return _error(entered[0], 404, _NOT_FOUND)
    return _detail_page(entered, detail, done=request.query_params.get("done", ""))


@post(
    "/review/{slug:str}/approvals/{approval_id:uuid}/vote",
    include_in_schema=False,
    status_code=303,
)
async def review_vote(
    request: Request[Any, Any, Any], slug: FromPath[str], approval_id: FromPath[UUID]
) -> Response[str]:
    # Signed out meanwhile: back to the request's page after sign-in, not to this form.
    entered = await _enter(request, slug, back=f"/review/{slug}/approvals/{approval_id}")
    if isinstance(entered, Response):
        return entered
    session, access, org = entered
    form = await read_form(request, ("csrf_token", "decision", "comment"))
    pool = runtime(request).control_pool
    comment = form.get("comment", "").replace("\x00", "").strip()[:_MAX_COMMENT]
    error, status = "", 200
    if not same(form.get("csrf_token"), session.csrf_token):
        error, status = CSRFError.title, 403
    elif form.get("decision") not in _OUTCOMES:
        error, status = "choose approve or reject", 400
    else:
        decision = form["decision"]
        try:
            await review.vote(
                pool, access, approval_id, approve=_OUTCOMES[decision], comment=comment
            )
        except ARXError as exc:
            error, status = exc.detail, exc.status_code
        else:
            return redirect(f"/review/{quote(org['slug'])}/approvals/{approval_id}?done={decision}")
    try:
        detail = await review.get_approval(pool, access.org_id, approval_id)
    except NotFoundError:
        return _error(session, 404, _NOT_FOUND)
    return _detail_page(entered, detail, status=status, error=error, comment=comment)


ROUTES = [review_home, review_queue, review_detail, review_vote]
