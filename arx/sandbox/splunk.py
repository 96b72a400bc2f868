"""A fake Splunk management API (port 8089): the connector's test double and a sandbox.

What ARX uses, as Splunk documents it, and what the official SDK
(``splunk-sdk``) reads (tests/integration/test_vendor_clients.py):

- ``POST /services/auth/login`` (form ``username``, ``password``): a session
  key, as XML (``<response><sessionKey>…``) or, with ``output_mode=json``,
  ``{"sessionKey": …}``. Requests then carry ``Authorization: Splunk <key>``;
  ``Bearer <token>`` and ``Basic`` are taken too. Anything else is 401.
- ``GET /services/server/info`` (the SDK reads the version first).
- Search jobs under ``/services/search/jobs`` and, as Splunk 9 also serves
  them (and the SDK uses from 9.0.2), ``/services/search/v2/jobs``:
- ``POST /services/search/jobs`` (form ``search``, ``earliest_time``,
  ``latest_time``, ``exec_mode``): 201 with the new ``sid`` (JSON or XML).
- ``GET /services/search/jobs/{sid}``: the job, RUNNING on the first look
  and DONE after; JSON with ``output_mode=json``, else an Atom entry (what
  the SDK's ``Job.refresh`` parses).
- ``GET /services/search/jobs/{sid}/results`` (``count``, ``offset``):
  JSON results of the job's events.
- ``DELETE /services/search/jobs/{sid}``: the job cancelled and deleted.
- ``POST /services/notable_update`` (Enterprise Security; ``ruleUIDs``,
  ``status``, ``urgency``, ``newOwner``, ``comment``).

Errors: ``{"messages": [{"type": "ERROR", "text": …}]}`` (XML ``<msg>`` without
``output_mode=json``).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from litestar import Request, Response, get, post, route
from litestar.di import NamedDependency, Provide
from litestar.enums import ScopeType
from litestar.params import FromPath
from litestar.types import ASGIApp, Receive, Scope, Send

from arx.sandbox.kit import Vendor, VendorError, basic, bearer, form, make_app, same

__all__ = ["SplunkState", "app_from_env", "create_app"]

_NAMESPACE = re.compile(r"^/servicesNS/[^/]+/[^/]+/(.*)$")

EVENTS = (
    {
        "_time": "2026-11-30T08:58:02.000+00:00",
        "host": "WS-FIN-0142",
        "user": "ana.ruiz",
        "action": "failure",
        "src": "203.0.113.7",
        "sourcetype": "WinEventLog:Security",
    },
    {
        "_time": "2026-11-30T08:59:41.000+00:00",
        "host": "WS-FIN-0142",
        "user": "ana.ruiz",
        "action": "success",
        "src": "203.0.113.7",
        "sourcetype": "WinEventLog:Security",
    },
)


@dataclass
class Job:
    sid: str
    search: str
    looks: int = 0

    @property
    def state(self) -> str:
        return "DONE" if self.looks > 1 else "RUNNING"


@dataclass
class Notable:
    status: int = 1
    urgency: str = "high"
    owner: str = "unassigned"
    comments: list[str] = field(default_factory=list)


@dataclass
class SplunkState(Vendor):
    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    sessions: set[str] = field(default_factory=set, repr=False)
    jobs: dict[str, Job] = field(default_factory=dict)
    notables: dict[str, Notable] = field(default_factory=dict)

    @classmethod
    def demo(cls, username: str, password: str, token: str = "") -> SplunkState:
        state = cls(username=username, password=password, token=token)
        state.notables["1A2B3C4D-0001@@notable@@a1b2c3"] = Notable()
        return state


def _first(given: dict[str, list[str]]) -> dict[str, str]:
    return {k: v[0] for k, v in given.items() if v}


def _json(request: Request[Any, Any, Any], fields: dict[str, str] | None = None) -> bool:
    return "json" in (request.query_params.get("output_mode"), (fields or {}).get("output_mode"))


def _error(status: int, text: str, *, as_json: bool = True) -> VendorError:
    if as_json:
        return VendorError(status, {"messages": [{"type": "ERROR", "text": text}]})
    xml = f'<response><messages><msg type="ERROR">{escape(text)}</msg></messages></response>'
    return VendorError(status, xml, headers={"Content-Type": "text/xml"})


def _guard(splunk: SplunkState, request: Request[Any, Any, Any]) -> None:
    key = bearer(request, "Splunk")
    token = bearer(request, "Bearer")
    user = basic(request)
    valid = (
        (key is not None and key in splunk.sessions)
        or (token is not None and bool(splunk.token) and same(token, splunk.token))
        or (user is not None and same(user[0], splunk.username) and same(user[1], splunk.password))
    )
    if not valid:
        splunk.log(request, auth_valid=False, status=401)
        raise _error(401, "call not properly authenticated", as_json=_json(request))


def _answer(
    splunk: SplunkState,
    request: Request[Any, Any, Any],
    status: int,
    body: Any,
    media: str = "application/json",
) -> Response[Any]:
    splunk.log(request, auth_valid=True, status=status)
    return Response(body, status_code=status, media_type=media)


@post("/services/auth/login", status_code=200)
async def login(
    splunk: NamedDependency[SplunkState], request: Request[Any, Any, Any]
) -> Response[Any]:
    fields = _first(await form(request))
    as_json = _json(request, fields)
    if not (
        same(fields.get("username", ""), splunk.username)
        and same(fields.get("password", ""), splunk.password)
        and splunk.password
    ):
        splunk.log(request, auth_valid=False, status=401)
        raise _error(401, "Login failed", as_json=as_json)
    key = secrets.token_urlsafe(24)
    splunk.sessions.add(key)
    if as_json:
        return _answer(splunk, request, 200, {"sessionKey": key})
    xml = f"<response>\n  <sessionKey>{key}</sessionKey>\n</response>\n"
    return _answer(splunk, request, 200, xml, "text/xml")


@get("/services/server/info")
async def server_info(
    splunk: NamedDependency[SplunkState], request: Request[Any, Any, Any]
) -> Response[Any]:
    """The server's version (the SDK asks it before it creates a search job)."""
    _guard(splunk, request)
    info = {"version": "9.2.0", "build": "1fff88043d5f", "serverName": "arx-sandbox"}
    if _json(request):
        return _answer(splunk, request, 200, {"entry": [{"name": "server-info", "content": info}]})
    keys = "".join(f'<s:key name="{k}">{v}</s:key>' for k, v in info.items())
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:s="http://dev.splunk.com/ns/rest">'
        "<title>server-info</title><id>/services/server/info</id>"
        "<updated>2026-11-30T09:00:00+00:00</updated><entry><title>server-info</title>"
        "<id>/services/server/info/server-info</id><updated>2026-11-30T09:00:00+00:00</updated>"
        '<link href="/services/server/info/server-info" rel="alternate"/>'
        f'<content type="text/xml"><s:dict>{keys}</s:dict></content></entry></feed>'
    )
    return _answer(splunk, request, 200, xml, "text/xml")


