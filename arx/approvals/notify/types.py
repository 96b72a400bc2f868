"""Shapes of reviewer notifications: channel settings, deliveries, claimed jobs.

Requests forbid unknown fields. A secret (a bot token, a webhook URL, a
signing secret) appears only in the request that sets it, as a plain string
checked against the rules below (its ``repr`` and rich's display redact it),
and in the sealed ``*Secrets`` structs, as a ``Secret`` from the moment the
request is accepted; answers say whether each is set, and a webhook's host.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from arx.vault.secret import REDACTED, Secret

ChannelKind = Literal["slack", "teams"]
DeliveryStatus = Literal["pending", "delivered", "failed", "skipped"]

# "(?!\n)$": Python's "$" also matches before a final newline, ECMA's does not;
# this keeps what is accepted exactly what the OpenAPI document says.
BotToken = Annotated[
    str,
    msgspec.Meta(
        min_length=6,
        max_length=255,
        pattern=r"^xoxb-[A-Za-z0-9-]+(?!\n)$",
        description="A Slack bot token (xoxb-...), sealed and never returned.",
    ),
]
SlackChannelId = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[CGD][A-Z0-9]{2,63}(?!\n)$",
        description="The id of the Slack channel to post in (C0123456789), not its name.",
    ),
]
SigningSecret = Annotated[
    str,
    msgspec.Meta(
        min_length=8,
        max_length=256,
        pattern=r"^[A-Za-z0-9]+(?!\n)$",
        description="The Slack app's signing secret, sealed and never returned.",
    ),
]
# Which URLs a deployment accepts depends on ARX_ALLOW_INSECURE_CONNECTOR_URLS:
# checked by arx.approvals.notify.channels, documented by its components().
WebhookUrl = Annotated[str, msgspec.Meta(min_length=8, max_length=2048)]


# --- requests ----------------------------------------------------------------------

# The request bodies hold their secrets as strings: msgspec checks a string's
# pattern and length (and the OpenAPI document shows them), which it cannot do
# for a Secret. The handlers wrap each in a Secret before anything else reads it
# (arx.approvals.notify.channels); until then repr and rich's display (msgspec's
# __rich_repr__ lists every field) show none of them.


class SlackBot(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag="bot",
    tag_field="mode",
):
    """Post with the Slack app's bot (chat.postMessage; scopes chat:write,
    users:read, users:read.email). ARX asks Slack (auth.test) which workspace
    and app the token belongs to, and keeps both."""

    bot_token: BotToken
    channel: SlackChannelId
    signing_secret: SigningSecret | None = None
    # Opt-in: Approve/Reject buttons that vote as the clicking reviewer.
    # Needs the signing secret; only an owner may turn it on.
    interactive_approvals: bool = False

    def __repr__(self) -> str:
        return f"SlackBot(channel={self.channel!r}, <secrets redacted>)"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [
            ("channel", self.channel),
            ("bot_token", REDACTED),
            ("signing_secret", None if self.signing_secret is None else REDACTED),
            ("interactive_approvals", self.interactive_approvals),
        ]


class SlackWebhook(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag="webhook",
    tag_field="mode",
):
    """Post through an incoming webhook (the URL is the secret); no buttons
    other than the link to the review page."""

    webhook_url: WebhookUrl

    def __repr__(self) -> str:
        return "SlackWebhook(<secret redacted>)"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [("webhook_url", REDACTED)]


SetSlack = SlackBot | SlackWebhook


class SetTeams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A Teams Workflows webhook ("When a Teams webhook request is received")."""

    webhook_url: WebhookUrl

    def __repr__(self) -> str:
        return "SetTeams(<secret redacted>)"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [("webhook_url", REDACTED)]


class RetryDelivery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Why it is retried (what was fixed): kept in the audit trail.
    comment: Annotated[str, msgspec.Meta(max_length=500, pattern=r"^[^\x00]*$")] = ""


# --- answers -------------------------------------------------------------------------


class SlackChannelInfo(msgspec.Struct, frozen=True, kw_only=True):
    mode: Literal["bot", "webhook"]
    channel: str | None
    bot_token_set: bool
    webhook_url_set: bool
    signing_secret_set: bool
    interactive_approvals: bool
    webhook_host: str | None
    # The bot's workspace and app, as Slack's auth.test named them (bot mode):
    # clicks are believed from this workspace (and app) only.
    slack_team_id: str | None
    slack_app_id: str | None
    # Where the Slack app's Interactivity Request URL must point.
    interactions_url: str
    updated_at: datetime
    updated_by: str


