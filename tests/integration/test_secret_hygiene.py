"""Issue 10, point 3: every operation of every connector runs with its
credentials set, through the API (escalations approved by a reviewer), on
the success path and on the failure paths; then every response (body and
headers), every audit row, every approval row and every log record is
searched for every credential value, access token, API key and the KEK.
None may appear.

A connector added to the registry without an entry in OPERATIONS fails here,
so the hygiene check grows with the connectors.
"""

from __future__ import annotations

import base64
import logging
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from arx.approvals import review
from arx.connectors.registry import all_connectors
from arx.identity.principal import Access, Principal, PrincipalKind
from arx.identity.types import IntentManifest
from arx.runtime import Runtime
from arx.sandbox.falcon import FalconState
from arx.sandbox.okta import OktaState
from arx.sandbox.sentinel import SentinelState
from arx.sandbox.splunk import SplunkState
from tests.fixtures.arx import (
    FALCON_CLIENT_ID,
    FALCON_CLIENT_SECRET,
    JIRA_EMAIL,
    JIRA_TOKEN,
    JIRA_URL,
    OKTA_TOKEN,
    OKTA_URL,
    SENTINEL_CLIENT,
    SENTINEL_SECRET,
    SENTINEL_TENANT,
    SENTINEL_WORKSPACE,
    SPLUNK_PASSWORD,
    SPLUNK_URL,
    SPLUNK_USER,
    Example,
    make_agent,
)
from tests.fixtures.arx import (
    SEED_ACTOR as SEED,
)
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

EXECUTE = "/v1/sdk/execute"
WS_FIN = "4c1d7e2a9b3f4e5d8a6c0b1e2f3a4d5c"
# Per connector, per operation: the agent that calls it and valid params.
OPERATIONS: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    "crowdstrike": {
        "hosts:search": ("triage-bot", {"filter": "hostname:'WS-FIN-01'"}),
        "hosts:get": ("triage-bot", {"ids": [WS_FIN]}),
        "hosts:contain": ("responder-bot", {"ids": [WS_FIN]}),
        "hosts:lift_containment": ("responder-bot", {"ids": [WS_FIN]}),
    },
    "okta": {
        "users:search": ("iam-bot", {"search": 'profile.email eq "ana.ruiz@example.com"'}),
        "users:get": ("iam-bot", {"user": "ana.ruiz@example.com"}),
        "users:suspend": ("iam-bot", {"user_id": "{ana}"}),
        "users:unsuspend": ("iam-bot", {"user_id": "{ana}"}),
        "sessions:revoke": ("iam-bot", {"user_id": "{ana}"}),
        "groups:remove_user": ("iam-bot", {"group_id": "{group}", "user_id": "{ana}"}),
        "groups:add_user": ("iam-bot", {"group_id": "{group}", "user_id": "{ana}"}),
    },
    "jira": {
        "issues:search": ("iam-bot", {"jql": "project = SEC"}),
        "issues:get": ("iam-bot", {"key": "SEC-1"}),
        "issues:transitions": ("iam-bot", {"key": "SEC-1"}),
        "issues:create": ("iam-bot", {"project": "SEC", "summary": "Suspended ana.ruiz"}),
        "issues:comment": ("iam-bot", {"key": "SEC-1", "body": "Suspended in Okta"}),
        "issues:transition": ("iam-bot", {"key": "SEC-1", "transition_id": "31"}),
    },
    "splunk": {
        "search:query": ("iam-bot", {"search": "search index=main user=ana.ruiz"}),
        "search:status": ("iam-bot", {"sid": "{sid}"}),
        "search:results": ("iam-bot", {"sid": "{sid}"}),
        "search:create": ("iam-bot", {"search": "search index=main | stats count by user"}),
        "search:cancel": ("iam-bot", {"sid": "{sid}"}),
        "notable:update": ("iam-bot", {"rule_uids": ["{notable}"], "status": 2}),
    },
    "sentinel": {
        "incidents:list": ("iam-bot", {}),
        "incidents:get": ("iam-bot", {"incident_id": "{incident}"}),
        "incidents:comment": ("iam-bot", {"incident_id": "{incident}", "message": "on it"}),
        "incidents:update": (
            "iam-bot",
            {"incident_id": "{incident}", "title": "t", "severity": "High", "status": "Active"},
        ),
    },
}


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return ids.get(value, value) if isinstance(value, str) else value