@post(["/services/search/jobs", "/services/search/v2/jobs"], status_code=201)
async def create_job(
    splunk: NamedDependency[SplunkState], request: Request[Any, Any, Any]
) -> Response[Any]:
    _guard(splunk, request)
    fields = _first(await form(request))
    as_json = _json(request, fields)
    search = fields.get("search", "").strip()
    if not search:
        raise _error(400, "Missing search.", as_json=as_json)
    if fields.get("exec_mode") == "oneshot":
        raise _error(400, "oneshot searches have no sid", as_json=as_json)
    sid = f"{time.time():.3f}"
    while sid in splunk.jobs:
        sid += "0"
    splunk.jobs[sid] = Job(sid, search)
    if as_json:
        return _answer(splunk, request, 201, {"sid": sid})
    return _answer(
        splunk, request, 201, f"<response>\n  <sid>{sid}</sid>\n</response>\n", "text/xml"
    )


def _atom(request: Request[Any, Any, Any], job: Job) -> str:
    done = job.state == "DONE"
    keys = {
        "sid": job.sid,
        "dispatchState": job.state,
        "isDone": "1" if done else "0",
        "isFailed": "0",
        "doneProgress": "1.00000" if done else "0.50000",
        "resultCount": str(len(EVENTS) if done else 0),
        "eventCount": str(len(EVENTS) if done else 0),
    }
    body = "".join(f'<s:key name="{k}">{escape(v)}</s:key>' for k, v in keys.items())
    # Whose job, in which app: the SDK's entities read their namespace from it.
    acl = {"owner": "admin", "app": "search", "sharing": "global", "modifiable": "1"}
    body += (
        '<s:key name="eai:acl"><s:dict>'
        + "".join(f'<s:key name="{k}">{v}</s:key>' for k, v in acl.items())
        + "</s:dict></s:key>"
    )
    base = str(request.base_url).rstrip("/")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<entry xmlns="http://www.w3.org/2005/Atom" xmlns:s="http://dev.splunk.com/ns/rest">'
        f"<title>{escape(job.search)}</title><id>{base}/services/search/jobs/{job.sid}</id>"
        "<updated>2026-11-30T09:00:00.000+00:00</updated>"
        f'<link href="/services/search/jobs/{job.sid}" rel="alternate"/>'
        "<author><name>admin</name></author>"
        f'<content type="text/xml"><s:dict>{body}</s:dict></content></entry>'
    )


def _job(splunk: SplunkState, request: Request[Any, Any, Any], sid: str) -> Job:
    job = splunk.jobs.get(sid)
    if job is None:
        raise _error(404, "Unknown sid.", as_json=_json(request))
    return job


