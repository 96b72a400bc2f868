"""CrowdStrike Falcon: host search, lookup and network containment.

Auth is OAuth2 client credentials: the stored ``FalconSecret`` is exchanged
at ``POST /oauth2/token`` for a bearer token that lives 30 minutes.

Guarantees:

- The client secret is only ever sent to ``/oauth2/token``; it is never
  cached, logged, or placed in an exception (message, ``extra`` or cause).
- The access token is cached in memory per (credential key, base URL) until
  60 s before it expires, so a rotated credential (new ``credential_key``)
  never reuses the old version's token. It never leaves this module either.
- Concurrent calls for one credential share a single token exchange (one
  ``asyncio.Lock`` per key).
- A 401 from an API call drops the cached token and retries once with a
  fresh one; nothing else is retried here.

Instances are meant to be long-lived (one per process, sharing the injected
``httpx.AsyncClient``); a per-call instance would exchange a token per call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Final, TypeVar

import httpx
import msgspec

from arx.connectors.base import BaseConnector
from arx.connectors.http import DestinationRefused, tool_url, transport_failure
from arx.connectors.registry import register
from arx.connectors.types import CallContext, Operation, OperationKind
from arx.errors import (
    ConnectorAuthError,
    ConnectorRateLimitedError,
    ConnectorRequestError,
    ConnectorUnreachableError,
    UnknownOperationError,
)
from arx.vault.secret import REDACTED, Secret, secret_dec_hook

__all__ = [
    "CrowdStrikeConnector",
    "FalconSecret",
    "HostActionParams",
    "HostGetParams",
    "HostSearchParams",
]

TOKEN_PATH: Final = "/oauth2/token"  # noqa: S105 -- a URL path, not a credential
DEVICE_ACTIONS_PATH: Final = "/devices/entities/devices-actions/v2"
# Refresh this long before the announced expiry, so a token never dies in flight.
TOKEN_REFRESH_MARGIN: Final = 60.0
_MAX_ERROR_MESSAGES: Final = 10
_MAX_MESSAGE_CHARS: Final = 500

_S = TypeVar("_S", bound=msgspec.Struct)


class FalconSecret(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The decrypted credential: a Falcon API client (optionally for an MSSP child CID)."""

    client_id: str
    client_secret: Secret
    member_cid: str | None = None


# --- parameters --------------------------------------------------------------

# Falcon agent ids (AIDs) are 32 hex digits.
# "(?!\n)": msgspec uses re.search, whose "$" also matches before a final newline.
DeviceId = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9a-fA-F]{32}(?!\n)$", description="Falcon AID")
]
DeviceIds = Annotated[list[DeviceId], msgspec.Meta(min_length=1, max_length=100)]


class HostSearchParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Find host ids (AIDs) matching an FQL filter, one page at a time."""

    filter: Annotated[
        str | None,
        msgspec.Meta(description="FQL, e.g. hostname:'WS01'+status:'normal'"),
    ] = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=5000)] = 100
    offset: Annotated[int, msgspec.Meta(ge=0)] = 0
    sort: Annotated[str | None, msgspec.Meta(description="e.g. hostname.asc")] = None


class HostGetParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Host details for up to 100 AIDs."""

    ids: DeviceIds


class HostActionParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The AIDs of up to 100 hosts to act on."""

    ids: DeviceIds


# --- request building ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ApiCall:
    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    json: Any = None


def _search(params: msgspec.Struct) -> _ApiCall:
    p = _expect(params, HostSearchParams)
    query: list[tuple[str, str]] = [("limit", str(p.limit)), ("offset", str(p.offset))]
    if p.filter is not None:
        query.append(("filter", p.filter))
    if p.sort is not None:
        query.append(("sort", p.sort))
    return _ApiCall("GET", "/devices/queries/devices/v1", tuple(query))


def _get(params: msgspec.Struct) -> _ApiCall:
    p = _expect(params, HostGetParams)
    return _ApiCall("GET", "/devices/entities/devices/v2", tuple(("ids", i) for i in p.ids))


def _action(action_name: str) -> Callable[[msgspec.Struct], _ApiCall]:
    def build(params: msgspec.Struct) -> _ApiCall:
        p = _expect(params, HostActionParams)
        return _ApiCall(
            "POST", DEVICE_ACTIONS_PATH, (("action_name", action_name),), {"ids": list(p.ids)}
        )

    return build


def _expect(params: msgspec.Struct, kind: type[_S]) -> _S:
    if not isinstance(params, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(params).__name__}")
    return params


_BUILDERS: Final[Mapping[str, Callable[[msgspec.Struct], _ApiCall]]] = {
    "hosts:search": _search,
    "hosts:get": _get,
    "hosts:contain": _action("contain"),
    "hosts:lift_containment": _action("lift_containment"),
}

_OPERATIONS: Final = (
    Operation(
        name="hosts:search",
        params=HostSearchParams,
        kind=OperationKind.READ,
        base_risk=10,
        reversible=False,
        target_type="host",
        summary="Search hosts with an FQL filter; returns device ids (AIDs) and pagination.",
    ),
    Operation(
        name="hosts:get",
        params=HostGetParams,
        kind=OperationKind.READ,
        base_risk=10,
        reversible=False,
        target_type="host",
        summary="Get host details (hostname, status, platform, IPs, last seen) by AID.",
        target_param="ids",
    ),
    Operation(
        name="hosts:contain",
        params=HostActionParams,
        kind=OperationKind.CONTAINMENT,
        base_risk=60,
        reversible=True,
        target_type="host",
        summary="Network-contain hosts: only the Falcon cloud can reach them until lifted.",
        inverse="hosts:lift_containment",
        target_param="ids",
    ),
    Operation(
        name="hosts:lift_containment",
        params=HostActionParams,
        kind=OperationKind.CONTAINMENT,
        base_risk=40,
        reversible=True,
        target_type="host",
        summary="Lift network containment from hosts.",
        inverse="hosts:contain",
        target_param="ids",
    ),
)


# --- Falcon replies ------------------------------------------------------------


class _TokenReply(msgspec.Struct):
    access_token: Secret
    expires_in: int


class _ErrorItem(msgspec.Struct):
    message: str = ""
    code: int | None = None


class _Meta(msgspec.Struct):
    trace_id: str | None = None


class _ErrorEnvelope(msgspec.Struct):
    errors: list[_ErrorItem] | None = None
    meta: _Meta | None = None


@dataclass(slots=True)
class _CachedToken:
    value: Secret
    refresh_at: float  # monotonic seconds


def _scrub(text: str, hidden: tuple[Secret, ...]) -> str:
    for value in hidden:
        if value:
            text = text.replace(value.reveal(), REDACTED)
    return text[:_MAX_MESSAGE_CHARS]


def _failure_extra(response: httpx.Response, hidden: tuple[Secret, ...]) -> dict[str, Any]:
    """``errors`` (Falcon's messages), ``trace_id`` and, on 429, the retry time."""
    extra: dict[str, Any] = {}
    try:
        envelope = msgspec.json.decode(response.content, type=_ErrorEnvelope)
    except msgspec.DecodeError:
        envelope = _ErrorEnvelope()
    messages = [_scrub(e.message, hidden) for e in envelope.errors or [] if e.message]
    extra["errors"] = messages[:_MAX_ERROR_MESSAGES]
    if envelope.meta is not None and envelope.meta.trace_id:
        extra["trace_id"] = envelope.meta.trace_id
    if response.status_code == 429:
        retry_at = _retry_after(response)
        extra["retry_after"] = retry_at
        if retry_at is not None:
            extra["retry_after_seconds"] = max(0, retry_at - int(time.time()))
    return extra


def _retry_after(response: httpx.Response) -> int | None:
    """Falcon's ``X-RateLimit-RetryAfter`` is an absolute epoch-seconds timestamp."""
    raw = response.headers.get("X-RateLimit-RetryAfter")
    if raw is None:
        return None
    try:
        return int(float(raw))
    except ValueError:
        return None


def _describe(status: int, op: str, extra: Mapping[str, Any]) -> str:
    detail = f"CrowdStrike Falcon answered HTTP {status} to {op}"
    errors = extra.get("errors") or []
    return f"{detail}: {errors[0]}" if errors else detail


def _rejected(
    status: int, detail: str, extra: dict[str, Any]
) -> ConnectorRequestError | ConnectorRateLimitedError:
    """A non-2xx answer; a 429 tells the agent when to come back."""
    if status == 429:
        seconds = extra.get("retry_after_seconds")
        return ConnectorRateLimitedError(
            detail,
            upstream_status=429,
            extra=extra,
            headers={"retry-after": str(seconds if seconds is not None else 60)},
        )
    return ConnectorRequestError(detail, upstream_status=status, extra=extra)


# --- the connector -------------------------------------------------------------


@register
class CrowdStrikeConnector(BaseConnector):
    id: ClassVar[str] = "crowdstrike"
    auth_scheme: ClassVar[str] = "oauth2_client_credentials"
    secret_type: ClassVar[type[msgspec.Struct]] = FalconSecret
    default_base_url: ClassVar[str] = "https://api.crowdstrike.com"
    # FalconPy's BaseURL: US-1, US-2, US-3, EU-1, US-GOV-1 and US-GOV-2.
    allowed_hosts: ClassVar[tuple[str, ...]] = (
        "api.crowdstrike.com",
        "api.us-2.crowdstrike.com",
        "api.us-3.crowdstrike.com",
        "api.eu-1.crowdstrike.com",
        "api.laggar.gcw.crowdstrike.com",
        "api.us-gov-2.crowdstrike.mil",
    )
    operations: ClassVar[Mapping[str, Operation]] = {op.name: op for op in _OPERATIONS}

    def __init__(self, http: httpx.AsyncClient) -> None:
        super().__init__(http)
        self._tokens: dict[tuple[str, str], _CachedToken] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        # Monotonic, so a wall-clock jump cannot stretch a token's life; tests may replace it.
        self._clock: Callable[[], float] = time.monotonic

    async def _execute_impl(
        self,
        operation: Operation,
        params: msgspec.Struct,
        secret: Any,
        context: CallContext,
    ) -> dict[str, Any]:
        if not isinstance(secret, FalconSecret):
            raise TypeError(f"crowdstrike needs a FalconSecret, got {type(secret).__name__}")
        build = _BUILDERS.get(operation.name)
        if build is None:
            raise UnknownOperationError(
                f"connector 'crowdstrike' has no operation {operation.name!r}",
                extra={"connector": self.id, "operation": operation.name},
            )
        call = build(params)
        base = context.base_url.rstrip("/")
        key = (context.credential_key, base)

        token = await self._token(key, base, secret)
        response = await self._send(call, base, token, operation.name)
        if response.status_code == 401:
            # Revoked or expired early: one fresh exchange, one retry.
            token = await self._token(key, base, secret, stale=token)
            response = await self._send(call, base, token, operation.name)
            if response.status_code == 401:
                extra = _failure_extra(response, (secret.client_secret, token))
                raise ConnectorAuthError(
                    _describe(401, operation.name, extra) + " (with a freshly issued token)",
                    upstream_status=401,
                    extra=extra,
                )
        self._check_size(response, context)
        if not response.is_success:
            extra = _failure_extra(response, (secret.client_secret, token))
            raise _rejected(
                response.status_code, _describe(response.status_code, operation.name, extra), extra
            )
        try:
            body = msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            body = None
        if not isinstance(body, dict):
            raise ConnectorRequestError(
                f"CrowdStrike Falcon answered {operation.name} with a body that is not a "
                "JSON object",
                upstream_status=response.status_code,
            )
        return body

    async def _send(self, call: _ApiCall, base: str, token: Secret, op: str) -> httpx.Response:
        try:
            return await self._http.request(
                call.method,
                tool_url(base, call.path, call.query),
                json=call.json,
                headers={
                    "Authorization": f"Bearer {token.reveal()}",
                    "Accept": "application/json",
                },
            )
        except httpx.TransportError as exc:
            # ``from None``: the cause holds the request, and with it the bearer token.
            raise transport_failure(exc, "CrowdStrike Falcon", op) from None

    async def _token(
        self,
        key: tuple[str, str],
        base: str,
        secret: FalconSecret,
        *,
        stale: Secret | None = None,
    ) -> Secret:
        """A usable bearer token for ``key``; ``stale`` is one the API just rejected."""
        cached = self._fresh(key, stale)
        if cached is not None:
            return cached
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            # Another task may have exchanged while this one waited for the lock.
            cached = self._fresh(key, stale)
            if cached is not None:
                return cached
            self._tokens.pop(key, None)
            value, expires_in = await self._exchange(base, secret)
            now = self._clock()
            self._prune(now)
            if expires_in > TOKEN_REFRESH_MARGIN:
                self._tokens[key] = _CachedToken(value, now + expires_in - TOKEN_REFRESH_MARGIN)
            return value

    def _fresh(self, key: tuple[str, str], stale: Secret | None) -> Secret | None:
        cached = self._tokens.get(key)
        if cached is None or cached.value == stale or self._clock() >= cached.refresh_at:
            return None
        return cached.value

    def _prune(self, now: float) -> None:
        """Forget tokens that are past refresh (e.g. of rotated-away credentials).

        Locks are kept: one may be between a release and its next waiter's
        wake-up, and dropping it then would allow a second concurrent exchange.
        """
        for key in [k for k, t in self._tokens.items() if now >= t.refresh_at]:
            del self._tokens[key]

    async def _exchange(self, base: str, secret: FalconSecret) -> tuple[Secret, float]:
        form = {"client_id": secret.client_id, "client_secret": secret.client_secret.reveal()}
        if secret.member_cid:
            form["member_cid"] = secret.member_cid
        try:
            response = await self._http.post(
                base + TOKEN_PATH, data=form, headers={"Accept": "application/json"}
            )
        except DestinationRefused as exc:
            raise transport_failure(exc, "CrowdStrike Falcon", "the token exchange") from None
        except httpx.TransportError as exc:
            # No operation was sent yet, whatever happened to the token request.
            # ``from None``: the cause holds the request, whose body holds the secret.
            raise ConnectorUnreachableError(
                f"could not get a token from CrowdStrike Falcon ({type(exc).__name__}); "
                "the operation was not sent",
                extra={"reason": type(exc).__name__},
            ) from None
        hidden = (secret.client_secret,)
        if response.status_code in {401, 403}:
            extra = _failure_extra(response, hidden)
            raise ConnectorAuthError(
                "CrowdStrike Falcon rejected the stored API client credentials "
                f"(HTTP {response.status_code} from {TOKEN_PATH})",
                upstream_status=response.status_code,
                extra=extra,
            )
        if not response.is_success:
            extra = _failure_extra(response, hidden)
            raise _rejected(
                response.status_code,
                _describe(response.status_code, "the token exchange", extra),
                extra,
            )
        try:
            reply = msgspec.json.decode(
                response.content, type=_TokenReply, dec_hook=secret_dec_hook
            )
        except msgspec.DecodeError:
            raise ConnectorRequestError(
                "CrowdStrike Falcon answered the token exchange without a usable token",
                upstream_status=response.status_code,
            ) from None
        return reply.access_token, float(reply.expires_in)
