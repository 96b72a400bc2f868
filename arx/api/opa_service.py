"""``/v1/opa``: OPA's Bundle Service API, for ARX's own sidecars only.

Each sidecar boots from ``opa/config.yaml``: service ``arx`` at
``<ARX>/v1/opa``, its bearer token ``ARX_OPA_TOKEN`` (the token ARX presents
to the sidecar, here presented back), and discovery at ``discovery``. The
routes speak OPA's protocol (signed bundle bytes, ``ETag``/``If-None-Match``,
``Prefer: wait=N`` long polling), not ARX's JSON API, so they are left out of
the OpenAPI document (docs/decisions/0020). Without the token they answer
401; without a signing key configured, 503.
"""

from __future__ import annotations

import hmac
import re
from typing import Any

from litestar import Request, Response, Router, get
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath

from arx.errors import AuthenticationError, ServiceUnavailableError
from arx.policy.lifecycle.distribution import MEDIA_TYPE, Distribution, Served

_WAIT = re.compile(r"(?:^|[;,\s])wait=(\d{1,4})(?:$|[;,\s])")


def _distribution(connection: ASGIConnection[Any, Any, Any, Any]) -> Distribution:
    rt = connection.app.state.runtime
    if rt.distribution is None:
        raise ServiceUnavailableError(
            "the bundle service is off: set ARX_BUNDLE_SIGNING_KEY_FILE (and a control database)"
        )
    result: Distribution = rt.distribution
    return result


async def sidecar_guard(
    connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
) -> None:
    token = connection.app.state.runtime.settings.opa_token
    presented = connection.headers.get("authorization", "")
    scheme, _, value = presented.partition(" ")
    if (
        not token
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(value.strip().encode(), token.encode())
    ):
        raise AuthenticationError(
            "the bundle service answers ARX's sidecars only (Bearer ARX_OPA_TOKEN)",
            headers={"www-authenticate": 'Bearer realm="arx-bundles"'},
        )
    _distribution(connection)


def _etag(request: Request[Any, Any, Any]) -> str | None:
    value = request.headers.get("if-none-match")
    if not value:
        return None
    return value.strip().removeprefix("W/").strip('"')


def _wait(request: Request[Any, Any, Any]) -> float:
    match = _WAIT.search(request.headers.get("prefer", ""))
    return float(match.group(1)) if match else 0.0


def _answer(served: Served | None, request: Request[Any, Any, Any]) -> Response[bytes]:
    if served is None:
        etag = _etag(request) or ""
        return Response(b"", status_code=304, media_type=MEDIA_TYPE, headers={"etag": f'"{etag}"'})
    return Response(
        served.data,
        status_code=200,
        # OPA long-polls only a service that answers with this media type.
        media_type=MEDIA_TYPE,
        headers={"etag": f'"{served.etag}"', "x-arx-bundle-revision": served.revision},
    )


@get("/discovery", include_in_schema=False)
async def discovery(request: Request[Any, Any, Any]) -> Response[bytes]:
    served = await _distribution(request).discovery(_etag(request), _wait(request))
    return _answer(served, request)


@get("/bundles/arx-base", include_in_schema=False)
async def base_bundle(request: Request[Any, Any, Any]) -> Response[bytes]:
    served = await _distribution(request).base(_etag(request), _wait(request))
    return _answer(served, request)


@get("/bundles/orgs/{slug:str}", include_in_schema=False)
async def org_bundle(request: Request[Any, Any, Any], slug: FromPath[str]) -> Response[bytes]:
    served = await _distribution(request).org(slug, _etag(request), _wait(request))
    return _answer(served, request)


opa_router = Router(
    path="/v1/opa",
    route_handlers=[discovery, base_bundle, org_bundle],
    guards=[sidecar_guard],
)
