"""Slack: the Block Kit message, posting it, and who clicked a button.

A message goes out either with the Slack app's bot (``chat.postMessage``:
``Authorization: Bearer xoxb-…``, a JSON body, HTTP 200 with ``ok: false``
on failure) or through an incoming webhook (plain-text ``ok``). It has a
``text`` fallback for notifications and screen readers, a summary, the
reasons policy gave, the params, and buttons: "Review" opens ARX's review
page; with interactive approvals on, "Approve" and "Reject" carry the
request's id (``value``), and ARX re-authorises whoever clicks
(``arx.approvals.notify.interactions``). Limits from Block Kit's reference
(header 150 characters, a field 2000, section text 3000, button text 75, a
button URL 3000) are kept by cutting agent text well inside them. A message
whose params or reasons had to be cut says so and offers the Review link
only: nobody approves from Slack what Slack did not show in full.

Setting up the bot asks Slack who the token is (``auth.test``): the
workspace (team) and app it belongs to are kept with the channel, and a
click is believed only from them.

The bot token and a webhook URL arrive as ``Secret`` and are revealed only
in the request that sends them (the Authorization header, the URL posted to).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import httpx
import msgspec

from arx.approvals.notify import delivery, urls
from arx.approvals.notify.delivery import Answer, Outcome
from arx.approvals.notify.text import (
    TRUNCATED,
    clip,
    pretty_params,
    slack_code,
    slack_code_block,
    slack_escape,
    slack_span,
    visible,
)
from arx.approvals.notify.types import Summary
from arx.vault.secret import Secret

ACTION_REVIEW = "arx_review"
ACTION_APPROVE = "arx_approve"
ACTION_REJECT = "arx_reject"
DECISION_BLOCK = "arx_decision"
JSON_UTF8 = "application/json; charset=utf-8"

# Slack error codes that a later attempt may get past.
_TRANSIENT = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
     "request_timeout"}
)  # fmt: skip
MAX_REASONS = 5
_REASON_CHARS = 200
# Inside the params' fences: with "*Params*", the fences and the truncation
# note, the section stays under Block Kit's 3000 characters.
_PARAMS_CHARS = 2800
# Slack's ids (teams, users, apps): upper-case letters and digits.
SLACK_ID = re.compile(r"[A-Z0-9]{1,32}")


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: no automatic linking of URLs, channel names or mentions.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": False}


def _expiry(summary: Summary) -> str:
    return summary.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def fallback_text(summary: Summary) -> str:
    """The notification text: mrkdwn, so escaped; no params."""
    return slack_escape(
        visible(
            f"Approval requested: agent {clip(summary.agent_name, 100)} wants to run "
            f"{summary.connector} {summary.operation} (risk {summary.risk_score}). "
            f"Review: {summary.review_url}"
        )
    )


def _reasons(summary: Summary) -> tuple[str, bool]:
    """The reasons section, and whether it leaves anything out."""
    spans = [slack_span(r, _REASON_CHARS) for r in summary.reasons[:MAX_REASONS]]
    lines = [f"• {span.text}" for span in spans]
    cut = any(span.cut for span in spans) or len(summary.reasons) > MAX_REASONS
    if len(summary.reasons) > MAX_REASONS:
        lines.append(f"…and {len(summary.reasons) - MAX_REASONS} more on the review page")
    if cut:
        lines.append(f"_{TRUNCATED}_")
    return "*Why policy escalated*\n" + ("\n".join(lines) or "_no reason given_"), cut


def _params(summary: Summary) -> tuple[str, bool]:
    block = slack_code_block(pretty_params(summary.params), _PARAMS_CHARS)
    note = f"\n_{TRUNCATED}_" if block.cut else ""
    return f"*Params*\n{block.text}{note}", block.cut


def _buttons(summary: Summary, *, interactive: bool) -> list[dict[str, Any]]:
    review: dict[str, Any] = {
        "type": "button",
        "action_id": ACTION_REVIEW,
        "text": _plain("Review"),
        "url": summary.review_url,
    }
    if not interactive:
        return [{**review, "style": "primary"}]
    request = str(summary.approval_id)
    return [
        review,
        {
            "type": "button",
            "action_id": ACTION_APPROVE,
            "style": "primary",
            "text": _plain("Approve"),
            "value": request,
        },
        {
            "type": "button",
            "action_id": ACTION_REJECT,
            "style": "danger",
            "text": _plain("Reject"),
            "value": request,
            "confirm": {
                "title": _plain("Reject this request?"),
                "text": _plain("One rejection rejects it; the agent is told."),
                "confirm": _plain("Reject"),
                "deny": _plain("Cancel"),
            },
        },
    ]


def message(summary: Summary, *, interactive: bool) -> dict[str, Any]:
    """``text`` and ``blocks`` of the message (channel and delivery options apart).

    Approve and Reject are offered only when ``interactive`` and the message
    shows the params and reasons in full.
    """
    reasons, reasons_cut = _reasons(summary)
    params, params_cut = _params(summary)
    fields = [
        _mrkdwn(f"*Agent*\n{slack_code(summary.agent_name, 100)}"),
        _mrkdwn(f"*Operation*\n{slack_code(f'{summary.connector} {summary.operation}', 200)}"),
        _mrkdwn(f"*Risk score*\n{summary.risk_score}/100"),
        _mrkdwn(f"*Approvals required*\n{summary.approvals_required}"),
        _mrkdwn(f"*Expires*\n{_expiry(summary)}"),
    ]
    if summary.policy_id:
        fields.append(_mrkdwn(f"*Policy rule*\n{slack_code(summary.policy_id, 100)}"))
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": _plain(
                clip(visible(f"Approval requested: {summary.connector} {summary.operation}"), 150)
            ),
        },
        {"type": "section", "fields": fields},
        {"type": "section", "text": _mrkdwn(reasons)},
        {"type": "section", "text": _mrkdwn(params)},
        {
            "type": "context",
            "elements": [
                _mrkdwn(
                    f"Request {slack_code(str(summary.approval_id), 40)} in org "
                    f"{slack_code(summary.org_slug, 63)}"
                )
            ],
        },
        {
            "type": "actions",
            "block_id": DECISION_BLOCK,
            "elements": _buttons(
                summary, interactive=interactive and not (reasons_cut or params_cut)
            ),
        },
    ]
    return {"text": fallback_text(summary), "blocks": blocks}


def _options(body: dict[str, Any]) -> bytes:
    # No unfurling: a link in the message must not be fetched and previewed.
    return msgspec.json.encode({**body, "unfurl_links": False, "unfurl_media": False})


# --- posting -----------------------------------------------------------------------


class _ApiAnswer(msgspec.Struct, frozen=True):
    ok: bool = False
    error: str | None = None


def _api_outcome(answer: Answer) -> Outcome:
    """chat.postMessage's meaning: HTTP 200 carries ``ok``, true or false."""
    if answer.status != 200:
        return delivery.by_status(answer)
    try:
        parsed = msgspec.json.decode(answer.body, type=_ApiAnswer)
    except msgspec.DecodeError:
        return delivery.failed("HTTP 200 without Slack's JSON answer")
    except msgspec.ValidationError:
        return delivery.failed("HTTP 200 with an unexpected JSON answer")
    if parsed.ok:
        return delivery.DELIVERED
    code = delivery.vendor_code(parsed.error) or "unknown_error"
    if code in _TRANSIENT:
        return delivery.retryable(f"Slack error {code}", delivery.retry_after_of(answer.headers))
    return delivery.failed(f"Slack error {code}")


