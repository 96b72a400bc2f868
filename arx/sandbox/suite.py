"""The demo's sandboxes for Okta, Jira, Splunk and Microsoft Sentinel in one
process, each under its own path: ``/okta``, ``/jira``, ``/splunk``,
``/sentinel`` (a connector's base URL may carry a path). The Falcon sandbox
runs on its own, as compose runs it.

``uvicorn --factory arx.sandbox.suite:app_from_env``; every fake accepts the
credentials derived from ``ARX_SANDBOX_SECRET`` (``credentials``).
"""

from __future__ import annotations

import os
from typing import Any, cast

from litestar.types import ASGIApp

from arx.sandbox import jira, okta, sentinel, splunk

# Fixed names in the sandboxes; the secrets come from ARX_SANDBOX_SECRET.
TENANT = "5f0c2b1e-7a3d-4c9e-8b21-0e6f4a9d3c12"
CLIENT = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
WORKSPACE = ("0b9e8d7c-6f5a-4e3d-2c1b-0a9f8e7d6c5b", "soc-rg", "soc-workspace")
JIRA_EMAIL = "arx-demo@example.com"
SPLUNK_USER = "arx-demo"


def credentials(secret: str) -> dict[str, dict[str, Any]]:
    """What the org stores for each connector to use the sandboxes (the secret
    itself in each, distinct per vendor)."""
    sub, group, workspace = WORKSPACE
    return {
        "okta": {"api_token": f"okta-{secret}"},
        "jira": {"email": JIRA_EMAIL, "api_token": f"jira-{secret}"},
        "splunk": {"username": SPLUNK_USER, "password": f"splunk-{secret}"},
        "sentinel": {
            "tenant_id": TENANT,
            "client_id": CLIENT,
            "client_secret": f"sentinel-{secret}",
            "subscription_id": sub,
            "resource_group": group,
            "workspace": workspace,
        },
    }


def create_app(secret: str) -> ASGIApp:
    apps: dict[str, ASGIApp] = {
        "/okta": okta.create_app(okta.OktaState.demo(f"okta-{secret}")),
        "/jira": jira.create_app(jira.JiraState.demo(JIRA_EMAIL, f"jira-{secret}")),
        "/splunk": splunk.create_app(splunk.SplunkState.demo(SPLUNK_USER, f"splunk-{secret}")),
        "/sentinel": sentinel.create_app(
            sentinel.SentinelState.demo(TENANT, CLIENT, f"sentinel-{secret}", WORKSPACE)
        ),
    }

    async def dispatch(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            # Nothing to start: answer the lifespan protocol for every fake.
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path = scope.get("path", "")
        for prefix, app in apps.items():
            if path == prefix or path.startswith(prefix + "/"):
                inner = path[len(prefix) :] or "/"
                scope = {**scope, "path": inner, "raw_path": inner.encode()}
                scope["root_path"] = scope.get("root_path", "") + prefix
                await app(scope, receive, send)  # type: ignore[arg-type]
                return
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"no sandbox here"})

    return cast("ASGIApp", dispatch)


def app_from_env() -> ASGIApp:
    secret = os.environ.get("ARX_SANDBOX_SECRET", "")
    if not secret:
        raise SystemExit("set ARX_SANDBOX_SECRET to the secret the sandboxes accept")
    return create_app(secret)


__all__ = ["CLIENT", "TENANT", "WORKSPACE", "app_from_env", "create_app", "credentials"]
