"""The pages' one stylesheet, served by ARX itself (the CSP allows nothing else)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from litestar import Response, get

from arx.api.pages.render import SECURITY_HEADERS

STYLESHEET = "/assets/arx.css"


@cache
def _stylesheet() -> bytes:
    return files("arx.api.pages").joinpath("static", "arx.css").read_bytes()


@get(STYLESHEET, include_in_schema=False)
async def stylesheet() -> Response[bytes]:
    return Response(
        _stylesheet(),
        media_type="text/css; charset=utf-8",
        headers={**SECURITY_HEADERS, "cache-control": "public, max-age=3600"},
    )


ROUTES = [stylesheet]