async def post_with_bot(
    http: httpx.AsyncClient,
    *,
    api_url: str,
    token: Secret,
    channel: str,
    body: dict[str, Any],
    seconds: float,
) -> Outcome:
    answer = await delivery.post(
        http,
        f"{api_url}/chat.postMessage",
        _options({"channel": channel, **body}),
        headers={"authorization": f"Bearer {token.reveal()}", "content-type": JSON_UTF8},
        seconds=seconds,
    )
    if isinstance(answer, Outcome):
        return answer
    return _api_outcome(answer)


async def post_to_webhook(
    http: httpx.AsyncClient, *, url: Secret, body: dict[str, Any], seconds: float
) -> Outcome:
    answer = await delivery.post(
        http, url.reveal(), _options(body), headers={"content-type": JSON_UTF8}, seconds=seconds
    )
    if isinstance(answer, Outcome):
        return answer
    if 200 <= answer.status < 300:
        return delivery.DELIVERED
    # Incoming webhooks answer errors as plain-text codes (no_service,
    # invalid_payload); what anything but Slack answers is not recorded.
    if not urls.vendor_url("slack", url.reveal()):
        return delivery.by_status(answer, detailed=False)
    return delivery.by_status(answer, code=delivery.vendor_code(answer.body))


# --- whose bot token -----------------------------------------------------------------------


