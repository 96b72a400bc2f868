"""RFC 9457 problem details: the one place error bodies are built.

Every ``ARXError`` becomes ``application/problem+json`` with its stable
``code``; Litestar's own HTTP errors (unknown route, wrong method, body too
large) get the same shape; anything unexpected is a 500 whose body says
nothing about internals and whose log line names only the exception type.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from arx.errors import ARXError
from arx.logs import get_logger, request_id_var

log = get_logger("arx.api")

PROBLEM_TYPE_BASE = "https://arx.dev/problems/"
MEDIA_TYPE = "application/problem+json"

# Codes of the errors Litestar raises itself (routing, body size, parameters).
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id_var.get(),
    }
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    headers = dict(headers or {})
    if status == 401:
        headers["www-authenticate"] = 'Bearer realm="arx"'
    return Response(
        content=msgspec.json.encode(body, enc_hook=str),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def problem_response(exc: ARXError) -> Response[bytes]:
    """The problem+json answer for ``exc`` (its status, body and headers)."""
    return problem(
        exc.status_code, exc.code, exc.title, exc.detail, extra=exc.extra, headers=exc.headers
    )


def handle_arx_error(_: Request[Any, Any, Any], exc: ARXError) -> Response[bytes]:
    if exc.status_code >= 500:
        log.warning("request failed", extra={"code": exc.code, "status": exc.status_code})
    return problem_response(exc)


def handle_http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    if status >= 500:
        return handle_unexpected(_, exc)
    code = HTTP_CODES.get(status, "http_error")
    detail = "the request body exceeds the size limit" if status == 413 else str(exc.detail)
    # Keep Litestar's own headers (Allow on a 405).
    return problem(status, code, code.replace("_", " ").capitalize(), detail, headers=exc.headers)


def handle_unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.error("unhandled error", extra={"exc_type": type(exc).__name__})
    return problem(500, "internal_error", "Internal error", "an unexpected error occurred")
