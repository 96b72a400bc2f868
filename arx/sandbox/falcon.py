"""A fake CrowdStrike Falcon API: the connector's test double and the demo sandbox.

It follows the documented endpoints and payloads closely enough that the real
connector cannot tell the difference for the operations ARX supports:

- ``POST /oauth2/token`` (form-encoded ``client_id``/``client_secret``/``member_cid``)
  answers 201 with ``X-CS-Region``; bad client credentials get 403, as the
  real API answers (``Failed to issue access token - ...``).
- ``POST /oauth2/revoke`` (Basic client auth, form ``token``).
- ``GET /devices/queries/devices/v1``: a small FQL subset (``field:'value'``
  terms joined by ``+``, a trailing ``*`` wildcard) with limit/offset pagination.
- ``GET /devices/entities/devices/v2?ids=..&ids=..`` (and ``POST`` with
  ``{"ids": [...]}``, as FalconPy's ``get_device_details`` sends it; found by
  tests/integration/test_vendor_clients.py): unknown ids are reported
  in ``errors`` with code 404 (HTTP 200 if any id was found, 404 if none).
- ``POST /devices/entities/devices-actions/v2?action_name=contain|lift_containment``
  answers 202 and drives the containment state machine
  ``normal -> containment_pending -> contained -> lift_containment_pending -> normal``.
  A pending state completes once the host has been read through the entities
  endpoint while pending (the read shows the pending state; the next one the
  settled state). Invalid transitions answer 409.

Every API response carries ``X-RateLimit-Limit``/``X-RateLimit-Remaining``; an
optional per-minute limit answers 429 with ``X-RateLimit-RetryAfter`` as an
absolute epoch-seconds timestamp, as Falcon does.

Guarantee for tests: every request that reaches a route is appended to
``FalconState.requests`` with method, path, query and whether its credentials
were valid -- never a secret, a token or a form value.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException

__all__ = [
    "DEMO_CID",
    "Device",
    "FalconState",
    "IssuedToken",
    "LoggedRequest",
    "app_from_env",
    "create_app",
    "demo_devices",
]

TOKEN_LIFETIME: Final = 1800  # seconds a token is accepted
TOKEN_EXPIRES_IN: Final = 1799  # what the token reply announces, as Falcon does
REGION: Final = "us-1"
DEFAULT_API_RATE_LIMIT: Final = 6000  # Falcon's documented per-CID limit per minute
TOKEN_RATE_LIMIT: Final = 300  # Falcon's documented /oauth2/token limit per minute
RATE_WINDOW: Final = 60
MAX_QUERY_LIMIT: Final = 5000
MAX_IDS: Final = 100
DEMO_CID: Final = "7c5e4a1f0b9d4e2c8a3f6b1d2e9c0a47"

DEVICE_ACTIONS_PATH: Final = "/devices/entities/devices-actions/v2"
_FILTER_FIELDS: Final = frozenset(
    {
        "device_id",
        "hostname",
        "status",
        "platform_name",
        "os_version",
        "local_ip",
        "external_ip",
        "agent_version",
        "tags",
    }
)
_SORT_FIELDS: Final = frozenset({"hostname", "last_seen", "first_seen", "status", "platform_name"})


@dataclass(slots=True)
class Device:
    """One sensor-managed host, with the fields Falcon's device entity carries."""

    device_id: str
    hostname: str
    platform_name: str
    os_version: str
    product_type_desc: str
    local_ip: str
    external_ip: str
    mac_address: str
    agent_version: str
    first_seen: str
    last_seen: str
    status: str = "normal"
    tags: list[str] = field(default_factory=list)
    cid: str = DEMO_CID
    # Set when a read has shown the pending state; the next read settles it.
    pending_observed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "cid": self.cid,
            "hostname": self.hostname,
            "status": self.status,
            "platform_name": self.platform_name,
            "os_version": self.os_version,
            "product_type_desc": self.product_type_desc,
            "local_ip": self.local_ip,
            "external_ip": self.external_ip,
            "mac_address": self.mac_address,
            "agent_version": self.agent_version,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "tags": list(self.tags),
        }


