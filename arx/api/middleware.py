"""ASGI middleware: a request id for every request and one access log line.

ARX makes its own id for every request (``X-Request-ID`` in the response, in
every log line, problem body and audit event). It never takes the caller's:
two requests cannot be made to share an id, nor one pass for another in the
trail. A caller's well-formed ``X-Request-ID`` is kept beside it
(``client_request_id`` in log lines and audit events) and echoed as
``X-Client-Request-ID``, so that either id finds the other; a malformed one
is dropped, never echoed or logged.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from arx.logs import agent_id_var, client_request_id_var, get_logger, org_id_var, request_id_var

log = get_logger("arx.access")
# Safe in a header, a log line, a CSV cell and a URL, as it is.
_VALID_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")
# Set for each request, and reset after it.
_VARIABLES = (request_id_var, client_request_id_var, org_id_var, agent_id_var)


def _client_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return value.decode() if _VALID_ID.match(value) else None
    return None


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        rid = uuid.uuid4().hex
        client_rid = _client_id(scope)
        values = (rid, client_rid, None, None)
        tokens = [var.set(value) for var, value in zip(_VARIABLES, values, strict=True)]
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers: list[Any] = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                if client_rid is not None:
                    headers.append((b"x-client-request-id", client_rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            for var, token in zip(_VARIABLES, tokens, strict=True):
                var.reset(token)

    return middleware
