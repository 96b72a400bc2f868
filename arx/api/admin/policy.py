"""The org's policy bundles: push, list, activate, roll back, status.

A push uploads a bundle archive (``application/gzip``: the source with its
tests, as ``arx policy push DIR`` packs it, or an ``opa build`` output); ARX
vets it with its own ``opa`` and answers 422 quoting OPA when it fails.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery

from arx.api import body
from arx.api.admin import docs
from arx.api.guards import access
from arx.api.openapi import ADMIN_TOKEN, RouteDoc
from arx.api.state import runtime
from arx.errors import PayloadTooLargeError, UnsupportedMediaTypeError
from arx.identity.roles import READ, Role
from arx.policy.lifecycle import service
from arx.policy.lifecycle.types import (
    Activate,
    Activation,
    BundleInfo,
    PolicyStatus,
    Pushed,
    Rollback,
)

# Who ships policy: the org's policy authors and its owners.
AUTHOR = (Role.OWNER, Role.POLICY_AUTHOR)

GZIP_TYPES = {"application/gzip", "application/x-gzip", "application/octet-stream"}
_BUNDLE_BODY = {
    "type": "string",
    "format": "binary",
    "description": "A gzipped tar of the bundle: its .manifest (roots exactly "
    '["orgs/<slug>"]), its rules as data.json, and its tests (*_test.rego); no other Rego.',
}

_PUSH = RouteDoc(
    security=ADMIN_TOKEN,
    errors=(400, 401, 403, 404, 409, 413, 415, 422, 500, 503),
    roles=AUTHOR,
    body=_BUNDLE_BODY,
    body_media="application/gzip",
    success={200: (Pushed, "The same archive was pushed before: nothing changed")},
)
_STATUS = docs.read(READ)
_LIST = docs.read(READ)
_ACTIVATE = docs.write(AUTHOR, Activate)
_ROLLBACK = docs.write(AUTHOR, Rollback)

Description = Annotated[str, msgspec.Meta(max_length=500, pattern=r"^[^\x00]*$")]


async def read_bundle(request: Request[Any, Any, Any], limit: int) -> bytes:
    """The uploaded archive: 415 unless sent as gzip, 413 past ``limit`` bytes."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media not in GZIP_TYPES:
        raise UnsupportedMediaTypeError(
            "send the bundle as a .tar.gz with Content-Type: application/gzip"
        )
    too_large = PayloadTooLargeError(
        f"a bundle archive may be at most {limit} bytes (ARX_MAX_BUNDLE_BYTES)"
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    # Read as it arrives, and stop at the limit: a chunked upload declares
    # no length.
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


@post(
    "/orgs/{org_id:uuid}/policy/bundles",
    status_code=201,
    opt=_PUSH.opt,
    operation_class=_PUSH.operation_class,
    responses=_PUSH.responses,
    request_max_body_size=64 * 1024 * 1024,  # ARX_MAX_BUNDLE_BYTES is checked below
    summary="Push a policy bundle: vetted with ARX's own opa (roots, strict compile, the org "
    "document, the bundle's tests) and stored; 422 quotes OPA when it refuses",
)
async def push_bundle(
    request: Request[Any, Any, Any],
    org_id: FromPath[UUID],
    description: FromQuery[Description | None] = None,
) -> Response[Pushed]:
    rt = runtime(request)
    data = await read_bundle(request, rt.settings.max_bundle_bytes)
    pushed = await service.push(
        rt.control_pool, rt.toolchain, access(request), data, description=description
    )
    return Response(pushed, status_code=201 if pushed.created else 200)


@get(
    "/orgs/{org_id:uuid}/policy/bundles",
    opt=_LIST.opt,
    operation_class=_LIST.operation_class,
    responses=_LIST.responses,
    summary="The org's pushed bundles, newest first (metadata only; which one is active)",
)
async def list_bundles(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> list[BundleInfo]:
    return await service.bundles(runtime(request).control_pool, org_id)


@get(
    "/orgs/{org_id:uuid}/policy",
    opt=_STATUS.opt,
    operation_class=_STATUS.operation_class,
    responses=_STATUS.responses,
    summary="The org's active bundle revision and its activation history, newest first",
)
async def policy_status(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> PolicyStatus:
    return await service.status(runtime(request).control_pool, org_id)


@post(
    "/orgs/{org_id:uuid}/policy/activate",
    status_code=200,
    opt=_ACTIVATE.opt,
    operation_class=_ACTIVATE.operation_class,
    responses=_ACTIVATE.responses,
    summary="Activate a pushed revision: ARX signs it and every sidecar loads it within about "
    "a second (audited as policy.activated)",
)
async def activate(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> Activation:
    data = await body.read(request, Activate)
    rt = runtime(request)
    return await service.activate(rt.control_pool, rt.toolchain, access(request), data.revision)


@post(
    "/orgs/{org_id:uuid}/policy/rollback",
    status_code=200,
    opt=_ROLLBACK.opt,
    operation_class=_ROLLBACK.operation_class,
    responses=_ROLLBACK.responses,
    summary='Roll back to the revision active before the current one, or to {"to": revision} '
    "(audited as policy.rolled_back)",
)
async def rollback(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> Activation:
    data = await body.read_optional(request, Rollback, Rollback())
    rt = runtime(request)
    return await service.rollback(rt.control_pool, rt.toolchain, access(request), data.to)


ROUTES = [push_bundle, list_bundles, policy_status, activate, rollback]
