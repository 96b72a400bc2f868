"""Reviewer notifications without a database: escaping, limits, signatures,
URL rules, retries, and the HTTP bound (against a local trickling server)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import msgspec
import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.signature import SignatureVerifier

from arx.approvals.notify import delivery, queue, slack, teams
from arx.approvals.notify.channels import SigningSecrets
from arx.approvals.notify.interactions import response_url_allowed, verify
from arx.approvals.notify.text import TRUNCATED, slack_code, teams_escape
from arx.approvals.notify.types import (
    ChannelKind,
    SetTeams,
    SlackBot,
    SlackSecrets,
    SlackWebhook,
    Summary,
    TeamsSecrets,
)
from arx.approvals.notify.urls import check_webhook_url, webhook_url_pattern
from arx.approvals.notify.worker import MAX_BACKOFF_SECONDS, NotificationWorker
from arx.config import ConfigError, Settings, load_settings
from arx.errors import InvalidFieldError, RequestSignatureError
from arx.vault.secret import REDACTED, Secret, reveal_hook, secret_dec_hook

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAMS_PATH = "/workflows/1/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2F&sig=abc"


def _summary(**changes: object) -> Summary:
    approval = uuid.uuid4()
    base: dict[str, object] = {
        "approval_id": approval,
        "org_slug": "acme",
        "agent_name": "responder-bot",
        "connector": "crowdstrike",
        "operation": "hosts:contain",
        "params": {"ids": ["4c1d7e2a9b3f4e5d8a6c0b1e2f3a4d5c"]},
        "risk_score": 70,
        "reasons": ["containment needs a human"],
        "policy_id": "EX-010",
        "approvals_required": 1,
        "expires_at": datetime.now(UTC) + timedelta(hours=1),
        "review_url": f"https://arx.example/review/acme/approvals/{approval}",
        "queue_url": "https://arx.example/review/acme",
    }
    base.update(changes)
    return Summary(**base)  # type: ignore[arg-type]


# --- Slack's signature ---------------------------------------------------------------


def _headers(body: bytes, timestamp: str, secret: str = SECRET) -> dict[str, str]:
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return {"x-slack-request-timestamp": timestamp, "x-slack-signature": signature}


def test_signatures_made_by_slacks_sdk_verify() -> None:
    body = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
    now = time.time()
    verify(Secret(SECRET), _headers(body, str(int(now))), body, now=now)


@pytest.mark.parametrize(
    ("signed_with", "checked_with", "age", "appended", "message"),
    [
        (SECRET, SECRET, 301, b"", "five minutes"),
        (SECRET, SECRET, -301, b"", "five minutes"),
        ("0" * 32, SECRET, 0, b"", "not signed"),  # forged
        (SECRET, SECRET, 0, b"&x=1", "not signed"),  # tampered
        (SECRET, None, 0, b"", "not signed"),  # the org has no signing secret
    ],
)
def test_bad_signatures_are_refused(
    signed_with: str, checked_with: str | None, age: int, appended: bytes, message: str
) -> None:
    body = b"payload=%7B%7D"
    now = time.time()
    headers = _headers(body, str(int(now) - age), signed_with)
    key = None if checked_with is None else Secret(checked_with)
    with pytest.raises(RequestSignatureError, match=message):
        verify(key, headers, body + appended, now=now)


@pytest.mark.parametrize("timestamp", ["", "+1700000000", "1_700_000_000", "9" * 400, "12.5"])
def test_malformed_timestamps_are_refused(timestamp: str) -> None:
    body = b"payload=%7B%7D"
    with pytest.raises(RequestSignatureError, match="malformed"):
        verify(Secret(SECRET), _headers(body, timestamp), body, now=time.time())


def test_response_urls_are_slacks() -> None:
    hook = "https://hooks.slack.com/actions/T0/1/abc"
    assert response_url_allowed(hook, allow_insecure=False) == hook
    assert response_url_allowed("https://evil.example/x", allow_insecure=True) is None
    assert response_url_allowed("http://hooks.slack.com/a", allow_insecure=False) is None
    assert response_url_allowed("https://slack.com.evil.example/a", allow_insecure=False) is None
    assert response_url_allowed("http://127.0.0.1:9/a", allow_insecure=False) is None
    assert response_url_allowed("http://127.0.0.1:9/a", allow_insecure=True) is not None
    assert response_url_allowed("http://[::1]:9/a", allow_insecure=True) is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.evil.example/a",  # a name that starts like a loopback address
        "https://127.0.0.1.evil.example/a",
        "http://localhost.evil.example/a",
        "http://2130706433/a",  # 127.0.0.1 as one number: not an address literal
        "http://127.1/a",
        "https://user@hooks.slack.com/actions/T0/1/abc",
    ],
)
def test_response_urls_that_only_look_local_are_refused(url: str) -> None:
    assert response_url_allowed(url, allow_insecure=True) is None


# --- what agents control ----------------------------------------------------------------


def test_slack_code_spans_hold_any_text() -> None:
    span = slack_code("<!channel> `x` *y* &\nz", 200)
    assert span == "`&lt;!channel&gt; \u02cbx\u02cb *y* &amp; z`"


def test_slack_limits_count_escaped_text() -> None:
    hostile = _summary(
        params={"note": "&" * 5000},
        reasons=["<" * 1000] * 9,
        agent_name="a" * 100,
    )
    message = slack.message(hostile, interactive=True)
    for block in message["blocks"]:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()  # section text <= 3000, fields <= 2000, ...
    reasons = message["blocks"][2]["text"]["text"]
    assert "…and 4 more" in reasons


def _actions(message: dict[str, Any]) -> set[str]:
    (actions,) = [b for b in message["blocks"] if b["type"] == "actions"]
    return {e["action_id"] for e in actions["elements"]}


def _all_text(node: Any) -> str:
    return json.dumps(node, ensure_ascii=False)


def test_whole_messages_offer_slack_votes() -> None:
    message = slack.message(_summary(), interactive=True)
    assert _actions(message) == {slack.ACTION_REVIEW, slack.ACTION_APPROVE, slack.ACTION_REJECT}
    assert TRUNCATED not in _all_text(message)
    assert _actions(slack.message(_summary(), interactive=False)) == {slack.ACTION_REVIEW}


@pytest.mark.parametrize(
    "changes",
    [
        # The agent picks the keys, so what sorts last (after the cut) is its choice.
        {"params": {"a" * 10: "x" * 3000, "zz_delete": "everything"}},
        {"reasons": ["r" * 201]},
        {"reasons": ["one", "two", "three", "four", "five", "six"]},
    ],
    ids=["long params", "long reason", "many reasons"],
)
def test_a_cut_message_says_so_and_offers_no_slack_vote(changes: dict[str, object]) -> None:
    summary = _summary(**changes)
    message = slack.message(summary, interactive=True)
    assert _actions(message) == {slack.ACTION_REVIEW}, "nobody votes on what Slack cut"
    assert TRUNCATED in _all_text(message)
    for block in message["blocks"]:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()
    card = teams.card(summary)
    notes = [b["text"] for b in card["body"] if b["type"] == "TextBlock"]
    assert teams_escape(TRUNCATED, 200) in notes


# U+202E reverses what follows; U+2066 isolates; U+200B, U+FEFF, U+2060 are invisible.
HIDDEN = "rm -rf /tmp/\u202ecod.exe\u2066\u200b\ufeff\u2060\u200f"


def test_invisible_and_bidi_characters_are_shown() -> None:
    summary = _summary(
        params={"path": HIDDEN}, reasons=[f"deletes {HIDDEN}"], agent_name="bot\u202e"
    )
    slack_text = _all_text(slack.message(summary, interactive=True))
    teams_text = _all_text(teams.message(summary))
    for text in (slack_text, teams_text):
        for char in "\u202e\u2066\u200b\ufeff\u2060\u200f":
            assert char not in text, hex(ord(char))
    assert "[U+202E]" in slack_text
    assert "[U+200B]" in slack_text
    # Teams escapes the brackets' Markdown in TextBlocks; the params' TextRun is plain.
    assert r"\\[U\\+202E\\]" in teams_text
    assert "[U+202E]cod.exe" in teams_text


def test_teams_markdown_is_inert() -> None:
    assert teams_escape("[a](https://x.y) **b** _c_ <d> #e", 200) == (
        r"\[a\]\(https\:\/\/x\.y\) \*\*b\*\* \_c\_ \<d\> \#e"
    )
    card = teams.card(_summary(params={"x": "[a](https://evil.example)"}))
    run = card["body"][-1]["inlines"][0]
    assert run["type"] == "TextRun"
    assert "[a](https://evil.example)" in run["text"]  # a TextRun is never Markdown


# --- settings ----------------------------------------------------------------------------


POWER_PLATFORM = (
    "https://default0123456789abcdef0123456789abcd.ef.environment.api.powerplatform.com:443"
    "/powerautomate/automations/direct/workflows/86ffea63/triggers/manual/paths/invoke"
    "?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=abc"
)


@pytest.mark.parametrize(
    ("url", "channel", "insecure", "ok"),
    [
        ("https://hooks.slack.com/services/T/B/X", "slack", False, True),
        ("https://hooks.slack.com:443/services/T/B/X", "slack", False, True),
        (f"https://prod-1.westus.logic.azure.com:443{TEAMS_PATH}", "teams", False, True),
        (f"https://prod-1.westus.logic.azure.com{TEAMS_PATH}", "teams", False, True),
        (POWER_PLATFORM, "teams", False, True),
        ("http://127.0.0.1:8080/hook", "slack", False, False),
        ("http://127.0.0.1:8080/hook", "slack", True, True),
        ("https://127.0.0.1:8080/hook", "teams", True, True),
        ("http://[::1]:8080/hook", "teams", True, True),
        # Each vendor's hosts only: a Slack URL is no Teams webhook, and back.
        ("https://hooks.slack.com/services/T/B/X", "teams", False, False),
        (f"https://prod-1.westus.logic.azure.com{TEAMS_PATH}", "slack", False, False),
        ("http://hooks.slack.com/services/T/B/X", "slack", False, False),
        ("http://localhost/hook", "slack", True, False),
        ("http://hooks.example/hook", "slack", True, False),
        ("https://user:pass@hooks.example/hook", "slack", False, False),
        ("ftp://hooks.example/hook", "slack", True, False),
        ("https://hooks.example/ space", "slack", False, False),
    ],
)  # fmt: skip
def test_webhook_urls(url: str, channel: ChannelKind, insecure: bool, ok: bool) -> None:
    pattern = webhook_url_pattern(channel, allow_insecure=insecure)
    if ok:
        assert check_webhook_url(url, channel, allow_insecure=insecure) == url
        assert re.fullmatch(pattern, url)  # the OpenAPI document says the same
        return
    with pytest.raises(InvalidFieldError) as refused:
        check_webhook_url(url, channel, allow_insecure=insecure)
    assert url not in str(refused.value)
    assert refused.value.field == "webhook_url"


# What an admin could aim ARX at from inside the deployment, and read the
# answer's status from last_error: none of these is a vendor's webhook.
INSIDE = [
    "https://127.0.0.1:5432/x",  # the database
    "https://localhost:8080/v1/admin",  # ARX itself
    "https://10.0.0.5/",
    "https://2130706433/",  # 127.0.0.1 as one number
    "https://0x7f000001/",
    "https://127.1/",
    "https://[::ffff:127.0.0.1]/",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://169.254.169.254/latest/meta-data/",
    "https://hooks.slack.com.evil.example/services/T/B/X",
    "https://hooks.slack.com@10.0.0.5/services/T/B/X",
    "https://hooks.slack.com:5432/services/T/B/X",
    "https://hooks.slack.com/services/T/B/X#fragment",
    "https://evil.example/.logic.azure.com/x",
    "https://logic.azure.com.evil.example/workflows/1",
    "https://x.webhook.office.com/webhookb2/1",  # retired Office 365 connectors
]


@pytest.mark.parametrize("url", INSIDE)
@pytest.mark.parametrize("channel", ["slack", "teams"])
def test_webhooks_cannot_reach_inside_the_deployment(url: str, channel: ChannelKind) -> None:
    with pytest.raises(InvalidFieldError) as refused:
        check_webhook_url(url, channel, allow_insecure=False)
    assert url not in str(refused.value)
    assert not re.fullmatch(webhook_url_pattern(channel, allow_insecure=False), url)


@pytest.mark.parametrize(
    "url", [u for u in INSIDE if "127.0.0.1:5432" not in u and "[::ffff" not in u]
)
def test_insecure_deployments_add_loopback_literals_only(url: str) -> None:
    with pytest.raises(InvalidFieldError):
        check_webhook_url(url, "teams", allow_insecure=True)


def test_slack_api_url_must_be_https_unless_insecure_urls_are_allowed() -> None:
    env = {"ARX_DATABASE_URL": "postgresql://unused", "ARX_SLACK_API_URL": "http://slack.test/api"}
    with pytest.raises(ConfigError, match="ARX_SLACK_API_URL must be an https URL"):
        load_settings(env)
    allowed = load_settings({**env, "ARX_ALLOW_INSECURE_CONNECTOR_URLS": "1"})
    assert allowed.slack_api_url == "http://slack.test/api"
    assert load_settings({"ARX_DATABASE_URL": "x"}).slack_api_url == "https://slack.com/api"


# --- what an answer means, and when to try again ----------------------------------------------


def _answer(status: int, headers: dict[str, str] | None = None) -> delivery.Answer:
    return delivery.Answer(status=status, headers=httpx.Headers(headers or {}), body=b"")


def test_answers_are_classified() -> None:
    limited = delivery.by_status(_answer(429, {"Retry-After": "7"}))
    assert (limited.retry, limited.retry_after) == (True, 7.0)
    assert delivery.by_status(_answer(503)).retry
    assert not delivery.by_status(_answer(404), code="no_service").retry
    assert delivery.by_status(_answer(404), code="no_service").error == "HTTP 404 no_service"
    assert not delivery.by_status(_answer(302)).retry
    assert delivery.vendor_code("channel_not_found") == "channel_not_found"
    assert delivery.vendor_code("<html>https://x.example/?sig=secret</html>") is None


def test_answers_from_anywhere_but_the_vendor_are_recorded_by_class() -> None:
    local = delivery.by_status(_answer(404), code="no_service", detailed=False)
    assert local.error == "HTTP 4xx"
    assert delivery.by_status(_answer(503), detailed=False).error == "HTTP 5xx"
    assert delivery.by_status(_answer(503), detailed=False).retry


def test_a_lease_outlasts_the_whole_delivery_and_its_recording() -> None:
    settings = Settings(database_url="postgresql://unused", notify_timeout_seconds=30.0)
    worker = NotificationWorker(None, None, None, settings)  # type: ignore[arg-type]
    assert worker.lease_seconds >= 30.0 + queue.WORKER_BOUND_SECONDS + 30.0


def test_backoff_doubles_with_jitter_and_honours_retry_after() -> None:
    settings = Settings(database_url="postgresql://unused", notify_backoff_seconds=5.0)
    worker = NotificationWorker(None, None, None, settings)  # type: ignore[arg-type]
    for attempt in range(1, 8):
        delay = worker.backoff(attempt, None)
        assert 0.5 * 5.0 * 2 ** (attempt - 1) <= delay <= 5.0 * 2 ** (attempt - 1)
    assert worker.backoff(40, None) <= MAX_BACKOFF_SECONDS
    assert worker.backoff(1, 60.0) == 60.0


def test_httpx_log_lines_show_the_origin_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    url = httpx.URL("https://prod.logic.azure.com/workflows/1/invoke?sig=SECRETSIG")
    logging.getLogger("httpx").info('HTTP Request: %s %s "%s"', "POST", url, "HTTP/1.1 202")
    assert "SECRETSIG" not in caplog.text
    assert "https://prod.logic.azure.com/…" in caplog.text


# --- a vendor that trickles its answer -----------------------------------------------------


@pytest.fixture
async def trickler() -> AsyncIterator[str]:
    """An HTTP server that sends its headers at once and then one byte of
    body every 0.2 s (for 40 bytes): each read is quick, the whole is not."""
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                 if line.lower().startswith(b"content-length:")),
                0,
            )  # fmt: skip
            await reader.readexactly(length)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 40\r\n\r\n"
            )
            for _ in range(40):
                await writer.drain()
                writer.write(b"o")
                await asyncio.sleep(0.2)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()
    for writer in writers:
        writer.close()
    await server.wait_closed()


@pytest.mark.anyio
async def test_a_trickling_answer_cannot_outlast_the_timeout(trickler: str) -> None:
    async with httpx.AsyncClient() as http:
        started = time.monotonic()
        outcome = await delivery.post(http, f"{trickler}/hook", b"{}", headers={}, seconds=1.0)
        took = time.monotonic() - started
    assert isinstance(outcome, delivery.Outcome)
    assert (outcome.retry, outcome.error) == (True, "no answer within 1 s")
    assert took < 1.5, f"a 1 s delivery took {took:.1f} s"


# --- remembered signing secrets --------------------------------------------------------------


def test_signing_secrets_are_remembered_briefly_and_boundedly() -> None:
    now = [0.0]
    secrets = SigningSecrets(ttl=30.0, size=2, clock=lambda: now[0])
    first, second, third = (UUID(int=n) for n in (1, 2, 3))
    secrets.put(first, Secret("s1"))
    secrets.put(second, None)  # no such org, or no secret: remembered too
    remembered = secrets.get(second)
    assert remembered is not None
    assert remembered.secret is None
    secrets.put(third, Secret("s3"))  # over the bound: the oldest goes
    assert secrets.get(first) is None
    now[0] = 29.0
    assert secrets.get(third) is not None
    now[0] = 30.0
    assert secrets.get(third) is None
    secrets.put(first, Secret(SECRET))
    remembered = secrets.get(first)
    assert remembered is not None
    assert remembered.secret == Secret(SECRET)
    assert SECRET not in repr(remembered)
    secrets.forget(first)
    assert secrets.get(first) is None


# --- secrets held in memory --------------------------------------------------------------

BOT_TOKEN = "xoxb-1111-2222-abcdefghijkl"
SLACK_HOOK = "https://hooks.slack.com/services/T0001/B0002/hooksecretXYZ"
TEAMS_HOOK = f"https://prod-01.westeurope.logic.azure.com{TEAMS_PATH}"


def _shown(value: object) -> list[str]:
    """Every way a value is commonly turned into text, rich's display included."""
    rich = getattr(value, "__rich_repr__", None)
    return [repr(value), str(value), f"{value}", f"{value!r}", repr(list(rich()) if rich else [])]


