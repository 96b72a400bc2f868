"""Reviewers are notified in Slack and Teams from a durable queue in PostgreSQL.

The agent escalates through the real policy (the example bundle escalates
host containment); a trigger queues one job per configured channel in the
escalation's own transaction; the runtime's worker delivers them to local
receivers on a loopback port that check what the vendors document:
``chat.postMessage`` (bearer token, JSON in UTF-8, ``channel``/``text``/
``blocks``, HTTP 200 with ``ok``), ``auth.test`` and ``users.info``, incoming
webhooks (plain-text ``ok``), a Teams Workflows webhook (the message envelope
around an Adaptive Card, 202), and, on demand, answers that trickle out a
byte at a time.
The blocks are checked with Slack's own SDK (``slack_sdk``), and Slack's
interaction signatures are made with its ``SignatureVerifier``, so ARX's
verification is shown to agree with Slack's reference implementation.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import httpx
import msgspec
import psycopg
import pytest
import uvicorn
from aiohttp import web
from psycopg.types.json import Jsonb
from slack_sdk.models.blocks import Block
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from arx.api.app import create_app
from arx.approvals.notify import channels, queue
from arx.approvals.notify import slack as slack_message
from arx.approvals.notify.types import SealedRow, SlackSecrets, TeamsSecrets
from arx.approvals.notify.worker import NotificationWorker
from arx.cli.main import main as cli_main
from arx.config import Settings
from arx.devstack.ports import free_port
from arx.devstack.seed import seed_example_org
from arx.runtime import Runtime, open_runtime
from arx.sandbox.falcon import FalconState
from arx.sandbox.falcon import create_app as create_falcon_app
from arx.vault.secret import Secret
from tests.fixtures.arx import FALCON_CLIENT_ID, FALCON_CLIENT_SECRET, FALCON_URL, Example
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

EXECUTE = "/v1/sdk/execute"
CONTAIN = {
    "connector": "crowdstrike",
    "operation": "hosts:contain",
    "params": {"ids": ["4c1d7e2a9b3f4e5d8a6c0b1e2f3a4d5c"]},
}
BOT_TOKEN = "xoxb-1111-2222-notifytestsecret"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_CHANNEL = "C0123456789"
SLACK_HOOK_PATH = "/services/T000/B000/slackhooksecretXYZ"
TEAMS_SIG = "teamssigSECRET123"
TEAMS_HOOK_PATH = "/workflows/abc123/triggers/manual/paths/invoke"
SECRETS = (BOT_TOKEN, SIGNING_SECRET, "slackhooksecretXYZ", TEAMS_SIG)
SLACK_JSON = "application/json; charset=utf-8"
WAIT_SECONDS = 15.0
# The workspace and app the bot token belongs to (auth.test), and clicks come from.
TEAM_ID = "T0123"
APP_ID = "A0123"
RESPONSE_PATH = f"/actions/{TEAM_ID}/1/hook"
# What answers inside a deployment: never a webhook's target.
INSIDE = (
    "https://127.0.0.1:5432/x",
    "https://localhost:8080/v1/admin",
    "https://10.0.0.5/",
    "https://2130706433/",
    "https://metadata.google.internal/computeMetadata/v1/",
)


# --- the vendors, on a loopback port -------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)


Answer = tuple[int, bytes, dict[str, str]]


@dataclass
class Receiver:
    """Slack's Web API and webhooks, a Teams Workflows trigger, and Slack's
    response_url, as their documentation describes them."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    # Answers to give next, per path, before the default one.
    scripted: dict[str, list[Answer]] = field(default_factory=dict)
    # users.info: Slack user id -> user object.
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Path prefix -> seconds between the bytes of a 40-byte answer.
    trickle: dict[str, float] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def script(self, path: str, *answers: Answer) -> None:
        self.scripted.setdefault(path, []).extend(answers)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    async def wait_for(self, path: str, count: int = 1) -> list[Received]:
        async with asyncio.timeout(WAIT_SECONDS):
            while len(self.at(path)) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.at(path)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        seen = Received(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.read(),
        )
        self.requests.append(seen)
        self.arrived.set()
        slow = next((s for p, s in self.trickle.items() if seen.path.startswith(p)), None)
        if slow is not None:
            return await _trickled(request, slow)
        queued = self.scripted.get(seen.path)
        if queued:
            status, body, headers = queued.pop(0)
            return web.Response(status=status, body=body, headers=headers)
        for prefix, answer in (
            ("/api/chat.postMessage", lambda: _slack_api(self._post_message(seen))),
            ("/api/auth.test", lambda: _slack_api(self._auth_test(seen))),
            ("/api/users.info", lambda: _slack_api(self._users_info(seen))),
            # Incoming webhooks answer a plain-text "ok".
            ("/services/", lambda: web.Response(text="ok", content_type="text/plain")),
            ("/workflows/", lambda: _teams_answer(seen)),
            ("/actions/", lambda: _slack_api({"ok": True})),
        ):
            if seen.path.startswith(prefix):
                return answer()
        return web.Response(status=404)

    def _post_message(self, seen: Received) -> dict[str, Any]:
        if seen.headers.get("authorization") != f"Bearer {BOT_TOKEN}":
            return {"ok": False, "error": "invalid_auth"}
        media = seen.headers.get("content-type", "").split(";")[0].strip()
        if media != "application/json":
            return {"ok": False, "error": "invalid_form_data"}
        body = seen.json()
        if not body.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not body.get("text") and not body.get("blocks"):
            return {"ok": False, "error": "no_text"}
        ts = f"{time.time():.6f}"
        return {
            "ok": True,
            "channel": body["channel"],
            "ts": ts,
            "message": {
                "type": "message",
                "subtype": "bot_message",
                "text": body["text"],
                "ts": ts,
            },
        }

    def _auth_test(self, seen: Received) -> dict[str, Any]:
        if seen.headers.get("authorization") != f"Bearer {BOT_TOKEN}":
            return {"ok": False, "error": "invalid_auth"}
        return {
            "ok": True,
            "url": "https://acme.slack.com/",
            "team": "Acme",
            "user": "arx",
            "team_id": TEAM_ID,
            "user_id": "U0ARXBOT",
            "bot_id": "B0ARXBOT",
            "app_id": APP_ID,
            "is_enterprise_install": False,
        }

    def _users_info(self, seen: Received) -> dict[str, Any]:
        if seen.headers.get("authorization") != f"Bearer {BOT_TOKEN}":
            return {"ok": False, "error": "invalid_auth"}
        user = self.users.get(seen.query.get("user", ""))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}


def _slack_api(body: dict[str, Any]) -> web.Response:
    # The Web API answers HTTP 200 whether ok is true or false.
    return web.json_response(body)


async def _trickled(request: web.Request, interval: float) -> web.StreamResponse:
    """A 200 whose headers come at once and whose 40 bytes come one per
    ``interval``: every read is quick, the whole answer is not."""
    body = b'{"ok": false, "error": "user_not_found"}'.rjust(40)
    response = web.StreamResponse(status=200, headers={"content-type": "application/json"})
    response.content_length = len(body)
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):
        for byte in body:
            await response.write(bytes([byte]))
            await asyncio.sleep(interval)
    return response


def _teams_problem(seen: Received) -> str | None:
    """What a Workflows trigger would refuse in the posted message, if anything."""
    body = seen.json()
    attachments = body.get("attachments")
    if body.get("type") != "message" or not isinstance(attachments, list) or not attachments:
        return "not a message with attachments"
    attachment = attachments[0]
    card = attachment.get("content") or {}
    problems = (
        (len(attachments) != 1, "one card per message"),
        (attachment.get("contentType") != "application/vnd.microsoft.card.adaptive", "not a card"),
        ("contentUrl" not in attachment or attachment["contentUrl"] is not None, "contentUrl"),
        (card.get("type") != "AdaptiveCard", "not an AdaptiveCard"),
        (card.get("version") not in {"1.4", "1.5"}, "not version 1.4 or 1.5"),
        (card.get("$schema") != "http://adaptivecards.io/schemas/adaptive-card.json", "$schema"),
        (
            any(a.get("type") != "Action.OpenUrl" for a in card.get("actions", [])),
            "webhook cards take Action.OpenUrl only",
        ),
    )
    return next((why for bad, why in problems if bad), None)


