"""``RestConnector``: everything a JSON-over-HTTPS vendor shares, so that a
connector is its operation table, its auth and its error envelope.

Each operation row carries a request builder (``Operation.build``: validated
params to an ``ApiCall``); the registry refuses a ``RestConnector`` whose rows
lack one. The base class then:

- authenticates with the connector's ``httpx.Auth`` (arx.connectors.auth),
  fetching a token before the operation is sent and once more after a 401;
- retries idempotent reads only (GET of a ``read`` operation) after a
  dropped connection or a 502/503/504, twice, briefly: a write is never
  repeated, and a 5xx after one is an unknown outcome, since the tool may
  have acted;
- maps a 429 to ``ConnectorRateLimitedError`` with ``Retry-After`` (each
  vendor says when to come back its own way), any other refusal to
  ``ConnectorRequestError`` / ``ConnectorAuthError`` with the vendor's own
  messages, scrubbed of every secret and token of the call;
- refuses an answer over the size limit, and returns the JSON answer (an
  array as ``{"items": [...]}``, no body as ``{}``).
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx
import msgspec

from arx.connectors.auth import ConnectorAuth
from arx.connectors.base import BaseConnector
from arx.connectors.http import (
    DestinationRefused,
    ResponseTooLarge,
    tool_url,
    transport_failure,
)
from arx.connectors.types import ApiCall, CallContext, Operation, OperationKind
from arx.errors import (
    ConnectorAuthError,
    ConnectorRateLimitedError,
    ConnectorRequestError,
    OutcomeUnknownError,
)
from arx.vault.secret import REDACTED, Secret

_FORM_HEADERS: Mapping[str, str] = {"Content-Type": "application/x-www-form-urlencoded"}
_MAX_ERROR_MESSAGES = 10
_MAX_MESSAGE_CHARS = 500
_RETRY_STATUSES = frozenset({502, 503, 504})
# After a write, these leave the outcome unknown: the tool may have acted.
_MAYBE_ACTED = frozenset({500, 502, 503, 504})
_RETRY_DELAYS = (0.1, 0.3)

__all__ = ["ApiCall", "RestConnector", "scrub"]


def scrub(text: str, hidden: tuple[Secret, ...]) -> str:
    for value in hidden:
        if value:
            text = text.replace(value.reveal(), REDACTED)
    return text[:_MAX_MESSAGE_CHARS]


@dataclass(frozen=True, slots=True)
class Failure:
    """What the vendor said when it refused: its messages and anything
    worth keeping (a trace id), never a secret."""

    messages: list[str]
    extra: dict[str, Any]


class RestConnector(BaseConnector):
    # The tool's name in messages ("CrowdStrike Falcon").
    vendor: ClassVar[str]
    # Sent with every request.
    headers: ClassVar[Mapping[str, str]] = {"Accept": "application/json"}
    # The registry refuses a connector of this kind whose rows lack a builder.
    builds_requests: ClassVar[bool] = True

    @abstractmethod
    def authenticate(self, secret: Any, context: CallContext) -> ConnectorAuth:
        """The ``httpx.Auth`` for one call with ``secret`` (a ``secret_type``)."""

    def base_path(self, secret: Any) -> str:
        """A path every call's starts with, from the credential (Sentinel's
        workspace); none by default."""
        return ""

    def failure(self, response: httpx.Response) -> Failure:
        """The vendor's error envelope; the default reads common shapes."""
        try:
            body = msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            return Failure([], {})
        return Failure(_common_messages(body), {})

    def retry_after(self, response: httpx.Response) -> int | None:
        """Seconds until the tool takes calls again, after a 429 (``Retry-After``)."""
        return retry_after_header(response.headers.get("Retry-After"))

    def result(self, response: httpx.Response, operation: Operation) -> dict[str, Any]:
        if not response.content:
            return {}
        try:
            body = msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            body = None
        if isinstance(body, dict):
            return body
        if isinstance(body, list):
            return {"items": body}
        raise ConnectorRequestError(
            f"{self.vendor} answered {operation.name} with a body that is not JSON",
            upstream_status=response.status_code,
        )

    async def _execute_impl(
        self,
        operation: Operation,
        params: msgspec.Struct,
        secret: Any,
        context: CallContext,
    ) -> dict[str, Any]:
        if not isinstance(secret, self.secret_type):
            raise TypeError(f"{self.id} needs a {self.secret_type.__name__}")
        assert operation.build is not None  # the registry refuses rows without one
        call = operation.build(params)
        base = context.base_url.rstrip("/") + self.base_path(secret)
        auth = self.authenticate(secret, context)
        await auth.prepare(self._http)
        response = await self._send(call, base, auth, operation)
        if response.status_code == 401 and auth.rejected():
            # Revoked or expired early: one fresh token, one retry.
            await auth.prepare(self._http)
            response = await self._send(call, base, auth, operation)
            if response.status_code == 401:
                raise self._refused(response, operation, auth, " (with a freshly issued token)")
        self._check_size(response, context)
        if response.status_code in _MAYBE_ACTED and not _idempotent(call, operation):
            # A gateway or server failure after a write: it may have acted.
            failure = self.failure(response)
            raise OutcomeUnknownError(
                f"{self.vendor} answered HTTP {response.status_code} to {operation.name}; it may "
                "have acted: check the tool before retrying",
                upstream_status=response.status_code,
                extra={"errors": [scrub(m, auth.hidden()) for m in failure.messages][:10]},
            )
        if not response.is_success:
            raise self._refused(response, operation, auth)
        return self.result(response, operation)

    async def _send(
        self, call: ApiCall, base: str, auth: ConnectorAuth, operation: Operation
    ) -> httpx.Response:
        delays = _RETRY_DELAYS if _idempotent(call, operation) else ()
        url = tool_url(base, call.path, call.query)
        for attempt in range(len(delays) + 1):
            try:
                response = await self._http.request(
                    call.method,
                    url,
                    json=call.json,
                    content=urlencode(call.form).encode() if call.form is not None else None,
                    headers={**_FORM_HEADERS, **self.headers}
                    if call.form is not None
                    else self.headers,
                    auth=auth,
                )
            except httpx.TransportError as exc:
                # A read is asked again; never an answer too large, never a refusal.
                again = not isinstance(exc, ResponseTooLarge | DestinationRefused)
                if again and attempt < len(delays):
                    await asyncio.sleep(delays[attempt])
                    continue
                # ``from None``: the cause holds the request, and with it the credentials.
                raise transport_failure(exc, self.vendor, operation.name) from None
            if response.status_code in _RETRY_STATUSES and attempt < len(delays):
                await asyncio.sleep(delays[attempt])
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _refused(
        self, response: httpx.Response, operation: Operation, auth: ConnectorAuth, note: str = ""
    ) -> ConnectorRequestError | ConnectorRateLimitedError | ConnectorAuthError:
        status = response.status_code
        failure = self.failure(response)
        hidden = auth.hidden()
        messages = [scrub(m, hidden) for m in failure.messages if m][:_MAX_ERROR_MESSAGES]
        extra: dict[str, Any] = {"errors": messages, **failure.extra}
        detail = f"{self.vendor} answered HTTP {status} to {operation.name}"
        detail = (f"{detail}: {messages[0]}" if messages else detail) + note
        if status == 429:
            seconds = self.retry_after(response)
            extra["retry_after_seconds"] = seconds
            return ConnectorRateLimitedError(
                detail,
                upstream_status=429,
                extra=extra,
                headers={"retry-after": str(seconds if seconds is not None else 60)},
            )
        if status in {401, 403}:
            return ConnectorAuthError(detail, upstream_status=status, extra=extra)
        return ConnectorRequestError(detail, upstream_status=status, extra=extra)


def _idempotent(call: ApiCall, operation: Operation) -> bool:
    return call.method == "GET" and operation.kind is OperationKind.READ


def retry_after_header(raw: str | None) -> int | None:
    """RFC 9110 ``Retry-After``: delay seconds, or an HTTP date."""
    if raw is None:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return int(raw)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0, int(when.timestamp() - time.time()))


def _common_messages(body: Any) -> list[str]:
    """Messages from the envelopes most vendors use."""
    if not isinstance(body, dict):
        return []
    found: list[str] = []
    for key in ("errorMessages", "errors", "messages"):
        value = body.get(key)
        if isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    found.append(item)
                elif isinstance(item, dict) and isinstance(item.get("message"), str):
                    found.append(item["message"])
        elif isinstance(value, dict):
            found.extend(f"{k}: {v}" for k, v in value.items() if isinstance(v, str))
    for key in ("errorSummary", "message", "error_description"):
        if isinstance(body.get(key), str):
            found.append(body[key])
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        found.append(error["message"])
    return found
