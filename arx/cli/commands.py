"""What each ``arx`` admin command asks the API, with names resolved to ids.

People name things as they see them (an org's slug, an agent's name, a
member's email); the API addresses them by id. ``Session`` resolves each
name with one read the caller is allowed to make (``/me``, the agent list,
the member list), so the CLI can do no more than the credential can.

Every command returns the API's JSON answer as it was sent. Request bodies
are the server's own wire types, converted (and so validated) here: a
malformed value is refused before anything is sent, with the server's rule.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote
from uuid import UUID

import msgspec

from arx.admin.types import (
    AddMember,
    AgentInfo,
    Bootstrap,
    CreateAdminToken,
    CreateApiKey,
    Member,
    RotateKey,
    SetAllowlists,
    SetSwitch,
    UpdateMember,
    WhoAmI,
)
from arx.api.types import AddConnectorHost, CreateAgent, StoreCredential
from arx.approvals.notify.types import RetryDelivery, SetTeams, SlackBot, SlackWebhook
from arx.cli.client import AdminClient, CLIError
from arx.vault.types import SetOrgKey

S = TypeVar("S", bound=msgspec.Struct)

ADMIN = "/v1/admin"


def body(type_: type[S], **fields: object) -> S:
    """A request body, checked against the server's rules before it is sent.

    ``fields`` must be JSON builtins: msgspec passes a Struct instance
    through without checking its constraints.
    """
    try:
        return msgspec.convert(fields, type_)
    except msgspec.ValidationError as exc:
        # msgspec names the field and the rule, never the value (it may be a secret).
        raise CLIError(str(exc), "invalid_field") from None


def seg(value: str) -> str:
    """One path segment: an id typed by a person must not reach another route."""
    if value in {"", ".", ".."}:
        raise CLIError(f"{value!r} is not an id", "bad_input")
    return quote(value, safe="")


class Session:
    """An authenticated client and the org the command acts on."""

    def __init__(self, client: AdminClient, org: str | None = None) -> None:
        self.client = client
        self._wanted = org
        self._org_id: UUID | None = None

    @property
    def org(self) -> str:
        """``/v1/admin/orgs/{id}`` of the selected org (resolved once)."""
        if self._org_id is None:
            self._org_id = self._resolve_org()
        return f"{ADMIN}/orgs/{self._org_id}"

    def _resolve_org(self) -> UUID:
        wanted = self._wanted
        if wanted:
            try:
                # An id needs no lookup: the API answers 404 if it is not the caller's.
                return UUID(wanted)
            except ValueError:
                pass
        orgs = self.client.get_as(f"{ADMIN}/me", WhoAmI).orgs
        if wanted:
            for membership in orgs:
                if membership.slug == wanted:
                    return membership.org_id
            raise CLIError(f"no org with slug {wanted!r} among this credential's orgs", "not_found")
        if len(orgs) == 1:
            return orgs[0].org_id
        if not orgs:
            raise CLIError("this credential has no org", "not_found")
        slugs = ", ".join(sorted(m.slug for m in orgs))
        raise CLIError(
            f"this credential reaches {len(orgs)} orgs ({slugs}): choose one with --org",
            "org_required",
        )

    def agent(self, name: str) -> str:
        """The path of the agent called ``name``."""
        for info in self.client.get_as(f"{self.org}/agents", list[AgentInfo]):
            if info.name == name:
                return f"{self.org}/agents/{info.id}"
        raise CLIError(f"no agent named {name!r} in this org", "not_found")

    def member(self, email: str) -> str:
        """The path of the member whose email is ``email`` (emails ignore case)."""
        for person in self.client.get_as(f"{self.org}/members", list[Member]):
            if person.email.casefold() == email.casefold():
                return f"{self.org}/members/{person.user_id}"
        raise CLIError(f"no member with email {email!r} in this org", "not_found")


# --- who and which org --------------------------------------------------------------


def bootstrap(
    client: AdminClient,
    *,
    slug: str,
    name: str,
    owner_email: str,
    owner_display_name: str,
    owner_password: str | None,
) -> bytes:
    request = body(
        Bootstrap,
        org_slug=slug,
        org_name=name,
        owner_email=owner_email,
        owner_display_name=owner_display_name,
        owner_password=owner_password,
    )
    return client.send("POST", f"{ADMIN}/bootstrap", body=request)


def whoami(client: AdminClient) -> bytes:
    return client.send("GET", f"{ADMIN}/me")


def org_show(s: Session) -> bytes:
    return s.client.send("GET", s.org)


def org_switch(s: Session, *, disabled: bool, reason: str) -> bytes:
    return s.client.send(
        "PUT", f"{s.org}/kill-switch", body=body(SetSwitch, disabled=disabled, reason=reason)
    )


def org_allowlist(
    s: Session,
    *,
    agent: list[str] | None,
    admin: list[str] | None,
    clear_agent: bool,
    clear_admin: bool,
) -> bytes:
    """Change the lists named; the API keeps a list the request leaves out."""
    if agent is None and admin is None and not (clear_agent or clear_admin):
        raise CLIError(
            "nothing to change: give --agent, --admin, --clear-agent or --clear-admin", "bad_input"
        )
    if (agent is not None and clear_agent) or (admin is not None and clear_admin):
        raise CLIError("a list cannot be both set and cleared", "bad_input")
    fields: dict[str, list[str] | None] = {}
    if agent is not None or clear_agent:
        fields["agent"] = agent
    if admin is not None or clear_admin:
        fields["admin"] = admin
    return s.client.send("PUT", f"{s.org}/allowlists", body=body(SetAllowlists, **fields))


# --- agents and their keys ---------------------------------------------------------


def agent_create(s: Session, *, name: str, intent: dict[str, Any]) -> bytes:
    """``intent`` as JSON builtins ({purpose, scope}): converting them checks the manifest."""
    return s.client.send(
        "POST", f"{s.org}/agents", body=body(CreateAgent, name=name, intent=intent)
    )


def agent_list(s: Session) -> bytes:
    return s.client.send("GET", f"{s.org}/agents")


def agent_show(s: Session, *, name: str) -> bytes:
    return s.client.send("GET", s.agent(name))


def agent_switch(s: Session, *, name: str, disabled: bool, reason: str) -> bytes:
    return s.client.send(
        "PUT",
        f"{s.agent(name)}/kill-switch",
        body=body(SetSwitch, disabled=disabled, reason=reason),
    )


def key_create(s: Session, *, agent: str, name: str, expires_in: int | None) -> bytes:
    request = body(CreateApiKey, name=name, expires_in_seconds=expires_in)
    return s.client.send("POST", f"{s.agent(agent)}/keys", body=request)


def key_list(s: Session, *, agent: str) -> bytes:
    return s.client.send("GET", f"{s.agent(agent)}/keys")


def key_rotate(s: Session, *, agent: str, key_id: str, overlap: int | None) -> bytes:
    return s.client.send(
        "POST",
        f"{s.agent(agent)}/keys/{seg(key_id)}/rotate",
        body=body(RotateKey, overlap_seconds=overlap),
    )


def key_revoke(s: Session, *, agent: str, key_id: str) -> bytes:
    return s.client.send("POST", f"{s.agent(agent)}/keys/{seg(key_id)}/revoke")


# --- credentials ----------------------------------------------------------------------


def credential_set(
    s: Session, *, connector: str, secret: dict[str, Any], base_url: str | None
) -> bytes:
    request = body(StoreCredential, secret=secret, base_url=base_url)
    return s.client.send("PUT", f"{s.org}/credentials/{seg(connector)}", body=request)


def credential_list(s: Session) -> bytes:
    return s.client.send("GET", f"{s.org}/credentials")


def credential_delete(s: Session, *, connector: str) -> bytes:
    return s.client.send("DELETE", f"{s.org}/credentials/{seg(connector)}")


def kek_show(s: Session) -> bytes:
    return s.client.send("GET", f"{s.org}/key")


def kek_set(s: Session, *, provider: str, key: str) -> bytes:
    return s.client.send("PUT", f"{s.org}/key", body=body(SetOrgKey, provider=provider, key=key))


def kek_rewrap(s: Session) -> bytes:
    return s.client.send("POST", f"{s.org}/key/rewrap")


def host_list(s: Session, *, connector: str) -> bytes:
    return s.client.send("GET", f"{s.org}/connectors/{seg(connector)}/hosts")


def host_change(s: Session, verb: str, *, connector: str, host: str) -> bytes:
    hosts = f"{s.org}/connectors/{seg(connector)}/hosts"
    if verb == "add":
        return s.client.send("POST", hosts, body=body(AddConnectorHost, host=host))
    return s.client.send("DELETE", f"{hosts}/{seg(host)}")


# --- people and admin tokens ---------------------------------------------------------


def member_list(s: Session) -> bytes:
    return s.client.send("GET", f"{s.org}/members")


def member_add(s: Session, *, email: str, roles: list[str], display_name: str) -> bytes:
    request = body(AddMember, email=email, roles=roles, display_name=display_name)
    return s.client.send("POST", f"{s.org}/members", body=request)


def member_set(s: Session, *, email: str, roles: list[str] | None, active: bool | None) -> bytes:
    if roles is None and active is None:
        raise CLIError("nothing to change: give --role, --activate or --deactivate", "bad_input")
    request = body(UpdateMember, roles=roles, active=active)
    return s.client.send("PATCH", s.member(email), body=request)


def token_list(s: Session) -> bytes:
    return s.client.send("GET", f"{s.org}/admin-tokens")


def token_create(s: Session, *, name: str, roles: list[str], expires_in: int | None) -> bytes:
    request = body(CreateAdminToken, name=name, roles=roles, expires_in_seconds=expires_in)
    return s.client.send("POST", f"{s.org}/admin-tokens", body=request)


def token_rotate(s: Session, *, token_id: str, overlap: int | None) -> bytes:
    return s.client.send(
        "POST",
        f"{s.org}/admin-tokens/{seg(token_id)}/rotate",
        body=body(RotateKey, overlap_seconds=overlap),
    )


def token_revoke(s: Session, *, token_id: str) -> bytes:
    return s.client.send("POST", f"{s.org}/admin-tokens/{seg(token_id)}/revoke")


# --- reviewer notifications -------------------------------------------------------------


def notification_channels(s: Session) -> bytes:
    return s.client.send("GET", f"{s.org}/notification-channels")


def notification_set_slack(
    s: Session,
    *,
    channel: str | None,
    bot_token: str | None,
    signing_secret: str | None,
    interactive: bool,
    webhook_url: str | None,
) -> bytes:
    """The bot (``channel`` and ``bot_token``) or an incoming webhook, not both."""
    request: SlackBot | SlackWebhook
    if webhook_url is not None:
        if bot_token is not None or channel is not None or signing_secret is not None:
            raise CLIError(
                "give --webhook-url-file, or --channel with --bot-token-file, not both",
                "bad_input",
            )
        if interactive:
            raise CLIError("--interactive needs the bot, not a webhook", "bad_input")
        request = body(SlackWebhook, webhook_url=webhook_url)
    elif bot_token is None or channel is None:
        raise CLIError(
            "give --channel and --bot-token-file (the bot), or --webhook-url-file", "bad_input"
        )
    else:
        request = body(
            SlackBot,
            bot_token=bot_token,
            channel=channel,
            signing_secret=signing_secret,
            interactive_approvals=interactive,
        )
    return s.client.send("PUT", f"{s.org}/notification-channels/slack", body=request)


def notification_set_teams(s: Session, *, webhook_url: str) -> bytes:
    request = body(SetTeams, webhook_url=webhook_url)
    return s.client.send("PUT", f"{s.org}/notification-channels/teams", body=request)


def notification_remove(s: Session, *, channel: str) -> bytes:
    return s.client.send("DELETE", f"{s.org}/notification-channels/{seg(channel)}")


def notification_list(s: Session, *, status: str | None) -> bytes:
    query = f"?status={quote(status, safe='')}" if status else ""
    return s.client.send("GET", f"{s.org}/notifications{query}")


def notification_retry(s: Session, *, delivery_id: str, comment: str) -> bytes:
    return s.client.send(
        "POST",
        f"{s.org}/notifications/{seg(delivery_id)}/retry",
        body=body(RetryDelivery, comment=comment),
    )
