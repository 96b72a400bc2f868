"""Access to the process-wide runtime from a request."""

from __future__ import annotations

from typing import Any

from litestar import Request

from arx.runtime import Runtime


def runtime(request: Request[Any, Any, Any]) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt
