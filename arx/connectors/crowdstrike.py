"""CrowdStrike Falcon: host search, lookup and network containment.

Auth is OAuth2 client credentials: the stored ``FalconSecret`` is exchanged
at ``POST /oauth2/token`` for a bearer token that lives 30 minutes, cached
per credential version (arx.connectors.auth). Falcon's own conventions:
errors as ``{"errors": [{"code", "message"}], "meta": {"trace_id"}}``, and a
429's ``X-RateLimit-RetryAfter`` is an absolute epoch-seconds timestamp.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Final

import httpx
import msgspec

from arx.connectors.auth import ConnectorAuth, TokenCache, client_credentials
from arx.connectors.registry import register
from arx.connectors.rest import Failure, RestConnector
from arx.connectors.types import ApiCall, CallContext, Operation, OperationKind
from arx.vault.secret import Secret

__all__ = [
    "CrowdStrikeConnector",
    "FalconSecret",
    "HostActionParams",
    "HostGetParams",
    "HostSearchParams",
]

TOKEN_PATH: Final = "/oauth2/token"  # noqa: S105 -- a URL path, not a credential
DEVICE_ACTIONS_PATH: Final = "/devices/entities/devices-actions/v2"


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


# --- requests ------------------------------------------------------------------


def _search(p: HostSearchParams) -> ApiCall:
    query: list[tuple[str, str]] = [("limit", str(p.limit)), ("offset", str(p.offset))]
    if p.filter is not None:
        query.append(("filter", p.filter))
    if p.sort is not None:
        query.append(("sort", p.sort))
    return ApiCall("GET", "/devices/queries/devices/v1", tuple(query))


def _get(p: HostGetParams) -> ApiCall:
    return ApiCall("GET", "/devices/entities/devices/v2", tuple(("ids", i) for i in p.ids))


def _action(action_name: str) -> Callable[[HostActionParams], ApiCall]:
    def build(p: HostActionParams) -> ApiCall:
        query = (("action_name", action_name),)
        return ApiCall("POST", DEVICE_ACTIONS_PATH, query, {"ids": list(p.ids)})

    return build


_OPERATIONS: Final = (
    Operation(
        name="hosts:search",
        params=HostSearchParams,
        kind=OperationKind.READ,
        base_risk=10,
        reversible=False,
        target_type="host",
        summary="Search hosts with an FQL filter; returns device ids (AIDs) and pagination.",
        build=_search,
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
        build=_get,
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
        build=_action("contain"),
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
        build=_action("lift_containment"),
    ),
)


# --- Falcon's answers ----------------------------------------------------------


class _ErrorItem(msgspec.Struct):
    message: str = ""
    code: int | None = None


class _Meta(msgspec.Struct):
    trace_id: str | None = None


class _ErrorEnvelope(msgspec.Struct):
    errors: list[_ErrorItem] | None = None
    meta: _Meta | None = None


def _retry_at(response: httpx.Response) -> int | None:
    """Falcon's ``X-RateLimit-RetryAfter``: an absolute epoch-seconds timestamp."""
    raw = response.headers.get("X-RateLimit-RetryAfter")
    try:
        return int(float(raw)) if raw is not None else None
    except ValueError:
        return None


@register
class CrowdStrikeConnector(RestConnector):
    id: ClassVar[str] = "crowdstrike"
    vendor: ClassVar[str] = "CrowdStrike Falcon"
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
    operations: ClassVar[dict[str, Operation]] = {op.name: op for op in _OPERATIONS}

    def __init__(self, http: httpx.AsyncClient) -> None:
        super().__init__(http)
        # One instance per process: the token of a credential version serves every call.
        self.tokens = TokenCache()

    def authenticate(self, secret: Any, context: CallContext) -> ConnectorAuth:
        base = context.base_url.rstrip("/")
        return client_credentials(
            self.tokens,
            (context.credential_key, base),
            token_url=base + TOKEN_PATH,
            client_id=secret.client_id,
            client_secret=secret.client_secret,
            vendor=self.vendor,
            extra={"member_cid": secret.member_cid} if secret.member_cid else None,
            errors=lambda response: {"errors": self.failure(response).messages[:1]},
            # As FalconPy sends it: no grant_type.
            grant_type=None,
        )

    def failure(self, response: httpx.Response) -> Failure:
        try:
            envelope = msgspec.json.decode(response.content, type=_ErrorEnvelope)
        except msgspec.DecodeError:
            envelope = _ErrorEnvelope()
        extra: dict[str, Any] = {}
        if envelope.meta is not None and envelope.meta.trace_id:
            extra["trace_id"] = envelope.meta.trace_id
        if response.status_code == 429:
            extra["retry_after"] = _retry_at(response)
        return Failure([e.message for e in envelope.errors or [] if e.message], extra)

    def retry_after(self, response: httpx.Response) -> int | None:
        retry_at = _retry_at(response)
        return None if retry_at is None else max(0, retry_at - int(time.time()))
