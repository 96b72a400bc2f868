"""The API docs page in a real browser, with the outside network blocked.

``arx serve`` runs on the test's database; headless Chromium opens
``/schema`` and may reach nothing but loopback. Swagger UI must render every
operation of the document from ARX's own assets, with no request outside, no
Content-Security-Policy violation and nothing on the console. The screenshot
is kept in ``.arx/test-output/`` for a person to look at.
"""

from __future__ import annotations

import re

import httpx
import pytest

from arx.api.docs_page import SWAGGER_UI_VERSION
from tests.fixtures.browser import BrowserPage, LiveServer

pytestmark = pytest.mark.anyio

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


async def test_docs_page_renders_offline(arx_server: LiveServer, browser_page: BrowserPage) -> None:
    page = browser_page.page
    async with httpx.AsyncClient(base_url=arx_server.url, timeout=10) as http:
        document = (await http.get("/schema/openapi.json")).json()
    operations = sum(
        1 for item in document["paths"].values() for method in item if method in METHODS
    )

    answer = await page.goto(f"{arx_server.url}/schema", wait_until="load")
    assert answer is not None
    assert answer.status == 200
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    # The page as served names no URL off this origin (the unit tests look closer).
    names = re.findall(r"""(?:https?:)?//[^\s"'<>]+""", await answer.text())
    assert names == [], names

    execute = page.locator(
        ".opblock.opblock-post", has=page.locator('[data-path="/v1/sdk/execute"]')
    )
    await execute.wait_for(state="visible", timeout=15_000)
    assert await page.locator(".opblock").count() == operations
    # The Swagger UI that ran is the pinned one ARX serves.
    assert await page.evaluate("window.versions.swaggerUI.version") == SWAGGER_UI_VERSION

    # Open the operation: its request body schema renders from the document too.
    await execute.locator(".opblock-summary").first.click()
    await execute.locator(".opblock-body").wait_for(state="visible", timeout=5_000)

    await browser_page.screenshot()
    requested = set(
        await page.evaluate("performance.getEntriesByType('resource').map((e) => e.name)")
    )
    assert all(url.startswith(f"{arx_server.url}/") for url in requested), requested
    assert any(f"/swagger-ui-{SWAGGER_UI_VERSION}/" in url for url in requested), requested
    browser_page.assert_clean()

    # The watchers are live: an inline script is refused by the page's CSP,
    # and that is reported.
    ran = await page.evaluate(
        """() => {
          const s = document.createElement("script");
          s.textContent = "window.inlineRan = true";
          document.body.append(s);
          return window.inlineRan === true;
        }"""
    )
    assert not ran
    for _ in range(50):  # the violation event is queued as a task, then reported
        if any("script-src" in v for v in browser_page.csp_violations):
            break
        await page.wait_for_timeout(100)
    assert any("script-src" in v for v in browser_page.csp_violations), browser_page.csp_violations


async def test_the_browser_reaches_nothing_outside(browser_page: BrowserPage) -> None:
    """The fixture's guard itself: a page asking for outside hosts gets nothing,
    and every attempt is on record (``.example`` names exist nowhere)."""
    page = browser_page.page
    await page.set_content(
        '<img src="https://cdn.outside.example/logo.png">'
        '<script src="http://outside.example/app.js"></script>'
    )
    failed = await page.evaluate(
        "fetch('https://api.outside.example/').then(() => false, () => true)"
    )
    assert failed
    assert sorted(browser_page.outside_requests) == [
        "GET http://outside.example/app.js",
        "GET https://api.outside.example/",
        "GET https://cdn.outside.example/logo.png",
    ]
    browser_page.outside_requests.clear()
    browser_page.console_errors.clear()  # the refusals are logged as load failures
    browser_page.assert_clean()
