"""Each org's notification channels: set, shown, removed; secrets sealed.

A change replaces the channel's whole setting (its secrets sealed afresh by
the vault under the next version, bound to the org and ``notify:<channel>``)
and appends an admin audit event in the same transaction, which names what
changed and never a secret. Answers say whether each secret is set, and a
webhook's host. Webhook URLs go to the vendor's documented hosts only
(``arx.approvals.notify.urls``).

A Slack bot is checked before it is kept: Slack's ``auth.test`` says which
workspace (team) and app its token belongs to, and both are stored, so that
a click is believed only from them. Turning on approving from Slack is the
owners' call alone: whoever holds the Slack app's signing secret and bot
token can make Slack-shaped clicks, so admins may set everything else.

Slack's signing secret is also remembered briefly in this process
(``SIGNING_SECRETS``), so that a click with a bad signature costs an HMAC and
no database round trip; a change of the channel here forgets it.

A request's secrets are wrapped in ``Secret`` as soon as it is accepted (a
webhook URL once its rule has been checked on the plaintext); from there on,
opened or remembered, they are revealed only where they are sent.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import httpx
import msgspec
from psycopg_pool import AsyncConnectionPool

from arx.approvals.notify import repo, slack, urls
from arx.approvals.notify.delivery import Outcome
from arx.approvals.notify.types import (
    ChannelKind,
    ChannelsInfo,
    SealedRow,
    SetSlack,
    SetTeams,
    SlackBot,
    SlackChannelInfo,
    SlackSecrets,
    TeamsChannelInfo,
    TeamsSecrets,
)
from arx.audit.service import record_admin_event
from arx.config import Settings
from arx.db.pool import Conn, fetch_all, fetch_dict, org_transaction
from arx.errors import InvalidFieldError, NotFoundError, RoleRequiredError, ServiceUnavailableError
from arx.identity.principal import Access
from arx.identity.roles import Role
from arx.vault.secret import Secret
from arx.vault.service import Vault, org_key
from arx.vault.types import Sealed


def webhook_host(url: Secret) -> str | None:
    """The host a webhook posts to (shown; the rest of the URL is the secret)."""
    try:
        host = urlsplit(url.reveal()).hostname
    except ValueError:
        return None
    return host[:255] if host else None


def connector(channel: ChannelKind) -> str:
    """The vault's name for a channel's secrets (its associated data)."""
    return f"notify:{channel}"


async def open_secrets(
    vault: Vault, org_id: UUID, channel: ChannelKind, row: SealedRow
) -> SlackSecrets | TeamsSecrets:
    sealed = Sealed(row.kek_id, row.wrapped_dek, row.nonce, row.ciphertext)
    secret_type: type[SlackSecrets | TeamsSecrets] = (
        SlackSecrets if channel == "slack" else TeamsSecrets
    )
    return await vault.open(org_id, connector(channel), row.version, sealed, secret_type)


# --- reading ------------------------------------------------------------------------


def interactions_url(public_url: str, org_id: UUID) -> str:
    return f"{public_url}/v1/slack/interactions/{org_id}"


def _slack_info(row: dict[str, Any], public_url: str, org_id: UUID) -> SlackChannelInfo:
    return SlackChannelInfo(
        mode=row["mode"],
        channel=row["slack_channel"],
        bot_token_set=row["bot_token_set"],
        webhook_url_set=row["webhook_url_set"],
        signing_secret_set=row["signing_secret_set"],
        interactive_approvals=row["interactive_approvals"],
        webhook_host=row["webhook_host"],
        slack_team_id=row["slack_team_id"],
        slack_app_id=row["slack_app_id"],
        interactions_url=interactions_url(public_url, org_id),
        updated_at=row["updated_at"],
        updated_by=row["updated_by"],
    )


def _teams_info(row: dict[str, Any]) -> TeamsChannelInfo:
    return TeamsChannelInfo(
        webhook_url_set=row["webhook_url_set"],
        webhook_host=row["webhook_host"],
        updated_at=row["updated_at"],
        updated_by=row["updated_by"],
    )


async def get_channels(
    pool: AsyncConnectionPool[Conn], org_id: UUID, *, public_url: str
) -> ChannelsInfo:
    async with org_transaction(pool, org_id) as conn:
        rows = await fetch_all(conn, repo.LIST_CHANNELS, None, dict[str, Any])
    by_kind = {row["channel"]: row for row in rows}
    slack, teams = by_kind.get("slack"), by_kind.get("teams")
    return ChannelsInfo(
        slack=_slack_info(slack, public_url, org_id) if slack else None,
        teams=_teams_info(teams) if teams else None,
    )


# --- changing -----------------------------------------------------------------------


async def _store(
    conn: Conn,
    vault: Vault,
    *,
    access: Access,
    channel: ChannelKind,
    secrets: SlackSecrets | TeamsSecrets,
    shown: dict[str, Any],
) -> dict[str, Any]:
    """Seal ``secrets`` as the channel's next version and record the change."""
    current = await fetch_dict(conn, repo.CHANNEL_VERSION, {"channel": channel})
    version = (current["version"] if current else 0) + 1
    kek = vault.keys.current(await org_key(conn, access.org_id), access.org_id)
    sealed = await vault.seal(access.org_id, connector(channel), version, secrets, kek)
    row = await fetch_dict(
        conn,
        repo.UPSERT_CHANNEL,
        {
            "org_id": access.org_id,
            "channel": channel,
            "version": version,
            "kek_id": sealed.kek_id,
            "wrapped_dek": sealed.wrapped_dek,
            "nonce": sealed.nonce,
            "ciphertext": sealed.ciphertext,
            "updated_by": access.actor,
            **shown,
        },
    )
    assert row is not None  # an upsert with RETURNING always answers a row
    await record_admin_event(
        conn,
        access.org_id,
        action="notifications.channel_set",
        actor=access.actor,
        details={"channel": channel, "version": version, **shown},
    )
    return row


