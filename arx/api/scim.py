"""SCIM 2.0 routes (``/scim/v2/{org_id}``): an org's IdP provisions its people and groups.

HTTP only: each handler reads the request, calls ``arx.scim`` and renders
the answer as ``application/scim+json``. The caller is an admin token of the
org holding the ``scim`` role (``control_guard``; a token of another org
gets 404). Every error under ``/scim`` is a SCIM error body (RFC 7644
§3.12: ``schemas``, ``status`` as a string, ``scimType``, ``detail``),
including the guard's; the rest of the API keeps problem+json.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

import msgspec
from litestar import Request, Response, Router, delete, get, patch, post, put, route
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, Operation, Reference
from litestar.params import FromPath, PathParameter, QueryParameter
from litestar.status_codes import HTTP_204_NO_CONTENT
from psycopg_pool import AsyncConnectionPool
from scim2_models import (
    BaseModel,
    Context,
    ListResponse,
    ResourceType,
    ResponseParameters,
    Schema,
    SearchRequest,
)

from arx.api import body
from arx.api.guards import access, control_guard
from arx.api.openapi import ADMIN_TOKEN, RouteDoc
from arx.api.problems import MEDIA_TYPE as PROBLEM_MEDIA_TYPE
from arx.api.state import runtime
from arx.db.pool import Conn
from arx.errors import ARXError, ConflictError, InvalidFieldError, MalformedJSONError, NotFoundError
from arx.identity.principal import Access
from arx.identity.roles import PROVISION
from arx.logs import get_logger
from arx.scim import groups, search, service, users
from arx.scim.types import MEDIA_TYPE, Group, User

log = get_logger("arx.api")

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
_ORG = "/{org_id:uuid}"


# --- documentation ------------------------------------------------------------------------


class ScimBody(msgspec.Struct, kw_only=True):
    """A SCIM message or resource (RFC 7643/7644); ``schemas`` names what it is.

    Only the OpenAPI document reads this Struct. The attributes of each
    resource are published by the service itself, at ``/Schemas``.
    """

    schemas: list[str]


class ScimErrorBody(msgspec.Struct, kw_only=True):
    """A SCIM error (RFC 7644 §3.12). Only the OpenAPI document reads this Struct."""

    schemas: list[str]
    status: Annotated[str, msgspec.Meta(description="The HTTP status, as a string")]
    detail: str
    scimType: str | None = None


_OBJECT_BODY: dict[str, Any] = {
    "type": "object",
    "description": "A SCIM resource or message as application/scim+json (application/json "
    "is accepted too); the resources' attributes are published at /Schemas.",
}


def _doc(errors: tuple[int, ...], *, body: bool = False) -> RouteDoc:
    return RouteDoc(
        security=ADMIN_TOKEN,
        errors=errors,
        roles=PROVISION,
        body=_OBJECT_BODY if body else None,
    )


def _operation(doc: RouteDoc) -> type[Operation]:
    """``doc``'s operation, whose 404 may also be problem+json: Litestar answers a
    path whose org segment is not a UUID itself, before any SCIM code runs."""

    documented = doc.operation_class

    class ScimOperation(documented):  # type: ignore[misc,valid-type] # a class made at run time
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            not_found = (self.responses or {}).get("404")
            if isinstance(not_found, OpenAPIResponse) and not_found.content is not None:
                not_found.content[PROBLEM_MEDIA_TYPE] = OpenAPIMediaType(
                    schema=Reference(ref="#/components/schemas/Problem")
                )

    return ScimOperation


def _responses(doc: RouteDoc, success: int | None, what: str) -> dict[int, ResponseSpec]:
    specs = {
        status: ResponseSpec(
            data_container=ScimErrorBody,
            media_type=MEDIA_TYPE,
            description=f"A SCIM error (status {status}).",
            generate_examples=False,
        )
        for status in doc.errors
    }
    if success is not None:
        specs[success] = ResponseSpec(
            data_container=ScimBody,
            media_type=MEDIA_TYPE,
            description=what,
            generate_examples=False,
        )
    return specs


_DISCOVERY_DOC = _doc((401, 403, 404, 500, 503))
_READ_DOC = _doc((400, 401, 403, 404, 500, 503))
_WRITE_DOC = _doc((400, 401, 403, 404, 409, 413, 415, 500, 503), body=True)
_SEARCH_DOC = _doc((400, 401, 403, 404, 413, 415, 500, 503), body=True)
_DELETE_DOC = _doc((401, 403, 404, 500, 503))


# --- rendering ----------------------------------------------------------------------------


def _render(
    obj: BaseModel,
    context: Context,
    *,
    status: int = 200,
    params: ResponseParameters[Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    content = obj.model_dump_json(scim_ctx=context, response_parameters=params)
    return Response(
        content=content.encode(), status_code=status, media_type=MEDIA_TYPE, headers=headers
    )


def _error_body(status: int, scim_type: str | None, detail: str) -> dict[str, Any]:
    found: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        found["scimType"] = scim_type
    return found


def _error(
    status: int, scim_type: str | None, detail: str, headers: dict[str, str] | None = None
) -> Response[bytes]:
    headers = dict(headers or {})
    if status == 401:
        headers["www-authenticate"] = 'Bearer realm="arx"'
    return Response(
        content=msgspec.json.encode(_error_body(status, scim_type, detail)),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def _scim_type(exc: ARXError) -> str | None:
    given = exc.extra.get("scim_type")
    if isinstance(given, str):
        return given
    if isinstance(exc, MalformedJSONError):
        return "invalidSyntax"
    if isinstance(exc, InvalidFieldError):
        return "invalidValue"
    if isinstance(exc, ConflictError):
        return "uniqueness"
    return None


def handle_arx_error(_: Request[Any, Any, Any], exc: ARXError) -> Response[bytes]:
    if exc.status_code >= 500:
        log.warning("request failed", extra={"code": exc.code, "status": exc.status_code})
    # SCIM has no 422: a value the service refuses is a 400 invalidValue (RFC 7644 §3.12).
    status = 400 if exc.status_code == 422 else exc.status_code
    return _error(status, _scim_type(exc), exc.detail, exc.headers)


def handle_http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    if exc.status_code >= 500:
        return handle_unexpected(_, exc)
    scim_type = "invalidValue" if exc.status_code == 400 else None
    detail = (
        "the request body exceeds the size limit" if exc.status_code == 413 else str(exc.detail)
    )
    return _error(exc.status_code, scim_type, detail, exc.headers)


def handle_unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.error("unhandled error", extra={"exc_type": type(exc).__name__})
    return _error(500, None, "an unexpected error occurred")


# --- reading requests ---------------------------------------------------------------------


def _base(request: Request[Any, Any, Any], org_id: UUID) -> str:
    """The org's SCIM base URL, from the deployment's public URL (never the Host header)."""
    return f"{runtime(request).settings.public_url.rstrip('/')}/scim/v2/{org_id}"


async def _payload(request: Request[Any, Any, Any]) -> dict[str, Any]:
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media not in ("application/json", MEDIA_TYPE):
        raise service.scim_error(415, None, f"send the body as {MEDIA_TYPE}")
    # request.body() enforces request_max_body_size (413) while reading.
    decoded = body.decode(await request.body(), Any)
    if not isinstance(decoded, dict):
        raise service.scim_error(400, "invalidSyntax", "the request body must be a JSON object")
    # PostgreSQL cannot store a NUL character: refused here, naming where it is.
    return body.check_params(decoded, field="body")


def _query(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {
        name: request.query_params[name]
        for name in service.SEARCH_PARAMETERS
        if name in request.query_params
    }


def _response_parameters(request: Request[Any, Any, Any], model: Any) -> ResponseParameters[Any]:
    given = _query(request)
    wanted = {k: v for k, v in given.items() if k in ("attributes", "excludedAttributes")}
    found: ResponseParameters[Any] = service.guarded(
        lambda: ResponseParameters[model].model_validate(wanted)
    )
    return found


# Documented query parameters (RFC 7644 §3.4.2, §3.9); read raw, parsed by scim2-models.
Filter = Annotated[str | None, QueryParameter(name="filter", description="RFC 7644 §3.4.2.2")]
StartIndex = Annotated[str | None, QueryParameter(name="startIndex", description="1-based")]
Count = Annotated[str | None, QueryParameter(name="count", description="At most 200 a page")]
SortBy = Annotated[str | None, QueryParameter(name="sortBy")]
SortOrder = Annotated[str | None, QueryParameter(name="sortOrder")]
Attributes = Annotated[str | None, QueryParameter(name="attributes")]
Excluded = Annotated[str | None, QueryParameter(name="excludedAttributes")]


# --- discovery ----------------------------------------------------------------------------


@get(
    f"{_ORG}/ServiceProviderConfig",
    opt=_DISCOVERY_DOC.opt,
    operation_class=_operation(_DISCOVERY_DOC),
    responses=_responses(_DISCOVERY_DOC, 200, "What this SCIM service supports."),
)
async def service_provider_config(
    request: Request[Any, Any, Any], org_id: FromPath[UUID]
) -> Response[bytes]:
    config = service.service_provider_config(_base(request, org_id))
    return _render(config, Context.RESOURCE_QUERY_RESPONSE)


@get(
    f"{_ORG}/ResourceTypes",
    opt=_DISCOVERY_DOC.opt,
    operation_class=_operation(_DISCOVERY_DOC),
    responses=_responses(_DISCOVERY_DOC, 200, "A ListResponse of the resource types."),
)
async def resource_types(
    request: Request[Any, Any, Any], org_id: FromPath[UUID]
) -> Response[bytes]:
    found = service.resource_types(_base(request, org_id))
    listed = service.page(service.search_request(ResourceType, {}), found, ResourceType)
    return _render(listed, Context.RESOURCE_QUERY_RESPONSE)


@get(
    f"{_ORG}/ResourceTypes/{{type_id:str}}",
    opt=_DISCOVERY_DOC.opt,
    operation_class=_operation(_DISCOVERY_DOC),
    responses=_responses(_DISCOVERY_DOC, 200, "A resource type."),
)
async def resource_type(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], type_id: FromPath[str]
) -> Response[bytes]:
    found = service.resource_type(_base(request, org_id), type_id)
    return _render(found, Context.RESOURCE_QUERY_RESPONSE)


@get(
    f"{_ORG}/Schemas",
    opt=_DISCOVERY_DOC.opt,
    operation_class=_operation(_DISCOVERY_DOC),
    responses=_responses(_DISCOVERY_DOC, 200, "A ListResponse of the schemas."),
)
async def schemas(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> Response[bytes]:
    found = service.schemas(_base(request, org_id))
    listed = service.page(service.search_request(Schema, {}), found, Schema)
    return _render(listed, Context.RESOURCE_QUERY_RESPONSE)


@get(
    f"{_ORG}/Schemas/{{schema_id:str}}",
    opt=_DISCOVERY_DOC.opt,
    operation_class=_operation(_DISCOVERY_DOC),
    responses=_responses(_DISCOVERY_DOC, 200, "A schema."),
)
async def schema(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], schema_id: FromPath[str]
) -> Response[bytes]:
    found = service.schema(_base(request, org_id), schema_id)
    return _render(found, Context.RESOURCE_QUERY_RESPONSE)


# --- users and groups ---------------------------------------------------------------------
#
# Users and Groups answer the same seven routes (RFC 7644 §3.2-§3.6), so one factory
# builds both sets; a ``_Kind`` holds all that differs between them.

Pool = AsyncConnectionPool[Conn]
R = TypeVar("R", User, Group)
H = TypeVar("H", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True, kw_only=True)
class _Kind(Generic[R]):
    """A resource type's routes: its model, its names and the ``arx.scim`` calls behind them."""

    model: type[R]
    segment: str  # the path under the org's base: "Users"
    id_name: str  # the item's path parameter, as the OpenAPI document names it: "user_id"
    one: str  # "user": names handlers (hence operation ids) and responses
    many: str  # "users"
    search: Callable[[Pool, UUID, SearchRequest[R], str], Awaitable[ListResponse[R]]]
    get: Callable[[Pool, UUID, str, str], Awaitable[R]]
    create: Callable[[Pool, Access, dict[str, Any], str], Awaitable[R]]
    replace: Callable[[Pool, Access, str, dict[str, Any], str], Awaitable[R]]
    patch: Callable[[Pool, Access, str, dict[str, Any], str], Awaitable[R]]
    delete: Callable[[Pool, Access, str], Awaitable[None]]


