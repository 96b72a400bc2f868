"""ASGI middleware: a request id for every request and one access log line.

The id comes from a well-formed ``X-Request-ID`` header or is generated; it
is echoed in the response, in every log line and in every problem body.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from arx.logs import agent_id_var, get_logger, org_id_var, request_id_var

log = get_logger("arx.access")
_VALID_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        rid = None
        for name, value in scope["headers"]:
            if name == b"x-request-id" and _VALID_ID.match(value):
                rid = value.decode()
                break
        rid = rid or uuid.uuid4().hex
        tokens = (request_id_var.set(rid), org_id_var.set(None), agent_id_var.set(None))
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers: list[Any] = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
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
            for var, token in zip((request_id_var, org_id_var, agent_id_var), tokens, strict=True):
                var.reset(token)

    return middleware
