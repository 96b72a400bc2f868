"""Microsoft Teams: an Adaptive Card posted to a Workflows webhook.

The body is the envelope Microsoft documents for webhooks, a ``message``
whose one attachment is an Adaptive Card (version 1.4). Its only actions are
``Action.OpenUrl`` to ARX's review page and queue: Workflows webhooks do not
deliver ``Action.Submit`` back to the sender, and a vote needs a signed-in
reviewer anyway. Agent text in TextBlocks and facts is Markdown-escaped;
the params go in a RichTextBlock's TextRun, which Adaptive Cards never read
as Markdown. Invisible and direction-changing characters are shown as their
code points, and params or reasons that had to be cut say so, sending the
reviewer to the review page. Any 2xx is success (202 is what the HTTP
trigger answers); what a host other than Microsoft's answers is recorded by
its status class only.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import httpx
import msgspec

from arx.approvals.notify import delivery, urls
from arx.approvals.notify.delivery import Outcome
from arx.approvals.notify.text import TRUNCATED, params_json, teams_escape, teams_text
from arx.approvals.notify.types import Summary
from arx.vault.secret import Secret

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"
MAX_REASONS = 5
_PARAMS_CHARS = 2000


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def card(summary: Summary) -> dict[str, Any]:
    """The Adaptive Card (the attachment's ``content``)."""
    agent = teams_escape(summary.agent_name, 100)
    operation = teams_escape(f"{summary.connector} {summary.operation}", 200)
    facts = [
        {"title": "Agent", "value": agent},
        {"title": "Operation", "value": operation},
        {"title": "Risk score", "value": f"{summary.risk_score}/100"},
        {"title": "Approvals required", "value": str(summary.approvals_required)},
        {"title": "Expires", "value": summary.expires_at.astimezone(UTC).strftime(
            "%Y-%m-%d %H:%M UTC")},
        {"title": "Request", "value": str(summary.approval_id)},
    ]  # fmt: skip
    if summary.policy_id:
        facts.append({"title": "Policy rule", "value": teams_escape(summary.policy_id, 100)})
    shown = [teams_text(r, 200) for r in summary.reasons[:MAX_REASONS]]
    reasons = [_text(f"• {reason.text}") for reason in shown]
    if len(summary.reasons) > MAX_REASONS:
        more = len(summary.reasons) - MAX_REASONS
        reasons.append(_text(f"…and {more} more on the review page", isSubtle=True))
    if len(summary.reasons) > MAX_REASONS or any(reason.cut for reason in shown):
        reasons.append(_text(teams_escape(TRUNCATED, 200), isSubtle=True))
    params = params_json(summary.params, _PARAMS_CHARS)
    params_note = [_text(teams_escape(TRUNCATED, 200), isSubtle=True)] if params.cut else []
    return {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": [
            _text("Approval requested", weight="Bolder", size="Medium"),
            _text(f"Agent {agent} asks to run {operation}."),
            {"type": "FactSet", "facts": facts},
            _text("Why policy escalated", weight="Bolder"),
            *(reasons or [_text("No reason given.", isSubtle=True)]),
            _text("Params", weight="Bolder"),
            {
                "type": "RichTextBlock",
                "inlines": [{"type": "TextRun", "text": params.text, "fontType": "Monospace"}],
            },
            *params_note,
        ],
        "actions": [
            {"type": "Action.OpenUrl", "title": "Review", "url": summary.review_url},
            {"type": "Action.OpenUrl", "title": "Open the queue", "url": summary.queue_url},
        ],
    }


def message(summary: Summary) -> dict[str, Any]:
    """The webhook body: Microsoft's message envelope around the card."""
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_TYPE, "contentUrl": None, "content": card(summary)}],
    }


async def post(
    http: httpx.AsyncClient, *, url: Secret, summary: Summary, seconds: float
) -> Outcome:
    """Post the card to the webhook; the URL (the secret) is revealed only here."""
    answer = await delivery.post(
        http,
        url.reveal(),
        msgspec.json.encode(message(summary)),
        headers={"content-type": "application/json"},
        seconds=seconds,
    )
    if isinstance(answer, Outcome):
        return answer
    if 200 <= answer.status < 300:
        return delivery.DELIVERED
    return delivery.by_status(answer, detailed=urls.vendor_url("teams", url.reveal()))
