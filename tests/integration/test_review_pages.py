"""The review pages over HTTP: sign-in and back, the queue, one request in
full, votes with the session's CSRF token, and what an agent sent shown only
as text.

The agent escalates through the real policy (the example bundle escalates
host containment); the reviewer signs in with a local password. The pages'
security headers are checked on every response by the ``signin`` fixtures'
browsers. (The same loop in a real Chromium: tests/e2e/test_browser_review.py.)
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from uuid import UUID

import httpx
import msgspec
import psycopg
import pytest
from psycopg.types.json import Jsonb

from arx.admin.people import add_member_in, update_member
from arx.config import Settings
from arx.db.pool import org_transaction
from arx.identity.passwords import hash_password
from arx.identity.principal import Access
from arx.runtime import Runtime
from tests.fixtures.arx import SEED_ACTOR, Example
from tests.fixtures.database import Database
from tests.fixtures.signin import PUBLIC_URL, OpenSite, Site

pytestmark = pytest.mark.anyio

EXECUTE = "/v1/sdk/execute"
PASSWORD = "correct horse battery staple"
HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'
CONTAIN = {
    "connector": "crowdstrike",
    "operation": "hosts:contain",
    "params": {"ids": ["4c1d7e2a9b3f4e5d8a6c0b1e2f3a4d5c"]},
}


@pytest.fixture
async def review_site(
    open_site: OpenSite, settings: Settings, runtime: Runtime
) -> AsyncIterator[Site]:
    """ARX at https://arx.test on the same database as ``client`` and ``example``."""
    configured = msgspec.structs.replace(settings, public_url=PUBLIC_URL, cookie_secure=True)
    async with open_site(configured) as opened:
        yield opened


async def _person(runtime: Runtime, example: Example, email: str, roles: list[str]) -> UUID:
    """A member with a local password (as the demo's reviewer has)."""
    owner = Access(principal=SEED_ACTOR, org_id=example.seeded.org_id, roles=frozenset({"owner"}))
    async with org_transaction(runtime.control_pool, example.seeded.org_id) as conn:
        member = await add_member_in(
            conn,
            owner,
            email=email,
            display_name="",
            roles=roles,
            password_hash=hash_password(PASSWORD),
        )
    return member.user_id


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]*)"', page)
    assert match is not None, page
    return match.group(1)


async def _sign_in(browser: httpx.AsyncClient, email: str, *, next_path: str = "") -> str:
    """Sign in; return where ARX sent the browser."""
    query = f"?next={next_path}" if next_path else ""
    page = await browser.get(f"/auth/login{query}")
    resp = await browser.post(
        "/auth/login",
        data={"csrf_token": _csrf(page.text), "email": email, "password": PASSWORD},
    )
    assert resp.status_code == 303, resp.text
    return resp.headers["location"]


async def _escalate(client: httpx.AsyncClient, example: Example) -> str:
    pending = await client.post(EXECUTE, json=CONTAIN, headers=example.auth("responder-bot"))
    assert pending.status_code == 202, pending.text
    return str(pending.json()["approval_id"])


def _text(page: str, element_id: str) -> str:
    """The text of the element with this id, its inner tags removed and unescaped."""
    match = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', page, re.S)
    assert match is not None, f"no #{element_id} in the page"
    return html.unescape(re.sub(r"<[^>]+>", " ", match.group(2))).strip()


async def test_a_reviewer_signs_in_from_a_link_sees_the_request_and_approves_it(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, review_site: Site
) -> None:
    approval = await _escalate(client, example)
    await _person(runtime, example, "rita@example.test", ["reviewer"])
    link = f"/review/example/approvals/{approval}"
    async with review_site.open_browser() as browser:
        # A link from Slack opened before signing in comes back after it.
        bounced = await browser.get(link)
        assert bounced.status_code == 303
        assert bounced.headers["location"] == f"/auth/login?next={link}"
        assert await _sign_in(browser, "rita@example.test", next_path=link) == link

        queue = await browser.get("/review/example")
        assert queue.status_code == 200, queue.text
        assert f'data-approval-id="{approval}"' in queue.text
        page = await browser.get(link)
        assert page.status_code == 200
        # A link cannot claim a vote that was not cast.
        assert 'id="notice"' not in (await browser.get(f"{link}?done=approve")).text
        for context in ("responder-bot", "hosts:contain", "Host containment needs a human"):
            assert context in page.text
        assert "4c1d7e2a9b3f4e5d8a6c0b1e2f3a4d5c" in _text(page.text, "params")
        assert _text(page.text, "risk").startswith("60")
        assert "Contain compromised hosts" in page.text  # the agent's declared purpose

        voted = await browser.post(
            f"{link}/vote",
            data={"csrf_token": _csrf(page.text), "decision": "approve", "comment": "go"},
        )
        assert voted.status_code == 303, voted.text
        assert voted.headers["location"] == f"{link}?done=approve"
        after = await browser.get(voted.headers["location"])
        assert _text(after.text, "status") == "approved"
        assert "rita@example.test" in _text(after.text, "votes")
        assert 'id="approve"' not in after.text  # nothing left to decide
    seen = await client.get(f"/v1/sdk/approvals/{approval}", headers=example.auth("responder-bot"))
    assert (seen.json()["status"], seen.json()["comment"]) == ("approved", "go")