def demo_devices() -> list[Device]:
    """A small, stable fleet for tests and the demo (same ids on every call)."""
    return [
        Device(
            device_id="4c1d7e2a9b3f4e5d8a6c0b1e2f3a4d5c",
            hostname="WS-FIN-0142",
            platform_name="Windows",
            os_version="Windows 11",
            product_type_desc="Workstation",
            local_ip="10.20.4.142",
            external_ip="203.0.113.24",
            mac_address="3c-52-82-1a-7f-42",
            agent_version="7.18.18110.0",
            first_seen="2024-03-11T09:14:02Z",
            last_seen="2025-11-25T16:58:41Z",
            tags=["FalconGroupingTags/Finance"],
        ),
        Device(
            device_id="9e8f7a6b5c4d4e3f9a1b2c3d4e5f6a7b",
            hostname="SRV-DC-01",
            platform_name="Windows",
            os_version="Windows Server 2022",
            product_type_desc="Domain Controller",
            local_ip="10.20.0.10",
            external_ip="203.0.113.10",
            mac_address="00-15-5d-0a-00-10",
            agent_version="7.18.18110.0",
            first_seen="2023-07-02T12:00:37Z",
            last_seen="2025-11-25T17:01:12Z",
            tags=["FalconGroupingTags/Tier0", "FalconGroupingTags/Servers"],
        ),
        Device(
            device_id="1a2b3c4d5e6f40718293a4b5c6d7e8f9",
            hostname="web-prod-03",
            platform_name="Linux",
            os_version="Ubuntu 22.04",
            product_type_desc="Server",
            local_ip="10.30.1.23",
            external_ip="198.51.100.33",
            mac_address="02-42-ac-11-00-03",
            agent_version="7.17.17607.0",
            first_seen="2024-09-30T21:45:10Z",
            last_seen="2025-11-25T17:00:03Z",
            tags=["FalconGroupingTags/Production", "FalconGroupingTags/Servers"],
        ),
        Device(
            device_id="d0c9b8a7f6e54d3c2b1a0f9e8d7c6b5a",
            hostname="MBP-ENG-0420",
            platform_name="Mac",
            os_version="Sonoma (14)",
            product_type_desc="Workstation",
            local_ip="10.20.9.87",
            external_ip="203.0.113.57",
            mac_address="a4-83-e7-2c-19-0d",
            agent_version="7.18.18004.0",
            first_seen="2025-01-17T08:02:55Z",
            last_seen="2025-11-25T16:47:29Z",
            tags=["FalconGroupingTags/Engineering"],
        ),
        Device(
            device_id="5f4e3d2c1b0a49f8e7d6c5b4a3928170",
            hostname="LAPTOP-HR-0007",
            platform_name="Windows",
            os_version="Windows 10",
            product_type_desc="Workstation",
            local_ip="10.20.6.7",
            external_ip="203.0.113.81",
            mac_address="f8-75-a4-3b-90-07",
            agent_version="7.16.17105.0",
            first_seen="2022-11-08T14:31:19Z",
            last_seen="2025-11-24T22:13:50Z",
            status="contained",
            tags=["FalconGroupingTags/HR"],
        ),
    ]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    client_id: str
    member_cid: str | None
    expires_at: float


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """What the fake remembers of one request. Never a secret or a token."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    auth_valid: bool
    status: int
    # Names (not values) of the form fields sent, for /oauth2/* requests.
    form_fields: tuple[str, ...] = ()


@dataclass(slots=True)
class FalconState:
    """Everything the fake knows; tests build one, hand it to ``create_app`` and inspect it."""

    # client_id -> client_secret; kept out of repr so a printed state shows no secret.
    clients: dict[str, str] = field(repr=False, default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)
    tokens: dict[str, IssuedToken] = field(repr=False, default_factory=dict)
    requests: list[LoggedRequest] = field(default_factory=list)
    # Requests per minute on API routes; None means unlimited (headers still sent).
    rate_limit: int | None = None
    clock: Callable[[], float] = time.time
    _window_start: float = field(init=False, repr=False, default=0.0)
    _window_count: int = field(init=False, repr=False, default=0)

    @classmethod
    def with_demo_devices(cls, clients: Mapping[str, str] | None = None) -> FalconState:
        return cls(
            clients=dict(clients or {}),
            devices={d.device_id: d for d in demo_devices()},
        )

    def add_devices(self, devices: Iterable[Device]) -> None:
        for device in devices:
            self.devices[device.device_id] = replace(device)

    # Hooks for tests -------------------------------------------------------

    def revoke_all_tokens(self) -> None:
        self.tokens.clear()

    def expire_all_tokens(self) -> None:
        now = self.clock()
        self.tokens = {t: replace(i, expires_at=now) for t, i in self.tokens.items()}

    def calls(self, path: str | None = None, *, method: str | None = None) -> list[LoggedRequest]:
        return [
            r
            for r in self.requests
            if (path is None or r.path == path) and (method is None or r.method == method)
        ]

    # Internals used by the routes -----------------------------------------

    def issue_token(self, client_id: str, member_cid: str | None) -> str:
        token = secrets.token_urlsafe(48)
        self.tokens[token] = IssuedToken(
            client_id=client_id, member_cid=member_cid, expires_at=self.clock() + TOKEN_LIFETIME
        )
        return token

    def token_valid(self, token: str) -> bool:
        issued = self.tokens.get(token)
        return issued is not None and self.clock() < issued.expires_at

    def client_valid(self, client_id: str, client_secret: str) -> bool:
        expected = self.clients.get(client_id)
        return expected is not None and secrets.compare_digest(
            expected.encode(), client_secret.encode()
        )

    def take_rate_slot(self) -> tuple[bool, int, int]:
        """Count one API request: (allowed, remaining, window reset as epoch seconds)."""
        now = self.clock()
        if now - self._window_start >= RATE_WINDOW:
            self._window_start, self._window_count = now, 0
        limit = self.api_rate_limit
        reset = int(self._window_start + RATE_WINDOW) + 1
        if self._window_count >= limit:
            return False, 0, reset
        self._window_count += 1
        return True, limit - self._window_count, reset

    @property
    def api_rate_limit(self) -> int:
        return self.rate_limit if self.rate_limit is not None else DEFAULT_API_RATE_LIMIT


# --- responses ---------------------------------------------------------------


class _FalconReply(Exception):
    """Raised inside a handler to answer with a Falcon error envelope."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def _meta(started: float, powered_by: str, **extra: Any) -> dict[str, Any]:
    return {
        "query_time": round(time.perf_counter() - started, 9),
        **extra,
        "powered_by": powered_by,
        "trace_id": str(uuid.uuid4()),
    }


