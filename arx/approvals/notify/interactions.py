"""Slack's Approve and Reject buttons: opt-in per org, and only for reviewers.

Slack posts each click to ``/v1/slack/interactions/{org_id}``. The org is in
the path (its id: the URL its admins paste into the Slack app's
Interactivity settings, shown by the channel settings), so that the one
signing secret that can vouch for the request is known before anything in
the request is read: the raw body's signature (``v0=`` HMAC-SHA256 of
``v0:{timestamp}:{body}``, compared in constant time, timestamp within five
minutes) is checked first. An unknown org, an org without a signing secret
and a wrong signature all get the same 401. The signing secret (or that
there is none) is remembered briefly in the process
(``channels.SIGNING_SECRETS``): a flood of unsigned requests costs an HMAC
each and no database round trip, and a remembered secret that fails is
looked up again at most every ``REFRESH_SECONDS`` (it may have changed in
another process).

A verified click votes only when every one of these holds, read fresh from
the database, else nothing changes and the clicker is told, privately, to
use the review page:
- the org turned interactive approvals on (and still has them on);
- the click comes from the Slack workspace (``team.id``, and the user's
  ``team_id``) and app (``api_app_id``, when Slack named one) that Slack's
  ``auth.test`` named for the org's bot token: another workspace's secrets
  vouch for nothing here;
- Slack, asked with the org's bot token (``users.info``), names the clicker
  as a member of that workspace with an email address it has confirmed
  (``is_email_confirmed``);
- that address is an active member of the org holding the reviewer role;
- the org has no admin allowlist. Slack's servers make the request, not the
  reviewer's device, so nothing vouches for the reviewer's network, which an
  allowlist exists to check: in such an org people vote on the review page.
The vote itself is ``arx.approvals.review.vote`` with the person's access,
exactly as on the review page (one vote per person, audited), with the
comment "via Slack (team T…, user U…)", so the trail names the Slack
account that clicked. Slack is answered within its three seconds with a
bare acknowledgement (for ``block_actions`` Slack shows nothing of that
answer); what happened goes to the clicker only, as an ephemeral message
through the interaction's ``response_url``.

Whoever holds both the org's signing secret and its bot token can still
sign a click naming any user of that workspace: that is why only an owner
may turn interactive approvals on (``channels.set_slack``).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import httpx
import msgspec

from arx.approvals import review
from arx.approvals.notify import channels, delivery, repo, slack, urls
from arx.approvals.notify.channels import SlackInteractionSettings
from arx.approvals.notify.types import SlackReply
from arx.config import Settings
from arx.db.pool import fetch_dict, org_transaction
from arx.errors import (
    AddressNotAllowedError,
    ARXError,
    BadRequestError,
    NotFoundError,
    RequestSignatureError,
    UnsupportedMediaTypeError,
)
from arx.identity.control import ControlPlane
from arx.identity.principal import Access
from arx.identity.roles import Role
from arx.logs import get_logger
from arx.vault.secret import Secret
from arx.vault.service import Vault

log = get_logger("arx.approvals.notify.slack")

MAX_AGE_SECONDS = 300
# users.info must answer well inside Slack's three seconds: this bounds the
# whole request (connecting, sending, reading), not each step.
USERS_INFO_TIMEOUT_SECONDS = 2.0
# A remembered signing secret that does not verify a request is looked up
# again, but not more often than this.
REFRESH_SECONDS = 5.0
COMMENT = "via Slack"
_FORM = "application/x-www-form-urlencoded"
# A secret that matches nothing: an org without one costs the same HMAC.
_NO_SECRET = b"arx: no signing secret is configured"


@dataclass(frozen=True, slots=True)
class Reply:
    """What the clicker is told privately (through ``response_url``), if anything.
    Slack itself is always answered with a bare acknowledgement."""

    text: str | None = None
    response_url: str | None = None

    @property
    def message(self) -> SlackReply:
        return SlackReply(response_type="ephemeral", replace_original=False, text=self.text)


ACK = SlackReply()


# --- the request ------------------------------------------------------------------------


class _User(msgspec.Struct, frozen=True):
    id: str
    team_id: str | None = None


class _Team(msgspec.Struct, frozen=True):
    id: str


class _Action(msgspec.Struct, frozen=True):
    action_id: str = ""
    value: str | None = None


class _Payload(msgspec.Struct, frozen=True):
    type: str
    user: _User | None = None
    team: _Team | None = None
    api_app_id: str | None = None
    actions: list[_Action] = []
    response_url: str | None = None


def verify(secret: Secret | None, headers: Mapping[str, str], body: bytes, *, now: float) -> None:
    """Slack's request signature, or ``RequestSignatureError``. The secret is
    revealed only as the HMAC's key."""
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    # Unix seconds, digits only (int() would also take "+1_0", and a huge
    # value would overflow the float arithmetic below).
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise RequestSignatureError("X-Slack-Request-Timestamp is missing or malformed")
    age = abs(now - int(timestamp))
    key = secret.reveal().encode() if secret is not None else _NO_SECRET
    expected = "v0=" + hmac.new(key, f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    del key  # the plaintext key stays out of the frame a traceback would show
    matches = hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))
    if secret is None or not matches:
        raise RequestSignatureError("the request is not signed by this org's Slack app")
    if age > MAX_AGE_SECONDS:
        raise RequestSignatureError("the request is more than five minutes old")