def _leaks(value: object, *plaintexts: str) -> list[str]:
    """Which of ``plaintexts`` any text of ``value`` shows."""
    return sorted({plain for text in _shown(value) for plain in plaintexts if plain in text})


def test_sealed_secrets_show_none_of_their_values() -> None:
    bot = SlackSecrets(bot_token=Secret(BOT_TOKEN), signing_secret=Secret(SECRET))
    hook = SlackSecrets(webhook_url=Secret(SLACK_HOOK))
    teams_hook = TeamsSecrets(webhook_url=Secret(TEAMS_HOOK))
    assert _leaks(bot, BOT_TOKEN, SECRET) == []
    # A webhook URL's secret is its path (Slack) or its signature (Teams).
    assert _leaks(hook, SLACK_HOOK, "hooksecretXYZ") == []
    assert _leaks(teams_hook, TEAMS_HOOK, "sig=abc") == []
    assert REDACTED in repr(bot)
    assert REDACTED in repr(teams_hook)
    # Only the vault's sealing may encode them.
    with pytest.raises(TypeError):
        msgspec.json.encode(bot)
    with pytest.raises(TypeError):
        msgspec.json.encode(teams_hook)


def test_request_bodies_show_none_of_their_secrets() -> None:
    bot = SlackBot(bot_token=BOT_TOKEN, channel="C0123456789", signing_secret=SECRET)
    assert _leaks(bot, BOT_TOKEN, SECRET) == []
    assert "C0123456789" in repr(bot)
    assert _leaks(SlackWebhook(webhook_url=SLACK_HOOK), SLACK_HOOK, "hooksecretXYZ") == []
    assert _leaks(SetTeams(webhook_url=TEAMS_HOOK), TEAMS_HOOK, "sig=abc") == []