def _named(name: str) -> Callable[[H], H]:
    """Gives a handler the factory made its own name, before Litestar reads it: the
    operationId is derived from it (``ScimV2OrgIdUsersCreateUser``), and logs show it."""

    def rename(handler: H) -> H:
        handler.__name__ = handler.__qualname__ = name
        return handler

    return rename


def _resource_routes(kind: _Kind[R]) -> list[HTTPRouteHandler]:
    """``kind``'s list, ``.search``, create, get, replace, patch and delete routes."""
    collection = f"{_ORG}/{kind.segment}"
    item = f"{collection}/{{{kind.id_name}:str}}"
    # The item handlers name their parameter ``resource_id`` and bind it by name to the
    # path's ``user_id``/``group_id``. Annotations are strings in this module (PEP 563) and
    # this one exists only here, so each of those handlers hands it to Litestar in its
    # signature_namespace.
    ResourceId = Annotated[str, PathParameter(name=kind.id_name)]
    by_id = {"ResourceId": ResourceId}

    async def _written(
        request: Request[Any, Any, Any],
        org_id: UUID,
        resource_id: str,
        write: Callable[[Pool, Access, str, dict[str, Any], str], Awaitable[R]],
        context: Context,
    ) -> Response[bytes]:
        """A replace or a patch: the body applied, the resource as it now is."""
        done = await write(
            runtime(request).control_pool,
            access(request),
            resource_id,
            await _payload(request),
            _base(request, org_id),
        )
        return _render(done, context, params=_response_parameters(request, kind.model))

    @get(
        collection,
        opt=_READ_DOC.opt,
        operation_class=_operation(_READ_DOC),
        responses=_responses(_READ_DOC, 200, f"A ListResponse of the org's {kind.many}."),
    )
    @_named(f"list_{kind.many}")
    async def list_resources(
        request: Request[Any, Any, Any],
        org_id: FromPath[UUID],
        *,
        filter_: Filter = None,
        start_index: StartIndex = None,
        count: Count = None,
        sort_by: SortBy = None,
        sort_order: SortOrder = None,
        attributes: Attributes = None,
        excluded_attributes: Excluded = None,
    ) -> Response[bytes]:
        found_request = service.search_request(kind.model, _query(request))
        found = await kind.search(
            runtime(request).control_pool, org_id, found_request, _base(request, org_id)
        )
        return _render(found, Context.SEARCH_RESPONSE, params=found_request)

    @post(
        f"{collection}/.search",
        status_code=200,
        opt=_SEARCH_DOC.opt,
        operation_class=_operation(_SEARCH_DOC),
        responses=_responses(_SEARCH_DOC, 200, f"A ListResponse of the org's {kind.many}."),
    )
    @_named(f"search_{kind.many}")
    async def search_resources(
        request: Request[Any, Any, Any], org_id: FromPath[UUID]
    ) -> Response[bytes]:
        found_request = service.search_request(kind.model, await _payload(request))
        found = await kind.search(
            runtime(request).control_pool, org_id, found_request, _base(request, org_id)
        )
        return _render(found, Context.SEARCH_RESPONSE, params=found_request)

    @post(
        collection,
        status_code=201,
        opt=_WRITE_DOC.opt,
        operation_class=_operation(_WRITE_DOC),
        responses=_responses(_WRITE_DOC, 201, f"The {kind.one}, created."),
    )
    @_named(f"create_{kind.one}")
    async def create_resource(
        request: Request[Any, Any, Any], org_id: FromPath[UUID]
    ) -> Response[bytes]:
        created = await kind.create(
            runtime(request).control_pool,
            access(request),
            await _payload(request),
            _base(request, org_id),
        )
        return _render(
            created,
            Context.RESOURCE_CREATION_RESPONSE,
            status=201,
            params=_response_parameters(request, kind.model),
            headers=_location(created),
        )

    @get(
        item,
        signature_namespace=by_id,
        opt=_READ_DOC.opt,
        operation_class=_operation(_READ_DOC),
        responses=_responses(_READ_DOC, 200, f"The {kind.one}."),
    )
    @_named(f"get_{kind.one}")
    async def get_resource(
        request: Request[Any, Any, Any],
        org_id: FromPath[UUID],
        resource_id: ResourceId,
        attributes: Attributes = None,
        excluded_attributes: Excluded = None,
    ) -> Response[bytes]:
        found = await kind.get(
            runtime(request).control_pool, org_id, resource_id, _base(request, org_id)
        )
        return _render(
            found,
            Context.RESOURCE_QUERY_RESPONSE,
            params=_response_parameters(request, kind.model),
        )

    @put(
        item,
        signature_namespace=by_id,
        opt=_WRITE_DOC.opt,
        operation_class=_operation(_WRITE_DOC),
        responses=_responses(_WRITE_DOC, 200, f"The {kind.one}, replaced."),
    )
    @_named(f"replace_{kind.one}")
    async def replace_resource(
        request: Request[Any, Any, Any], org_id: FromPath[UUID], resource_id: ResourceId
    ) -> Response[bytes]:
        return await _written(
            request, org_id, resource_id, kind.replace, Context.RESOURCE_REPLACEMENT_RESPONSE
        )

    @patch(
        item,
        signature_namespace=by_id,
        opt=_WRITE_DOC.opt,
        operation_class=_operation(_WRITE_DOC),
        responses=_responses(_WRITE_DOC, 200, f"The {kind.one}, patched."),
    )
    @_named(f"patch_{kind.one}")
    async def patch_resource(
        request: Request[Any, Any, Any], org_id: FromPath[UUID], resource_id: ResourceId
    ) -> Response[bytes]:
        return await _written(
            request, org_id, resource_id, kind.patch, Context.RESOURCE_PATCH_RESPONSE
        )

    @delete(
        item,
        signature_namespace=by_id,
        status_code=HTTP_204_NO_CONTENT,
        opt=_DELETE_DOC.opt,
        operation_class=_operation(_DELETE_DOC),
        responses=_responses(_DELETE_DOC, None, ""),
    )
    @_named(f"delete_{kind.one}")
    async def delete_resource(
        request: Request[Any, Any, Any], org_id: FromPath[UUID], resource_id: ResourceId
    ) -> None:
        await kind.delete(runtime(request).control_pool, access(request), resource_id)

    return [
        list_resources,
        search_resources,
        create_resource,
        get_resource,
        replace_resource,
        patch_resource,
        delete_resource,
    ]


_USERS = _Kind(
    model=User,
    segment="Users",
    id_name="user_id",
    one="user",
    many="users",
    search=users.list_users,
    get=users.get_user,
    create=users.create_user,
    replace=users.replace_user,
    patch=users.patch_user,
    delete=users.delete_user,
)
_GROUPS = _Kind(
    model=Group,
    segment="Groups",
    id_name="group_id",
    one="group",
    many="groups",
    search=groups.list_groups,
    get=groups.get_group,
    create=groups.create_group,
    replace=groups.replace_group,
    patch=groups.patch_group,
    delete=groups.delete_group,
)


# --- the root -----------------------------------------------------------------------------


@post(
    f"{_ORG}/.search",
    status_code=200,
    opt=_SEARCH_DOC.opt,
    operation_class=_operation(_SEARCH_DOC),
    responses=_responses(_SEARCH_DOC, 200, "A ListResponse of the org's users and groups."),
)
async def search_all(request: Request[Any, Any, Any], org_id: FromPath[UUID]) -> Response[bytes]:
    """Users and groups at once (RFC 7644 §3.4.3): users first, then groups."""
    found_request = service.search_request(User | Group, await _payload(request))
    found = await search.search_all(
        runtime(request).control_pool, org_id, found_request, _base(request, org_id)
    )
    return _render(found, Context.SEARCH_RESPONSE, params=found_request)


@route(
    f"{_ORG}/{{rest:path}}",
    http_method=["GET", "POST", "PUT", "PATCH", "DELETE"],
    opt=_DISCOVERY_DOC.opt,
    include_in_schema=False,
)
async def unknown(rest: FromPath[str]) -> None:
    """Any other path under an org's SCIM base: a SCIM 404 (clients probe for them)."""
    raise NotFoundError(f"no SCIM endpoint {rest}")


def _location(resource: Any) -> dict[str, str]:
    meta = getattr(resource, "meta", None)
    return {"location": meta.location} if meta and meta.location else {}


scim_router = Router(
    path="/scim/v2",
    route_handlers=[
        service_provider_config,
        resource_types,
        resource_type,
        schemas,
        schema,
        *_resource_routes(_USERS),
        *_resource_routes(_GROUPS),
        search_all,
        unknown,
    ],
    guards=[control_guard],
    exception_handlers={
        ARXError: handle_arx_error,
        HTTPException: handle_http_exception,
        Exception: handle_unexpected,
    },
    tags=["scim"],
)
