"""A fake Entra ID token endpoint and Microsoft Sentinel's incidents API (ARM):
the connector's test double and a sandbox.

- ``POST /{tenant}/oauth2/v2.0/token``: client credentials, scope
  ``https://management.azure.com/.default``; a wrong secret is 401
  ``invalid_client`` (AADSTS7000215).
- Under ``/subscriptions/{sub}/resourceGroups/{rg}/providers/
  Microsoft.OperationalInsights/workspaces/{ws}/providers/
  Microsoft.SecurityInsights/incidents``: list (``$top``, ``$filter`` on
  status, ``nextLink``), get, PUT (title, severity and status required; an
  ``etag`` that is not the current one is 412), and PUT of a comment under
  ``/{id}/comments/{commentId}`` (201). Every call needs ``api-version``.

Errors are ARM's ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

from litestar import Request, Response, post, route
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from litestar.types import ASGIApp

from arx.sandbox.kit import Vendor, VendorError, bearer, form, make_app, same

__all__ = ["SentinelState", "app_from_env", "create_app"]

API_VERSIONS: Final = frozenset({"2021-10-01", "2022-11-01", "2023-02-01", "2024-03-01"})
_PATH = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.OperationalInsights/workspaces/(?P<ws>[^/]+)/providers/"
    r"Microsoft\.SecurityInsights/incidents(/(?P<id>[^/]+)(/comments/(?P<cid>[^/]+))?)?$",
    re.IGNORECASE,
)
_STAMP = "2026-11-30T09:00:00.0000000Z"


@dataclass
class Incident:
    id: str
    number: int
    title: str
    severity: str = "High"
    status: str = "New"
    classification: str | None = None
    owner: str | None = None
    comments: list[str] = field(default_factory=list)
    etag: str = field(default_factory=lambda: f'"{uuid.uuid4()}"')

    def to_json(self, base: str) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "title": self.title,
            "severity": self.severity,
            "status": self.status,
            "incidentNumber": self.number,
            "createdTimeUtc": _STAMP,
            "lastModifiedTimeUtc": _STAMP,
            "labels": [],
            "relatedAnalyticRuleIds": [],
            "owner": {
                "objectId": self.owner,
                "email": None,
                "assignedTo": None,
                "userPrincipalName": None,
            },
            "additionalData": {"alertsCount": 1, "commentsCount": len(self.comments)},
        }
        if self.classification:
            properties["classification"] = self.classification
        return {
            "id": f"{base}/{self.id}",
            "name": self.id,
            "type": "Microsoft.SecurityInsights/Incidents",
            "etag": self.etag,
            "properties": properties,
        }


@dataclass
class SentinelState(Vendor):
    tenant_id: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    workspace: tuple[str, str, str] = ("", "", "")  # subscription, group, workspace
    tokens: set[str] = field(default_factory=set, repr=False)
    incidents: dict[str, Incident] = field(default_factory=dict)

    @classmethod
    def demo(
        cls, tenant_id: str, client_id: str, client_secret: str, workspace: tuple[str, str, str]
    ) -> SentinelState:
        state = cls(
            tenant_id=tenant_id,
            client_id=client_id,
            client_secret=client_secret,
            workspace=workspace,
        )
        for number, title in enumerate(
            (
                "Multiple failed sign-ins followed by success",
                "Suspicious PowerShell on WS-FIN-0142",
            ),
            start=1,
        ):
            incident = Incident(str(uuid.uuid4()), number, title)
            state.incidents[incident.id] = incident
        return state


def _error(status: int, code: str, message: str) -> VendorError:
    return VendorError(status, {"error": {"code": code, "message": message}})


@post("/{tenant:str}/oauth2/v2.0/token", status_code=200)
async def token(
    sentinel: NamedDependency[SentinelState], request: Request[Any, Any, Any], tenant: FromPath[str]
) -> Response[Any]:
    given = {k: v[0] for k, v in (await form(request)).items() if v}
    valid = (
        tenant == sentinel.tenant_id
        and given.get("grant_type") == "client_credentials"
        and same(given.get("client_id", ""), sentinel.client_id)
        and same(given.get("client_secret", ""), sentinel.client_secret)
        and bool(sentinel.client_secret)
    )
    if not valid:
        sentinel.log(request, auth_valid=False, status=401)
        raise VendorError(
            401,
            {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.",
            },
        )
    if given.get("scope") != "https://management.azure.com/.default":
        sentinel.log(request, auth_valid=True, status=400)
        raise VendorError(400, {"error": "invalid_scope", "error_description": "AADSTS70011"})
    access = "eyJ0eXAiOiJKV1QifQ." + secrets.token_urlsafe(24)
    sentinel.tokens.add(access)
    sentinel.log(request, auth_valid=True, status=200)
    return Response(
        {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": access}
    )


@route("/subscriptions/{rest:path}", http_method=["GET", "PUT"], status_code=200)
async def incidents(
    sentinel: NamedDependency[SentinelState], request: Request[Any, Any, Any], rest: FromPath[str]
) -> Response[Any]:
    access = bearer(request)
    if access is None or access not in sentinel.tokens:
        sentinel.log(request, auth_valid=False, status=401)
        raise _error(401, "InvalidAuthenticationToken", "The access token is invalid.")
    path = "/subscriptions/" + rest.lstrip("/")
    match = _PATH.match(path)
    if match is None or (match["sub"], match["rg"], match["ws"]) != sentinel.workspace:
        sentinel.log(request, auth_valid=True, status=404)
        raise _error(404, "ResourceNotFound", "The Resource was not found.")
    if request.query_params.get("api-version") not in API_VERSIONS:
        sentinel.log(request, auth_valid=True, status=400)
        raise _error(
            400, "MissingApiVersionParameter", "The api-version query parameter is required."
        )
    base = path if match["id"] is None else path.split(f"/{match['id']}")[0]
    status, body = _incidents(sentinel, request, match, base, await request.body())
    sentinel.log(request, auth_valid=True, status=status)
    return Response(body, status_code=status)


def _incidents(
    sentinel: SentinelState,
    request: Request[Any, Any, Any],
    match: re.Match[str],
    base: str,
    raw: bytes,
) -> tuple[int, Any]:
    if match["id"] is None:
        return 200, _page(sentinel, request, base)
    incident = sentinel.incidents.get(match["id"])
    if request.method == "GET":
        if incident is None or match["cid"]:
            raise _error(404, "NotFound", f"Incident {match['id']} was not found.")
        return 200, incident.to_json(base)
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise _error(400, "InvalidRequestContent", "The request content was invalid.") from None
    if not isinstance(body, dict):
        raise _error(400, "InvalidRequestContent", "The request content must be an object.")
    properties = body.get("properties") or {}
    if match["cid"]:
        if incident is None:
            raise _error(404, "NotFound", f"Incident {match['id']} was not found.")
        if not properties.get("message"):
            raise _error(400, "BadRequest", "The comment message is required.")
        incident.comments.append(properties["message"])
        return 201, {
            "id": f"{base}/{incident.id}/comments/{match['cid']}",
            "name": match["cid"],
            "properties": {
                "message": properties["message"],
                "createdTimeUtc": _STAMP,
                "author": {"name": "ARX", "userPrincipalName": None},
            },
        }
    missing = [k for k in ("title", "severity", "status") if not properties.get(k)]
    if missing:
        raise _error(400, "BadRequest", f"Missing required properties: {', '.join(missing)}.")
    if incident is None:
        incident = Incident(match["id"], len(sentinel.incidents) + 1, properties["title"])
        sentinel.incidents[incident.id] = incident
    elif body.get("etag") and body["etag"] != incident.etag:
        raise _error(412, "PreconditionFailed", "The etag does not match the incident's.")
    incident.title, incident.severity = properties["title"], properties["severity"]
    incident.status = properties["status"]
    incident.classification = properties.get("classification")
    incident.owner = (properties.get("owner") or {}).get("objectId")
    incident.etag = f'"{uuid.uuid4()}"'
    return 200, incident.to_json(base)


def _page(sentinel: SentinelState, request: Request[Any, Any, Any], base: str) -> dict[str, Any]:
    """Incidents, newest first: ``$filter`` on status, ``$top``, and ``nextLink``."""
    rows = sorted(sentinel.incidents.values(), key=lambda i: -i.number)
    wanted = re.search(r"properties/status eq '(\w+)'", request.query_params.get("$filter", ""))
    if wanted:
        rows = [i for i in rows if i.status.lower() == wanted.group(1).lower()]
    top, skip = request.query_params.get("$top", "50"), request.query_params.get("$skipToken", "0")
    if not (top.isdigit() and skip.isdigit()):
        raise _error(400, "BadRequest", "$top and $skipToken must be numbers here.")
    start, size = int(skip), max(1, int(top))
    page: dict[str, Any] = {"value": [i.to_json(base) for i in rows[start : start + size]]}
    if start + size < len(rows):
        version = request.query_params["api-version"]
        query = f"api-version={version}&$top={size}&$skipToken={start + size}"
        page["nextLink"] = f"{str(request.base_url).rstrip('/')}{base}?{query}"
    return page


def create_app(state: SentinelState) -> ASGIApp:
    return make_app(
        [token, incidents],
        not_found=lambda path: {"error": {"code": "NotFound", "message": f"No route: {path}"}},
        dependencies={"sentinel": Provide(lambda: state, use_cache=True, sync_to_thread=False)},
    )


def app_from_env() -> ASGIApp:
    """``uvicorn --factory arx.sandbox.sentinel:app_from_env``; the application and
    workspace from ``ARX_SANDBOX_SENTINEL_*`` (TENANT, CLIENT_ID, SECRET, WORKSPACE
    as subscription/group/workspace)."""
    env = {
        k: os.environ.get(f"ARX_SANDBOX_SENTINEL_{k}", "")
        for k in ("TENANT", "CLIENT_ID", "SECRET", "WORKSPACE")
    }
    if not all(env.values()):
        raise SystemExit("set ARX_SANDBOX_SENTINEL_TENANT, _CLIENT_ID, _SECRET and _WORKSPACE")
    sub, group, workspace = env["WORKSPACE"].split("/")
    return create_app(
        SentinelState.demo(env["TENANT"], env["CLIENT_ID"], env["SECRET"], (sub, group, workspace))
    )