class TeamsChannelInfo(msgspec.Struct, frozen=True, kw_only=True):
    webhook_url_set: bool
    webhook_host: str | None
    updated_at: datetime
    updated_by: str


class ChannelsInfo(msgspec.Struct, frozen=True, kw_only=True):
    slack: SlackChannelInfo | None
    teams: TeamsChannelInfo | None


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One notification of one approval request on one channel."""

    id: UUID
    approval_id: UUID
    channel: ChannelKind
    status: DeliveryStatus
    attempts: int
    # What went wrong last (a status code, the vendor's error code): never a secret.
    last_error: str | None
    # When the next attempt is due (pending only).
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


class SlackReply(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What ARX tells Slack about an interaction: the HTTP answer is a bare
    ack ({}); a message only the clicking person sees goes to the
    interaction's response_url."""

    response_type: Literal["ephemeral"] | None = None
    replace_original: bool | None = None
    text: str | None = None


# --- sealed secrets ------------------------------------------------------------------
# Sealed with the vault's reveal_hook and opened with its secret_dec_hook; in
# memory each value is a Secret (repr, str and rich's display print ***), read
# with reveal() only where it is sent (arx.approvals.notify.slack and .teams,
# and the signature check in .interactions).


class SlackSecrets(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    bot_token: Secret | None = None
    # A webhook URL carries its secret in its path: the whole URL is a Secret.
    webhook_url: Secret | None = None
    signing_secret: Secret | None = None


class TeamsSecrets(msgspec.Struct, frozen=True, kw_only=True):
    webhook_url: Secret


class SealedRow(msgspec.Struct, frozen=True, kw_only=True):
    """A channel's sealed secrets as stored."""

    version: int
    kek_id: str
    wrapped_dek: bytes
    nonce: bytes
    ciphertext: bytes

    def __repr__(self) -> str:
        return f"SealedRow(v{self.version}, <{len(self.ciphertext)} bytes>)"


# --- the queue ---------------------------------------------------------------------


class Job(msgspec.Struct, frozen=True, kw_only=True):
    """A claimed job: one attempt's worth of what its message needs.

    The channel's fields are None when the org removed the channel after the
    job was queued.
    """

    job_id: UUID
    # This claim's token: recording the outcome needs it (arx.finish_notification_job).
    claim_token: UUID
    org_id: UUID
    org_slug: str
    approval_id: UUID
    channel: ChannelKind
    attempt: int
    approval_status: str
    agent_name: str
    connector: str
    operation: str
    params: dict[str, Any]
    risk_score: int
    reasons: list[str] | None
    policy_id: str | None
    approvals_required: int
    expires_at: datetime
    mode: str | None
    slack_channel: str | None
    interactive_approvals: bool | None
    secret_version: int | None
    kek_id: str | None
    wrapped_dek: bytes | None
    nonce: bytes | None
    ciphertext: bytes | None

    @property
    def sealed(self) -> SealedRow | None:
        if (
            self.secret_version is None
            or self.kek_id is None
            or self.wrapped_dek is None
            or self.nonce is None
            or self.ciphertext is None
        ):
            return None
        return SealedRow(
            version=self.secret_version,
            kek_id=self.kek_id,
            wrapped_dek=self.wrapped_dek,
            nonce=self.nonce,
            ciphertext=self.ciphertext,
        )


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """What a reviewer's message says about one approval request."""

    approval_id: UUID
    org_slug: str
    agent_name: str
    connector: str
    operation: str
    params: dict[str, Any]
    risk_score: int
    reasons: list[str]
    policy_id: str | None
    approvals_required: int
    expires_at: datetime
    review_url: str
    queue_url: str

    @classmethod
    def of(cls, job: Job, public_url: str) -> Summary:
        queue_url = f"{public_url}/review/{job.org_slug}"
        return cls(
            approval_id=job.approval_id,
            org_slug=job.org_slug,
            agent_name=job.agent_name,
            connector=job.connector,
            operation=job.operation,
            params=job.params,
            risk_score=job.risk_score,
            reasons=list(job.reasons or ()),
            policy_id=job.policy_id,
            approvals_required=job.approvals_required,
            expires_at=job.expires_at,
            review_url=f"{queue_url}/approvals/{job.approval_id}",
            queue_url=queue_url,
        )
