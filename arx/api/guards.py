"""The control plane's one guard: who is calling, in which org, with which roles.

Each route declares the roles it accepts once, in its ``RouteDoc``; that
declaration is both the guard's rule (through the handler's ``opt``) and the
OpenAPI document's (the security requirement lists the roles), so the two
cannot disagree. Handlers read the result with ``access(request)`` and never
check a role themselves.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from arx.errors import BootstrapClosedError, RoleRequiredError
from arx.identity.network import Address, client_address
from arx.identity.principal import Access, Principal, PrincipalKind

# Keys of a handler's ``opt``.
ROLES = "arx_roles"
BOOTSTRAP = "arx_bootstrap"


def address_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Address | None:
    rt = connection.app.state.runtime
    peer = connection.client.host if connection.client else None
    return client_address(
        peer, connection.headers.getall("x-forwarded-for", []), rt.trusted_proxies
    )


async def control_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    rt = connection.app.state.runtime
    plane = rt.control_plane()
    principal = await plane.principal(connection.headers.get("authorization"))
    if principal.kind is PrincipalKind.BOOTSTRAP and not handler.opt.get(BOOTSTRAP):
        raise BootstrapClosedError(
            "the bootstrap token only creates the first org and its owner; use an admin "
            "token or sign in"
        )
    connection.state.principal = principal
    org_id = connection.path_params.get("org_id")
    if org_id is None:
        return
    access = await plane.access(principal, org_id, address_of(connection))
    accepted = handler.opt.get(ROLES) or ()
    if not access.roles.intersection(accepted):
        raise RoleRequiredError(
            f"this needs one of the roles {', '.join(accepted)} in this org; "
            f"you hold {', '.join(sorted(access.roles)) or 'none'}"
        )
    connection.state.access = access


def access(connection: ASGIConnection[Any, Any, Any, Any]) -> Access:
    """The caller's access to the route's org, as established by the guard."""
    result: Access = connection.state.access
    return result


def principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    result: Principal = connection.state.principal
    return result