class _AuthTest(msgspec.Struct, frozen=True):
    ok: bool = False
    error: str | None = None
    team_id: str | None = None
    user_id: str | None = None
    bot_id: str | None = None
    # Present in newer answers (Slack's SDKs declare it); kept when given.
    app_id: str | None = None


@dataclass(frozen=True, slots=True)
class Bot:
    """The workspace (team) and app a bot token belongs to."""

    team_id: str
    app_id: str | None


async def bot_identity(
    http: httpx.AsyncClient, *, api_url: str, token: Secret, seconds: float
) -> Bot | Outcome:
    """``auth.test`` with the bot token: whose it is (no scope needed)."""
    answer = await delivery.post(
        http,
        f"{api_url}/auth.test",
        b"{}",
        headers={"authorization": f"Bearer {token.reveal()}", "content-type": JSON_UTF8},
        seconds=seconds,
    )
    if isinstance(answer, Outcome):
        return answer
    outcome = _api_outcome(answer)  # HTTP 200 with ok, as chat.postMessage
    if not outcome.delivered:
        return outcome
    try:
        found = msgspec.json.decode(answer.body, type=_AuthTest)
    except (msgspec.DecodeError, msgspec.ValidationError):
        found = _AuthTest()
    if not (found.team_id and SLACK_ID.fullmatch(found.team_id)):
        return delivery.failed("Slack's answer does not name the bot's workspace")
    app_id = found.app_id if found.app_id and SLACK_ID.fullmatch(found.app_id) else None
    return Bot(team_id=found.team_id, app_id=app_id)


# --- who clicked -------------------------------------------------------------------------


class _Profile(msgspec.Struct, frozen=True):
    email: str | None = None


class _User(msgspec.Struct, frozen=True):
    id: str = ""
    team_id: str | None = None
    deleted: bool = False
    is_bot: bool = False
    # Slack's own word that the address is confirmed; absent means it is not.
    is_email_confirmed: bool = False
    profile: _Profile = msgspec.field(default_factory=_Profile)


class _UserInfo(msgspec.Struct, frozen=True):
    ok: bool = False
    error: str | None = None
    user: _User | None = None


@dataclass(frozen=True, slots=True)
class SlackPerson:
    """A Slack user as ``users.info`` describes them: ``email`` is set only
    when Slack confirms it; ``refusal`` says why nobody can be named."""

    email: str | None
    refusal: str | None = None


async def person(
    http: httpx.AsyncClient,
    *,
    api_url: str,
    token: Secret,
    user_id: str,
    team_id: str,
    seconds: float,
) -> SlackPerson:
    """``users.info`` (scopes users:read and users:read.email) for the clicking
    user, who must belong to the workspace ``team_id``. ``seconds`` bounds the
    whole request."""
    answer = await delivery.get(
        http,
        f"{api_url}/users.info",
        params={"user": user_id},
        headers={"authorization": f"Bearer {token.reveal()}"},
        seconds=seconds,
    )
    if isinstance(answer, Outcome) or answer.status != 200:
        return SlackPerson(None, "Slack could not be asked who you are")
    try:
        info = msgspec.json.decode(answer.body, type=_UserInfo)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return SlackPerson(None, "Slack's answer about you could not be read")
    user = info.user
    if not info.ok or user is None or user.id != user_id:
        return SlackPerson(None, "Slack did not describe your account")
    # In order: each names the first thing that keeps this user from voting.
    refusals = (
        (user.team_id != team_id, "your Slack account belongs to another workspace"),
        (user.deleted or user.is_bot, "your Slack account cannot approve"),
        (not user.profile.email, "Slack did not share your email address"),
        (not user.is_email_confirmed, "Slack has not confirmed your email address"),
    )
    refusal = next((why for refused, why in refusals if refused), None)
    return SlackPerson(None if refusal else user.profile.email, refusal)