@pytest.mark.parametrize(
    "secrets",
    [
        SlackSecrets(bot_token=Secret(BOT_TOKEN), signing_secret=Secret(SECRET)),
        SlackSecrets(bot_token=Secret(BOT_TOKEN)),
        SlackSecrets(webhook_url=Secret(SLACK_HOOK)),
        TeamsSecrets(webhook_url=Secret(TEAMS_HOOK)),
    ],
)
def test_sealed_secrets_round_trip_as_the_vault_seals_and_opens_them(
    secrets: SlackSecrets | TeamsSecrets,
) -> None:
    plaintext = msgspec.json.encode(secrets, enc_hook=reveal_hook)
    opened = msgspec.json.decode(plaintext, type=type(secrets), dec_hook=secret_dec_hook)
    assert opened == secrets
    # Sealed as plain JSON strings, as before Secret: channels set earlier still open.
    assert all(isinstance(value, str) for value in json.loads(plaintext).values())


def _capture(requests: list[httpx.Request]) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, content=b'{"ok": true}')

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


@pytest.mark.anyio
async def test_secrets_are_revealed_into_the_request_that_sends_them() -> None:
    requests: list[httpx.Request] = []
    body = slack.message(_summary(), interactive=False)
    async with _capture(requests) as http:
        bot = await slack.post_with_bot(
            http,
            api_url="https://slack.test/api",
            token=Secret(BOT_TOKEN),
            channel="C0123456789",
            body=body,
            seconds=5.0,
        )
        hook = await slack.post_to_webhook(http, url=Secret(SLACK_HOOK), body=body, seconds=5.0)
        card = await teams.post(http, url=Secret(TEAMS_HOOK), summary=_summary(), seconds=5.0)
    assert (bot.delivered, hook.delivered, card.delivered) == (True, True, True)
    to_bot, to_hook, to_teams = requests
    assert to_bot.headers["authorization"] == f"Bearer {BOT_TOKEN}"
    assert str(to_hook.url) == SLACK_HOOK
    assert str(to_teams.url) == TEAMS_HOOK
    # And nowhere else: the bodies carry no secret.
    for request in requests:
        assert BOT_TOKEN not in request.content.decode()
        assert "hooksecretXYZ" not in request.content.decode()
