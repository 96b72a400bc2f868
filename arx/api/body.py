"""Strict request-body decoding: every bad body is a 4xx that names the problem.

Guarantees: a body that is not ``application/json`` is a 415; one that is
not JSON, not UTF-8 or nested past what the decoder handles is a 400; a
wrong field is a 422 naming it. Execute params are also bounded in depth and
may not hold a NUL character (PostgreSQL's ``jsonb`` refuses it): refused
here, before anything is decided or written. An integral number written with
a fraction (``3.0``) is the integer it equals, as JSON Schema says.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Request

from arx.errors import InvalidFieldError, MalformedJSONError, UnsupportedMediaTypeError

T = TypeVar("T")

# Far deeper than any operation's params need, far shallower than what
# would strain a recursive encoder or decoder anywhere downstream.
MAX_PARAMS_DEPTH = 32


def decode(body: bytes, type_: type[T]) -> T:
    if not body.strip():
        raise MalformedJSONError("the request body is empty; a JSON object is required")
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        raise InvalidFieldError.from_validation(exc) from None
    except msgspec.DecodeError as exc:
        raise MalformedJSONError(f"the request body is not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise MalformedJSONError("the request body is not valid UTF-8") from None
    except RecursionError:
        raise MalformedJSONError("the request body is nested too deeply") from None


def _is_json(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def read(request: Request[Any, Any, Any], type_: type[T]) -> T:
    if not _is_json(request.headers.get("content-type", "")):
        raise UnsupportedMediaTypeError("send the body as JSON with Content-Type: application/json")
    # request.body() enforces request_max_body_size (413) while reading.
    return decode(await request.body(), type_)


async def read_optional(request: Request[Any, Any, Any], type_: type[T], default: T) -> T:
    """``read`` for a body that may be left out (every field has a default)."""
    if not (await request.body()).strip():
        return default
    return await read(request, type_)


def check_params(params: dict[str, Any], *, field: str = "params") -> dict[str, Any]:
    """``params`` with integral floats as ints; refuse nesting past ``MAX_PARAMS_DEPTH``
    or a NUL character.

    JSON does not tell ``3`` from ``3.0`` (nor does the JSON Schema ``integer``
    type), but the operation tables' strict types do: the agent's number is
    read as the integer it is.
    """
    try:
        checked: dict[str, Any] = _checked(params, 1)
    except _Refused as refused:
        path = field + "".join(reversed(refused.path))
        raise InvalidFieldError(f"{path} {refused.reason}", field=path) from None
    return checked


class _Refused(Exception):
    """A value ``_checked`` refuses; the path is added while unwinding, so the
    common case builds none."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.path: list[str] = []


def _checked(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        if "\x00" in value:
            raise _Refused("contains a NUL character")
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if not isinstance(value, dict | list):
        return value
    if depth > MAX_PARAMS_DEPTH:
        raise _Refused(f"is nested deeper than {MAX_PARAMS_DEPTH} levels")
    if isinstance(value, list):
        items = []
        for i, item in enumerate(value):
            try:
                items.append(_checked(item, depth + 1))
            except _Refused as refused:
                refused.path.append(f"[{i}]")
                raise
        return items
    checked = {}
    for key, item in value.items():
        if "\x00" in key:
            raise _Refused("has a key with a NUL character")
        try:
            checked[key] = _checked(item, depth + 1)
        except _Refused as refused:
            refused.path.append(f".{key}")
            raise
    return checked