def _payload(headers: Mapping[str, str], body: bytes) -> _Payload:
    media = headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != _FORM:
        raise UnsupportedMediaTypeError(f"Slack sends interactions as {_FORM}")
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=True, max_num_fields=10)
        (raw,) = fields["payload"]
        return msgspec.json.decode(raw, type=_Payload)
    except (UnicodeDecodeError, ValueError, KeyError, msgspec.DecodeError):
        raise BadRequestError("the body must be one form field, payload, holding JSON") from None
    except RecursionError:
        raise BadRequestError("the payload is nested too deeply") from None


def response_url_allowed(url: str | None, *, allow_insecure: bool) -> str | None:
    """Slack's response_url, if it is one: https on slack.com (or, where the
    deployment allows a local receiver, a loopback IP address)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.username is not None or parts.password is not None:
        return None
    if parts.scheme == "https" and (host == "slack.com" or host.endswith(".slack.com")):
        return url
    if allow_insecure and urls.is_loopback_literal(host) and parts.scheme in {"http", "https"}:
        return url
    return None


# --- handling ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deps:
    """What handling a click uses from the runtime."""

    plane: ControlPlane
    vault: Vault
    http: httpx.AsyncClient
    settings: Settings


async def _signing_secret(deps: Deps, org_id: UUID) -> Secret | None:
    settings = await channels.slack_interaction_settings(deps.plane.pool, deps.vault, org_id)
    return settings.secrets.signing_secret if settings else None


async def _check_signature(
    deps: Deps, org_id: UUID, headers: Mapping[str, str], body: bytes, *, now: float
) -> None:
    """The signature, against the remembered secret where there is one."""
    remembered = channels.SIGNING_SECRETS.get(org_id)
    if remembered is None:
        verify(await _signing_secret(deps, org_id), headers, body, now=now)
        return
    try:
        verify(remembered.secret, headers, body, now=now)
    except RequestSignatureError:
        if channels.SIGNING_SECRETS.age(remembered) < REFRESH_SECONDS:
            raise
        # It may have changed in another process since it was remembered.
        verify(await _signing_secret(deps, org_id), headers, body, now=now)


async def handle(deps: Deps, org_id: UUID, headers: Mapping[str, str], body: bytes) -> Reply:
    """``headers`` with lower-case names; ``body`` exactly as received."""
    now = time.time()
    await _check_signature(deps, org_id, headers, body, now=now)
    payload = _payload(headers, body)
    if payload.type != "block_actions":
        return Reply()
    wanted = (slack.ACTION_APPROVE, slack.ACTION_REJECT)
    choice = next((a for a in payload.actions if a.action_id in wanted), None)
    if choice is None:
        return Reply()  # the Review link button: Slack only wants an ack
    # What a click may do is decided on the settings as they are now.
    config = await channels.slack_interaction_settings(deps.plane.pool, deps.vault, org_id)
    verify(config.secrets.signing_secret if config else None, headers, body, now=now)
    assert config is not None  # verify refuses an org without a signing secret
    user = payload.user.id if payload.user else None
    page = f"{deps.settings.public_url}/review/{config.org_slug}"
    try:
        approval_id = UUID(choice.value or "")
    except ValueError:
        text = _refusal(org_id, user, "this button does not name an ARX request", page)
    else:
        page = f"{page}/approvals/{approval_id}"
        approve = choice.action_id == slack.ACTION_APPROVE
        try:
            text = await _vote(deps, config, org_id, payload, approval_id, approve=approve)
        except _Refused as refused:
            text = _refusal(org_id, user, refused.reason, page)
    respond_to = response_url_allowed(
        payload.response_url, allow_insecure=deps.settings.allow_insecure_connector_urls
    )
    return Reply(text=text, response_url=respond_to)


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _refusal(org_id: UUID, user: str | None, reason: str, page: str) -> str:
    log.info(
        "slack interaction refused",
        extra={"org_id": str(org_id), "slack_user": user, "reason": reason},
    )
    return f"Nothing was recorded: {reason}. Please decide on the review page: {page}"


@dataclass(frozen=True, slots=True)
class _Clicker:
    """The Slack account a click names, from the workspace the org's bot is in."""

    team_id: str
    user_id: str


