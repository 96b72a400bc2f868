"""A reviewer approves in a real browser, and the agent waiting on it completes.

The whole local system as ``scripts/demo.sh`` runs it (``local_stack``: its
OPA sidecar, the Falcon sandbox, ``arx serve``, the example org seeded
through the admin API, whose owner also reviews). An agent, in its own
thread, asks to contain a host through the SDK and waits for the decision;
headless Chromium (Debian's, the outside network blocked) opens the queue,
is sent to sign in and back, opens the request, approves it; the agent's
call then completes with the tool's answer, and the page's audit view shows
it executed. Screenshots: ``.arx/test-output/``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from agentvault import ARXClient

from arx.devstack.demo import Stack, local_stack
from arx.devstack.ports import free_port
from tests.fixtures.browser import BrowserPage

pytestmark = pytest.mark.anyio

DB = "arx_browser_review"


@pytest.fixture(scope="module")
def stack(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("browser-review-stack")
    with local_stack(home=home, port=free_port(), admin_url=pg_admin_url, db_name=DB) as running:
        yield running


def _waiting_agent(stack: Stack, host: str, outcome: dict[str, Any]) -> threading.Thread:
    """responder-bot asks to contain ``host`` and waits up to a minute for reviewers."""

    def run() -> None:
        with ARXClient(stack.api_keys["responder-bot"], base_url=stack.base_url) as agent:
            try:
                outcome["result"] = agent.execute(
                    "crowdstrike", "hosts:contain", {"ids": [host]}, wait_for_approval=60
                )
            except Exception as exc:
                outcome["error"] = exc

    thread = threading.Thread(target=run, name="waiting agent", daemon=True)
    thread.start()
    return thread


async def test_a_reviewer_approves_in_the_browser_and_the_waiting_call_completes(
    stack: Stack, browser_page: BrowserPage
) -> None:
    with ARXClient(stack.api_keys["triage-bot"], base_url=stack.base_url) as triage:
        host = triage.execute("crowdstrike", "hosts:search", {}).result["resources"][0]
    outcome: dict[str, Any] = {}
    agent = _waiting_agent(stack, host, outcome)
    page = browser_page.page

    await page.goto(f"{stack.base_url}/review/example")
    assert "/auth/login" in page.url  # sent to sign in ...
    await page.fill("input[name=email]", stack.owner_email)
    await page.fill("input[name=password]", stack.owner_password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{stack.base_url}/review/example")  # ... and back
    for _ in range(50):  # the agent's request may land just after the page
        if await page.locator("tr.approval").count():
            break
        await page.wait_for_timeout(100)
        await page.reload()
    row = page.locator("tr.approval")
    assert await row.count() == 1
    assert "responder-bot" in await row.inner_text()
    await row.get_by_role("link", name="Review").click()

    await page.wait_for_selector("#decide")
    assert host in await page.inner_text("#params")
    assert "Host containment needs a human approval" in await page.inner_text("#reasons")
    assert (await page.inner_text("#status")).strip() == "pending"
    assert agent.is_alive()  # still waiting for a person
    await page.fill("#comment", "patient zero: contain it")
    await browser_page.screenshot("pending", full_page=True)
    await page.click("#approve")

    await page.wait_for_selector("#notice")
    agent.join(timeout=30)
    assert not agent.is_alive(), "the agent's call did not complete after the approval"
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert result.verdict == "PERMIT"
    assert result.policy_id == "EX-010"
    assert result.reasons[0].startswith("approved by reviewers")
    assert host in str(result.result)

    await page.reload()
    assert (await page.inner_text("#status")).strip() == "executed"
    assert result.event_id in await page.inner_text("#execution")
    assert "patient zero: contain it" in await page.inner_text("#votes")
    await browser_page.screenshot("executed", full_page=True)
    browser_page.assert_clean()