def _envelope(
    started: float,
    powered_by: str,
    *,
    resources: list[Any] | None = None,
    errors: list[dict[str, Any]] | None = None,
    **meta: Any,
) -> dict[str, Any]:
    return {
        "meta": _meta(started, powered_by, **meta),
        "errors": errors or [],
        "resources": resources if resources is not None else [],
    }


def _error(code: int, message: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, **extra}


class _Exchange:
    """One request's bookkeeping: logging and the common response headers."""

    def __init__(self, state: FalconState, request: Request[Any, Any, Any], powered_by: str):
        self.state = state
        self.request = request
        self.powered_by = powered_by
        self.started = time.perf_counter()
        self.auth_valid = False
        self.form_fields: tuple[str, ...] = ()
        self.rate_headers: dict[str, str] = {}

    def reply(
        self,
        status: int,
        *,
        resources: list[Any] | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        **meta: Any,
    ) -> Response[Any]:
        body = _envelope(self.started, self.powered_by, resources=resources, errors=errors, **meta)
        return self.respond(status, body, headers=headers)

    def respond(
        self, status: int, body: Any, *, headers: Mapping[str, str] | None = None
    ) -> Response[Any]:
        self.state.requests.append(
            LoggedRequest(
                method=self.request.method,
                path=self.request.url.path,
                query=tuple(self.request.query_params.multi_items()),
                auth_valid=self.auth_valid,
                status=status,
                form_fields=self.form_fields,
            )
        )
        return Response(
            content=body,
            status_code=status,
            headers={**self.rate_headers, **(headers or {})},
            media_type="application/json",
        )

    def fail(self, exc: _FalconReply) -> Response[Any]:
        return self.reply(exc.status, errors=[_error(exc.status, exc.message)], headers=exc.headers)

    def authorize(self) -> None:
        """Check the bearer token, then take a rate-limit slot."""
        header = self.request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not self.state.token_valid(token.strip()):
            # Falcon's limit for unauthenticated callers is per source IP.
            self.rate_headers = {"X-RateLimit-Limit": "15", "X-RateLimit-Remaining": "14"}
            self.powered_by = "crowdstrike-api-gateway"
            raise _FalconReply(401, "access denied, invalid bearer token")
        self.auth_valid = True
        allowed, remaining, reset = self.state.take_rate_slot()
        self.rate_headers = {
            "X-RateLimit-Limit": str(self.state.api_rate_limit),
            "X-RateLimit-Remaining": str(remaining),
        }
        if not allowed:
            raise _FalconReply(
                429, "API rate limit exceeded.", headers={"X-RateLimit-RetryAfter": str(reset)}
            )


