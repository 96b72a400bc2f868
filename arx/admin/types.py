"""Wire types of the control plane: what administrators send and receive.

Requests forbid unknown fields; a secret (an agent key, an admin token)
appears only in the ``Issued*`` answer that creates it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from arx.identity.roles import Role
from arx.identity.types import AgentName, IntentManifest, Slug

Name = Annotated[str, msgspec.Meta(max_length=100, pattern=r"^[^\x00-\x1f]*$")]
Reason = Annotated[str, msgspec.Meta(max_length=500, pattern=r"^[^\x00]*$")]
# Python's and ECMA's \s differ (U+0085): the classes are spelled out, and
# "(?!\n)" keeps "$" from matching before a final newline, so that the
# OpenAPI document states exactly what is accepted.
Email = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=254,
        pattern=r"^[^@\x00-\x20\x7f]{1,200}@[^@\x00-\x20\x7f]{1,200}(?!\n)$",
    ),
]
Password = Annotated[str, msgspec.Meta(min_length=12, max_length=1024, pattern=r"^[^\x00]*$")]
# A key or token lives from a minute to two years.
Lifetime = Annotated[int, msgspec.Meta(ge=60, le=2 * 366 * 24 * 3600)]
Overlap = Annotated[int, msgspec.Meta(ge=0, le=30 * 24 * 3600)]
Cidr = Annotated[str, msgspec.Meta(min_length=2, max_length=49, pattern=r"^[0-9A-Fa-f.:/]+$")]
Cidrs = Annotated[list[Cidr], msgspec.Meta(min_length=1, max_length=200)]
PersonRole = Literal["owner", "admin", "policy_author", "reviewer", "auditor"]
TokenRole = Literal["owner", "admin", "policy_author", "reviewer", "auditor", "scim"]
KeyStatus = Literal["active", "expired", "revoked"]


# --- requests ----------------------------------------------------------------------


class Bootstrap(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    org_slug: Slug
    org_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
    owner_email: Email
    owner_display_name: Name = ""
    # Set for a local owner account (no IdP); omit when the owner signs in with the IdP.
    owner_password: Password | None = None


class CreateApiKey(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name = ""
    expires_in_seconds: Lifetime | None = None


class RotateKey(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # How long the old key keeps working; default ARX_KEY_ROTATION_OVERLAP_SECONDS.
    overlap_seconds: Overlap | None = None


class SetSwitch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    disabled: bool
    reason: Reason = ""


class SetAllowlists(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # null: any address. A list: only those networks. Absent: unchanged, so
    # two people editing different lists do not undo each other.
    agent: Cidrs | msgspec.UnsetType | None = msgspec.UNSET
    admin: Cidrs | msgspec.UnsetType | None = msgspec.UNSET


ApprovalTtl = Annotated[int, msgspec.Meta(ge=60, le=7 * 24 * 3600)]


class SetApprovalSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Absent: unchanged. null: the deployment's default.
    approval_ttl_seconds: ApprovalTtl | msgspec.UnsetType | None = msgspec.UNSET
    owners_may_approve: bool | msgspec.UnsetType = msgspec.UNSET


class SetAgentOwner(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # null: nobody owns the agent.
    owner_user_id: UUID | None


class AddMember(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Adds a person, who then signs in with the deployment's IdP. No password:
    a person may belong to several orgs, and one org's admin must never be able
    to set the credential someone uses for another org."""

    email: Email
    roles: Annotated[list[PersonRole], msgspec.Meta(max_length=5)]
    display_name: Name = ""


class UpdateMember(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    roles: Annotated[list[PersonRole], msgspec.Meta(max_length=5)] | None = None
    active: bool | None = None


class CreateAdminToken(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]*$")]
    roles: Annotated[list[TokenRole], msgspec.Meta(min_length=1, max_length=6)]
    expires_in_seconds: Lifetime | None = None


# --- answers ---------------------------------------------------------------------------


class OrgInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    slug: str
    name: str
    agents_disabled: bool
    agents_disabled_at: datetime | None
    agents_disabled_reason: str | None
    agent_allowlist: list[str] | None
    admin_allowlist: list[str] | None
    # How long an escalation waits for reviewers unless its rule says (null:
    # the deployment's ARX_APPROVAL_TTL_SECONDS).
    approval_ttl_seconds: int | None
    # Whether an agent's owner may approve what it asks (separation of duties: off).
    owners_may_approve: bool


class AgentInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    org_id: UUID
    name: str
    intent: IntentManifest
    disabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    # The person accountable for the agent, if any.
    owner_user_id: UUID | None


class ApiKeyInfo(msgspec.Struct, frozen=True, kw_only=True):
    """An agent key without its secret: the id is its public prefix."""

    key_id: str
    agent_id: UUID
    name: str
    status: KeyStatus
    created_at: datetime
    created_by: str | None
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    replaced_by: str | None


class IssuedKey(msgspec.Struct, frozen=True, kw_only=True):
    """Returned exactly once; only a hash is stored."""

    key_id: str
    agent_id: UUID
    name: str
    api_key: str
    expires_at: datetime | None


class RotatedKey(msgspec.Struct, frozen=True, kw_only=True):
    new: IssuedKey
    old_key_id: str
    old_key_expires_at: datetime


class Member(msgspec.Struct, frozen=True, kw_only=True):
    user_id: UUID
    email: str
    display_name: str
    # Assigned directly; effective_roles adds those from "arx-<role>" SCIM groups.
    roles: list[str]
    effective_roles: list[str]
    active: bool
    created_at: datetime


class AdminTokenInfo(msgspec.Struct, frozen=True, kw_only=True):
    token_id: str
    name: str
    roles: list[str]
    status: KeyStatus
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    replaced_by: str | None


class IssuedAdminToken(msgspec.Struct, frozen=True, kw_only=True):
    """Returned exactly once; only a hash is stored."""

    token_id: str
    name: str
    roles: list[str]
    token: str
    expires_at: datetime | None


class RotatedAdminToken(msgspec.Struct, frozen=True, kw_only=True):
    new: IssuedAdminToken
    old_token_id: str
    old_token_expires_at: datetime


class Bootstrapped(msgspec.Struct, frozen=True, kw_only=True):
    org: OrgInfo
    owner: Member
    # An owner token, so the operator's CLI can carry on; shown once.
    owner_token: IssuedAdminToken


class OrgMembership(msgspec.Struct, frozen=True, kw_only=True):
    org_id: UUID
    slug: str
    name: str
    roles: list[str]


class WhoAmI(msgspec.Struct, frozen=True, kw_only=True):
    kind: Literal["user", "token", "bootstrap"]
    id: str
    name: str
    orgs: list[OrgMembership]


__all__ = ["AgentName", "Role"]
