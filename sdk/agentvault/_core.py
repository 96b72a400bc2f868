"""The I/O-free half of both clients: building requests, reading responses.

``ARXClient`` and ``AsyncARXClient`` differ only in how they send a request
and how they sleep; everything that decides what goes on the wire and what a
response means lives here, once. Guarantee: the API key leaves this module
only in the ``Authorization`` header; any text a server or a transport error
hands back is scrubbed of it before it reaches an exception.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from agentvault._version import __version__
from agentvault.errors import (
    APIError,
    ApprovalPendingError,
    ApprovalTimeoutError,
    AuthenticationError,
    ConflictError,
    ConnectorError,
    ConnectorUnreachableError,
    DeadlineExceededError,
    IdempotencyOutcomeUnknownError,
    InvalidRequestError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
    SessionContentionError,
    TransportError,
    UnsupportedMediaTypeError,
)
from agentvault.types import Approval, ConnectorInfo, ExecuteResult

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
USER_AGENT = f"agentvault/{__version__}"
_ACCEPT = "application/json, application/problem+json"
_REDACTED = "[REDACTED]"
_BODY_LIMIT = 2000  # characters of an unreadable body kept on APIError.body
_DETAIL_LIMIT = 200  # characters of it quoted in str(APIError)

_H = TypeVar("_H", httpx.Client, httpx.AsyncClient)
_T = TypeVar("_T")

# Indirection so tests can drive wait_for_approval with a fake clock.
_clock: Callable[[], float] = time.monotonic


class _ExecuteRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    connector: str
    operation: str
    params: dict[str, Any]


class _PendingBody(msgspec.Struct, frozen=True, kw_only=True):
    """The 202 body of ``POST /v1/sdk/execute``."""

    approval_id: str
    event_id: str | None = None
    status: str = "pending"
    verdict: str | None = None
    risk_score: int | None = None
    policy_id: str | None = None
    reasons: list[str] = []
    bundle_revision: str | None = None
    poll_url: str | None = None
    expires_at: datetime | None = None
    approvals_required: int = 1
    detail: str | None = None
    request_id: str | None = None


class _ConnectorList(msgspec.Struct, frozen=True, kw_only=True):
    connectors: list[ConnectorInfo]


class BaseClient(Generic[_H]):
    """State and wire logic shared by the sync and async clients."""

    def __init__(
        self,
        api_key: str | None,
        base_url: str | None,
        *,
        timeout: float,
        http_client: _H | None,
        new_http_client: Callable[[], _H],
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("ARX_API_KEY", "")
        if not key:
            raise ValueError("no ARX API key: pass api_key=... or set ARX_API_KEY")
        if key != key.strip() or any(c in key for c in "\r\n"):
            # Never echo the key itself: it is a secret even when malformed.
            raise ValueError("the ARX API key contains whitespace")
        url = (
            base_url if base_url is not None else os.environ.get("ARX_BASE_URL") or DEFAULT_BASE_URL
        )
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"ARX base URL must be an http(s) URL with a host, got {url!r}")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._api_key = key
        self._base_url = url.rstrip("/")
        self._timeout = timeout
        # A client the caller hands in stays theirs to close.
        self._owns_http = http_client is None
        self._http: _H = http_client if http_client is not None else new_http_client()

    @property
    def base_url(self) -> str:
        return self._base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._base_url!r})"

    # -- requests -------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        prefer: str | None = None,
    ) -> httpx.Request:
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "User-Agent": USER_AGENT,
            "Accept": _ACCEPT,
        }
        if content is not None:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        if prefer is not None:
            headers["Prefer"] = prefer
        return self._http.build_request(
            method,
            self._base_url + path,
            content=content,
            headers=headers,
            timeout=self._timeout if timeout is None else timeout,
        )

    def _execute_request(
        self,
        connector: str,
        operation: str,
        params: Mapping[str, Any] | None,
        idempotency_key: str | None,
    ) -> httpx.Request:
        body = _ExecuteRequest(connector=connector, operation=operation, params=dict(params or {}))
        return self._request(
            "POST",
            "/v1/sdk/execute",
            content=msgspec.json.encode(body),
            idempotency_key=idempotency_key,
            # The SDK waits for reviewers itself (wait_for_approval: long polls
            # within its own timeouts), so a deployment's default hold
            # (ARX_EXECUTE_APPROVAL_WAIT_SECONDS) must not outlast this
            # request's timeout and lose the approval id with it.
            prefer="respond-async",
        )

    def _resume_request(
        self,
        approval_id: str,
        connector: str,
        operation: str,
        params: Mapping[str, Any] | None,
    ) -> httpx.Request:
        if not approval_id:
            raise ValueError("approval_id must not be empty")
        body = _ExecuteRequest(connector=connector, operation=operation, params=dict(params or {}))
        return self._request(
            "POST",
            f"/v1/sdk/approvals/{quote(approval_id, safe='')}/execute",
            content=msgspec.json.encode(body),
        )

    def _approval_request(
        self, approval_id: str, timeout: float | None = None, wait: int = 0
    ) -> httpx.Request:
        if not approval_id:
            raise ValueError("approval_id must not be empty")
        # Quote everything, "/" included: an id can never escape its path segment.
        path = f"/v1/sdk/approvals/{quote(approval_id, safe='')}"
        return self._request("GET", f"{path}?wait={wait}" if wait else path, timeout=timeout)

    def _connectors_request(self) -> httpx.Request:
        return self._request("GET", "/v1/sdk/connectors")

    def _approval_wait(
        self, approval_id: str, timeout: float, poll_interval: float
    ) -> _ApprovalWait:
        return _ApprovalWait(
            approval_id, timeout=timeout, poll_interval=poll_interval, request_timeout=self._timeout
        )

    # -- responses ------------------------------------------------------------

    def _execute_result(self, response: httpx.Response) -> ExecuteResult:
        if response.status_code == 202:
            raise self._pending_error(response)
        return self._decode(response, ExecuteResult)

    def _approval_result(self, response: httpx.Response) -> Approval:
        return self._decode(response, Approval)

    def _connectors_result(self, response: httpx.Response) -> list[ConnectorInfo]:
        return self._decode(response, _ConnectorList).connectors

    def _transport_error(self, request: httpx.Request, exc: httpx.RequestError) -> TransportError:
        url = request.url
        where = f"{request.method} {url.scheme}://{url.netloc.decode('ascii')}{url.path}"
        reason = self._redact(str(exc)) or type(exc).__name__
        return TransportError(f"{where} failed: {type(exc).__name__}: {reason}")

    def _decode(self, response: httpx.Response, type_: type[_T]) -> _T:
        if not response.is_success:
            raise self._error(response)
        try:
            return msgspec.json.decode(response.content, type=type_)
        except msgspec.DecodeError as exc:
            raise self._unreadable(response, f"unexpected response body: {exc}") from None

    def _pending_error(self, response: httpx.Response) -> ApprovalPendingError | APIError:
        try:
            body = msgspec.json.decode(response.content, type=_PendingBody)
        except msgspec.DecodeError as exc:
            return self._unreadable(response, f"unexpected approval-pending body: {exc}")
        poll = (
            body.poll_url
            or response.headers.get("location")
            or f"/v1/sdk/approvals/{quote(body.approval_id, safe='')}"
        )
        return ApprovalPendingError(
            body.detail,
            status=response.status_code,
            request_id=body.request_id or response.headers.get("x-request-id"),
            event_id=body.event_id,
            approval_id=body.approval_id,
            approval_status=body.status,
            verdict=body.verdict,
            risk_score=body.risk_score,
            policy_id=body.policy_id,
            reasons=body.reasons,
            bundle_revision=body.bundle_revision,
            poll_url=str(httpx.URL(self._base_url + "/").join(poll)),
            expires_at=body.expires_at,
            approvals_required=body.approvals_required,
        )

    def _error(self, response: httpx.Response) -> APIError:
        """Map a non-2xx response to the exception the contract names for it."""
        text = self._redact(response.text)
        try:
            problem = msgspec.json.decode(text)
        except msgspec.DecodeError:
            problem = None
        if not isinstance(problem, dict):
            return self._unreadable(response, None, text=text)
        status = response.status_code
        common: dict[str, Any] = {
            "status": status,
            "code": _str(problem, "code"),
            "request_id": _str(problem, "request_id") or response.headers.get("x-request-id"),
            "title": _str(problem, "title"),
            "problem": problem,
        }
        detail = _str(problem, "detail") or common["title"] or response.reason_phrase or None
        error: APIError
        match status:
            case 401:
                error = AuthenticationError(detail, **common)
            case 403:
                error = PermissionDeniedError(
                    detail,
                    **common,
                    event_id=_str(problem, "event_id"),
                    verdict=_str(problem, "verdict"),
                    risk_score=_int(problem, "risk_score"),
                    policy_id=_str(problem, "policy_id"),
                    reasons=_strs(problem, "reasons"),
                )
            case 400 | 404 | 409 | 413 | 415 | 422:
                cls = _INVALID_REQUEST.get(status, InvalidRequestError)
                field = _str(problem, "field")
                if status == 409 and common["code"] == "idempotency_outcome_unknown":
                    error = IdempotencyOutcomeUnknownError(
                        detail,
                        **common,
                        field=field,
                        event_id=_str(problem, "event_id"),
                        outcome=_str(problem, "outcome"),
                    )
                else:
                    error = cls(detail, **common, field=field)
            case 429:
                wait = _retry_after(response.headers.get("retry-after"))
                error = RateLimitedError(
                    detail,
                    **common,
                    # The header, else the same number from the tool's answer.
                    retry_after=_int(problem, "retry_after_seconds") if wait is None else wait,
                    event_id=_str(problem, "event_id"),
                    upstream_status=_int(problem, "upstream_status"),
                )
            case 502 | 504:
                connector_cls = (
                    OutcomeUnknownError
                    if status == 504
                    else _CONNECTOR_ERRORS.get(common["code"], ConnectorError)
                )
                error = connector_cls(
                    detail,
                    **common,
                    event_id=_str(problem, "event_id"),
                    upstream_status=_int(problem, "upstream_status"),
                )
            case 503:
                retry_after = _retry_after(response.headers.get("retry-after"))
                unavailable_cls = _UNAVAILABLE.get(common["code"], ServiceUnavailableError)
                error = unavailable_cls(detail, **common, retry_after=retry_after)
            case _:
                error = APIError(detail, **common)
        return error

    def _unreadable(
        self, response: httpx.Response, reason: str | None, *, text: str | None = None
    ) -> APIError:
        """An APIError for a body that is not what the contract promises."""
        body = (self._redact(response.text) if text is None else text)[:_BODY_LIMIT]
        snippet = " ".join(body[:_DETAIL_LIMIT].split()) or "(empty body)"
        detail = reason or f"unexpected HTTP {response.status_code} response: {snippet}"
        return APIError(
            self._redact(detail),
            status=response.status_code,
            request_id=response.headers.get("x-request-id"),
            body=body,
        )

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, _REDACTED)


class _ApprovalWait:
    """The polling schedule of ``wait_for_approval``, shared by both clients.

    Each poll asks the server to hold its answer while the request is pending
    (``?wait=``, at most ``SERVER_WAIT_SECONDS`` and never past the deadline):
    ARX answers the moment a reviewer decides, on any of its processes. A
    server that answered sooner than asked (one that does not hold polls) is
    polled again ``poll_interval`` later, the last poll clipped to land on the
    deadline. Each request's own timeout is the time the server may hold it
    plus at most ``request_timeout``, clipped so that a hung connection cannot
    stretch the wait far past the deadline.
    """

    SERVER_WAIT_SECONDS = 25

    def __init__(
        self, approval_id: str, *, timeout: float, poll_interval: float, request_timeout: float
    ) -> None:
        if timeout < 0:
            raise ValueError("timeout must not be negative")
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self._approval_id = approval_id
        self._timeout = timeout
        self._poll_interval = poll_interval
        self._request_timeout = request_timeout
        self._deadline = _clock() + timeout
        self._asked = 0
        self._sent = _clock()

    def begin(self) -> tuple[int, float]:
        """Start a poll: (seconds the server may hold it, the request's timeout)."""
        remaining = self._deadline - _clock()
        self._asked = max(0, min(self.SERVER_WAIT_SECONDS, int(remaining)))
        self._sent = _clock()
        # At least a second beyond the hold, so the poll at the deadline still gets an answer.
        grace = min(self._request_timeout, max(remaining - self._asked, 1.0))
        return self._asked, self._asked + grace

    def next_delay(self, approval: Approval) -> float | None:
        """Seconds to sleep before the next poll; ``None`` once decided."""
        if approval.status != "pending":
            return None
        remaining = self._deadline - _clock()
        if remaining > 0 and self._asked and _clock() - self._sent >= self._asked - 0.5:
            return 0.0  # the server held the poll as asked: ask again at once
        if remaining <= 0:
            raise ApprovalTimeoutError(
                f"approval {self._approval_id} still pending after {self._timeout:g}s",
                approval_id=self._approval_id,
                timeout=self._timeout,
                approval=approval,
            )
        return min(self._poll_interval, remaining)


# 400, 413 and 422 raise InvalidRequestError itself.
_INVALID_REQUEST: dict[int, type[InvalidRequestError]] = {
    404: NotFoundError,
    409: ConflictError,
    415: UnsupportedMediaTypeError,
}
# A more precise class for some problem codes (never the message text).
_CONNECTOR_ERRORS: dict[str | None, type[ConnectorError]] = {
    "connector_unreachable": ConnectorUnreachableError,
}
_UNAVAILABLE: dict[str | None, type[ServiceUnavailableError]] = {
    "deadline_exceeded": DeadlineExceededError,
    "session_contention": SessionContentionError,
}


# Problem members are read defensively: a member of the wrong type is treated
# as absent rather than turning a clear error into a confusing one.
def _str(problem: Mapping[str, Any], key: str) -> str | None:
    value = problem.get(key)
    return value if isinstance(value, str) else None


def _int(problem: Mapping[str, Any], key: str) -> int | None:
    value = problem.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _strs(problem: Mapping[str, Any], key: str) -> list[str]:
    value = problem.get(key)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header; the HTTP-date form is ignored."""
    value = (value or "").strip()
    return float(value) if value.isascii() and value.isdigit() else None