def _teams_answer(seen: Received) -> web.Response:
    problem = _teams_problem(seen)
    # A Workflows HTTP trigger answers 202 Accepted.
    return web.Response(status=400, text=problem) if problem else web.Response(status=202)


def slack_user(
    user_id: str, email: str, *, confirmed: bool = True, team: str = TEAM_ID
) -> dict[str, Any]:
    return {
        "id": user_id,
        "team_id": team,
        "name": email.split("@", maxsplit=1)[0],
        "deleted": False,
        "is_bot": False,
        "is_email_confirmed": confirmed,
        "profile": {"email": email, "real_name": email},
    }


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    vendor = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", vendor.handle)
    # No access log: the receiver's own log lines would show webhook paths.
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    vendor.url = f"http://127.0.0.1:{port}"
    yield vendor
    await runner.cleanup()


@pytest.fixture
def settings(settings: Settings, receiver: Receiver, request: pytest.FixtureRequest) -> Settings:
    """Fast retries, and Slack's API on the receiver (a test may change more:
    parametrize ``settings`` indirectly with a dict of fields)."""
    changes: dict[str, Any] = {
        "slack_api_url": f"{receiver.url}/api",
        "notify_backoff_seconds": 0.05,
        "notify_poll_seconds": 0.05,
        "notify_max_attempts": 3,
        "notify_timeout_seconds": 3.0,
        **getattr(request, "param", {}),
    }
    return msgspec.structs.replace(settings, **changes)


# --- helpers ---------------------------------------------------------------------------


def _channels(example: Example) -> str:
    return f"/v1/admin/orgs/{example.seeded.org_id}/notification-channels"


def _notifications(example: Example) -> str:
    return f"/v1/admin/orgs/{example.seeded.org_id}/notifications"


async def _set_slack_bot(
    client: httpx.AsyncClient,
    example: Example,
    *,
    interactive: bool = False,
    signing_secret: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"mode": "bot", "bot_token": BOT_TOKEN, "channel": SLACK_CHANNEL}
    if signing_secret is not None:
        body["signing_secret"] = signing_secret
    body["interactive_approvals"] = interactive
    resp = await client.put(f"{_channels(example)}/slack", json=body, headers=example.owner)
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()
    return result


async def _escalate(client: httpx.AsyncClient, example: Example) -> UUID:
    pending = await client.post(EXECUTE, json=CONTAIN, headers=example.auth("responder-bot"))
    assert pending.status_code == 202, pending.text
    return UUID(pending.json()["approval_id"])


async def _deliveries(
    client: httpx.AsyncClient, example: Example, status: str | None = None
) -> list[dict[str, Any]]:
    params = {"status": status} if status else None
    resp = await client.get(_notifications(example), params=params, headers=example.owner)
    assert resp.status_code == 200, resp.text
    result: list[dict[str, Any]] = resp.json()
    return result


async def _settled(
    client: httpx.AsyncClient, example: Example, approval: UUID, count: int = 1
) -> list[dict[str, Any]]:
    """The approval's deliveries once none is pending."""
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            mine = [
                d for d in await _deliveries(client, example) if d["approval_id"] == str(approval)
            ]
            if len(mine) == count and all(d["status"] != "pending" for d in mine):
                return mine
            await asyncio.sleep(0.05)


def _approval_status(test_db: Database, approval: UUID) -> str:
    with psycopg.connect(test_db.admin_url) as conn:
        row = conn.execute(
            "SELECT status FROM arx.approval_requests WHERE id = %s", (approval,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def _check_blocks(blocks: list[dict[str, Any]]) -> None:
    """Each block as Slack's SDK parses and validates it, unchanged by the round trip."""
    assert 0 < len(blocks) <= 50
    for raw in blocks:
        parsed = Block.parse(raw)
        assert parsed is not None, raw
        parsed.validate_json()
        assert parsed.to_dict() == raw, "a field Slack's SDK does not know"


def _buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    return {e["action_id"]: e for e in actions["elements"]}


def _teams_request(posted: Received) -> str:
    """The request id a Teams card names."""
    card = posted.json()["attachments"][0]["content"]
    facts = {f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet"
             for f in b["facts"]}  # fmt: skip
    return str(facts["Request"])


def _review_url(settings: Settings, approval: UUID) -> str:
    return f"{settings.public_url}/review/example/approvals/{approval}"


# --- delivery ----------------------------------------------------------------------------


async def test_slack_bot_is_notified_of_an_escalation(
    client: httpx.AsyncClient,
    example: Example,
    receiver: Receiver,
    settings: Settings,
    test_db: Database,
) -> None:
    shown = await _set_slack_bot(client, example)
    assert shown["mode"] == "bot"
    assert shown["channel"] == SLACK_CHANNEL
    assert shown["bot_token_set"] is True
    assert shown["interactive_approvals"] is False
    approval = await _escalate(client, example)

    (post,) = await receiver.wait_for("/api/chat.postMessage")
    assert post.method == "POST"
    assert post.headers["authorization"] == f"Bearer {BOT_TOKEN}"
    assert post.headers["content-type"] == SLACK_JSON
    body = post.json()
    assert body["channel"] == SLACK_CHANNEL
    assert body["unfurl_links"] is False
    assert "responder-bot" in body["text"]
    assert _review_url(settings, approval) in body["text"]
    _check_blocks(body["blocks"])
    buttons = _buttons(body["blocks"])
    assert set(buttons) == {slack_message.ACTION_REVIEW}
    assert buttons[slack_message.ACTION_REVIEW]["url"] == _review_url(settings, approval)
    text = json.dumps(body["blocks"])
    assert "crowdstrike hosts:contain" in text
    assert CONTAIN["params"]["ids"][0] in text  # type: ignore[index]

    (delivery,) = await _settled(client, example, approval)
    assert delivery["channel"] == "slack"
    assert delivery["status"] == "delivered"
    assert delivery["attempts"] == 1
    assert delivery["delivered_at"] is not None
    assert delivery["last_error"] is None
    # A notification changes nothing about the approval.
    assert _approval_status(test_db, approval) == "pending"


async def test_the_receiver_speaks_slacks_protocol(receiver: Receiver) -> None:
    """Slack's own client, pointed at the receiver, posts and gets ok: the
    receiver is a faithful stand-in for chat.postMessage."""
    sdk = AsyncWebClient(token=BOT_TOKEN, base_url=f"{receiver.url}/api/")
    answer = await sdk.chat_postMessage(
        channel=SLACK_CHANNEL,
        text="hello",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}],
    )
    assert answer["ok"] is True
    (seen,) = receiver.at("/api/chat.postMessage")
    assert seen.headers["authorization"] == f"Bearer {BOT_TOKEN}"
    bad = AsyncWebClient(token="xoxb-wrong", base_url=f"{receiver.url}/api/")
    with pytest.raises(Exception, match="invalid_auth"):
        await bad.chat_postMessage(channel=SLACK_CHANNEL, text="hello")