class _Caller:
    """Calls through the API, remembering every answer ARX gave as text."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        example: Example,
        reviewers: list[Access],
    ) -> None:
        self.client, self.runtime, self.example, self.reviewers = (
            client,
            runtime,
            example,
            reviewers,
        )
        self.texts: list[str] = []

    def seen(self, resp: httpx.Response) -> httpx.Response:
        self.texts.append(resp.text)
        self.texts.append(repr(resp.headers.multi_items()))
        return resp

    async def execute(self, call: dict[str, Any], agent: str) -> httpx.Response:
        """One call, through approval when policy escalates it."""
        headers = self.example.auth(agent)
        resp = self.seen(await self.client.post(EXECUTE, json=call, headers=headers))
        if resp.status_code != 202:
            return resp
        approval = UUID(resp.json()["approval_id"])
        # As many distinct reviewers as policy asks (EX-060 asks two).
        for reviewer in self.reviewers[: resp.json()["approvals_required"]]:
            await review.vote(
                self.runtime.control_pool, reviewer, approval, approve=True, comment="ok"
            )
        self.seen(await self.client.get(f"/v1/sdk/approvals/{approval}", headers=headers))
        url = f"/v1/sdk/approvals/{approval}/execute"
        return self.seen(await self.client.post(url, json=call, headers=headers))


async def _reviewer(client: httpx.AsyncClient, example: Example, email: str) -> Access:
    added = await client.post(
        f"/v1/admin/orgs/{example.seeded.org_id}/members",
        json={"email": email, "roles": ["reviewer"]},
        headers=example.owner,
    )
    assert added.status_code == 201, added.text
    user = UUID(added.json()["user_id"])
    person = Principal(kind=PrincipalKind.USER, id=str(user), name=email, person=user)
    return Access(principal=person, org_id=example.seeded.org_id, roles=frozenset({"reviewer"}))


async def test_no_credential_or_token_appears_anywhere(
    *,
    client: httpx.AsyncClient,
    runtime: Runtime,
    example: Example,
    falcon: FalconState,
    okta: OktaState,
    splunk: SplunkState,
    sentinel: SentinelState,
    test_db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    assert set(OPERATIONS) == set(all_connectors()), "every connector's operations run here"
    reviewers = [
        await _reviewer(client, example, "rita@example.test"),
        await _reviewer(client, example, "sam@example.test"),
    ]
    caller = _Caller(client, runtime, example, reviewers)
    tokens: set[str] = set()
    # An identity agent, and the org's Okta credential.
    access = Access(principal=SEED, org_id=example.seeded.org_id, roles=frozenset({"owner"}))
    _, iam_key = await make_agent(
        runtime,
        access,
        "iam-bot",
        IntentManifest(
            scope={
                "okta": ["users:*", "sessions:*", "groups:*"],
                "jira": ["issues:*"],
                "splunk": ["search:*", "notable:*"],
                "sentinel": ["incidents:*"],
            }
        ),
    )
    example.seeded.api_keys["iam-bot"] = iam_key
    stored = await client.put(
        f"/v1/admin/orgs/{example.seeded.org_id}/credentials/okta",
        json={"secret": {"api_token": OKTA_TOKEN}, "base_url": OKTA_URL},
        headers=example.owner,
    )
    assert stored.status_code == 201, stored.text
    stored = await client.put(
        f"/v1/admin/orgs/{example.seeded.org_id}/credentials/jira",
        json={"secret": {"email": JIRA_EMAIL, "api_token": JIRA_TOKEN}, "base_url": JIRA_URL},
        headers=example.owner,
    )
    assert stored.status_code == 201, stored.text
    stored = await client.put(
        f"/v1/admin/orgs/{example.seeded.org_id}/credentials/splunk",
        json={
            "secret": {"username": SPLUNK_USER, "password": SPLUNK_PASSWORD},
            "base_url": SPLUNK_URL,
        },
        headers=example.owner,
    )
    assert stored.status_code == 201, stored.text
    stored = await client.put(
        f"/v1/admin/orgs/{example.seeded.org_id}/credentials/sentinel",
        json={
            "secret": {
                "tenant_id": SENTINEL_TENANT,
                "client_id": SENTINEL_CLIENT,
                "client_secret": SENTINEL_SECRET,
                "subscription_id": SENTINEL_WORKSPACE[0],
                "resource_group": SENTINEL_WORKSPACE[1],
                "workspace": SENTINEL_WORKSPACE[2],
            },
        },
        headers=example.owner,
    )
    assert stored.status_code == 201, stored.text
    ids = {
        "{ana}": next(u.id for u in okta.users.values() if u.login.startswith("ana")),
        "{group}": next(iter(okta.groups)),
        "{notable}": next(iter(splunk.notables)),
        "{incident}": next(iter(sentinel.incidents)),
    }

    for connector, operations in OPERATIONS.items():
        assert set(operations) == set(all_connectors()[connector].operations)
        for operation, (agent, raw) in operations.items():
            params = {k: _fill(v, ids) for k, v in raw.items()}
            call = {"connector": connector, "operation": operation, "params": params}
            resp = await caller.execute(call, agent)
            assert resp.status_code == 200, (operation, resp.text)
            if operation == "search:query":
                ids["{sid}"] = resp.json()["result"]["sid"]
            tokens |= set(falcon.tokens)

    search = {"connector": "crowdstrike", "operation": "hosts:search", "params": {}}
    # Failure paths: a revoked token (a fresh one is fetched), the tool's rate
    # limit, a secret rotated away at the vendor.
    falcon.revoke_all_tokens()
    assert (await caller.execute(search, "triage-bot")).is_success
    tokens |= set(falcon.tokens)
    falcon.rate_limit = 0
    limited = await caller.execute(search, "triage-bot")
    assert limited.status_code == 429, limited.text
    falcon.rate_limit = None
    falcon.clients = {FALCON_CLIENT_ID: "rotated-at-the-vendor-0c9d8e"}
    falcon.revoke_all_tokens()
    refused = await caller.execute(search, "triage-bot")
    assert refused.status_code == 502, refused.text
    listed = caller.seen(
        await client.get(
            f"/v1/admin/orgs/{example.seeded.org_id}/credentials", headers=example.owner
        )
    )
    assert listed.status_code == 200
    caller.seen(
        await client.get(
            f"/v1/admin/orgs/{example.seeded.org_id}/audit",
            params={"limit": 1000},
            headers=example.owner,
        )
    )

    assert len(tokens) >= 2, "the fake issued tokens, and they are searched for"
    kek = runtime.settings.kek
    secrets = {
        FALCON_CLIENT_SECRET,
        OKTA_TOKEN,
        JIRA_TOKEN,
        SPLUNK_PASSWORD,
        *splunk.sessions,
        SENTINEL_SECRET,
        *sentinel.tokens,
        *tokens,
        kek.hex(),
        base64.b64encode(kek).decode(),
        *example.seeded.api_keys.values(),
        example.owner["authorization"].removeprefix("Bearer "),
    }
    with psycopg.connect(test_db.admin_url) as conn:
        stored_rows = [
            str(row[0])
            for table in ("audit_events", "approval_requests", "credentials")
            for row in conn.execute(f"SELECT to_jsonb(t)::text FROM arx.{table} t").fetchall()  # noqa: S608 -- fixed names
        ]
    logs = [f"{r.getMessage()} {r.__dict__!r}" for r in caplog.records]
    assert len(stored_rows) > 20
    assert logs, "the run logged something, and it is searched"
    for where, texts in (("responses", caller.texts), ("stored rows", stored_rows), ("logs", logs)):
        for secret in secrets:
            leaked = [t for t in texts if secret in t]
            assert not leaked, f"a credential or token appears in {where}: {leaked[0][:300]}"
