"""The docs page at /schema: ARX serves all of it, under a strict CSP.

In-process (no database, no lifespan): the page, its assets and the OpenAPI
document need neither. The browser side is tests/e2e/test_browser_docs.py.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser

import httpx
import pytest

from arx.api.app import create_app
from arx.api.docs_page import SWAGGER_UI_VERSION
from arx.config import Settings

pytestmark = pytest.mark.anyio

ORIGIN = "http://arx.test"


class _Refs(HTMLParser):
    """Every src/href of the page, and the inline scripts and styles it has."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.inline: list[str] = []
        self._tag = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag = tag
        named = dict(attrs)
        self.refs += [v for k, v in attrs if k in {"src", "href"} and v is not None]
        if "style" in named or any(k.startswith("on") for k in named):
            self.inline.append(f"<{tag}> attribute")

    def handle_data(self, data: str) -> None:
        if self._tag in {"script", "style"} and data.strip():
            self.inline.append(f"<{self._tag}> {data.strip()[:40]}")

    def handle_endtag(self, tag: str) -> None:
        self._tag = ""


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url="postgresql://unused.invalid/arx"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN) as c:
        yield c


def _csp(resp: httpx.Response) -> dict[str, list[str]]:
    csp = resp.headers["content-security-policy"]
    return {name: values for name, *values in (p.split() for p in csp.split(";") if p.strip())}


async def test_page_carries_a_strict_csp(client: httpx.AsyncClient) -> None:
    resp = await client.get("/schema")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    csp = _csp(resp)
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert "unsafe" not in resp.headers["content-security-policy"]
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["cache-control"] == "no-cache"


async def test_page_names_no_outside_url_and_has_no_inline_code(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get("/schema")).text
    # Any absolute or scheme-relative URL anywhere in the text, not only in attributes.
    outside = [
        url
        for url in re.findall(r"""(?:https?:)?//[^\s"'<>]+""", page)
        if not url.startswith((f"{ORIGIN}/", "//arx.test/"))
    ]
    assert outside == [], outside
    refs = _Refs()
    refs.feed(page)
    assert refs.inline == []
    assert len(refs.refs) == 5  # icon, two stylesheets, Swagger UI, its start-up code
    for ref in refs.refs:
        assert ref.startswith("/schema/assets/"), ref
        resp = await client.get(ref)
        assert resp.status_code == 200, ref
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert "script-src 'self'" in resp.headers["content-security-policy"]
    assert any(f"/swagger-ui-{SWAGGER_UI_VERSION}/swagger-ui-bundle.js" in r for r in refs.refs)


async def test_assets_have_their_media_types(client: httpx.AsyncClient) -> None:
    base = f"/schema/assets/swagger-ui-{SWAGGER_UI_VERSION}"
    expected = {
        "swagger-ui-bundle.js": "text/javascript",
        "swagger-ui.css": "text/css",
        "favicon-32x32.png": "image/png",
    }
    for name, media_type in expected.items():
        resp = await client.get(f"{base}/{name}")
        assert resp.headers["content-type"].split(";")[0] == media_type, name
    bundle = (await client.get(f"{base}/swagger-ui-bundle.js")).text
    assert f'PACKAGE_VERSION:"{SWAGGER_UI_VERSION}"' in bundle


async def test_only_the_files_the_page_uses_are_served(client: httpx.AsyncClient) -> None:
    base = f"/schema/assets/swagger-ui-{SWAGGER_UI_VERSION}"
    for name in ("swagger-ui-bundle.js.map", "swagger-initializer.js", "index.html", "../x"):
        assert (await client.get(f"{base}/{name}")).status_code == 404, name
    assert (await client.get("/schema/assets/swagger-ui-0.0.0/swagger-ui.css")).status_code == 404


async def test_openapi_document_is_served_without_the_docs_routes(
    client: httpx.AsyncClient,
) -> None:
    resp = await client.get("/schema/openapi.json")
    assert resp.status_code == 200
    document = resp.json()
    assert "/v1/sdk/execute" in document["paths"]
    assert not [p for p in document["paths"] if p.startswith("/schema")]
