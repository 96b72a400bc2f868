"""A fake Okta management API (``/api/v1``): the connector's test double and a sandbox.

It follows Okta's documented endpoints and payloads for what ARX uses, and
the official SDK (``okta``) reads its answers (tests/integration/test_vendor_clients.py):

- ``Authorization: SSWS <api token>`` (or ``SSWS<token>``, as the official
  SDK sends it); a wrong one is 401 ``E0000011``.
- ``GET /api/v1/users``: ``search`` with ``<attribute> eq "<value>"`` terms
  joined by ``and`` (``status``, ``profile.login``, ``profile.email``,
  ``profile.firstName``, ``profile.lastName``), ``limit`` and the ``after``
  cursor, the next page in a ``Link: <…>; rel="next"`` header.
- ``GET /api/v1/users/{id or login}``.
- ``POST /api/v1/users/{id}/lifecycle/suspend`` (only from ``ACTIVE``) and
  ``…/unsuspend`` (only from ``SUSPENDED``); anything else is 400 ``E0000001``.
- ``DELETE /api/v1/users/{id}/sessions[?oauthTokens=true]``: 204.
- ``PUT`` / ``DELETE /api/v1/groups/{groupId}/users/{userId}``: 204.

Errors use Okta's envelope (``errorCode``, ``errorSummary``, ``errorLink``,
``errorId``, ``errorCauses``); every answer carries ``X-Rate-Limit-Limit``,
``-Remaining`` and ``-Reset`` (epoch seconds), and a 429 is ``E0000047``.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

from litestar import Litestar, Request, Response, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from arx.sandbox.kit import Vendor, VendorError, make_app, same

__all__ = ["OktaState", "OktaUser", "app_from_env", "create_app"]

RATE_LIMIT_DEFAULT: Final = 600
_TERM = re.compile(r'^\s*([A-Za-z.]+)\s+eq\s+"([^"]*)"\s*$')
_SEARCHABLE = {
    "status",
    "id",
    "profile.login",
    "profile.email",
    "profile.firstName",
    "profile.lastName",
}
_STAMP = "2026-11-30T09:00:00.000Z"


def _okta_id(prefix: str) -> str:
    return prefix + secrets.token_hex(9)[:17]


@dataclass
class OktaUser:
    id: str
    login: str
    first_name: str
    last_name: str
    status: str = "ACTIVE"
    groups: set[str] = field(default_factory=set)
    sessions: int = 1

    def to_json(self, base: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "created": _STAMP,
            "activated": _STAMP,
            "statusChanged": _STAMP,
            "lastLogin": _STAMP,
            "lastUpdated": _STAMP,
            "passwordChanged": _STAMP,
            "type": {"id": "oty1okta0000000000x7"},
            "profile": {
                "login": self.login,
                "email": self.login,
                "firstName": self.first_name,
                "lastName": self.last_name,
            },
            "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
            "_links": {"self": {"href": f"{base}/api/v1/users/{self.id}"}},
        }

    def value(self, attribute: str) -> str:
        return {
            "status": self.status,
            "id": self.id,
            "profile.login": self.login,
            "profile.email": self.login,
            "profile.firstName": self.first_name,
            "profile.lastName": self.last_name,
        }[attribute]


@dataclass
class OktaState(Vendor):
    api_token: str = field(default="", repr=False)
    users: dict[str, OktaUser] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)  # id -> name

    @classmethod
    def demo(cls, api_token: str) -> OktaState:
        state = cls(api_token=api_token)
        for login, first, last in (
            ("ana.ruiz@example.com", "Ana", "Ruiz"),
            ("ben.okafor@example.com", "Ben", "Okafor"),
            ("chen.li@example.com", "Chen", "Li"),
        ):
            user = OktaUser(_okta_id("00u"), login, first, last)
            state.users[user.id] = user
        state.groups[_okta_id("00g")] = "finance-admins"
        for user in state.users.values():
            user.groups.update(state.groups)
        return state

    def user(self, key: str) -> OktaUser:
        found = self.users.get(key) or next(
            (u for u in self.users.values() if u.login.lower() == key.lower()), None
        )
        if found is None:
            raise _error(404, "E0000007", f"Not found: Resource not found: {key} (User)")
        return found


def _error(status: int, code: str, summary: str, causes: list[str] | None = None) -> VendorError:
    return VendorError(
        status,
        {
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": "oae" + secrets.token_hex(10),
            "errorCauses": [{"errorSummary": c} for c in causes or []],
        },
    )


def _guard(state: OktaState, request: Request[Any, Any, Any]) -> dict[str, str]:
    """Authentication and the rate limit; the rate headers of the answer."""
    allowed, remaining = state.take_slot()
    reset = str(int(time.time()) + 60)
    limit = str(state.rate_limit or RATE_LIMIT_DEFAULT)
    headers = {"X-Rate-Limit-Limit": limit, "X-Rate-Limit-Remaining": str(remaining),
               "X-Rate-Limit-Reset": reset}  # fmt: skip
    # Okta documents "SSWS <token>"; its own SDK (okta 3.4) sends "SSWS<token>",
    # which Okta therefore takes too.
    raw = request.headers.get("authorization", "")
    token = raw[4:].lstrip(" ") if raw.startswith("SSWS") else None
    valid = token is not None and bool(state.api_token) and same(token, state.api_token)
    if not valid:
        state.log(request, auth_valid=False, status=401)
        error = _error(401, "E0000011", "Invalid token provided")
        error.headers.update(headers)
        raise error
    if not allowed:
        state.log(request, auth_valid=True, status=429)
        error = _error(429, "E0000047", "API call exceeded rate limit due to too many requests.")
        error.headers.update({**headers, "X-Rate-Limit-Remaining": "0"})
        raise error
    return headers


def _answer(
    state: OktaState,
    request: Request[Any, Any, Any],
    status: int,
    body: Any,
    headers: dict[str, str],
) -> Response[Any]:
    state.log(request, auth_valid=True, status=status)
    return Response(body, status_code=status, headers=headers)


def _base(request: Request[Any, Any, Any]) -> str:
    return str(request.base_url).rstrip("/")


def _matches(user: OktaUser, search: str | None) -> bool:
    if not search:
        return user.status != "DEPROVISIONED"
    for term in re.split(r"\s+and\s+", search):
        match = _TERM.match(term)
        if match is None or match.group(1) not in _SEARCHABLE:
            raise _error(400, "E0000031", "Invalid search criteria.")
        if user.value(match.group(1)).lower() != match.group(2).lower():
            return False
    return True


@get("/api/v1/users")
async def list_users(
    okta: NamedDependency[OktaState], request: Request[Any, Any, Any]
) -> Response[Any]:
    headers = _guard(okta, request)
    search = request.query_params.get("search")
    raw_limit = request.query_params.get("limit", "200")
    if not raw_limit.isdigit() or int(raw_limit) < 1:
        raise _error(400, "E0000001", "Api validation failed: limit", ["limit: a positive number"])
    limit = min(int(raw_limit), 200)
    after = request.query_params.get("after")
    found = sorted((u for u in okta.users.values() if _matches(u, search)), key=lambda u: u.id)
    if after:
        found = [u for u in found if u.id > after]
    page = found[:limit]
    if len(found) > limit:
        query = f"after={page[-1].id}&limit={limit}" + (
            f"&search={quote(search)}" if search else ""
        )
        headers["Link"] = f'<{_base(request)}/api/v1/users?{query}>; rel="next"'
    return _answer(okta, request, 200, [u.to_json(_base(request)) for u in page], headers)


@get("/api/v1/users/{key:str}")
async def get_user(
    okta: NamedDependency[OktaState], request: Request[Any, Any, Any], key: FromPath[str]
) -> Response[Any]:
    headers = _guard(okta, request)
    return _answer(okta, request, 200, okta.user(key).to_json(_base(request)), headers)


_TRANSITIONS = {"suspend": ("ACTIVE", "SUSPENDED"), "unsuspend": ("SUSPENDED", "ACTIVE")}


@post("/api/v1/users/{key:str}/lifecycle/{action:str}", status_code=200)
async def lifecycle(
    okta: NamedDependency[OktaState],
    request: Request[Any, Any, Any],
    key: FromPath[str],
    action: FromPath[str],
) -> Response[Any]:
    headers = _guard(okta, request)
    user = okta.user(key)
    if action not in _TRANSITIONS:
        raise _error(404, "E0000022", "The endpoint does not support the provided HTTP method")
    source, target = _TRANSITIONS[action]
    if user.status != source:
        raise _error(400, "E0000001", "Api validation failed: status",
                     [f"Cannot {action} a user that is {user.status.lower()}"])  # fmt: skip
    user.status = target
    return _answer(okta, request, 200, {}, headers)


@delete("/api/v1/users/{key:str}/sessions", status_code=200)
async def revoke_sessions(
    okta: NamedDependency[OktaState], request: Request[Any, Any, Any], key: FromPath[str]
) -> Response[Any]:
    headers = _guard(okta, request)
    okta.user(key).sessions = 0
    return _answer(okta, request, 204, None, headers)


def _group(okta: OktaState, group_id: str) -> str:
    if group_id not in okta.groups:
        raise _error(404, "E0000007", f"Not found: Resource not found: {group_id} (UserGroup)")
    return group_id


@put("/api/v1/groups/{group_id:str}/users/{key:str}", status_code=200)
async def add_member(
    okta: NamedDependency[OktaState],
    request: Request[Any, Any, Any],
    group_id: FromPath[str],
    key: FromPath[str],
) -> Response[Any]:
    headers = _guard(okta, request)
    okta.user(key).groups.add(_group(okta, group_id))
    return _answer(okta, request, 204, None, headers)


@delete("/api/v1/groups/{group_id:str}/users/{key:str}", status_code=200)
async def remove_member(
    okta: NamedDependency[OktaState],
    request: Request[Any, Any, Any],
    group_id: FromPath[str],
    key: FromPath[str],
) -> Response[Any]:
    headers = _guard(okta, request)
    okta.user(key).groups.discard(_group(okta, group_id))
    return _answer(okta, request, 204, None, headers)


def create_app(state: OktaState) -> Litestar:
    return make_app(
        [list_users, get_user, lifecycle, revoke_sessions, add_member, remove_member],
        not_found=lambda path: _error(404, "E0000022", f"Not found: {path}").body,
        dependencies={"okta": Provide(lambda: state, use_cache=True, sync_to_thread=False)},
    )


def app_from_env() -> Litestar:
    """``uvicorn --factory arx.sandbox.okta:app_from_env``; the API token from
    ``ARX_SANDBOX_OKTA_TOKEN``."""
    token = os.environ.get("ARX_SANDBOX_OKTA_TOKEN", "")
    if not token:
        raise SystemExit("set ARX_SANDBOX_OKTA_TOKEN to the API token the Okta sandbox accepts")
    return create_app(OktaState.demo(token))