async def test_what_the_agent_sent_is_shown_as_text_never_as_markup(
    client: httpx.AsyncClient,
    example: Example,
    runtime: Runtime,
    review_site: Site,
    test_db: Database,
) -> None:
    approval = await _escalate(client, example)
    # Today's connectors validate every param (Falcon device ids are hex), so
    # no markup reaches an escalation through them; a connector with free text
    # (a Jira summary, a ServiceNow note) stores exactly this.
    with psycopg.connect(test_db.admin_url) as conn:
        conn.execute(
            "UPDATE arx.approval_requests SET params = params || %s WHERE id = %s",
            (Jsonb({"note": HOSTILE}), approval),
        )
    await _person(runtime, example, "rita@example.test", ["reviewer"])
    async with review_site.open_browser() as browser:
        await _sign_in(browser, "rita@example.test")
        page = await browser.get(f"/review/example/approvals/{approval}")
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "<img src=x" not in page.text
    assert "&lt;script&gt;" in page.text
    assert HOSTILE in _text(page.text, "params").replace('\\"', '"')
    csp = page.headers["content-security-policy"]
    assert "script-src" not in csp
    assert "default-src 'none'" in csp


async def test_a_vote_needs_the_sessions_csrf_token_and_the_reviewer_role(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, review_site: Site
) -> None:
    approval = await _escalate(client, example)
    await _person(runtime, example, "rita@example.test", ["reviewer"])
    await _person(runtime, example, "aud@example.test", ["auditor"])
    link = f"/review/example/approvals/{approval}"
    async with review_site.open_browser() as browser:
        await _sign_in(browser, "rita@example.test")
        for form in ({}, {"csrf_token": "forged"}):
            refused = await browser.post(f"{link}/vote", data={**form, "decision": "approve"})
            assert refused.status_code == 403
            assert _text(refused.text, "status") == "pending"
    async with review_site.open_browser() as auditor:
        await _sign_in(auditor, "aud@example.test")
        page = await auditor.get(link)
        assert page.status_code == 200  # an auditor sees it ...
        assert 'id="approve"' not in page.text  # ... without the buttons
        forced = await auditor.post(
            f"{link}/vote", data={"csrf_token": _csrf(page.text), "decision": "approve"}
        )
        assert forced.status_code == 403
        assert "reviewer role" in _text(forced.text, "error")
    seen = await client.get(f"/v1/sdk/approvals/{approval}", headers=example.auth("responder-bot"))
    assert seen.json()["status"] == "pending"


async def test_other_orgs_and_strangers_see_nothing(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, review_site: Site
) -> None:
    approval = await _escalate(client, example)
    rita = await _person(runtime, example, "rita@example.test", ["reviewer"])
    async with review_site.open_browser() as browser:
        await _sign_in(browser, "rita@example.test")
        for path in ("/review/nope", f"/review/nope/approvals/{approval}"):
            assert (await browser.get(path)).status_code == 404
        # A member no more: the next page says so at once.
        owner = Access(
            principal=SEED_ACTOR, org_id=example.seeded.org_id, roles=frozenset({"owner"})
        )
        await update_member(runtime.control_pool, owner, rita, roles=None, active=False)
        gone = await browser.get(f"/review/example/approvals/{approval}")
        assert gone.status_code in (303, 404)
    async with review_site.open_browser() as stranger:
        resp = await stranger.post(
            f"/review/example/approvals/{approval}/vote", data={"decision": "approve"}
        )
        assert resp.status_code == 303
        # Back to the request's page after sign-in, never to the form's target.
        link = f"/review/example/approvals/{approval}"
        assert resp.headers["location"] == f"/auth/login?next={link}"


async def test_the_audit_view_shows_votes_and_the_execution(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, review_site: Site
) -> None:
    approval = await _escalate(client, example)
    await _person(runtime, example, "rita@example.test", ["reviewer"])
    link = f"/review/example/approvals/{approval}"
    async with review_site.open_browser() as browser:
        await _sign_in(browser, "rita@example.test")
        page = await browser.get(link)
        await browser.post(
            f"{link}/vote",
            data={"csrf_token": _csrf(page.text), "decision": "approve", "comment": "ok"},
        )
        resumed = await client.post(
            f"/v1/sdk/approvals/{approval}/execute",
            json=CONTAIN,
            headers=example.auth("responder-bot"),
        )
        assert resumed.status_code == 200, resumed.text
        audit = await browser.get(link)
        assert _text(audit.text, "status") == "executed"
        assert "200" in _text(audit.text, "execution")
        result = _text(audit.text, "result")
        assert "4c1d7e2a9b3f4e5d8a6c0b1e2f3a4d5c" in result
        assert resumed.json()["event_id"] in audit.text
        queue = await browser.get("/review/example")
        assert f"/review/example/approvals/{approval}" in queue.text  # recently decided
