"""Microsoft Sentinel: incidents (list, get, update, comment) through the Azure
Resource Manager API, as an Entra application (OAuth 2.0 client credentials,
scope ``https://management.azure.com/.default``).

The credential holds the application (tenant, client id, secret) and names
the workspace (subscription, resource group, workspace). Azure's
conventions: ``api-version`` on every call, ``{"error": {"code", "message"}}``
errors, ``Retry-After`` on a 429, ``nextLink`` paging, and an update is a
PUT of the incident's properties (title, severity and status are required;
the ``etag`` from a get makes it conditional).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, ClassVar, Final, Literal

import httpx
import msgspec

from arx.connectors.auth import ConnectorAuth, TokenCache, client_credentials
from arx.connectors.registry import register
from arx.connectors.rest import RestConnector
from arx.connectors.types import ApiCall, CallContext, Operation, OperationKind
from arx.vault import destination
from arx.vault.secret import Secret

__all__ = ["SentinelConnector", "SentinelSecret"]

API_VERSION: Final = "2024-03-01"
AUTHORITY: Final = "https://login.microsoftonline.com"
SCOPE: Final = "https://management.azure.com/.default"
_GUID = r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}(?!\n)$"
Guid = Annotated[str, msgspec.Meta(pattern=_GUID)]
Name = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._()-]{0,89}(?!\n)$")]


class SentinelSecret(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An Entra application with Microsoft Sentinel Responder on the workspace."""

    tenant_id: Guid
    client_id: Guid
    client_secret: Secret
    subscription_id: Guid
    resource_group: Name
    workspace: Name


_Strict = {"frozen": True, "kw_only": True, "forbid_unknown_fields": True}
Severity = Literal["High", "Medium", "Low", "Informational"]
Status = Literal["New", "Active", "Closed"]


class ListParams(msgspec.Struct, **_Strict):
    """A page of incidents, newest first, optionally filtered (OData)."""

    top: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50
    filter: (
        Annotated[str, msgspec.Meta(max_length=1000, description="e.g. properties/status eq 'New'")]
        | None
    ) = None
    skip_token: (
        Annotated[str, msgspec.Meta(max_length=2000, description="from a page's nextLink")] | None
    ) = None


class IncidentParams(msgspec.Struct, **_Strict):
    incident_id: Guid


class UpdateParams(msgspec.Struct, **_Strict):
    """The incident's properties as they should be (what a get returned, changed)."""

    incident_id: Guid
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    severity: Severity
    status: Status
    classification: (
        Literal["Undetermined", "TruePositive", "BenignPositive", "FalsePositive"] | None
    ) = None
    classification_reason: (
        Literal[
            "SuspiciousActivity", "SuspiciousButExpected", "IncorrectAlertLogic", "InaccurateData"
        ]
        | None
    ) = None
    classification_comment: Annotated[str, msgspec.Meta(max_length=10_000)] | None = None
    owner_object_id: Guid | None = None
    etag: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class CommentParams(msgspec.Struct, **_Strict):
    incident_id: Guid
    message: Annotated[str, msgspec.Meta(min_length=1, max_length=30_000)]


def _incidents(secret: SentinelSecret) -> str:
    return (
        f"/subscriptions/{secret.subscription_id}/resourceGroups/{secret.resource_group}"
        f"/providers/Microsoft.OperationalInsights/workspaces/{secret.workspace}"
        "/providers/Microsoft.SecurityInsights/incidents"
    )


_VERSION: Final = (("api-version", API_VERSION),)


def _list(p: ListParams) -> ApiCall:
    query = [*_VERSION, ("$top", str(p.top)), ("$orderby", "properties/createdTimeUtc desc")]
    if p.filter:
        query.append(("$filter", p.filter))
    if p.skip_token:
        query.append(("$skipToken", p.skip_token))
    return ApiCall("GET", "", tuple(query))


def _update(p: UpdateParams) -> ApiCall:
    properties: dict[str, Any] = {"title": p.title, "severity": p.severity, "status": p.status}
    if p.classification:
        properties["classification"] = p.classification
    if p.classification_reason:
        properties["classificationReason"] = p.classification_reason
    if p.classification_comment:
        properties["classificationComment"] = p.classification_comment
    if p.owner_object_id:
        properties["owner"] = {"objectId": p.owner_object_id}
    body: dict[str, Any] = {"properties": properties}
    if p.etag:
        body["etag"] = p.etag
    return ApiCall("PUT", f"/{p.incident_id}", _VERSION, body)


def _comment(p: CommentParams) -> ApiCall:
    # A comment is PUT under an id the caller chooses: a new one each time.
    return ApiCall(
        "PUT",
        f"/{p.incident_id}/comments/{uuid.uuid4()}",
        _VERSION,
        {"properties": {"message": p.message}},
    )


_OPERATIONS: Final = (
    Operation(
        name="incidents:list",
        params=ListParams,
        kind=OperationKind.READ,
        base_risk=5,
        reversible=False,
        target_type="incident",
        build=_list,
        summary="Incidents, newest first (OData $filter); nextLink for the next page.",
    ),
    Operation(
        name="incidents:get",
        params=IncidentParams,
        kind=OperationKind.READ,
        base_risk=5,
        reversible=False,
        target_type="incident",
        target_param="incident_id",
        build=lambda p: ApiCall("GET", f"/{p.incident_id}", _VERSION),
        summary="One incident with its properties and etag.",
    ),
    Operation(
        name="incidents:update",
        params=UpdateParams,
        kind=OperationKind.WRITE,
        base_risk=25,
        reversible=True,
        inverse="incidents:update",
        target_type="incident",
        target_param="incident_id",
        build=_update,
        summary="Set the incident's status, severity, owner or classification (PUT).",
    ),
    Operation(
        name="incidents:comment",
        params=CommentParams,
        kind=OperationKind.WRITE,
        base_risk=15,
        reversible=False,  # ARX offers no delete of a comment (yet)
        target_type="incident",
        target_param="incident_id",
        build=_comment,
        summary="Add a comment to the incident.",
    ),
)


@register
class SentinelConnector(RestConnector):
    id: ClassVar[str] = "sentinel"
    vendor: ClassVar[str] = "Microsoft Sentinel"
    auth_scheme: ClassVar[str] = "oauth2_client_credentials"
    secret_type: ClassVar[type[msgspec.Struct]] = SentinelSecret
    default_base_url: ClassVar[str] = "https://management.azure.com"
    allowed_hosts: ClassVar[tuple[str, ...]] = ("management.azure.com",)
    operations: ClassVar[dict[str, Operation]] = {op.name: op for op in _OPERATIONS}

    def __init__(self, http: httpx.AsyncClient) -> None:
        super().__init__(http)
        self.tokens = TokenCache()
        # Entra ID's token endpoint: a fixed host (tests route it to a fake).
        self.authority = AUTHORITY

    def authenticate(self, secret: Any, context: CallContext) -> ConnectorAuth:
        # A sandbox (a loopback URL, for the orgs the operator allows) plays
        # Entra ID too; anything else gets its token from Entra itself.
        sandbox = destination.parse(context.base_url).loopback
        authority = context.base_url.rstrip("/") if sandbox else self.authority
        return client_credentials(
            self.tokens,
            (context.credential_key, context.base_url),
            token_url=f"{authority}/{secret.tenant_id}/oauth2/v2.0/token",
            client_id=secret.client_id,
            client_secret=secret.client_secret,
            scope=SCOPE,
            vendor="Entra ID",
        )

    def base_path(self, secret: Any) -> str:
        return _incidents(secret)
