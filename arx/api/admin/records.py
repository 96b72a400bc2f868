"""Credentials of an org (sealed, never returned) and the hosts they may go to."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, delete, get, post, put
from litestar.openapi.spec import Reference
from litestar.params import FromPath

from arx.admin import credentials, org_keys
from arx.api import body
from arx.api.guards import access
from arx.api.openapi import ADMIN_TOKEN, RouteDoc, json_schema, refuse_nul
from arx.api.state import runtime
from arx.api.types import AddConnectorHost, StoreCredential
from arx.connectors.catalog import connectors
from arx.identity.roles import AUDIT, MANAGE, OWN, READ
from arx.vault.types import (
    ConnectorHosts,
    CredentialInfo,
    CredentialList,
    OrgKeyInfo,
    SetOrgKey,
)

_CREDENTIAL_DOC = RouteDoc(
    security=ADMIN_TOKEN,
    errors=(400, 401, 403, 404, 409, 413, 415, 422, 500, 503),
    # Its base_url rule depends on the deployment: see arx.api.openapi.components.
    body=Reference(ref="#/components/requestBodies/StoreCredential"),
    path_enums={"connector": tuple(sorted(connectors()))},
    roles=MANAGE,
)
_LIST_DOC = RouteDoc(security=ADMIN_TOKEN, errors=(401, 403, 404, 500, 503), roles=READ)
_DELETE_DOC = RouteDoc(
    security=ADMIN_TOKEN,
    errors=(401, 403, 404, 409, 500, 503),
    path_enums={"connector": tuple(sorted(connectors()))},
    roles=MANAGE,
)
_HOSTS_DOC = RouteDoc(
    security=ADMIN_TOKEN,
    errors=(401, 403, 404, 500, 503),
    path_enums={"connector": tuple(sorted(connectors()))},
    roles=READ,
)
_ADD_HOST_DOC = RouteDoc(
    security=ADMIN_TOKEN,
    errors=(400, 401, 403, 404, 413, 415, 422, 500, 503),
    body=refuse_nul(json_schema(AddConnectorHost)),
    path_enums={"connector": tuple(sorted(connectors()))},
    roles=MANAGE,
)
_REMOVE_HOST_DOC = RouteDoc(
    security=ADMIN_TOKEN,
    errors=(401, 403, 404, 422, 500, 503),
    path_enums={"connector": tuple(sorted(connectors()))},
    roles=MANAGE,
)
_KEY_DOC = RouteDoc(security=ADMIN_TOKEN, errors=(401, 403, 404, 500, 503), roles=AUDIT)
_SET_KEY_DOC = RouteDoc(
    security=ADMIN_TOKEN,
    errors=(400, 401, 403, 404, 413, 415, 422, 500, 503),
    body=refuse_nul(json_schema(SetOrgKey)),
    roles=OWN,
)
_REWRAP_DOC = RouteDoc(security=ADMIN_TOKEN, errors=(401, 403, 404, 500, 503), roles=OWN)
_CREDENTIAL = "/orgs/{org_id:uuid}/credentials/{connector:str}"
_KEY = "/orgs/{org_id:uuid}/key"
_HOSTS = "/orgs/{org_id:uuid}/connectors/{connector:str}/hosts"


@put(
    _CREDENTIAL,
    status_code=201,
    opt=_CREDENTIAL_DOC.opt,
    operation_class=_CREDENTIAL_DOC.operation_class,
    responses=_CREDENTIAL_DOC.responses,
    summary="Store the connector's next credential version (sealed, bound to its base_url; "
    "never returned)",
)
async def put_credential(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], connector: FromPath[str]
) -> CredentialInfo:
    data = await body.read(request, StoreCredential)
    rt = runtime(request)
    return await credentials.store_credential(
        rt.control_pool,
        rt.vault,
        rt.settings,
        org_id=org_id,
        connector=connector,
        secret=data.secret,
        base_url=data.base_url,
        actor=access(request).actor,
    )


@get(
    "/orgs/{org_id:uuid}/credentials",
    opt=_LIST_DOC.opt,
    operation_class=_LIST_DOC.operation_class,
    responses=_LIST_DOC.responses,
    summary="Each connector's current credential version: metadata only, never the secret",
)
async def list_credentials(
    request: Request[Any, Any, Any], org_id: FromPath[UUID]
) -> CredentialList:
    return await credentials.list_credentials(runtime(request).control_pool, org_id)


@delete(
    _CREDENTIAL,
    status_code=200,
    opt=_DELETE_DOC.opt,
    operation_class=_DELETE_DOC.operation_class,
    responses=_DELETE_DOC.responses,
    summary="Delete the connector's credential: a tombstone version, the history kept",
)
async def delete_credential(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], connector: FromPath[str]
) -> CredentialInfo:
    return await credentials.delete_credential(
        runtime(request).control_pool,
        org_id=org_id,
        connector=connector,
        actor=access(request).actor,
    )


@get(
    _HOSTS,
    opt=_HOSTS_DOC.opt,
    operation_class=_HOSTS_DOC.operation_class,
    responses=_HOSTS_DOC.responses,
    summary="Where the connector's credentials may be sent: its own hosts and the org's",
)
async def list_hosts(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], connector: FromPath[str]
) -> ConnectorHosts:
    return await credentials.list_hosts(
        runtime(request).control_pool, org_id=org_id, connector=connector
    )


@post(
    _HOSTS,
    status_code=200,
    opt=_ADD_HOST_DOC.opt,
    operation_class=_ADD_HOST_DOC.operation_class,
    responses=_ADD_HOST_DOC.responses,
    summary="Let the connector's credentials go to this host too (a name, or *.domain)",
)
async def add_host(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], connector: FromPath[str]
) -> ConnectorHosts:
    data = await body.read(request, AddConnectorHost)
    return await credentials.add_host(
        runtime(request).control_pool,
        org_id=org_id,
        connector=connector,
        host=data.host,
        actor=access(request).actor,
    )


@delete(
    _HOSTS + "/{host:str}",
    status_code=200,
    opt=_REMOVE_HOST_DOC.opt,
    operation_class=_REMOVE_HOST_DOC.operation_class,
    responses=_REMOVE_HOST_DOC.responses,
    summary="Stop allowing this host: a credential stored for it is refused from the next call",
)
async def remove_host(
    request: Request[Any, Any, Any],
    org_id: FromPath[UUID],
    connector: FromPath[str],
    host: FromPath[str],
) -> ConnectorHosts:
    return await credentials.remove_host(
        runtime(request).control_pool,
        org_id=org_id,
        connector=connector,
        host=host,
        actor=access(request).actor,
    )


@get(
    _KEY,
    opt=_KEY_DOC.opt,
    operation_class=_KEY_DOC.operation_class,
    responses=_KEY_DOC.responses,
    summary="The org's key-encryption key (ARX's own, or the org's KMS key) and what it holds",
)
async def get_key(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> OrgKeyInfo:
    rt = runtime(request)
    return await org_keys.key_info(rt.control_pool, rt.vault, org_id)


@put(
    _KEY,
    status_code=200,
    opt=_SET_KEY_DOC.opt,
    operation_class=_SET_KEY_DOC.operation_class,
    responses=_SET_KEY_DOC.responses,
    summary="Bring your own key: ARX proves it can use it, then rewraps every sealed version "
    "under it (the ciphertexts are untouched)",
)
async def set_key(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> OrgKeyInfo:
    data = await body.read(request, SetOrgKey)
    rt = runtime(request)
    return await org_keys.set_key(
        rt.control_pool,
        rt.vault,
        org_id=org_id,
        provider=data.provider,
        key=data.key,
        actor=access(request).actor,
    )


@post(
    _KEY + "/rewrap",
    status_code=200,
    opt=_REWRAP_DOC.opt,
    operation_class=_REWRAP_DOC.operation_class,
    responses=_REWRAP_DOC.responses,
    summary="Rewrap every sealed version still under an older key (after ARX_KEK is rotated)",
)
async def rewrap_key(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> OrgKeyInfo:
    rt = runtime(request)
    return await org_keys.rewrap(
        rt.control_pool, rt.vault, org_id=org_id, actor=access(request).actor
    )


ROUTES = [
    get_key,
    set_key,
    rewrap_key,
    put_credential,
    list_credentials,
    delete_credential,
    list_hosts,
    add_host,
    remove_host,
]