def _provide(state: FalconState) -> Provide:
    async def falcon_state() -> FalconState:
        return state

    return Provide(falcon_state, use_cache=True)


# --- OAuth2 ------------------------------------------------------------------


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        raise _FalconReply(400, "Content-Type must be application/x-www-form-urlencoded")
    form = await request.form()
    return {key: str(value) for key, value in form.items()}


@post("/oauth2/token", status_code=201)
async def oauth2_token(
    request: Request[Any, Any, Any], falcon: NamedDependency[FalconState]
) -> Response[Any]:
    ex = _Exchange(falcon, request, "csam")
    ex.rate_headers = {
        "X-RateLimit-Limit": str(TOKEN_RATE_LIMIT),
        "X-RateLimit-Remaining": str(TOKEN_RATE_LIMIT - 1),
    }
    try:
        form = await _form(request)
        ex.form_fields = tuple(sorted(form))
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        if not client_id or not client_secret:
            raise _FalconReply(400, "Failed to issue access token - missing client_id or secret")
        if not falcon.client_valid(client_id, client_secret):
            raise _FalconReply(
                403,
                "Failed to issue access token - Client authentication failed (e.g., unknown "
                "client, no client authentication included, or unsupported authentication "
                "method)",
            )
    except _FalconReply as exc:
        return ex.fail(exc)
    ex.auth_valid = True
    token = falcon.issue_token(client_id, form.get("member_cid") or None)
    return ex.respond(
        201,
        {"access_token": token, "token_type": "bearer", "expires_in": TOKEN_EXPIRES_IN},
        headers={"X-CS-Region": REGION},
    )


@post("/oauth2/revoke", status_code=200)
async def oauth2_revoke(
    request: Request[Any, Any, Any], falcon: NamedDependency[FalconState]
) -> Response[Any]:
    ex = _Exchange(falcon, request, "csam")
    try:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        client_id, _, client_secret = decoded.partition(":")
        if scheme.lower() != "basic" or not falcon.client_valid(client_id, client_secret):
            raise _FalconReply(401, "access denied, invalid client credentials")
        ex.auth_valid = True
        form = await _form(request)
        ex.form_fields = tuple(sorted(form))
        falcon.tokens.pop(form.get("token", ""), None)
    except _FalconReply as exc:
        return ex.fail(exc)
    return ex.reply(200)


# --- hosts -------------------------------------------------------------------


