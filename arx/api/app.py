"""The Litestar application.

``create_app(settings)`` opens the runtime in the app's lifespan (uvicorn);
``create_app(settings, runtime=rt)`` serves an already-open runtime (tests
drive it in-process on their own event loop).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig

import arx
from arx.api.admin import admin_router
from arx.api.admin import notifications as notification_routes
from arx.api.docs_page import SwaggerUIPage, docs_router
from arx.api.health import health
from arx.api.middleware import request_id_middleware
from arx.api.opa_service import opa_router
from arx.api.openapi import components
from arx.api.pages import assets, review, signin
from arx.api.problems import handle_arx_error, handle_http_exception, handle_unexpected
from arx.api.scim import scim_router
from arx.api.sdk import execute, get_approval, list_connectors, resume
from arx.api.slack import slack_interactions
from arx.config import Settings, load_settings
from arx.errors import ARXError
from arx.logs import configure_logging
from arx.runtime import Runtime, open_runtime

DESCRIPTION = """\
Governance proxy between AI agents and security tools.

Every error is RFC 9457 `application/problem+json` (schema `Problem`) with a
stable `code`, including the answers of no operation: an unknown path is a
404 `not_found`, a method a path does not support a 405 `method_not_allowed`
with an `Allow` header. Every response carries `X-Request-ID`, ARX's own id
of the request (never the caller's); a caller's well-formed `X-Request-ID` is
kept beside it and echoed as `X-Client-Request-ID`.
"""


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if runtime is not None:
            app.state.runtime = runtime
            yield
            return
        async with open_runtime(settings) as rt:
            # Refuse to serve if a result could not be kept while the
            # database is away: better no API than a trail with holes.
            rt.trail.spool.ensure()
            app.state.runtime = rt
            yield

    app = Litestar(
        route_handlers=[
            execute,
            get_approval,
            resume,
            list_connectors,
            health,
            admin_router,
            opa_router,
            scim_router,
            slack_interactions,
            *signin.ROUTES,
            *review.ROUTES,
            *assets.ROUTES,
        ],
        lifespan=[lifespan],
        exception_handlers={
            ARXError: handle_arx_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="ARX",
            version=arx.__version__,
            description=DESCRIPTION,
            components=[
                # A loopback URL is valid for every org only with ARX_SANDBOX_ORGS=*.
                components(sandbox="*" in settings.sandbox_orgs),
                notification_routes.components(
                    allow_insecure_connector_urls=settings.allow_insecure_connector_urls
                ),
            ],
            # /schema: Swagger UI from ARX's own pinned copy (arx.api.docs_page).
            render_plugins=[SwaggerUIPage()],
            openapi_router=docs_router(),
        ),
        debug=False,
        logging_config=None,
    )
    if runtime is not None:
        app.state.runtime = runtime
    # Wrap the whole ASGI app, not the route middleware stack: Litestar runs
    # app-level middleware only for matched routes, and unrouted 404/405
    # answers need a request id and an access log line too.
    app.asgi_handler = request_id_middleware(app.asgi_handler)
    return app


def app_from_env() -> Litestar:
    """Factory for ``uvicorn --factory arx.api.app:app_from_env``."""
    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)
