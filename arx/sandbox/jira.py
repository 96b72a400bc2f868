"""A fake Jira Cloud REST v3 API: the connector's test double and a sandbox.

What ARX uses, as Atlassian documents it, and what the official ``jira``
client reads (tests/integration/test_vendor_clients.py):

- HTTP Basic with an account's e-mail and API token; otherwise 401.
- ``GET /rest/api/3/serverInfo`` (the client asks it first) and
  ``GET /rest/api/3/field`` (its search maps field names with it).
- ``GET|POST /rest/api/3/search/jql``: ``project = X``, ``status = "Y"`` and
  ``key = K`` terms joined by ``AND``; ``fields``, ``maxResults`` and the
  ``nextPageToken`` cursor (``isLast``; no ``total``). The removed
  ``/rest/api/3/search`` answers 410.
- ``GET /rest/api/3/issue/{key}``, ``POST /rest/api/3/issue`` (201; the
  description must be ADF), ``POST /rest/api/3/issue/{key}/comment`` (201;
  the body must be ADF: a string is refused, as v3 does).
- ``GET|POST /rest/api/3/issue/{key}/transitions``: a To Do (11) -> In
  Progress (21) -> Done (31) workflow; POST answers 204.

Errors are ``{"errorMessages": [...], "errors": {field: message}}``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Final

from litestar import Litestar, Request, Response, get, post, route
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from arx.sandbox.kit import Vendor, VendorError, basic, make_app, same

__all__ = ["JiraState", "app_from_env", "create_app"]

STATUSES: Final = {"11": "To Do", "21": "In Progress", "31": "Done"}
_TERM = re.compile(r'^\s*(project|status|key)\s*=\s*"?([^"]+?)"?\s*$', re.IGNORECASE)
_STAMP = "2026-11-30T09:00:00.000+0000"


@dataclass
class Issue:
    id: str
    key: str
    project: str
    summary: str
    issue_type: str = "Task"
    status: str = "To Do"
    description: dict[str, Any] | None = None
    comments: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, base: str, fields: list[str] | None = None) -> dict[str, Any]:
        every = {
            "summary": self.summary,
            "status": {"name": self.status, "id": _status_id(self.status)},
            "issuetype": {"name": self.issue_type, "id": "10001"},
            "project": {"key": self.project, "id": "10000", "name": self.project},
            "assignee": None,
            "description": self.description,
            "created": _STAMP,
            "updated": _STAMP,
            "comment": {"comments": self.comments, "total": len(self.comments)},
        }
        shown = (
            every
            if not fields or "*all" in fields or "*navigable" in fields
            else {k: v for k, v in every.items() if k in fields}
        )
        return {
            "id": self.id,
            "key": self.key,
            "self": f"{base}/rest/api/3/issue/{self.id}",
            "fields": shown,
        }


def _status_id(name: str) -> str:
    return next(i for i, n in STATUSES.items() if n == name)


@dataclass
class JiraState(Vendor):
    email: str = ""
    api_token: str = field(default="", repr=False)
    projects: set[str] = field(default_factory=lambda: {"SEC"})
    issues: dict[str, Issue] = field(default_factory=dict)
    _next: int = 10000

    @classmethod
    def demo(cls, email: str, api_token: str) -> JiraState:
        state = cls(email=email, api_token=api_token)
        state.new_issue("SEC", "Phishing report: invoice-8812.pdf", "Task")
        state.new_issue("SEC", "Contain WS-FIN-0142 (Falcon detection)", "Task")
        return state

    def new_issue(self, project: str, summary: str, issue_type: str) -> Issue:
        self._next += 1
        number = sum(1 for i in self.issues.values() if i.project == project) + 1
        issue = Issue(str(self._next), f"{project}-{number}", project, summary, issue_type)
        self.issues[issue.key] = issue
        return issue

    def issue(self, key: str) -> Issue:
        found = self.issues.get(key) or next((i for i in self.issues.values() if i.id == key), None)
        if found is None:
            raise _error(404, ["Issue does not exist or you do not have permission to see it."])
        return found


def _error(status: int, messages: list[str], errors: dict[str, str] | None = None) -> VendorError:
    return VendorError(status, {"errorMessages": messages, "errors": errors or {}})


def _guard(jira: JiraState, request: Request[Any, Any, Any]) -> None:
    given = basic(request)
    valid = (
        given is not None
        and bool(jira.api_token)
        and same(given[0], jira.email)
        and same(given[1], jira.api_token)
    )
    if not valid:
        jira.log(request, auth_valid=False, status=401)
        raise _error(401, ["Client must be authenticated to access this resource."])
    allowed, _ = jira.take_slot()
    if not allowed:
        jira.log(request, auth_valid=True, status=429)
        error = _error(429, ["Rate limit exceeded."])
        error.headers.update({"Retry-After": "30", "RateLimit-Reason": "jira-burst-based"})
        raise error


def _answer(
    jira: JiraState, request: Request[Any, Any, Any], status: int, body: Any
) -> Response[Any]:
    jira.log(request, auth_valid=True, status=status)
    return Response(body, status_code=status)


def _base(request: Request[Any, Any, Any]) -> str:
    return str(request.base_url).rstrip("/")


def _is_adf(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("type") == "doc"
        and isinstance(value.get("content"), list)
    )


@get("/rest/api/3/serverInfo")
async def server_info(
    jira: NamedDependency[JiraState], request: Request[Any, Any, Any]
) -> Response[Any]:
    _guard(jira, request)
    return _answer(
        jira,
        request,
        200,
        {
            "baseUrl": _base(request),
            "version": "1001.0.0-SNAPSHOT",
            "versionNumbers": [1001, 0, 0],
            "deploymentType": "Cloud",
            "buildNumber": 100282,
            "serverTitle": "Jira",
        },
    )


_FIELDS: Final = (
    ("summary", "Summary", "string"),
    ("status", "Status", "status"),
    ("assignee", "Assignee", "user"),
    ("description", "Description", "string"),
    ("issuetype", "Issue Type", "issuetype"),
    ("project", "Project", "project"),
    ("created", "Created", "datetime"),
    ("updated", "Updated", "datetime"),
    ("comment", "Comment", "comments-page"),
)


@get("/rest/api/3/field")
async def fields(
    jira: NamedDependency[JiraState], request: Request[Any, Any, Any]
) -> Response[Any]:
    """The system fields (the client maps field names to ids with it)."""
    _guard(jira, request)
    body = [
        {"id": fid, "key": fid, "name": name, "custom": False, "orderable": True,
         "navigable": True, "searchable": True, "clauseNames": [fid],
         "schema": {"type": kind, "system": fid}}
        for fid, name, kind in _FIELDS
    ]  # fmt: skip
    return _answer(jira, request, 200, body)


@route("/rest/api/3/search", http_method=["GET", "POST"])
async def removed_search(
    jira: NamedDependency[JiraState], request: Request[Any, Any, Any]
) -> Response[Any]:
    _guard(jira, request)
    raise _error(
        410,
        ["The requested API has been removed. Please migrate to the /rest/api/3/search/jql API."],
    )


@route("/rest/api/3/search/jql", http_method=["GET", "POST"], status_code=200)
async def search(
    jira: NamedDependency[JiraState], request: Request[Any, Any, Any]
) -> Response[Any]:
    _guard(jira, request)
    if request.method == "POST":
        body = await request.json()
    else:
        params = request.query_params
        body = {
            "jql": params.get("jql", ""),
            "fields": ",".join(params.getall("fields", [])).split(",")
            if "fields" in params
            else None,
            "maxResults": int(params.get("maxResults", "50")),
            "nextPageToken": params.get("nextPageToken"),
        }
    terms = [t for t in re.split(r"\s+AND\s+", body.get("jql") or "", flags=re.IGNORECASE) if t]
    found = sorted(jira.issues.values(), key=lambda i: int(i.id))
    for term in terms:
        match = _TERM.match(term.split(" ORDER BY ")[0])
        if match is None:
            raise _error(400, [f"Error in the JQL Query: {term!r} is not supported here."])
        name, value = match.group(1).lower(), match.group(2)
        found = [
            i
            for i in found
            if {"project": i.project, "status": i.status, "key": i.key}[name].lower()
            == value.lower()
        ]
    start = int(body.get("nextPageToken") or 0)
    limit = max(1, min(int(body.get("maxResults") or 50), 100))
    page = found[start : start + limit]
    more = start + limit < len(found)
    result: dict[str, Any] = {
        "issues": [i.to_json(_base(request), body.get("fields")) for i in page],
        "isLast": not more,
    }
    if more:
        result["nextPageToken"] = str(start + limit)
    return _answer(jira, request, 200, result)


@get("/rest/api/3/issue/{key:str}")
async def get_issue(
    jira: NamedDependency[JiraState], request: Request[Any, Any, Any], key: FromPath[str]
) -> Response[Any]:
    _guard(jira, request)
    fields = request.query_params.get("fields")
    return _answer(
        jira,
        request,
        200,
        jira.issue(key).to_json(_base(request), fields.split(",") if fields else None),
    )


@post("/rest/api/3/issue", status_code=201)
async def create_issue(
    jira: NamedDependency[JiraState], request: Request[Any, Any, Any]
) -> Response[Any]:
    _guard(jira, request)
    fields = (await request.json()).get("fields") or {}
    errors: dict[str, str] = {}
    project = str((fields.get("project") or {}).get("key") or "")
    if project not in jira.projects:
        errors["project"] = "valid project is required"
    if not fields.get("summary"):
        errors["summary"] = "You must specify a summary of the issue."
    if (
        "description" in fields
        and fields["description"] is not None
        and not _is_adf(fields["description"])
    ):
        errors["description"] = (
            "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
        )
    if errors:
        raise _error(400, [], errors)
    issue = jira.new_issue(
        project, fields["summary"], (fields.get("issuetype") or {}).get("name", "Task")
    )
    issue.description = fields.get("description")
    return _answer(
        jira,
        request,
        201,
        {"id": issue.id, "key": issue.key, "self": f"{_base(request)}/rest/api/3/issue/{issue.id}"},
    )


@post("/rest/api/3/issue/{key:str}/comment", status_code=201)
async def add_comment(
    jira: NamedDependency[JiraState], request: Request[Any, Any, Any], key: FromPath[str]
) -> Response[Any]:
    _guard(jira, request)
    issue = jira.issue(key)
    body = (await request.json()).get("body")
    if not _is_adf(body):
        raise _error(
            400,
            [],
            {
                "comment": "Comment body is not valid! Operation value must be an "
                "Atlassian Document (see the Atlassian Document Format)"
            },
        )
    comment_id = str(10100 + len(issue.comments))
    comment = {
        "id": comment_id,
        "body": body,
        "created": _STAMP,
        "updated": _STAMP,
        "author": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "ARX"},
        "self": f"{_base(request)}/rest/api/3/issue/{issue.id}/comment/{comment_id}",
    }
    issue.comments.append(comment)
    return _answer(jira, request, 201, comment)


@route("/rest/api/3/issue/{key:str}/transitions", http_method=["GET", "POST"], status_code=200)
async def transitions(
    jira: NamedDependency[JiraState], request: Request[Any, Any, Any], key: FromPath[str]
) -> Response[Any]:
    _guard(jira, request)
    issue = jira.issue(key)
    available = [
        {
            "id": tid,
            "name": name,
            "to": {"name": name, "id": tid},
            "hasScreen": False,
            "isAvailable": True,
        }
        for tid, name in STATUSES.items()
        if name != issue.status
    ]
    if request.method == "GET":
        return _answer(jira, request, 200, {"transitions": available})
    body = await request.json()
    wanted = str((body.get("transition") or {}).get("id", ""))
    if wanted not in {t["id"] for t in available}:
        raise _error(400, [f"Transition id '{wanted}' is not valid for this issue."])
    for update in (body.get("update") or {}).get("comment") or []:
        added = (update or {}).get("add") or {}
        if not _is_adf(added.get("body")):
            raise _error(400, [], {"comment": "Comment body is not valid!"})
        issue.comments.append({"id": str(10100 + len(issue.comments)), "body": added["body"]})
    issue.status = STATUSES[wanted]
    return _answer(jira, request, 204, None)


def create_app(state: JiraState) -> Litestar:
    return make_app(
        [
            server_info,
            fields,
            removed_search,
            search,
            get_issue,
            create_issue,
            add_comment,
            transitions,
        ],
        not_found=lambda path: {"errorMessages": [f"No resource at {path}"], "errors": {}},
        dependencies={"jira": Provide(lambda: state, use_cache=True, sync_to_thread=False)},
    )


def app_from_env() -> Litestar:
    """``uvicorn --factory arx.sandbox.jira:app_from_env``; the account from
    ``ARX_SANDBOX_JIRA_EMAIL`` and ``ARX_SANDBOX_JIRA_TOKEN``."""
    email, token = (
        os.environ.get("ARX_SANDBOX_JIRA_EMAIL", ""),
        os.environ.get("ARX_SANDBOX_JIRA_TOKEN", ""),
    )
    if not (email and token):
        raise SystemExit(
            "set ARX_SANDBOX_JIRA_EMAIL and ARX_SANDBOX_JIRA_TOKEN for the Jira sandbox"
        )
    return create_app(JiraState.demo(email, token))