def _int_param(request: Request[Any, Any, Any], name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise _FalconReply(400, f"invalid value for {name}: {raw!r}") from None


def _parse_filter(fql: str) -> list[tuple[str, str]]:
    """``field:'value'+field:'value'`` -> [(field, value)]. Anything else is a 400."""
    terms: list[tuple[str, str]] = []
    for term in fql.split("+"):
        name, sep, quoted = term.strip().partition(":")
        name = name.strip()
        quoted = quoted.strip()
        if not sep or len(quoted) < 2 or quoted[0] != "'" or quoted[-1] != "'":
            raise _FalconReply(400, f"Invalid filter: cannot parse {term!r}")
        if name not in _FILTER_FIELDS:
            raise _FalconReply(400, f"Invalid filter: unknown field {name!r}")
        terms.append((name, quoted[1:-1]))
    return terms


def _matches(device: Device, terms: list[tuple[str, str]]) -> bool:
    doc = device.to_json()
    for name, pattern in terms:
        value = doc[name]
        candidates = value if isinstance(value, list) else [value]
        if not any(fnmatch.fnmatchcase(str(c).lower(), pattern.lower()) for c in candidates):
            return False
    return True


def _sorted(devices: list[Device], sort: str | None) -> list[Device]:
    if not sort:
        return devices
    name, _, direction = sort.replace("|", ".").partition(".")
    direction = direction or "asc"
    if name not in _SORT_FIELDS or direction not in {"asc", "desc"}:
        raise _FalconReply(400, f"Invalid sort: {sort!r}")
    return sorted(
        devices, key=lambda d: str(d.to_json()[name]).lower(), reverse=direction == "desc"
    )


@get("/devices/queries/devices/v1")
async def query_devices(
    request: Request[Any, Any, Any], falcon: NamedDependency[FalconState]
) -> Response[Any]:
    ex = _Exchange(falcon, request, "device-api")
    try:
        ex.authorize()
        limit = _int_param(request, "limit", 100)
        offset = _int_param(request, "offset", 0)
        if not 1 <= limit <= MAX_QUERY_LIMIT:
            raise _FalconReply(400, f"limit must be between 1 and {MAX_QUERY_LIMIT}")
        if offset < 0:
            raise _FalconReply(400, "offset must be a non-negative integer")
        fql = request.query_params.get("filter")
        terms = _parse_filter(fql) if fql else []
        found = [d for d in falcon.devices.values() if _matches(d, terms)]
        found = _sorted(found, request.query_params.get("sort"))
    except _FalconReply as exc:
        return ex.fail(exc)
    page = [d.device_id for d in found[offset : offset + limit]]
    return ex.reply(
        200,
        resources=page,
        pagination={"offset": offset, "limit": limit, "total": len(found)},
    )


def _ids_from_query(request: Request[Any, Any, Any]) -> list[str]:
    ids = [i for i in request.query_params.getall("ids", []) if i]
    if not ids:
        raise _FalconReply(400, "ids is required")
    if len(ids) > MAX_IDS:
        raise _FalconReply(400, f"at most {MAX_IDS} ids may be requested at a time")
    return ids


def _observe(device: Device) -> None:
    """A read shows the pending state once; the sensor then completes the action."""
    if device.status not in {"containment_pending", "lift_containment_pending"}:
        return
    if not device.pending_observed:
        device.pending_observed = True
        return
    device.status = "contained" if device.status == "containment_pending" else "normal"
    device.pending_observed = False


class _IdsBody(msgspec.Struct):
    ids: list[str]


@get("/devices/entities/devices/v2")
async def get_devices(
    request: Request[Any, Any, Any], falcon: NamedDependency[FalconState]
) -> Response[Any]:
    ex = _Exchange(falcon, request, "device-api")
    try:
        ex.authorize()
        ids = _ids_from_query(request)
    except _FalconReply as exc:
        return ex.fail(exc)
    return _devices(falcon, ex, ids)


@post("/devices/entities/devices/v2", status_code=200)
async def post_devices(
    request: Request[Any, Any, Any], falcon: NamedDependency[FalconState]
) -> Response[Any]:
    """The same lookup with the ids in a JSON body, as FalconPy's
    ``get_device_details`` sends it (PostDeviceDetailsV2)."""
    ex = _Exchange(falcon, request, "device-api")
    try:
        ex.authorize()
        try:
            ids = msgspec.json.decode(await request.body(), type=_IdsBody).ids
        except msgspec.DecodeError:
            raise _FalconReply(400, "Argument ids must be specified.") from None
        if not ids:
            raise _FalconReply(400, "Argument ids must be specified.")
    except _FalconReply as exc:
        return ex.fail(exc)
    return _devices(falcon, ex, ids)


def _devices(falcon: FalconState, ex: _Exchange, ids: list[str]) -> Response[Any]:
    resources: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for aid in dict.fromkeys(ids):
        device = falcon.devices.get(aid)
        if device is None:
            errors.append(_error(404, f"Device not found: {aid}", id=aid))
            continue
        _observe(device)
        resources.append(device.to_json())
    return ex.reply(200 if resources else 404, resources=resources, errors=errors)


_TRANSITIONS: Final = {
    # action -> (states it may start from, state it leads to)
    "contain": (frozenset({"normal"}), "containment_pending"),
    "lift_containment": (
        frozenset({"contained", "containment_pending"}),
        "lift_containment_pending",
    ),
}


class _ActionBody(msgspec.Struct):
    ids: list[str]
    action_parameters: list[dict[str, Any]] = []


@post(DEVICE_ACTIONS_PATH, status_code=202)
async def device_actions(
    request: Request[Any, Any, Any], falcon: NamedDependency[FalconState]
) -> Response[Any]:
    ex = _Exchange(falcon, request, "device-api")
    try:
        ex.authorize()
        action = request.query_params.get("action_name", "")
        if action not in _TRANSITIONS:
            raise _FalconReply(400, f"Invalid action_name: {action!r}")
        try:
            body = msgspec.json.decode(await request.body(), type=_ActionBody)
        except msgspec.DecodeError as exc:
            raise _FalconReply(400, f"Invalid request body: {exc}") from None
        if not body.ids or len(body.ids) > MAX_IDS:
            raise _FalconReply(400, f"ids must hold between 1 and {MAX_IDS} device ids")
    except _FalconReply as exc:
        return ex.fail(exc)
    allowed_from, target = _TRANSITIONS[action]
    resources: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for aid in dict.fromkeys(body.ids):
        device = falcon.devices.get(aid)
        if device is None:
            errors.append(_error(404, f"Device not found: {aid}", id=aid))
        elif device.status not in allowed_from:
            errors.append(
                _error(
                    409,
                    f"Cannot perform {action} on device {aid}: device status is {device.status}",
                    id=aid,
                )
            )
        else:
            device.status, device.pending_observed = target, False
            resources.append({"id": aid, "path": DEVICE_ACTIONS_PATH})
    # Partial success is still 202; otherwise a conflict outranks a missing id.
    codes = {e["code"] for e in errors}
    status = 202 if resources else (409 if 409 in codes else 404)
    return ex.reply(status, resources=resources, errors=errors)


# --- app ---------------------------------------------------------------------


def create_app(state: FalconState | None = None) -> Litestar:
    """The fake API over ``state`` (a demo fleet and no API clients if omitted)."""
    falcon = state if state is not None else FalconState.with_demo_devices()

    def not_routed(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
        ex = _Exchange(falcon, request, "crowdstrike-api-gateway")
        return ex.fail(_FalconReply(exc.status_code, str(exc.detail)))

    return Litestar(
        route_handlers=[
            oauth2_token,
            oauth2_revoke,
            query_devices,
            get_devices,
            post_devices,
            device_actions,
        ],
        dependencies={"falcon": _provide(falcon)},
        exception_handlers={HTTPException: not_routed},
        openapi_config=None,
        # Leave logging alone: the fake runs inside test processes and beside ARX.
        logging_config=None,
    )


def app_from_env() -> Litestar:
    """Factory for ``uvicorn --factory arx.sandbox.falcon:app_from_env``.

    Registers one API client from ``ARX_SANDBOX_FALCON_CLIENT_ID`` and
    ``ARX_SANDBOX_FALCON_CLIENT_SECRET`` over the demo fleet;
    ``ARX_SANDBOX_FALCON_RATE_LIMIT`` sets its requests per minute. The sandbox is
    not the ARX service, so reading the environment here is allowed.
    """
    client_id = os.environ.get("ARX_SANDBOX_FALCON_CLIENT_ID", "")
    client_secret = os.environ.get("ARX_SANDBOX_FALCON_CLIENT_SECRET", "")
    if not client_id or not client_secret:
        raise RuntimeError(
            "set ARX_SANDBOX_FALCON_CLIENT_ID and ARX_SANDBOX_FALCON_CLIENT_SECRET "
            "to the API client the Falcon sandbox should accept"
        )
    state = FalconState.with_demo_devices({client_id: client_secret})
    # Benchmarks drive the sandbox far beyond Falcon's documented 6000/min.
    limit = os.environ.get("ARX_SANDBOX_FALCON_RATE_LIMIT")
    if limit:
        state.rate_limit = int(limit)
    return create_app(state)
