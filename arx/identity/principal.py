"""Who is calling the control plane, and what they may do in one org.

A ``Principal`` is established once per request from its credential (an
admin token, a bearer JWT from the org's IdP, a web session cookie, or the
bootstrap token); an ``Access`` adds the org of the route and the roles held
there. Audit events name ``Principal.actor``: a real person or a named token.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network
from uuid import UUID

import msgspec


class PrincipalKind(StrEnum):
    USER = "user"
    TOKEN = "token"  # noqa: S105 -- a kind of principal, not a secret
    BOOTSTRAP = "bootstrap"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    kind: PrincipalKind
    id: str  # user id, token id, or "bootstrap"
    name: str  # the user's email, the token's name
    # An admin token belongs to one org and carries fixed roles.
    token_org: UUID | None = None
    token_roles: frozenset[str] = frozenset()
    token_allowlist: tuple[IPv4Network | IPv6Network, ...] | None = None
    token_expires_at: datetime | None = None
    # The person accountable: the user themselves, or whoever made the token
    # (None for the bootstrap token and the tokens it made).
    person: UUID | None = None

    @property
    def actor(self) -> str:
        """How the audit trail names this principal: stable id, readable name."""
        if self.kind is PrincipalKind.BOOTSTRAP:
            return "bootstrap"
        return f"{self.kind.value}:{self.id} ({self.name})"


class Access(msgspec.Struct, frozen=True, kw_only=True):
    principal: Principal
    org_id: UUID
    roles: frozenset[str]

    @property
    def actor(self) -> str:
        return self.principal.actor
