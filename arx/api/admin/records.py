"""Credentials of an org (sealed, never returned)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, put
from litestar.openapi.spec import Reference
from litestar.params import FromPath

from arx.admin import service as admin
from arx.api import body
from arx.api.guards import access
from arx.api.openapi import ADMIN_TOKEN, RouteDoc
from arx.api.state import runtime
from arx.api.types import StoreCredential
from arx.connectors.catalog import connectors
from arx.identity.roles import AUDIT, MANAGE
from arx.vault.types import CredentialInfo

# An int the database's bigint holds: audit paging is clamped into it.
_MAX_SEQ = 2**63 - 1

_CREDENTIAL_DOC = RouteDoc(
    security=ADMIN_TOKEN,
    errors=(400, 401, 403, 404, 409, 413, 415, 422, 500, 503),
    # Its base_url rule depends on the deployment: see arx.api.openapi.components.
    body=Reference(ref="#/components/requestBodies/StoreCredential"),
    path_enums={"connector": tuple(sorted(connectors()))},
    roles=MANAGE,
)
_AUDIT_DOC = RouteDoc(security=ADMIN_TOKEN, errors=(400, 401, 403, 404, 500, 503), roles=AUDIT)


@put(
    "/orgs/{org_id:uuid}/credentials/{connector:str}",
    status_code=201,
    opt=_CREDENTIAL_DOC.opt,
    operation_class=_CREDENTIAL_DOC.operation_class,
    responses=_CREDENTIAL_DOC.responses,
    summary="Store the connector's next credential version (sealed; never returned)",
)
async def put_credential(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], connector: FromPath[str]
) -> CredentialInfo:
    data = await body.read(request, StoreCredential)
    rt = runtime(request)
    return await admin.store_credential(
        rt.control_pool,
        rt.vault,
        org_id=org_id,
        connector=connector,
        secret=data.secret,
        base_url=data.base_url,
        allow_insecure_urls=rt.settings.allow_insecure_connector_urls,
        actor=access(request).actor,
    )


ROUTES = [put_credential]