def _clicker(config: SlackInteractionSettings, payload: _Payload) -> _Clicker:
    """Who clicked, if the click comes from the org's own workspace and app."""
    team = config.team_id
    if team is None:
        raise _Refused("ARX does not know this org's Slack workspace; set the Slack bot again")
    user = payload.user
    if user is None or not slack.SLACK_ID.fullmatch(user.id):
        raise _Refused("Slack did not say who clicked")
    elsewhere = (
        payload.team is None
        or payload.team.id != team
        or (user.team_id is not None and user.team_id != team)
        or (config.app_id is not None and payload.api_app_id != config.app_id)
    )
    if elsewhere:
        raise _Refused(
            "this click comes from another Slack workspace or app than the one this org's "
            "channel is set up with"
        )
    return _Clicker(team_id=team, user_id=user.id)


async def _reviewer(
    deps: Deps, config: SlackInteractionSettings, org_id: UUID, clicker: _Clicker
) -> Access:
    """The clicking person's access, if Slack vouches for a reviewer of the org."""
    settings = deps.settings
    usable = urls.slack_api_url_allowed(
        settings.slack_api_url, allow_insecure=settings.allow_insecure_connector_urls
    )
    if not config.secrets.bot_token or not usable:
        raise _Refused("ARX cannot ask Slack who you are")
    found = await slack.person(
        deps.http,
        api_url=settings.slack_api_url,
        token=config.secrets.bot_token,
        user_id=clicker.user_id,
        team_id=clicker.team_id,
        seconds=min(USERS_INFO_TIMEOUT_SECONDS, settings.notify_timeout_seconds),
    )
    if found.email is None:
        raise _Refused(found.refusal or "Slack did not vouch for your email address")
    plane = deps.plane
    async with org_transaction(plane.pool, org_id) as conn:
        member = await fetch_dict(conn, repo.MEMBER_BY_EMAIL, {"email": found.email})
    if member is None:
        raise _Refused("your Slack email address is not an active member of this ARX org")
    try:
        access = await plane.access(plane.user(member["id"], member["email"]), org_id, None)
    except AddressNotAllowedError:
        raise _Refused(
            "this org accepts decisions only from its admin allowlist's networks"
        ) from None
    except NotFoundError:
        raise _Refused("you are not an active member of this ARX org") from None
    if Role.REVIEWER not in access.roles:
        raise _Refused("you do not hold the reviewer role in this ARX org")
    return access


async def _vote(
    deps: Deps,
    config: SlackInteractionSettings,
    org_id: UUID,
    payload: _Payload,
    approval_id: UUID,
    *,
    approve: bool,
) -> str:
    if not config.interactive:
        raise _Refused("approving from Slack is switched off for this org")
    clicker = _clicker(config, payload)
    access = await _reviewer(deps, config, org_id, clicker)
    # The audit trail's vote names the Slack account that clicked, beside the person.
    comment = f"{COMMENT} (team {clicker.team_id}, user {clicker.user_id})"
    try:
        detail = await review.vote(
            deps.plane.pool, access, approval_id, approve=approve, comment=comment
        )
    except ARXError as exc:
        if exc.status_code >= 500:
            raise
        raise _Refused(exc.detail) from None
    verb = "approval" if approve else "rejection"
    return f"Your {verb} of request {approval_id} was recorded; it is now {detail.status}."


async def send_response(
    http: httpx.AsyncClient, reply: Reply, *, seconds: float = USERS_INFO_TIMEOUT_SECONDS
) -> None:
    """Post the reply to Slack's response_url (after the ack went out)."""
    if reply.response_url is None or reply.text is None:
        return
    answer = await delivery.post(
        http,
        reply.response_url,
        msgspec.json.encode(reply.message),
        headers={"content-type": slack.JSON_UTF8},
        seconds=seconds,
    )
    if isinstance(answer, delivery.Outcome) or not 200 <= answer.status < 300:
        log.warning("slack response_url did not take the reply")
