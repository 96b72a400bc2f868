"""Strict request-body decoding with problems that name the field."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Request

from arx.errors import InvalidFieldError, MalformedJSONError

T = TypeVar("T")


def decode(body: bytes, type_: type[T]) -> T:
    if not body.strip():
        raise MalformedJSONError("the request body is empty; a JSON object is required")
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        raise InvalidFieldError.from_validation(exc) from None
    except msgspec.DecodeError as exc:
        raise MalformedJSONError(f"the request body is not valid JSON: {exc}") from None


async def read(request: Request[Any, Any, Any], type_: type[T]) -> T:
    # request.body() enforces request_max_body_size (413) while reading.
    return decode(await request.body(), type_)
