"""The API docs page at ``/schema``: Swagger UI, every byte of it served by ARX.

Guarantee: the page loads nothing from anywhere but ARX itself. Swagger UI
comes from the pinned ``swagger-ui-bundle-v2`` wheel (its version is in the
asset URLs), the code that starts it from ``arx/api/static/docs.js``, the
document from ``/schema/openapi.json``. The Content-Security-Policy tells the
browser the same (``'self'`` only, no inline script, no framing), so the page
renders air-gapped, and a CDN serving a new script cannot run it next to a
signed-in administrator's cookies.

Only the files the page needs are served, each under a name that changes
with its content (the Swagger UI version, a digest of ``docs.js``), so they
are cached for a year; the page and the document are revalidated each time.
"""

from __future__ import annotations

import hashlib
import html
from importlib.resources import files
from pathlib import Path
from typing import Any

from litestar import Request, Router, get
from litestar.enums import MediaType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.response import File, Response

from arx.api.pages.render import SECURITY_HEADERS

DOCS_PATH = "/schema"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Every answer under /schema (page, document, assets, 404s) carries these.
HEADERS = {**SECURITY_HEADERS, "content-security-policy": CSP, "cache-control": "no-cache"}
IMMUTABLE = "public, max-age=31536000, immutable"


def _swagger_ui_dir() -> Path:
    """The one ``vendor/swagger-ui-<version>`` directory of the installed wheel."""
    vendor = files("swagger_ui_bundle").joinpath("vendor")
    found = [d for d in vendor.iterdir() if d.is_dir() and d.name.startswith("swagger-ui-")]
    if len(found) != 1 or not isinstance(found[0], Path):
        raise RuntimeError(f"swagger-ui-bundle-v2 ships {len(found)} Swagger UI directories")
    return found[0]


SWAGGER_UI_DIR = _swagger_ui_dir()
SWAGGER_UI_VERSION = SWAGGER_UI_DIR.name.removeprefix("swagger-ui-")
# What the page loads from the distribution; nothing else of it is served
# (no source maps, no sample initializer pointing at the petstore).
_VENDOR_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "index.css": "text/css",
    "favicon-32x32.png": "image/png",
}
_INIT_JS = files("arx.api").joinpath("static/docs.js").read_bytes()
_INIT_JS_NAME = f"docs-{hashlib.sha256(_INIT_JS).hexdigest()[:12]}.js"

_PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" type="image/png" href="{vendor}/favicon-32x32.png">
<link rel="stylesheet" href="{vendor}/swagger-ui.css">
<link rel="stylesheet" href="{vendor}/index.css">
</head>
<body>
<div id="swagger-ui" data-spec-url="{spec}"></div>
<script src="{vendor}/swagger-ui-bundle.js"></script>
<script src="{init}"></script>
</body>
</html>
"""


def docs_router() -> Router:
    """The router Litestar fills with the OpenAPI routes: none in the document,
    all with the page's headers."""
    return Router(
        DOCS_PATH,
        route_handlers=[],
        include_in_schema=False,
        response_headers=HEADERS,
    )


class SwaggerUIPage(OpenAPIRenderPlugin):
    """``/schema``: Swagger UI on ARX's own copy of its assets."""

    def __init__(self) -> None:
        super().__init__(path="/", media_type=MediaType.HTML, favicon="", style="")
        self._assets = f"{DOCS_PATH}/assets"

    @property
    def vendor_url(self) -> str:
        return f"{self._assets}/swagger-ui-{SWAGGER_UI_VERSION}"

    @property
    def init_url(self) -> str:
        return f"{self._assets}/{_INIT_JS_NAME}"

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return _PAGE.format(
            title=html.escape(f"{openapi_schema['info']['title']} API"),
            vendor=html.escape(self.vendor_url),
            init=html.escape(self.init_url),
            spec=html.escape(self.get_openapi_json_route(request)),
        ).encode()

    def receive_router(self, router: Router) -> None:
        self._assets = f"{router.path.rstrip('/')}/assets"
        for name, media_type in _VENDOR_FILES.items():
            router.register(
                _vendor_file(f"/assets/swagger-ui-{SWAGGER_UI_VERSION}/{name}", name, media_type)
            )
        router.register(_init_js(f"/assets/{_INIT_JS_NAME}"))


def _vendor_file(path: str, name: str, media_type: str) -> HTTPRouteHandler:
    @get(path, include_in_schema=False, name=f"docs-asset:{name}")
    async def serve() -> File:
        return File(
            SWAGGER_UI_DIR / name,
            media_type=media_type,
            filename=name,
            content_disposition_type="inline",
            headers={"cache-control": IMMUTABLE},
        )

    return serve


def _init_js(path: str) -> HTTPRouteHandler:
    @get(path, include_in_schema=False, name="docs-asset:init", sync_to_thread=False)
    def serve() -> Response[bytes]:
        return Response(
            _INIT_JS,
            media_type="text/javascript",
            headers={"cache-control": IMMUTABLE},
        )

    return serve
