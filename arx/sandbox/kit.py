"""The fake-vendor kit: what every fake shares, so a fake is its routes and data.

``Vendor`` keeps the request log (method, path, query, status and whether the
credentials were good; never a credential), a per-minute rate limit, and
``guard``: the one place a route checks the ``Authorization`` header and the
limit before it does anything. ``make_app`` builds the Litestar app with an
unknown path answered in the vendor's error shape.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from litestar import Litestar, Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ControllerRouterHandler


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    auth_valid: bool
    status: int


class VendorError(Exception):
    """An answer in the vendor's error shape, raised from anywhere in a route."""

    def __init__(self, status: int, body: Any, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


@dataclass
class Vendor:
    """Requests seen, and the rate limit; subclassed per vendor with its data."""

    requests: list[LoggedRequest] = field(default_factory=list, repr=False)
    # Requests a minute; None: unlimited.
    rate_limit: int | None = None
    _window: list[float] = field(default_factory=list, repr=False)

    def calls(self, path: str | None = None, *, method: str | None = None) -> list[LoggedRequest]:
        return [
            r
            for r in self.requests
            if (path is None or r.path == path) and (method is None or r.method == method)
        ]

    def log(self, request: Request[Any, Any, Any], *, auth_valid: bool, status: int) -> None:
        self.requests.append(
            LoggedRequest(
                method=request.method,
                path=request.url.path,
                query=tuple(request.query_params.multi_items()),
                auth_valid=auth_valid,
                status=status,
            )
        )

    def take_slot(self) -> tuple[bool, int]:
        """(allowed, remaining) within the current minute."""
        if self.rate_limit is None:
            return True, 1_000_000
        now = time.time()
        self._window = [t for t in self._window if now - t < 60]
        if len(self._window) >= self.rate_limit:
            return False, 0
        self._window.append(now)
        return True, self.rate_limit - len(self._window)


def bearer(request: Request[Any, Any, Any], scheme: str = "Bearer") -> str | None:
    """The credential after ``scheme`` in ``Authorization`` (None if absent)."""
    value = request.headers.get("authorization", "")
    prefix = f"{scheme} "
    return value[len(prefix) :] if value.startswith(prefix) else None


def basic(request: Request[Any, Any, Any]) -> tuple[str, str] | None:
    raw = bearer(request, "Basic")
    if raw is None:
        return None
    try:
        user, _, password = base64.b64decode(raw, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


async def form(request: Request[Any, Any, Any]) -> dict[str, list[str]]:
    """A urlencoded body, whatever its Content-Type says: some vendors' clients
    (splunk-sdk) send none, and the vendor takes it."""
    return parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def make_app(
    routes: Sequence[ControllerRouterHandler],
    *,
    not_found: Callable[[str], Any],
    dependencies: Mapping[str, Any] | None = None,
) -> Litestar:
    """The fake's app; an unrouted path or method answers in the vendor's shape."""

    def unrouted(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
        return Response(not_found(request.url.path), status_code=exc.status_code)

    def vendor_error(request: Request[Any, Any, Any], exc: VendorError) -> Response[Any]:
        return Response(exc.body, status_code=exc.status, headers=exc.headers)

    return Litestar(
        list(routes),
        dependencies=dict(dependencies or {}),
        exception_handlers={HTTPException: unrouted, VendorError: vendor_error},
        debug=False,
    )
