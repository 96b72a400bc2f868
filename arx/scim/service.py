"""What users and groups share: reading requests, paging results, discovery, errors.

Every SCIM protocol error (scim2-models' ``SCIMException`` tree, or a
pydantic ``ValidationError`` carrying one) becomes an ``ARXError`` here, with
its RFC 7644 ``scimType`` in ``extra["scim_type"]``: the rest of ARX sees one
error tree, and ``arx.api.scim`` renders it as a SCIM error body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError
from scim2_models import (
    Context,
    Error,
    ListResponse,
    Meta,
    Resource,
    ResourceType,
    Schema,
    SCIMException,
    SearchRequest,
    ServiceProviderConfig,
)

from arx.errors import (
    ARXError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from arx.scim.types import CONFIG, MAX_RESULTS, POLICY, PROVIDER, SCHEMAS

R = TypeVar("R", bound=Resource[Any])
T = TypeVar("T")

# The query parameters of a list (RFC 7644 §3.4.2), as a SearchRequest names them.
SEARCH_PARAMETERS = (
    "filter",
    "sortBy",
    "sortOrder",
    "startIndex",
    "count",
    "attributes",
    "excludedAttributes",
)


# --- errors -------------------------------------------------------------------------------


def scim_error(status: int, scim_type: str | None, detail: str) -> ARXError:
    """The ARX error for a SCIM error: the class carries the status."""
    extra = {"scim_type": scim_type} if scim_type else None
    if status == 409:
        return ConflictError(detail, extra=extra)
    if status == 404:
        return NotFoundError(detail, extra=extra)
    if status == 413:
        return PayloadTooLargeError(detail, extra=extra)
    if status == 415:
        return UnsupportedMediaTypeError(detail, extra=extra)
    # Everything else scim2-models raises for a request is the client's (400);
    # a 501 (a feature ARX does not offer) is refused as a bad request too.
    return BadRequestError(detail, extra=extra)


def invalid_value(detail: str) -> ARXError:
    return scim_error(400, "invalidValue", detail)


def protocol_error(exc: SCIMException | ValidationError) -> ARXError:
    if isinstance(exc, SCIMException):
        error = exc.to_error()
        cause = exc.__cause__
        if isinstance(cause, ValidationError):
            # Its text would quote the offending value; its first message does not.
            error.detail = Error.from_validation_errors(cause)[0].detail
    else:
        # The first problem is enough to act on; pydantic lists them in order.
        error = Error.from_validation_errors(exc)[0]
    return scim_error(error.status or 400, error.scim_type, error.detail or "invalid request")


def guarded(call: Callable[[], T]) -> T:
    """``call()``, its SCIM protocol errors turned into ARX errors."""
    try:
        return call()
    except (SCIMException, ValidationError) as exc:
        raise protocol_error(exc) from None


# --- requests -----------------------------------------------------------------------------


def present(data: Mapping[str, Any], name: str) -> bool:
    """Whether ``data`` names the attribute (SCIM names ignore case, RFC 7643 §2.1)."""
    return any(key.lower() == name.lower() for key in data)


def search_request(model: Any, params: Mapping[str, Any]) -> SearchRequest[Any]:
    """A list's parameters, from the query string or a ``.search`` body, capped.

    ``model`` is what the endpoint serves (a union at the root): the filter
    and ``sortBy`` are checked against it.
    """
    request: SearchRequest[Any] = guarded(
        lambda: SearchRequest[model].model_validate(
            dict(params), scim_ctx=Context.SEARCH_REQUEST, scim_policy=POLICY
        )
    )
    if request.count is None or request.count > MAX_RESULTS:
        request.count = MAX_RESULTS
    return request


def page(request: SearchRequest[Any], matched: Sequence[R], model: Any) -> ListResponse[R]:
    """One page of ``matched``; ``model`` is what the list holds (a union at the root)."""
    start = request.start_index_0 or 0
    shown = list(matched[start : request.stop_index_0])
    response: ListResponse[R] = ListResponse[model](
        total_results=len(matched),
        start_index=start + 1,
        items_per_page=len(shown),
        resources=shown,
    )
    return response


def _matching(request: SearchRequest[Any], resources: list[R]) -> list[R]:
    """The resources the request's filter matches, in the order it asks for."""
    flt = request.filter
    if flt is not None:
        resources = guarded(lambda: [r for r in resources if flt.match(r)])
    return guarded(lambda: request.sort(resources))


async def listing(
    request: SearchRequest[Any], rows: Sequence[T], build: Callable[[T], R], model: Any
) -> ListResponse[R]:
    """The page of ``rows`` (in the database's stable order) the request asks for.

    A resource model costs about 0.1 ms to build, so an org of thousands is
    a noticeable burst of CPU: without a filter or an order only the page is
    built, and otherwise the work runs in a thread, off the event loop.
    """
    if request.filter is None and request.sort_by is None:
        start = request.start_index_0 or 0
        shown = [build(r) for r in rows[start : request.stop_index_0]]
        response: ListResponse[R] = ListResponse[model](
            total_results=len(rows),
            start_index=start + 1,
            items_per_page=len(shown),
            resources=shown,
        )
        return response

    def work() -> ListResponse[R]:
        return page(request, _matching(request, [build(r) for r in rows]), model)

    return await asyncio.to_thread(work)


# --- discovery ----------------------------------------------------------------------------


def _meta(resource_type: str, location: str) -> Meta:
    return Meta(resource_type=resource_type, location=location)


def service_provider_config(base: str) -> ServiceProviderConfig:
    config = CONFIG.model_copy(deep=True)
    config.meta = _meta("ServiceProviderConfig", f"{base}/ServiceProviderConfig")
    return config


def resource_types(base: str) -> list[ResourceType]:
    found = []
    for resource_type in PROVIDER.resource_types:
        copy = resource_type.model_copy(deep=True)
        copy.meta = _meta("ResourceType", f"{base}/ResourceTypes/{copy.id}")
        found.append(copy)
    return found


def resource_type(base: str, type_id: str) -> ResourceType:
    for found in resource_types(base):
        if found.id == type_id:
            return found
    raise NotFoundError(f"no resource type {type_id!r}")


def schemas(base: str) -> list[Schema]:
    found = []
    for schema in SCHEMAS:
        copy = schema.model_copy(deep=True)
        copy.meta = _meta("Schema", f"{base}/Schemas/{copy.id}")
        found.append(copy)
    return found


def schema(base: str, schema_id: str) -> Schema:
    for found in schemas(base):
        # Schema ids are URNs, which compare without regard to case (RFC 8141 §3).
        if (found.id or "").lower() == schema_id.lower():
            return found
    raise NotFoundError(f"no schema {schema_id!r}")