async def test_slack_webhook_and_teams_are_notified(
    client: httpx.AsyncClient, example: Example, receiver: Receiver, settings: Settings
) -> None:
    slack_hook = f"{receiver.url}{SLACK_HOOK_PATH}"
    teams_hook = f"{receiver.url}{TEAMS_HOOK_PATH}?api-version=1&sp=%2Ftriggers&sig={TEAMS_SIG}"
    resp = await client.put(
        f"{_channels(example)}/slack",
        json={"mode": "webhook", "webhook_url": slack_hook},
        headers=example.owner,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["webhook_host"] == "127.0.0.1"
    resp = await client.put(
        f"{_channels(example)}/teams", json={"webhook_url": teams_hook}, headers=example.owner
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["webhook_url_set"] is True
    approval = await _escalate(client, example)

    (hooked,) = await receiver.wait_for(SLACK_HOOK_PATH)
    assert hooked.headers["content-type"] == SLACK_JSON
    assert "authorization" not in hooked.headers
    body = hooked.json()
    assert _review_url(settings, approval) in body["text"]
    _check_blocks(body["blocks"])
    assert set(_buttons(body["blocks"])) == {slack_message.ACTION_REVIEW}

    (posted,) = await receiver.wait_for(TEAMS_HOOK_PATH)
    assert posted.query["sig"] == TEAMS_SIG
    assert _teams_problem(posted) is None
    card = posted.json()["attachments"][0]["content"]
    assert [a["url"] for a in card["actions"]] == [
        _review_url(settings, approval),
        f"{settings.public_url}/review/example",
    ]
    facts = {f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet"
             for f in b["facts"]}  # fmt: skip
    assert facts["Request"] == str(approval)
    assert facts["Approvals required"] == "1"
    assert {b["type"] for b in card["body"]} >= {"TextBlock", "FactSet", "RichTextBlock"}

    deliveries = await _settled(client, example, approval, count=2)
    assert {(d["channel"], d["status"]) for d in deliveries} == {
        ("slack", "delivered"),
        ("teams", "delivered"),
    }


async def test_no_channel_no_job(
    client: httpx.AsyncClient, example: Example, test_db: Database
) -> None:
    await _escalate(client, example)
    assert await _deliveries(client, example) == []
    with psycopg.connect(test_db.admin_url) as conn:
        assert conn.execute("SELECT count(*) FROM arx.notification_jobs").fetchone() == (0,)


# --- retries -----------------------------------------------------------------------------


async def test_retried_with_backoff_after_500_and_429(
    client: httpx.AsyncClient, example: Example, receiver: Receiver
) -> None:
    receiver.script(
        "/api/chat.postMessage",
        (500, b"", {}),
        (429, b"", {"Retry-After": "0"}),
    )
    await _set_slack_bot(client, example)
    approval = await _escalate(client, example)
    posts = await receiver.wait_for("/api/chat.postMessage", 3)
    (delivery,) = await _settled(client, example, approval)
    assert delivery["status"] == "delivered"
    assert delivery["attempts"] == 3
    # What the last failure was, kept for the record.
    assert delivery["last_error"] == "HTTP 429 (rate limited)"
    assert len(posts) == 3
    # The same message each time.
    assert posts[0].body == posts[2].body


async def test_slack_ok_false_is_a_failure_and_a_revoked_token_is_not_retried(
    client: httpx.AsyncClient, example: Example, receiver: Receiver, test_db: Database
) -> None:
    receiver.script(
        "/api/chat.postMessage",
        (200, b'{"ok": false, "error": "ratelimited"}', {"content-type": "application/json"}),
        (200, b'{"ok": false, "error": "token_revoked"}', {"content-type": "application/json"}),
    )
    await _set_slack_bot(client, example)
    approval = await _escalate(client, example)
    (delivery,) = await _settled(client, example, approval)
    assert delivery["status"] == "failed"
    assert delivery["attempts"] == 2
    assert delivery["last_error"] == "Slack error token_revoked"
    assert len(receiver.at("/api/chat.postMessage")) == 2
    assert _approval_status(test_db, approval) == "pending"


@dataclass
class _Served:
    url: str


@contextlib.asynccontextmanager
async def _serve(settings: Settings, runtime: Runtime) -> AsyncIterator[_Served]:
    """The API on a loopback port, for the CLI (which speaks real HTTP)."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, runtime=runtime),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(WAIT_SECONDS):
        while not server.started:  # noqa: ASYNC110 -- uvicorn offers a flag, not an event
            await asyncio.sleep(0.02)
    try:
        yield _Served(url=f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await task


async def _cli(
    capsys: pytest.CaptureFixture[str], served: _Served, token: str, *argv: str
) -> tuple[int, str, str]:
    """``arx`` in a thread (it is synchronous), so this loop keeps serving it."""
    env = {"ARX_URL": served.url, "ARX_TOKEN": token}
    code = await asyncio.to_thread(cli_main, list(argv), env)
    out, err = capsys.readouterr()
    return code, out, err


async def test_failed_after_max_attempts_then_listed_and_retried(
    client: httpx.AsyncClient,
    example: Example,
    receiver: Receiver,
    *,
    runtime: Runtime,
    settings: Settings,
    test_db: Database,
    capsys: pytest.CaptureFixture[str],
) -> None:
    receiver.script("/api/chat.postMessage", *[(500, b"rollup_error", {})] * 3)
    await _set_slack_bot(client, example)
    approval = await _escalate(client, example)
    (delivery,) = await _settled(client, example, approval)
    assert delivery["status"] == "failed"
    assert delivery["attempts"] == 3
    assert delivery["last_error"] == "HTTP 500 (gave up after 3 attempts)"
    assert delivery["next_attempt_at"] is None
    # A failed notification never approves, nor changes the approval.
    assert _approval_status(test_db, approval) == "pending"

    failed = await _deliveries(client, example, "failed")
    assert [d["id"] for d in failed] == [delivery["id"]]
    assert await _deliveries(client, example, "delivered") == []
    bad = await client.get(
        _notifications(example), params={"status": "nope"}, headers=example.owner
    )
    assert bad.status_code == 400, bad.text

    token = example.seeded.owner_token
    async with _serve(settings, runtime) as served:
        code, out, err = await _cli(capsys, served, token, "notifications", "list", "--failed")
        assert (code, err) == (0, ""), err
        listed = json.loads(out)
        assert [(d["id"], d["status"], d["attempts"]) for d in listed] == [
            (delivery["id"], "failed", 3)
        ]
        # Now Slack answers again; a person requeues it.
        code, out, err = await _cli(
            capsys, served, token, "notifications", "retry", delivery["id"], "--comment", "fixed"
        )
        assert (code, err) == (0, ""), err
        assert json.loads(out)["status"] == "pending"
        (done,) = await _settled(client, example, approval)
        assert (done["status"], done["attempts"]) == ("delivered", 1)
        # Only a failed one can be retried.
        code, out, err = await _cli(capsys, served, token, "notifications", "retry", delivery["id"])
        assert code == 1
        assert "[conflict]" in err
    with psycopg.connect(test_db.admin_url) as conn:
        (details,) = conn.execute(
            "SELECT details FROM arx.audit_events WHERE action = 'notifications.delivery_retried'"
        ).fetchone() or (None,)
    assert details["delivery_id"] == delivery["id"]
    assert details["comment"] == "fixed"


async def test_the_cli_sets_shows_and_removes_channels(
    example: Example,
    receiver: Receiver,
    runtime: Runtime,
    settings: Settings,
    *,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token_file = tmp_path / "bot-token"
    token_file.write_text(BOT_TOKEN + "\n")
    secret_file = tmp_path / "signing-secret"
    secret_file.write_text(SIGNING_SECRET)
    hook_file = tmp_path / "teams-hook"
    hook_file.write_text(f"{receiver.url}{TEAMS_HOOK_PATH}?sig={TEAMS_SIG}\n")
    token = example.seeded.owner_token
    async with _serve(settings, runtime) as served:
        code, out, err = await _cli(
            capsys, served, token, "notifications", "set-slack", "--channel", SLACK_CHANNEL,
            "--bot-token-file", str(token_file), "--signing-secret-file", str(secret_file),
            "--interactive",
        )  # fmt: skip
        assert (code, err) == (0, ""), err
        slack = json.loads(out)
        assert (slack["mode"], slack["interactive_approvals"]) == ("bot", True)
        assert not any(secret in out for secret in SECRETS)
        code, out, err = await _cli(
            capsys, served, token, "notifications", "set-teams", "--webhook-url-file",
            str(hook_file),
        )  # fmt: skip
        assert (code, err) == (0, ""), err
        assert not any(secret in out for secret in SECRETS)
        code, out, err = await _cli(capsys, served, token, "notifications", "channels")
        assert (code, err) == (0, ""), err
        assert json.loads(out)["teams"]["webhook_host"] == "127.0.0.1"
        assert not any(secret in out for secret in SECRETS)
        code, out, err = await _cli(
            capsys, served, token, "notifications", "set-slack", "--webhook-url-file",
            str(hook_file), "--channel", SLACK_CHANNEL,
        )  # fmt: skip
        assert code == 1
        assert "[bad_input]" in err
        assert not any(secret in err for secret in SECRETS)
        code, out, err = await _cli(capsys, served, token, "notifications", "remove", "teams")
        assert (code, err) == (0, ""), err
        assert json.loads(out)["teams"] is None
    printed = capsys.readouterr()
    assert printed == ("", "")  # _cli took each command's output


async def test_a_pending_notification_survives_a_restart(
    settings: Settings, falcon: FalconState, receiver: Receiver, test_db: Database
) -> None:
    # Slow enough retries that the first process stops before its second attempt.
    settings = msgspec.structs.replace(settings, notify_backoff_seconds=2.0)
    transport = httpx.ASGITransport(app=create_falcon_app(falcon))
    receiver.script("/api/chat.postMessage", (503, b"", {}))
    async with open_runtime(settings, connector_transport=transport) as first:
        await first.pool.wait(timeout=10)
        seeded = await seed_example_org(
            first, falcon_url=FALCON_URL, client_id=FALCON_CLIENT_ID,
            client_secret=FALCON_CLIENT_SECRET,
        )  # fmt: skip
        example = Example(seeded)
        app = create_app(settings, runtime=first)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://arx.test"
        ) as client:
            await _set_slack_bot(client, example)
            approval = await _escalate(client, example)
            await receiver.wait_for("/api/chat.postMessage")
            async with asyncio.timeout(WAIT_SECONDS):
                while True:
                    (job,) = await _deliveries(client, example)
                    if job["last_error"] is not None:
                        break
                    await asyncio.sleep(0.02)
    assert (job["status"], job["attempts"], job["last_error"]) == ("pending", 1, "HTTP 503")

    # The job waits in PostgreSQL; the next process to start delivers it.
    async with open_runtime(settings, connector_transport=transport) as second:
        app = create_app(settings, runtime=second)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://arx.test"
        ) as client:
            (done,) = await _settled(client, example, approval)
    assert done["id"] == job["id"]
    assert (done["status"], done["attempts"]) == ("delivered", 2)
    assert len(receiver.at("/api/chat.postMessage")) == 2


async def test_a_decided_request_is_not_announced(
    client: httpx.AsyncClient, example: Example, receiver: Receiver, test_db: Database
) -> None:
    await _set_slack_bot(client, example)
    # Decided (here: from the start) before its message went out.
    approval = _plant_approval(test_db, example, status="rejected")
    (delivery,) = await _settled(client, example, approval)
    assert delivery["status"] == "skipped"
    assert delivery["last_error"] == "the request was already rejected"
    assert receiver.at("/api/chat.postMessage") == []


# --- what agents control -----------------------------------------------------------------

HOSTILE = (
    "<!channel> <!here|here> <@U0ADMIN> <https://evil.example/login|Open ARX> "
    "*APPROVE NOW* `x` ```y``` & [click](https://evil.example) _z_ ~w~ > quote"
)


def _plant_approval(test_db: Database, example: Example, *, status: str = "pending") -> UUID:
    """An escalation whose params and reasons carry markup, inserted as the
    decision path would (the queue trigger fires on the insert)."""
    (approval,) = _plant_approvals(test_db, example, {"status": status})
    return approval


def _plant_approvals(
    test_db: Database, example: Example, *plants: dict[str, Any], replica: bool = False
) -> list[UUID]:
    """Escalations inserted in one transaction, each with optional ``status``
    and ``reasons`` (``replica``: under session_replication_role = replica,
    as a restore or logical replication inserts)."""
    agent = example.seeded.agent_ids["responder-bot"]
    params = {"ids": [CONTAIN["params"]["ids"][0]], "note": HOSTILE}  # type: ignore[index]
    approvals = []
    with psycopg.connect(test_db.admin_url) as conn:
        if replica:
            conn.execute("SET session_replication_role = replica")
        for plant in plants:
            decision, approval = uuid.uuid4(), uuid.uuid4()
            reasons = plant.get("reasons", [HOSTILE])
            conn.execute(
                "INSERT INTO arx.audit_events (id, org_id, kind, agent_id, connector, operation,"
                " params, verdict, risk_score, reasons) VALUES (%s, %s, 'decision', %s,"
                " 'crowdstrike', 'hosts:contain', %s, 'ESCALATE', 70, %s)",
                (decision, example.seeded.org_id, agent, Jsonb(params), Jsonb(reasons)),
            )
            conn.execute(
                "INSERT INTO arx.approval_requests (id, org_id, event_id, agent_id, connector,"
                " operation, params, request_hash, status, expires_at) VALUES (%s, %s, %s, %s,"
                " 'crowdstrike', 'hosts:contain', %s, %s, %s, now() + interval '1 hour')",
                (
                    approval,
                    example.seeded.org_id,
                    decision,
                    agent,
                    Jsonb(params),
                    bytes(32),
                    plant.get("status", "pending"),
                ),
            )
            approvals.append(approval)
    return approvals


def _mrkdwn_texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["text"]] if node.get("type") == "mrkdwn" else []
        if node.get("type") == "mrkdwn":
            assert node.get("verbatim") is True, "no automatic links or mentions"
        return found + [t for v in node.values() for t in _mrkdwn_texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in _mrkdwn_texts(v)]
    return []


async def test_agent_controlled_text_is_escaped(
    client: httpx.AsyncClient, example: Example, receiver: Receiver, test_db: Database
) -> None:
    await _set_slack_bot(client, example)
    resp = await client.put(
        f"{_channels(example)}/teams",
        json={"webhook_url": f"{receiver.url}{TEAMS_HOOK_PATH}?sig={TEAMS_SIG}"},
        headers=example.owner,
    )
    assert resp.status_code == 200, resp.text
    _plant_approval(test_db, example)

    (post,) = await receiver.wait_for("/api/chat.postMessage")
    body = post.json()
    _check_blocks(body["blocks"])
    texts = [body["text"], *_mrkdwn_texts(body["blocks"])]
    everything = "\n".join(texts)
    for control in ("<!channel>", "<!here", "<@U0ADMIN>", "<https://evil"):
        assert control not in everything, control
    assert "&lt;!channel&gt;" in everything
    assert "&lt;https://evil.example/login|Open ARX&gt;" in everything
    # Agent text sits in code, so *, _ and ~ do not format; its backticks cannot close it.
    reasons = next(t for t in texts if t.startswith("*Why policy escalated*"))
    (line,) = [x for x in reasons.splitlines() if x.startswith("• ")]
    assert line.startswith("• `")
    assert line.endswith("`")
    assert line[3:-1].count("`") == 0
    params = next(t for t in texts if t.startswith("*Params*"))
    assert params.count("```") == 2

    (posted,) = await receiver.wait_for(TEAMS_HOOK_PATH)
    card = posted.json()["attachments"][0]["content"]
    blocks = [b["text"] for b in card["body"] if b["type"] == "TextBlock"]
    (reason,) = [t for t in blocks if "click" in t]
    assert "[click](" not in reason
    assert r"\[click\]\(https\:" in reason
    assert r"\*APPROVE NOW\*" in reason
    # The params in a TextRun, which Adaptive Cards never read as Markdown.
    (rich,) = [b for b in card["body"] if b["type"] == "RichTextBlock"]
    assert "evil.example" in rich["inlines"][0]["text"]


# --- settings ------------------------------------------------------------------------------


async def test_channel_settings_are_checked_and_owned_by_admins(
    client: httpx.AsyncClient, example: Example, runtime: Runtime
) -> None:
    url = f"{_channels(example)}/slack"
    # Interactive approvals need the signing secret.
    no_secret = await client.put(
        url,
        json={"mode": "bot", "bot_token": BOT_TOKEN, "channel": SLACK_CHANNEL,
              "interactive_approvals": True},
        headers=example.owner,
    )  # fmt: skip
    assert no_secret.status_code == 422, no_secret.text
    assert no_secret.json()["field"] == "signing_secret"
    # Plain http only to a loopback address; the refusal does not quote the URL.
    leaky = "http://hooks.example.test/services/T/B/leakysecret"
    insecure = await client.put(
        url, json={"mode": "webhook", "webhook_url": leaky}, headers=example.owner
    )
    assert insecure.status_code == 422, insecure.text
    assert "leakysecret" not in insecure.text
    strict = msgspec.structs.replace(runtime.settings, allow_insecure_connector_urls=False)
    strict_app = create_app(strict, runtime=dataclasses.replace(runtime, settings=strict))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=strict_app), base_url="http://arx.test"
    ) as strict_client:
        refused = await strict_client.put(
            url,
            json={"mode": "webhook", "webhook_url": "http://127.0.0.1:9/services/x"},
            headers=example.owner,
        )
        assert refused.status_code == 422, refused.text
        # Whatever answers inside the deployment is out of reach of a webhook.
        for inside in INSIDE:
            for channel, body in (
                ("slack", {"mode": "webhook", "webhook_url": inside}),
                ("teams", {"webhook_url": inside}),
            ):
                resp = await strict_client.put(
                    f"{_channels(example)}/{channel}", json=body, headers=example.owner
                )
                assert resp.status_code == 422, (inside, resp.text)
        doc = (await strict_client.get("/schema/openapi.json")).json()
    bodies = doc["components"]["requestBodies"]
    pattern = bodies["NotificationChannelTeams"]["content"]["application/json"]["schema"][
        "properties"
    ]["webhook_url"]["pattern"]
    # Microsoft's Workflows hosts only, https only where plain http is not allowed.
    assert pattern.startswith("^https://")
    assert "logic\\.azure\\.com" in pattern
    assert "127" not in pattern
    unknown = await client.put(url, json={"mode": "smoke"}, headers=example.owner)
    assert unknown.status_code == 422, unknown.text

    # An auditor may look, not change; an agent key gets nowhere.
    auditor = await client.post(
        f"/v1/admin/orgs/{example.seeded.org_id}/admin-tokens",
        json={"name": "audit", "roles": ["auditor"]},
        headers=example.owner,
    )
    assert auditor.status_code == 201, auditor.text
    audit_headers = {"authorization": f"Bearer {auditor.json()['token']}"}
    assert (await client.get(_channels(example), headers=audit_headers)).status_code == 200
    assert (await client.get(_notifications(example), headers=audit_headers)).status_code == 200
    denied = await client.put(
        url,
        json={"mode": "bot", "bot_token": BOT_TOKEN, "channel": SLACK_CHANNEL},
        headers=audit_headers,
    )
    assert denied.status_code == 403, denied.text
    agent = await client.get(_channels(example), headers=example.auth("responder-bot"))
    assert agent.status_code == 401, agent.text

    await _set_slack_bot(client, example)
    removed = await client.delete(url, headers=example.owner)
    assert removed.status_code == 200, removed.text
    assert removed.json() == {"slack": None, "teams": None}
    again = await client.delete(url, headers=example.owner)
    assert again.status_code == 404, again.text


async def test_secrets_never_leave_arx(
    client: httpx.AsyncClient,
    example: Example,
    receiver: Receiver,
    test_db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    answers: list[str] = []
    receiver.script(f"{TEAMS_HOOK_PATH}", (500, TEAMS_SIG.encode(), {}))
    receiver.script("/api/chat.postMessage", (400, BOT_TOKEN.encode(), {}))
    shown = await _set_slack_bot(client, example, interactive=True, signing_secret=SIGNING_SECRET)
    teams = await client.put(
        f"{_channels(example)}/teams",
        json={"webhook_url": f"{receiver.url}{TEAMS_HOOK_PATH}?sig={TEAMS_SIG}"},
        headers=example.owner,
    )
    answers += [json.dumps(shown), teams.text]
    assert shown["signing_secret_set"] is True
    assert shown["interactions_url"].endswith(f"/v1/slack/interactions/{example.seeded.org_id}")
    approval = await _escalate(client, example)
    deliveries = await _settled(client, example, approval, count=2)
    # The vendors answered with the secrets in their bodies: none is recorded.
    # (Slack's API is Slack: its status is kept; the Teams "vendor" is a local
    # receiver, whose answers are kept by status class only.)
    assert {d["last_error"] for d in deliveries} == {"HTTP 400", "HTTP 5xx"}
    answers.append(json.dumps(deliveries))
    answers.append((await client.get(_channels(example), headers=example.owner)).text)
    webhook = await client.put(
        f"{_channels(example)}/slack",
        json={"mode": "webhook", "webhook_url": f"{receiver.url}{SLACK_HOOK_PATH}"},
        headers=example.owner,
    )
    answers.append(webhook.text)
    audit = await client.get(f"/v1/admin/orgs/{example.seeded.org_id}/audit", headers=example.owner)
    answers.append(audit.text)
    with psycopg.connect(test_db.admin_url) as conn:
        rows = conn.execute(
            "SELECT coalesce(action, '') || coalesce(details::text, '') || coalesce(actor, '')"
            " FROM arx.audit_events"
            " UNION ALL SELECT coalesce(last_error, '') FROM arx.notification_jobs"
            " UNION ALL SELECT coalesce(webhook_host, '') || coalesce(slack_channel, '')"
            " FROM arx.notification_channels"
        ).fetchall()
        sealed = conn.execute("SELECT ciphertext FROM arx.notification_channels").fetchall()
    stored = "\n".join(r[0] for r in rows)
    logged = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    assert "notifications.channel_set" in stored
    for secret in SECRETS:
        for where, text in (("answers", "\n".join(answers)), ("db", stored), ("logs", logged)):
            assert secret not in text, (secret, where)
        assert all(secret.encode() not in bytes(c[0]) for c in sealed)


def _sealed_row(test_db: Database, channel: str) -> SealedRow:
    with psycopg.connect(test_db.admin_url) as conn:
        row = conn.execute(
            "SELECT version, kek_id, wrapped_dek, nonce, ciphertext"
            " FROM arx.notification_channels WHERE channel = %s",
            (channel,),
        ).fetchone()
    assert row is not None
    version, kek_id, wrapped_dek, nonce, ciphertext = row
    return SealedRow(
        version=version,
        kek_id=kek_id,
        wrapped_dek=bytes(wrapped_dek),
        nonce=bytes(nonce),
        ciphertext=bytes(ciphertext),
    )


async def test_opened_and_remembered_secrets_are_secrets(
    client: httpx.AsyncClient,
    example: Example,
    receiver: Receiver,
    runtime: Runtime,
    test_db: Database,
) -> None:
    org_id = example.seeded.org_id
    await _set_slack_bot(client, example, interactive=True, signing_secret=SIGNING_SECRET)
    teams_url = f"{receiver.url}{TEAMS_HOOK_PATH}?sig={TEAMS_SIG}"
    resp = await client.put(
        f"{_channels(example)}/teams", json={"webhook_url": teams_url}, headers=example.owner
    )
    assert resp.status_code == 200, resp.text

    config = await channels.slack_interaction_settings(runtime.control_pool, runtime.vault, org_id)
    assert config is not None
    bot = config.secrets
    assert isinstance(bot.bot_token, Secret)
    assert isinstance(bot.signing_secret, Secret)
    assert (bot.bot_token.reveal(), bot.signing_secret.reveal()) == (BOT_TOKEN, SIGNING_SECRET)
    assert bot.webhook_url is None
    remembered = channels.SIGNING_SECRETS.get(org_id)
    assert remembered is not None
    assert remembered.secret == Secret(SIGNING_SECRET)
    teams = await channels.open_secrets(
        runtime.vault, org_id, "teams", _sealed_row(test_db, "teams")
    )
    assert isinstance(teams, TeamsSecrets)
    assert teams.webhook_url == Secret(teams_url)

    resp = await client.put(
        f"{_channels(example)}/slack",
        json={"mode": "webhook", "webhook_url": f"{receiver.url}{SLACK_HOOK_PATH}"},
        headers=example.owner,
    )
    assert resp.status_code == 200, resp.text
    hook = await channels.open_secrets(
        runtime.vault, org_id, "slack", _sealed_row(test_db, "slack")
    )
    assert isinstance(hook, SlackSecrets)
    assert hook.webhook_url == Secret(f"{receiver.url}{SLACK_HOOK_PATH}")
    assert (hook.bot_token, hook.signing_secret) == (None, None)

    shown = [repr(value) for value in (config, bot, remembered, teams, hook)]
    shown += [repr(list(value.__rich_repr__())) for value in (bot, teams, hook)]
    for secret in SECRETS:
        assert not [text for text in shown if secret in text], secret


# --- Slack's buttons -----------------------------------------------------------------------


async def _reviewer(client: httpx.AsyncClient, example: Example, email: str, role: str) -> None:
    added = await client.post(
        f"/v1/admin/orgs/{example.seeded.org_id}/members",
        json={"email": email, "roles": [role]},
        headers=example.owner,
    )
    assert added.status_code == 201, added.text


def _click(
    receiver: Receiver,
    approval: UUID | str,
    *,
    user: str = "U0RITA",
    action: str = slack_message.ACTION_APPROVE,
    team: str = TEAM_ID,
    user_team: str = TEAM_ID,
    app: str = APP_ID,
) -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": "rita", "name": "rita", "team_id": user_team},
        "api_app_id": app,
        "team": {"id": team, "domain": "acme"},
        "container": {"type": "message", "message_ts": "1.2", "channel_id": SLACK_CHANNEL},
        "channel": {"id": SLACK_CHANNEL, "name": "approvals"},
        "response_url": f"{receiver.url}{RESPONSE_PATH}",
        "trigger_id": "1.2.3",
        "actions": [
            {
                "type": "button",
                "action_id": action,
                "block_id": slack_message.DECISION_BLOCK,
                "value": str(approval),
                "action_ts": "1735689650.107343",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def _signed(body: bytes, *, secret: str = SIGNING_SECRET, age: int = 0) -> dict[str, str]:
    timestamp = str(int(time.time()) - age)
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": signature,
    }


async def _interact(
    client: httpx.AsyncClient, example: Example, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    return await client.post(
        f"/v1/slack/interactions/{example.seeded.org_id}", content=body, headers=headers
    )


def _votes(test_db: Database) -> list[tuple[Any, ...]]:
    with psycopg.connect(test_db.admin_url) as conn:
        return conn.execute("SELECT user_id, vote, comment FROM arx.approval_votes").fetchall()


async def test_a_verified_reviewer_approves_from_slack(
    client: httpx.AsyncClient, example: Example, receiver: Receiver, test_db: Database
) -> None:
    await _set_slack_bot(client, example, interactive=True, signing_secret=SIGNING_SECRET)
    await _reviewer(client, example, "rita@example.test", "reviewer")
    receiver.users["U0RITA"] = slack_user("U0RITA", "Rita@Example.test")
    approval = await _escalate(client, example)
    (post,) = await receiver.wait_for("/api/chat.postMessage")
    buttons = _buttons(post.json()["blocks"])
    assert buttons[slack_message.ACTION_APPROVE]["value"] == str(approval)
    assert buttons[slack_message.ACTION_REJECT]["style"] == "danger"

    body = _click(receiver, approval)
    headers = _signed(body)
    # What ARX checks is exactly what Slack's reference verifier accepts.
    assert SignatureVerifier(SIGNING_SECRET).is_valid(
        body=body,
        timestamp=headers["x-slack-request-timestamp"],
        signature=headers["x-slack-signature"],
    )
    started = time.monotonic()
    resp = await _interact(client, example, body, headers)
    assert time.monotonic() - started < 3.0, "Slack waits three seconds at most"
    assert resp.status_code == 200, resp.text
    # A bare acknowledgement: the clicker hears back through response_url, once.
    assert resp.json() == {}
    assert _approval_status(test_db, approval) == "approved"
    ((_, vote, comment),) = _votes(test_db)
    assert (vote, comment) == ("approve", f"via Slack (team {TEAM_ID}, user U0RITA)")
    (asked,) = receiver.at("/api/users.info")
    assert asked.query == {"user": "U0RITA"}
    assert asked.headers["authorization"] == f"Bearer {BOT_TOKEN}"
    (told,) = await receiver.wait_for(RESPONSE_PATH)
    assert told.json()["response_type"] == "ephemeral"
    assert told.json()["replace_original"] is False
    assert "recorded" in told.json()["text"]
    with psycopg.connect(test_db.admin_url) as conn:
        actors = conn.execute(
            "SELECT action, actor, details FROM arx.audit_events"
            " WHERE details ->> 'approval_id' = %s ORDER BY seq",
            (str(approval),),
        ).fetchall()
    assert [a for a, _, _ in actors] == ["approval.voted", "approval.approved"]
    assert all("rita@example.test" in actor for _, actor, _ in actors)
    # The trail names the Slack account that clicked, beside the person.
    assert f"team {TEAM_ID}, user U0RITA" in actors[0][2]["comment"]


async def test_bad_or_stale_signatures_change_nothing(
    client: httpx.AsyncClient, example: Example, receiver: Receiver, test_db: Database
) -> None:
    await _set_slack_bot(client, example, interactive=True, signing_secret=SIGNING_SECRET)
    await _reviewer(client, example, "rita@example.test", "reviewer")
    receiver.users["U0RITA"] = slack_user("U0RITA", "rita@example.test")
    approval = await _escalate(client, example)
    body = _click(receiver, approval)

    forged = await _interact(client, example, body, _signed(body, secret="0" * 32))
    stale = await _interact(client, example, body, _signed(body, age=301))
    unsigned = await _interact(
        client, example, body, {"content-type": "application/x-www-form-urlencoded"}
    )
    tampered = _signed(body)
    changed = await _interact(client, example, body.replace(b"U0RITA", b"U0ROBB"), tampered)
    elsewhere = await client.post(
        f"/v1/slack/interactions/{uuid.uuid4()}", content=body, headers=_signed(body)
    )
    for resp in (forged, stale, unsigned, changed, elsewhere):
        assert resp.status_code == 401, resp.text
        assert resp.json()["code"] == "invalid_signature"
    assert "five minutes" in stale.json()["detail"]
    assert _approval_status(test_db, approval) == "pending"
    assert _votes(test_db) == []
    assert receiver.at("/api/users.info") == []


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unconfirmed email", "has not confirmed your email"),
        ("not a reviewer", "reviewer role"),
        ("not a member", "not an active member"),
        ("interactive off", "switched off"),
        ("admin allowlist", "allowlist"),
        ("unknown slack user", "did not describe your account"),
    ],
)
async def test_no_vote_unless_slack_vouches_for_a_reviewer(
    client: httpx.AsyncClient,
    example: Example,
    receiver: Receiver,
    *,
    test_db: Database,
    case: str,
    reason: str,
) -> None:
    interactive = case != "interactive off"
    await _set_slack_bot(client, example, interactive=interactive, signing_secret=SIGNING_SECRET)
    await _reviewer(client, example, "rita@example.test", "reviewer")
    await _reviewer(client, example, "al@example.test", "auditor")
    setups: dict[str, Callable[[], None]] = {
        "unconfirmed email": lambda: receiver.users.update(
            U0RITA=slack_user("U0RITA", "rita@example.test", confirmed=False)
        ),
        "not a reviewer": lambda: receiver.users.update(
            U0RITA=slack_user("U0RITA", "al@example.test")
        ),
        "not a member": lambda: receiver.users.update(
            U0RITA=slack_user("U0RITA", "mallory@example.test")
        ),
    }
    receiver.users["U0RITA"] = slack_user("U0RITA", "rita@example.test")
    if case in setups:
        setups[case]()
    if case == "unknown slack user":
        receiver.users.clear()
    if case == "admin allowlist":
        resp = await client.put(
            f"/v1/admin/orgs/{example.seeded.org_id}/allowlists",
            json={"admin": ["127.0.0.0/8", "::1/128", "0.0.0.0/0"]},
            headers=example.owner,
        )
        assert resp.status_code == 200, resp.text
    approval = await _escalate(client, example)
    body = _click(receiver, approval)
    resp = await _interact(client, example, body, _signed(body))
    assert (resp.status_code, resp.json()) == (200, {})
    (told,) = await receiver.wait_for(RESPONSE_PATH)
    answer = told.json()
    assert answer["response_type"] == "ephemeral"
    assert reason in answer["text"]
    assert f"/review/example/approvals/{approval}" in answer["text"]
    assert _approval_status(test_db, approval) == "pending"
    assert _votes(test_db) == []


async def test_the_review_link_and_other_payloads_are_acknowledged(
    client: httpx.AsyncClient, example: Example, receiver: Receiver, test_db: Database
) -> None:
    await _set_slack_bot(client, example, interactive=True, signing_secret=SIGNING_SECRET)
    approval = await _escalate(client, example)
    body = _click(receiver, approval, action=slack_message.ACTION_REVIEW)
    resp = await _interact(client, example, body, _signed(body))
    assert (resp.status_code, resp.json()) == (200, {})
    shortcut = urlencode({"payload": json.dumps({"type": "shortcut"})}).encode()
    resp = await _interact(client, example, shortcut, _signed(shortcut))
    assert (resp.status_code, resp.json()) == (200, {})
    garbage = b"payload=%7Bnot-json"
    resp = await _interact(client, example, garbage, _signed(garbage))
    assert resp.status_code == 400, resp.text
    as_json = b'{"payload": "{}"}'
    resp = await _interact(
        client, example, as_json, {**_signed(as_json), "content-type": "application/json"}
    )
    assert resp.status_code == 415, resp.text
    assert _votes(test_db) == []
    assert receiver.at("/api/users.info") == []


async def test_a_deeply_nested_payload_is_a_400(
    client: httpx.AsyncClient, example: Example, test_db: Database
) -> None:
    await _set_slack_bot(client, example, interactive=True, signing_secret=SIGNING_SECRET)
    deep = '{"type": "block_actions", "x": ' + "[" * 1000 + "]" * 1000 + "}"
    body = urlencode({"payload": deep}).encode()
    resp = await _interact(client, example, body, _signed(body))
    assert resp.status_code == 400, resp.text
    assert _votes(test_db) == []


# --- whose clicks are believed -------------------------------------------------------------


async def test_the_bot_tokens_workspace_and_app_are_kept(
    client: httpx.AsyncClient, example: Example, receiver: Receiver
) -> None:
    shown = await _set_slack_bot(client, example)
    assert (shown["slack_team_id"], shown["slack_app_id"]) == (TEAM_ID, APP_ID)
    (asked,) = receiver.at("/api/auth.test")
    assert asked.method == "POST"
    assert asked.headers["authorization"] == f"Bearer {BOT_TOKEN}"
    # A token Slack does not vouch for is refused, and nothing is kept.
    resp = await client.put(
        f"{_channels(example)}/slack",
        json={"mode": "bot", "bot_token": "xoxb-revoked-0", "channel": SLACK_CHANNEL},
        headers=example.owner,
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == "bot_token"
    assert "invalid_auth" in resp.json()["detail"]
    assert "xoxb-revoked-0" not in resp.text
    current = (await client.get(_channels(example), headers=example.owner)).json()
    assert current["slack"]["slack_team_id"] == TEAM_ID
    # Slack unreachable: nothing changes either.
    receiver.script("/api/auth.test", (503, b"", {}))
    resp = await client.put(
        f"{_channels(example)}/slack",
        json={"mode": "bot", "bot_token": BOT_TOKEN, "channel": "C0OTHER"},
        headers=example.owner,
    )
    assert resp.status_code == 503, resp.text
    current = (await client.get(_channels(example), headers=example.owner)).json()
    assert current["slack"]["channel"] == SLACK_CHANNEL


@pytest.mark.parametrize(
    ("click", "user_team"),
    [
        ({"team": "T0EVIL", "user_team": "T0EVIL"}, TEAM_ID),  # another workspace's app
        ({"user_team": "T0EVIL"}, TEAM_ID),  # a user of another workspace
        ({"app": "A0EVIL"}, TEAM_ID),  # another app of the same workspace
        ({}, "T0EVIL"),  # Slack says the user is someone else's
    ],
    ids=["team", "user's team", "app", "users.info team"],
)
async def test_a_click_from_another_workspace_or_app_votes_nothing(
    client: httpx.AsyncClient,
    example: Example,
    receiver: Receiver,
    test_db: Database,
    *,
    click: dict[str, str],
    user_team: str,
) -> None:
    await _set_slack_bot(client, example, interactive=True, signing_secret=SIGNING_SECRET)
    await _reviewer(client, example, "rita@example.test", "reviewer")
    receiver.users["U0RITA"] = slack_user("U0RITA", "rita@example.test", team=user_team)
    approval = await _escalate(client, example)
    body = _click(receiver, approval, **click)
    resp = await _interact(client, example, body, _signed(body))
    assert (resp.status_code, resp.json()) == (200, {})
    (told,) = await receiver.wait_for(RESPONSE_PATH)
    assert "Nothing was recorded" in told.json()["text"]
    assert "workspace" in told.json()["text"]
    assert _approval_status(test_db, approval) == "pending"
    assert _votes(test_db) == []
    if click:  # refused before Slack is asked about the user
        assert receiver.at("/api/users.info") == []


async def test_only_an_owner_turns_on_approving_from_slack(
    client: httpx.AsyncClient, example: Example
) -> None:
    admin = await client.post(
        f"/v1/admin/orgs/{example.seeded.org_id}/admin-tokens",
        json={"name": "ops", "roles": ["admin"]},
        headers=example.owner,
    )
    assert admin.status_code == 201, admin.text
    as_admin = {"authorization": f"Bearer {admin.json()['token']}"}
    interactive = {
        "mode": "bot",
        "bot_token": BOT_TOKEN,
        "channel": SLACK_CHANNEL,
        "signing_secret": SIGNING_SECRET,
        "interactive_approvals": True,
    }
    url = f"{_channels(example)}/slack"
    refused = await client.put(url, json=interactive, headers=as_admin)
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "role_required"
    plain = await client.put(
        url, json={**interactive, "interactive_approvals": False}, headers=as_admin
    )
    assert plain.status_code == 200, plain.text
    owned = await client.put(url, json=interactive, headers=example.owner)
    assert owned.status_code == 200, owned.text
    assert owned.json()["interactive_approvals"] is True
    # An admin may still turn it off.
    off = await client.put(
        url, json={**interactive, "interactive_approvals": False}, headers=as_admin
    )
    assert (off.status_code, off.json()["interactive_approvals"]) == (200, False)


async def test_unsigned_floods_cost_no_database_round_trip(
    client: httpx.AsyncClient,
    example: Example,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _set_slack_bot(client, example, interactive=True, signing_secret=SIGNING_SECRET)
    reads: list[UUID] = []
    real = channels.slack_interaction_settings

    async def counted(pool: Any, vault: Any, org_id: UUID) -> Any:
        reads.append(org_id)
        return await real(pool, vault, org_id)

    monkeypatch.setattr(channels, "slack_interaction_settings", counted)
    body = _click(receiver, uuid.uuid4())
    forged = _signed(body, secret="0" * 32)
    nowhere = uuid.uuid4()
    for _ in range(20):
        resp = await _interact(client, example, body, forged)
        assert resp.status_code == 401, resp.text
        resp = await client.post(f"/v1/slack/interactions/{nowhere}", content=body, headers=forged)
        assert resp.status_code == 401, resp.text
    # Once per org; the rest cost an HMAC each.
    assert sorted(map(str, reads)) == sorted([str(example.seeded.org_id), str(nowhere)])

    # A change made in this process is seen at once: the new secret verifies,
    # the old one no longer does.
    await _set_slack_bot(client, example, interactive=True, signing_secret="9" * 32)
    resp = await _interact(client, example, body, _signed(body, secret="9" * 32))
    assert resp.status_code == 200, resp.text
    resp = await _interact(client, example, body, _signed(body))
    assert resp.status_code == 401, resp.text


# --- slow vendors ---------------------------------------------------------------------------


@pytest.mark.parametrize("settings", [{"notify_timeout_seconds": 1.0}], indirect=True)
async def test_a_trickling_webhook_holds_one_delivery_not_the_queue(
    client: httpx.AsyncClient, example: Example, receiver: Receiver, test_db: Database
) -> None:
    slow_path = "/services/slow/T/B/x"
    receiver.trickle[slow_path] = 0.25  # 40 bytes: 10 s, each read well inside 1 s
    resp = await client.put(
        f"{_channels(example)}/slack",
        json={"mode": "webhook", "webhook_url": f"{receiver.url}{slow_path}"},
        headers=example.owner,
    )
    assert resp.status_code == 200, resp.text
    resp = await client.put(
        f"{_channels(example)}/teams",
        json={"webhook_url": f"{receiver.url}{TEAMS_HOOK_PATH}?sig={TEAMS_SIG}"},
        headers=example.owner,
    )
    assert resp.status_code == 200, resp.text
    first = _plant_approval(test_db, example)
    (slow,) = await receiver.wait_for(slow_path)

    # While the first Slack message trickles, the next request is announced.
    planted = time.monotonic()
    second = _plant_approval(test_db, example)
    posts = await receiver.wait_for(TEAMS_HOOK_PATH, 2)
    assert posts[-1].at - planted < 0.9, "a slow vendor held up the queue"
    assert [_teams_request(p) for p in posts] == [str(first), str(second)]

    # And the slow delivery itself ends at its timeout, not when the vendor does.
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            (job,) = [
                d
                for d in await _deliveries(client, example)
                if d["approval_id"] == str(first) and d["channel"] == "slack"
            ]
            if job["last_error"] is not None:
                break
            await asyncio.sleep(0.02)
    ended = time.monotonic()
    assert job["last_error"] == "no answer within 1 s"
    assert ended - slow.at < 2.5, f"a 1 s delivery took {ended - slow.at:.1f} s"


async def test_a_slow_users_info_still_answers_slack_in_time(
    client: httpx.AsyncClient, example: Example, receiver: Receiver, test_db: Database
) -> None:
    await _set_slack_bot(client, example, interactive=True, signing_secret=SIGNING_SECRET)
    await _reviewer(client, example, "rita@example.test", "reviewer")
    receiver.trickle["/api/users.info"] = 0.25  # each read quick, the whole 10 s
    approval = await _escalate(client, example)
    body = _click(receiver, approval)
    started = time.monotonic()
    resp = await _interact(client, example, body, _signed(body))
    assert time.monotonic() - started < 3.0, "Slack waits three seconds at most"
    assert (resp.status_code, resp.json()) == (200, {})
    (told,) = await receiver.wait_for(RESPONSE_PATH)
    assert "Slack could not be asked who you are" in told.json()["text"]
    assert _votes(test_db) == []


# --- the queue -------------------------------------------------------------------------------


async def test_a_row_that_cannot_be_read_fails_alone(
    client: httpx.AsyncClient, example: Example, receiver: Receiver, test_db: Database
) -> None:
    await _set_slack_bot(client, example)
    # One transaction, so one notice and one claim for both.
    bad, good = _plant_approvals(test_db, example, {"reasons": [1, 2]}, {})
    (done,) = await _settled(client, example, good)
    assert (done["status"], done["attempts"]) == ("delivered", 1)
    (failed,) = await _settled(client, example, bad)
    assert (failed["status"], failed["attempts"]) == ("failed", 1)
    assert failed["last_error"] == queue.UNREADABLE
    assert len(receiver.at("/api/chat.postMessage")) == 1


async def test_a_stale_claim_records_nothing_after_a_requeue(
    client: httpx.AsyncClient,
    example: Example,
    runtime: Runtime,
    test_db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # This process's worker stands aside: the test claims by hand.
    async def idle(self: NotificationWorker) -> int:
        return 0

    monkeypatch.setattr(NotificationWorker, "deliver_due", idle)
    await asyncio.sleep(0.2)  # a pass under way ends
    await _set_slack_bot(client, example)
    approval = _plant_approval(test_db, example)
    pool = runtime.control_pool
    assert pool is not None
    (stale,) = await queue.claim(pool, limit=10, lease_seconds=60, max_attempts=3)
    assert stale.approval_id == approval
    # Its lease runs out, later attempts fail, a person requeues it (attempts
    # start over), and another worker claims it: attempt 1 again.
    with psycopg.connect(test_db.admin_url) as conn:
        conn.execute(
            "UPDATE arx.notification_jobs SET status = 'failed' WHERE id = %s", (stale.job_id,)
        )
    retried = await client.post(
        f"{_notifications(example)}/{stale.job_id}/retry", headers=example.owner
    )
    assert retried.status_code == 200, retried.text
    (fresh,) = await queue.claim(pool, limit=10, lease_seconds=60, max_attempts=3)
    assert (fresh.job_id, fresh.attempt) == (stale.job_id, stale.attempt)
    assert fresh.claim_token != stale.claim_token
    # The stale worker finally finishes: it records nothing over the new claim.
    assert not await queue.finish(pool, stale, status="failed", error="stale")
    assert await queue.finish(pool, fresh, status="delivered", error=None)
    (job,) = await _deliveries(client, example)
    assert (job["status"], job["last_error"]) == ("delivered", None)


async def test_escalations_are_queued_under_replication_too(
    client: httpx.AsyncClient, example: Example, test_db: Database
) -> None:
    await _set_slack_bot(client, example)
    (approval,) = _plant_approvals(test_db, example, {}, replica=True)
    with psycopg.connect(test_db.admin_url) as conn:
        queued = conn.execute(
            "SELECT count(*) FROM arx.notification_jobs WHERE approval_id = %s", (approval,)
        ).fetchone()
    assert queued == (1,)