@get(["/services/search/jobs/{sid:str}", "/services/search/v2/jobs/{sid:str}"])
async def job_status(
    splunk: NamedDependency[SplunkState], request: Request[Any, Any, Any], sid: FromPath[str]
) -> Response[Any]:
    _guard(splunk, request)
    job = _job(splunk, request, sid)
    job.looks += 1
    if not _json(request):
        return _answer(splunk, request, 200, _atom(request, job), "text/xml")
    done = job.state == "DONE"
    content = {
        "sid": sid,
        "dispatchState": job.state,
        "isDone": done,
        "isFailed": False,
        "resultCount": len(EVENTS) if done else 0,
        "eventCount": len(EVENTS) if done else 0,
    }
    return _answer(splunk, request, 200, {"entry": [{"name": sid, "content": content}]})


@route(
    ["/services/search/jobs/{sid:str}", "/services/search/v2/jobs/{sid:str}"],
    http_method=["DELETE"],
    status_code=200,
)
async def cancel_job(
    splunk: NamedDependency[SplunkState], request: Request[Any, Any, Any], sid: FromPath[str]
) -> Response[Any]:
    """Cancel a job and delete its artifacts."""
    _guard(splunk, request)
    _job(splunk, request, sid)
    del splunk.jobs[sid]
    return _answer(
        splunk, request, 200, {"messages": [{"type": "INFO", "text": "Search job cancelled."}]}
    )


@route(
    ["/services/search/jobs/{sid:str}/results", "/services/search/v2/jobs/{sid:str}/results"],
    http_method=["GET", "POST"],
    status_code=200,
)
async def job_results(
    splunk: NamedDependency[SplunkState], request: Request[Any, Any, Any], sid: FromPath[str]
) -> Response[Any]:
    _guard(splunk, request)
    job = _job(splunk, request, sid)
    if job.state != "DONE":
        # Splunk answers 204 while a job runs.
        return _answer(splunk, request, 204, None)
    # The v2 API takes them in a POST body too (as the SDK sends them).
    given = {**_first(await form(request)), **dict(request.query_params)}
    if not _json(request, given):
        raise _error(400, "the fake answers results as JSON only (output_mode=json)")
    try:
        count = int(given.get("count", "100") or 100)
        offset = int(given.get("offset", "0") or 0)
    except ValueError:
        raise _error(400, "count and offset must be numbers") from None
    rows = list(EVENTS)[offset : offset + count] if count else list(EVENTS)[offset:]
    fields = [{"name": n} for n in EVENTS[0]]
    return _answer(
        splunk,
        request,
        200,
        {
            "preview": False,
            "init_offset": offset,
            "messages": [],
            "fields": fields,
            "results": rows,
        },
    )


@post("/services/notable_update", status_code=200)
async def notable_update(
    splunk: NamedDependency[SplunkState], request: Request[Any, Any, Any]
) -> Response[Any]:
    _guard(splunk, request)
    given = await form(request)
    fields = _first(given)
    uids = given.get("ruleUIDs", [])
    unknown = [u for u in uids if u not in splunk.notables]
    if not uids or unknown:
        raise _error(
            400, f"Unknown notable event ids: {', '.join(map(str, unknown)) or 'none given'}"
        )
    for uid in uids:
        notable = splunk.notables[uid]
        if fields.get("status"):
            notable.status = int(fields["status"])
        if fields.get("urgency"):
            notable.urgency = fields["urgency"]
        if fields.get("newOwner"):
            notable.owner = fields["newOwner"]
        if fields.get("comment"):
            notable.comments.append(fields["comment"])
    return _answer(
        splunk,
        request,
        200,
        {
            "success": True,
            "success_count": len(uids),
            "failure_count": 0,
            "message": f"{len(uids)} event(s) updated successfully",
        },
    )


def create_app(state: SplunkState) -> ASGIApp:
    """The app; ``/servicesNS/<owner>/<app>/…`` is served as ``/services/…``,
    as Splunk serves every endpoint in an app namespace too (the SDK uses it)."""
    app = make_app(
        [login, server_info, create_job, job_status, cancel_job, job_results, notable_update],
        not_found=lambda path: {"messages": [{"type": "ERROR", "text": f"Not Found: {path}"}]},
        dependencies={"splunk": Provide(lambda: state, use_cache=True, sync_to_thread=False)},
    )

    async def namespaced(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            match = _NAMESPACE.match(scope["path"])
            if match:
                path = "/services/" + match.group(1)
                scope = scope.copy()
                scope["path"], scope["raw_path"] = path, path.encode()
        await app(scope, receive, send)

    return namespaced


def app_from_env() -> ASGIApp:
    """``uvicorn --factory arx.sandbox.splunk:app_from_env``; the account from
    ``ARX_SANDBOX_SPLUNK_USER`` and ``ARX_SANDBOX_SPLUNK_PASSWORD``."""
    user, password = (
        os.environ.get("ARX_SANDBOX_SPLUNK_USER", ""),
        os.environ.get("ARX_SANDBOX_SPLUNK_PASSWORD", ""),
    )
    if not (user and password):
        raise SystemExit("set ARX_SANDBOX_SPLUNK_USER and ARX_SANDBOX_SPLUNK_PASSWORD")
    return create_app(SplunkState.demo(user, password))
