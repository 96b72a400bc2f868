"""The SCIM resources ARX serves, as the schemas it publishes, and the rows behind them.

The published schemas (``/Schemas``) are generated from these models, so
they list exactly the attributes ARX keeps, with the characteristics it
enforces; an IdP's other attributes (``name``, ``phoneNumbers``, the
enterprise extension, ...) are accepted and dropped (``POLICY``). A few
attributes are ``required`` because ARX cannot hold them unassigned: a
member always has a sign-in email and an ``active`` flag.

The wire models are scim2-models' (pydantic): they carry the RFC's filter
evaluation, PATCH and PUT semantics, and the attribute projection of
``attributes``/``excludedAttributes``, which ARX uses rather than re-implements.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from pydantic import Field
from scim2_models import (
    URN,
    AuthenticationScheme,
    Bulk,
    CaseExact,
    ChangePassword,
    ComplexAttribute,
    ETag,
    Filter,
    Mutability,
    Pagination,
    Patch,
    Reference,
    Required,
    Resource,
    ResourceType,
    Schema,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
)

MEDIA_TYPE = "application/scim+json"
# A page holds at most this many resources, whatever ``count`` asks for.
MAX_RESULTS = 200
# The checks of the database (migration 0004), said once more here so that a
# bad value is a SCIM ``invalidValue`` naming the attribute, not a refused row.
EMAIL = re.compile(r"^[^@\s]{1,200}@[^@\s]{1,200}$")
MAX_NAME = 200
# The type ARX reports for the one email it keeps.
WORK = "work"
# Member types: ARX groups hold users only (no nested groups).
USER_TYPE = "User"

# The tolerances real IdPs need, each deliberate:
# - unknown attributes are dropped, not refused: Entra and Okta send name,
#   phone numbers and the enterprise extension whatever the schema says;
# - a PATCH ``remove`` with a ``value`` selects what to remove (Entra removes
#   group members that way);
# - a PATCH on ``emails[type eq "work"].value`` with no such entry creates it
#   (Entra's default mapping).
POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)


class Email(ComplexAttribute):
    value: Annotated[str | None, Required.true] = Field(
        None, description="An email address of the person."
    )
    type: str | None = Field(
        None,
        examples=[WORK],
        description="ARX keeps one email per person, its sign-in address, and reports it "
        "as the work email.",
    )


class GroupMembership(ComplexAttribute):
    value: Annotated[str | None, Mutability.read_only] = Field(
        None, description="The id of a group the user belongs to."
    )
    # A resource type's name (scim2-models' notation), not a forward reference.
    ref: Annotated[Reference["Group"] | None, Mutability.read_only] = Field(  # noqa: UP037
        None, serialization_alias="$ref", validation_alias="$ref"
    )
    display: Annotated[str | None, Mutability.read_only] = Field(
        None, description="The group's displayName."
    )


class User(Resource[Any]):
    """A member of the org: a person and their status in this org."""

    __schema__ = URN("urn:ietf:params:scim:schemas:core:2.0:User")

    user_name: Annotated[str | None, Uniqueness.server, Required.true] = Field(
        None, description="Unique in the org, without regard to case; 1-200 characters."
    )
    display_name: str | None = Field(
        None,
        description="The person's name, as shown in ARX (at most 200 characters). When a "
        "request gives none, name.formatted, else name.givenName and name.familyName.",
    )
    active: Annotated[bool | None, Required.true] = Field(
        None,
        description="false withdraws every role in the org at once (the person keeps "
        "their membership). A creation without it means true.",
    )
    emails: Annotated[list[Email] | None, Required.true] = Field(
        None,
        description="The person's sign-in email: the primary entry, else the work one, "
        "else the first. A creation without emails uses userName when it is an email "
        "address. Changing it is refused (mutability) while the person is active in "
        "another org too.",
    )
    groups: Annotated[list[GroupMembership] | None, Mutability.read_only] = Field(
        None, description="The org's groups the user belongs to."
    )


class GroupMember(ComplexAttribute):
    value: Annotated[str | None, Mutability.immutable, CaseExact.true, Required.true] = Field(
        None, description="The id of a user of this org."
    )
    ref: Annotated[Reference["User"] | None, Mutability.immutable] = Field(  # noqa: UP037
        None, serialization_alias="$ref", validation_alias="$ref"
    )
    type: Annotated[str | None, Mutability.immutable] = Field(
        None, examples=[USER_TYPE], description="Always User: groups do not nest."
    )


class Group(Resource[Any]):
    """A group of the org's users. A group named arx-<role> (arx-owner, arx-admin,
    arx-policy_author, arx-reviewer, arx-auditor) gives that role to its active members."""

    __schema__ = URN("urn:ietf:params:scim:schemas:core:2.0:Group")

    display_name: Annotated[str | None, Uniqueness.server, Required.true] = Field(
        None, description="Unique in the org, without regard to case; 1-200 characters."
    )
    members: list[GroupMember] | None = None


CONFIG = ServiceProviderConfig(
    patch=Patch(supported=True),
    bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
    filter=Filter(supported=True, max_results=MAX_RESULTS),
    change_password=ChangePassword(supported=False),
    sort=Sort(supported=True),
    etag=ETag(supported=False),
    pagination=Pagination(
        cursor=False,
        index=True,
        default_pagination_method=Pagination.DefaultPaginationMethod.index,
        default_page_size=MAX_RESULTS,
        max_page_size=MAX_RESULTS,
    ),
    authentication_schemes=[
        AuthenticationScheme(
            type=AuthenticationScheme.Type.oauthbearertoken,
            name="ARX admin token",
            description="Authorization: Bearer with an admin token of this org that holds "
            "the scim role (made by an owner).",
            primary=True,
        )
    ],
)

PROVIDER = ScimProvider(models=[User, Group], config=CONFIG, policy=POLICY)

# What /Schemas publishes: the resources, then the discovery objects (RFC 7643 §5-7).
SCHEMAS: tuple[Schema, ...] = (
    *PROVIDER.schemas,
    ServiceProviderConfig.to_schema(),
    ResourceType.to_schema(),
    Schema.to_schema(),
)


# --- rows ---------------------------------------------------------------------------------


class GroupRef(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    display_name: str


class UserRow(msgspec.Struct, frozen=True, kw_only=True):
    """A membership with its person (``arx.memberships`` joined to ``arx.users``)."""

    id: UUID
    user_name: str
    external_id: str | None
    active: bool
    email: str
    display_name: str
    created_at: datetime
    updated_at: datetime
    groups: list[GroupRef]


class GroupRow(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    display_name: str
    external_id: str | None
    created_at: datetime
    updated_at: datetime
    members: list[UUID]
