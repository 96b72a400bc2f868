"""Domain types of orgs, agents and API keys."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from typing import Annotated
from uuid import UUID

import msgspec

# msgspec matches patterns with re.search, where "$" also matches before a
# final newline: "(?!\n)" refuses one. Both forms mean the same in ECMA
# regexes, so the OpenAPI document states the rule exactly.
Slug = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,62}(?!\n)$")]
AgentName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}(?!\n)$")]
OperationPattern = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class IntentManifest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What an agent declares it is for; the policy scores drift from it.

    ``scope`` maps a connector id (or ``"*"``) to operation globs, with ``:``
    as the glob delimiter: ``{"crowdstrike": ["hosts:search", "hosts:get"]}``.
    """

    purpose: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    scope: dict[str, list[OperationPattern]] = msgspec.field(default_factory=dict)


class AgentIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: resolved from the API key, never from the request body."""

    org_id: UUID
    org_slug: str
    agent_id: UUID
    agent_name: str
    intent: IntentManifest
    key_id: str = ""
    # The kill switches: the agent's own, or its whole org's.
    agent_disabled: bool = False
    org_disabled: bool = False
    # None: any address may use the org's agent keys.
    allowlist: tuple[IPv4Network | IPv6Network, ...] | None = None


class Org(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    slug: str
    name: str


class Agent(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    org_id: UUID
    name: str
    intent: IntentManifest