async def _bot(http: httpx.AsyncClient, token: Secret, settings: Settings) -> slack.Bot:
    """Whose bot token ``token`` is, as Slack's auth.test says; else an error
    that changes nothing."""
    if not urls.slack_api_url_allowed(
        settings.slack_api_url, allow_insecure=settings.allow_insecure_connector_urls
    ):
        raise ServiceUnavailableError(
            "ARX_SLACK_API_URL must be https (this deployment does not allow insecure URLs); "
            "nothing was changed"
        )
    bot = await slack.bot_identity(
        http,
        api_url=settings.slack_api_url,
        token=token,
        seconds=settings.notify_timeout_seconds,
    )
    if not isinstance(bot, Outcome):
        return bot
    # bot.error is ARX's classification (a status, Slack's error code), never Slack's text.
    if bot.retry:
        raise ServiceUnavailableError(
            f"Slack could not be asked whose bot token this is (auth.test: {bot.error}); "
            "nothing was changed"
        )
    raise InvalidFieldError(
        f"Slack did not vouch for the bot token (auth.test: {bot.error})", field="bot_token"
    )


async def set_slack(
    pool: AsyncConnectionPool[Conn],
    vault: Vault,
    http: httpx.AsyncClient,
    access: Access,
    data: SetSlack,
    *,
    settings: Settings,
) -> SlackChannelInfo:
    if isinstance(data, SlackBot):
        if data.interactive_approvals and data.signing_secret is None:
            raise InvalidFieldError(
                "interactive_approvals needs the Slack app's signing_secret, to know that "
                "button clicks come from Slack",
                field="signing_secret",
            )
        if data.interactive_approvals and Role.OWNER not in access.roles:
            raise RoleRequiredError(
                "only an owner may turn on approving from Slack (interactive_approvals): "
                "whoever holds the Slack app's secrets can click as anyone in its workspace"
            )
        token = Secret(data.bot_token)
        bot = await _bot(http, token, settings)
        signing = None if data.signing_secret is None else Secret(data.signing_secret)
        secrets = SlackSecrets(bot_token=token, signing_secret=signing)
        shown: dict[str, Any] = {
            "mode": "bot",
            "slack_channel": data.channel,
            "interactive_approvals": data.interactive_approvals,
            "bot_token_set": True,
            "webhook_url_set": False,
            "signing_secret_set": data.signing_secret is not None,
            "webhook_host": None,
            "slack_team_id": bot.team_id,
            "slack_app_id": bot.app_id,
        }
    else:
        url = Secret(
            urls.check_webhook_url(
                data.webhook_url, "slack", allow_insecure=settings.allow_insecure_connector_urls
            )
        )
        secrets = SlackSecrets(webhook_url=url)
        shown = _webhook_shown(url)
    try:
        async with org_transaction(pool, access.org_id) as conn:
            row = await _store(
                conn, vault, access=access, channel="slack", secrets=secrets, shown=shown
            )
    finally:
        SIGNING_SECRETS.forget(access.org_id)
    return _slack_info(row, settings.public_url, access.org_id)


