"""Okta: users (search, get, suspend, unsuspend, sessions) and group membership.

Auth is an API token (``Authorization: SSWS <token>``). Okta's conventions:
errors as ``{"errorCode", "errorSummary", "errorId", "errorCauses"}``; a 429
says when to come back in ``X-Rate-Limit-Reset`` (epoch seconds); a list's
next page is the ``after`` cursor of its ``Link: <…>; rel="next"`` header.
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any, ClassVar, Final
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import msgspec

from arx.connectors.auth import ConnectorAuth, StaticToken
from arx.connectors.registry import register
from arx.connectors.rest import Failure, RestConnector
from arx.connectors.types import ApiCall, CallContext, Operation, OperationKind
from arx.vault.secret import Secret

__all__ = ["OktaConnector", "OktaSecret"]


class OktaSecret(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An Okta API token (its admin's scope is the most ARX can do)."""

    api_token: Secret


# Okta object ids: 20 letters and digits ("00u…" users, "00g…" groups).
UserId = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9A-Za-z]{20}(?!\n)$", description="Okta user id")
]
GroupId = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9A-Za-z]{20}(?!\n)$", description="Okta group id")
]
_Strict = {"frozen": True, "kw_only": True, "forbid_unknown_fields": True}


class UserSearchParams(msgspec.Struct, **_Strict):
    """Users matching an Okta search expression, a page at a time."""

    search: (
        Annotated[
            str, msgspec.Meta(max_length=1000, description='e.g. profile.email eq "a@example.com"')
        ]
        | None
    ) = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] = 20
    after: (
        Annotated[str, msgspec.Meta(max_length=200, description="a page's next_after")] | None
    ) = None


class UserGetParams(msgspec.Struct, **_Strict):
    """One user, by id or login."""

    user: Annotated[
        str,
        # An id, or a login in e-mail form: never a bare path ("." would list everyone).
        msgspec.Meta(
            pattern=r"^([0-9A-Za-z]{20}|[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)(?!\n)$",
            description="user id, or login (e-mail form)",
        ),
    ]


class UserParams(msgspec.Struct, **_Strict):
    user_id: UserId


class MembershipParams(msgspec.Struct, **_Strict):
    group_id: GroupId
    user_id: UserId


def _search(p: UserSearchParams) -> ApiCall:
    query = [("limit", str(p.limit))]
    if p.search:
        query.append(("search", p.search))
    if p.after:
        query.append(("after", p.after))
    return ApiCall("GET", "/api/v1/users", tuple(query))


def _lifecycle(action: str) -> Any:
    def build(p: UserParams) -> ApiCall:
        return ApiCall("POST", f"/api/v1/users/{p.user_id}/lifecycle/{action}")

    return build


def _membership(method: str) -> Any:
    def build(p: MembershipParams) -> ApiCall:
        return ApiCall(method, f"/api/v1/groups/{p.group_id}/users/{p.user_id}")

    return build


_OPERATIONS: Final = (
    Operation(
        name="users:search", params=UserSearchParams, kind=OperationKind.READ, base_risk=10,
        reversible=False, target_type="user", build=_search,
        summary="Search users with an Okta expression; a page, and next_after for the next one.",
    ),
    Operation(
        name="users:get", params=UserGetParams, kind=OperationKind.READ, base_risk=10,
        reversible=False, target_type="user", target_param="user",
        build=lambda p: ApiCall("GET", f"/api/v1/users/{quote(p.user, safe='@')}"),
        summary="A user's status and profile, by id or login.",
    ),
    Operation(
        name="users:suspend", params=UserParams, kind=OperationKind.CONTAINMENT, base_risk=50,
        reversible=True, inverse="users:unsuspend", target_type="user", target_param="user_id",
        build=_lifecycle("suspend"),
        summary="Suspend an active user: no sign-in until unsuspended (assignments kept).",
    ),
    Operation(
        name="users:unsuspend", params=UserParams, kind=OperationKind.CONTAINMENT, base_risk=30,
        reversible=True, inverse="users:suspend", target_type="user", target_param="user_id",
        build=_lifecycle("unsuspend"),
        summary="Return a suspended user to active.",
    ),
    Operation(
        name="sessions:revoke", params=UserParams, kind=OperationKind.CONTAINMENT, base_risk=40,
        reversible=False, target_type="user", target_param="user_id",
        build=lambda p: ApiCall(
            "DELETE", f"/api/v1/users/{p.user_id}/sessions", (("oauthTokens", "true"),)
        ),
        summary="End every session of the user and revoke their OAuth and OIDC tokens.",
    ),
    Operation(
        name="groups:remove_user", params=MembershipParams, kind=OperationKind.CONTAINMENT,
        base_risk=40, reversible=True, inverse="groups:add_user", target_type="user",
        target_param="user_id", build=_membership("DELETE"),
        summary="Remove the user from a group (and the access it grants).",
    ),
    Operation(
        name="groups:add_user", params=MembershipParams, kind=OperationKind.WRITE, base_risk=40,
        reversible=True, inverse="groups:remove_user", target_type="user",
        target_param="user_id", build=_membership("PUT"),
        summary="Add the user to a group.",
    ),
)  # fmt: skip


class _Cause(msgspec.Struct):
    errorSummary: str = ""


class _OktaError(msgspec.Struct):
    errorCode: str | None = None
    errorSummary: str = ""
    errorId: str | None = None
    errorCauses: list[_Cause] | None = None


_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')


@register
class OktaConnector(RestConnector):
    id: ClassVar[str] = "okta"
    vendor: ClassVar[str] = "Okta"
    auth_scheme: ClassVar[str] = "ssws_api_token"
    secret_type: ClassVar[type[msgspec.Struct]] = OktaSecret
    # Every tenant has its own host: the credential must name it.
    default_base_url: ClassVar[str] = ""
    allowed_hosts: ClassVar[tuple[str, ...]] = (
        "*.okta.com",
        "*.oktapreview.com",
        "*.okta-emea.com",
        "*.okta-gov.com",
    )
    operations: ClassVar[dict[str, Operation]] = {op.name: op for op in _OPERATIONS}

    def authenticate(self, secret: Any, context: CallContext) -> ConnectorAuth:
        return StaticToken(secret.api_token, template="SSWS {}")

    def failure(self, response: httpx.Response) -> Failure:
        try:
            error = msgspec.json.decode(response.content, type=_OktaError)
        except msgspec.DecodeError:
            return Failure([], {})
        causes = [c.errorSummary for c in error.errorCauses or [] if c.errorSummary]
        extra = {
            k: v
            for k, v in (("okta_error", error.errorCode), ("okta_error_id", error.errorId))
            if v
        }
        return Failure([m for m in (error.errorSummary, *causes) if m], extra)

    def retry_after(self, response: httpx.Response) -> int | None:
        raw = response.headers.get("X-Rate-Limit-Reset")
        try:
            return max(0, int(raw) - int(time.time())) if raw is not None else None
        except ValueError:
            return None

    def result(self, response: httpx.Response, operation: Operation) -> dict[str, Any]:
        body = super().result(response, operation)
        if operation.name == "users:search":
            match = _NEXT.search(response.headers.get("Link", ""))
            after = parse_qs(urlsplit(match.group(1)).query).get("after") if match else None
            body["next_after"] = after[0] if after else None
        return body
