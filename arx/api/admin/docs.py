"""The route docs of the control plane (which roles, which errors, which body),
and the small readings its routes share.

Statuses: 401 no valid credential; 403 a role the route does not accept (or
an address outside the org's admin allowlist); 404 an org the caller cannot
see, whether it exists or not, or a resource of it that does not exist.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from arx.admin.types import RotateKey
from arx.api import body
from arx.api.openapi import ADMIN_TOKEN, RouteDoc, json_schema, refuse_nul
from arx.api.state import runtime

_READ_ERRORS = (401, 403, 404, 500, 503)
_WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 415, 422, 500, 503)


def read(roles: tuple[str, ...], errors_extra: tuple[int, ...] = (), **kwargs: Any) -> RouteDoc:
    """A read; ``errors_extra`` for the statuses its query parameters add (400)."""
    errors = tuple(sorted({*_READ_ERRORS, *errors_extra}))
    return RouteDoc(security=ADMIN_TOKEN, errors=errors, roles=roles, **kwargs)


def write(roles: tuple[str, ...], body: type | None = None, **kwargs: Any) -> RouteDoc:
    return RouteDoc(
        security=ADMIN_TOKEN,
        errors=_WRITE_ERRORS,
        roles=roles,
        body=refuse_nul(json_schema(body)) if body is not None else None,
        **kwargs,
    )


def action(roles: tuple[str, ...]) -> RouteDoc:
    """A POST without a body (revoke)."""
    return RouteDoc(security=ADMIN_TOKEN, errors=(401, 403, 404, 409, 500, 503), roles=roles)


async def rotation_overlap(request: Request[Any, Any, Any]) -> int:
    """How long a rotated key or token keeps working: the body's, else the deployment's."""
    data = await body.read_optional(request, RotateKey, RotateKey())
    if data.overlap_seconds is not None:
        return data.overlap_seconds
    return runtime(request).settings.key_rotation_overlap_seconds