def _webhook_shown(url: Secret) -> dict[str, Any]:
    """What a webhook channel (Slack's or Teams') shows of itself: its host."""
    return {
        "mode": "webhook",
        "slack_channel": None,
        "interactive_approvals": False,
        "bot_token_set": False,
        "webhook_url_set": True,
        "signing_secret_set": False,
        "webhook_host": webhook_host(url),
        "slack_team_id": None,
        "slack_app_id": None,
    }


async def set_teams(
    pool: AsyncConnectionPool[Conn],
    vault: Vault,
    access: Access,
    data: SetTeams,
    *,
    allow_insecure_urls: bool,
) -> TeamsChannelInfo:
    url = Secret(
        urls.check_webhook_url(data.webhook_url, "teams", allow_insecure=allow_insecure_urls)
    )
    shown = _webhook_shown(url)
    async with org_transaction(pool, access.org_id) as conn:
        row = await _store(
            conn,
            vault,
            access=access,
            channel="teams",
            secrets=TeamsSecrets(webhook_url=url),
            shown=shown,
        )
    return _teams_info(row)


async def remove(pool: AsyncConnectionPool[Conn], access: Access, channel: ChannelKind) -> None:
    """Remove the channel; its undelivered notifications are skipped."""
    try:
        async with org_transaction(pool, access.org_id) as conn:
            if await fetch_dict(conn, repo.DELETE_CHANNEL, {"channel": channel}) is None:
                raise NotFoundError(f"this org has no {channel} channel")
            await conn.execute(repo.SKIP_PENDING, {"channel": channel})
            await record_admin_event(
                conn,
                access.org_id,
                action="notifications.channel_removed",
                actor=access.actor,
                details={"channel": channel},
            )
    finally:
        if channel == "slack":
            SIGNING_SECRETS.forget(access.org_id)


# --- Slack's interactions -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlackInteractionSettings:
    """What deciding a Slack click needs, read fresh (secrets opened)."""

    org_slug: str
    interactive: bool
    team_id: str | None
    app_id: str | None
    secrets: SlackSecrets


async def slack_interaction_settings(
    pool: AsyncConnectionPool[Conn], vault: Vault, org_id: UUID
) -> SlackInteractionSettings | None:
    """The org's Slack settings from the database (None: it has no Slack
    channel, or there is no such org); remembers the signing secret."""
    async with org_transaction(pool, org_id) as conn:
        row = await fetch_dict(conn, repo.SLACK_INTERACTIONS, {"org_id": org_id})
    if row is None:
        SIGNING_SECRETS.put(org_id, None)
        return None
    secrets = await open_secrets(vault, org_id, "slack", msgspec.convert(row, SealedRow))
    assert isinstance(secrets, SlackSecrets)  # the slack channel's secrets are SlackSecrets
    SIGNING_SECRETS.put(org_id, secrets.signing_secret)
    return SlackInteractionSettings(
        org_slug=row["org_slug"],
        interactive=row["interactive_approvals"],
        team_id=row["slack_team_id"],
        app_id=row["slack_app_id"],
        secrets=secrets,
    )


@dataclass(frozen=True, slots=True)
class Remembered:
    secret: Secret | None
    at: float


class SigningSecrets:
    """Each org's Slack signing secret (or that it has none), remembered for
    ``ttl`` seconds by at most ``size`` orgs, the oldest forgotten first.

    The secret only decides whether a request's signature is worth reading
    further; what a verified click may do is decided on settings read fresh.
    """

    def __init__(
        self,
        *,
        ttl: float = 30.0,
        size: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[UUID, Remembered] = OrderedDict()

    def age(self, entry: Remembered) -> float:
        return self._clock() - entry.at

    def get(self, org_id: UUID) -> Remembered | None:
        entry = self._entries.get(org_id)
        if entry is not None and self.age(entry) >= self._ttl:
            del self._entries[org_id]
            return None
        return entry

    def put(self, org_id: UUID, secret: Secret | None) -> None:
        self._entries.pop(org_id, None)
        self._entries[org_id] = Remembered(secret, self._clock())
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def forget(self, org_id: UUID) -> None:
        self._entries.pop(org_id, None)


# This process's memory of signing secrets (clicks reach any process).
SIGNING_SECRETS = SigningSecrets()
