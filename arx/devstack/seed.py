"""The example org the demo (and the end-to-end tests) run against.

Two agents with different declared intents, one API key each, a CrowdStrike
credential pointing at the Falcon sandbox (enough for the example bundle to
produce PERMIT, DENY and ESCALATE), and an owner with an owner token.

``seed_over_api`` builds it the way an operator would, through the admin
API starting from the bootstrap token (the demo); ``seed_example_org`` the
same content through the services directly (in-process tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import msgspec

from arx.admin.agents import create_key
from arx.admin.credentials import store_credential
from arx.admin.orgs import found_org
from arx.admin.service import create_agent
from arx.admin.types import Bootstrap
from arx.identity.principal import Access, Principal, PrincipalKind
from arx.identity.roles import Role
from arx.identity.types import IntentManifest
from arx.policy.lifecycle import archive
from arx.runtime import Runtime
from arx.sandbox.suite import credentials as sandbox_credentials

ORG_SLUG = "example"
# The Falcon sandbox's client id in the demo and compose (not a secret).
SANDBOX_CLIENT_ID = "arxdemo0000000000000000000000001"
ORG_NAME = "Example Security Team"
OWNER_EMAIL = "owner@example.test"
AGENTS = {
    "triage-bot": IntentManifest(
        purpose="Look up hosts, users, logs, tickets and incidents named in alerts; "
        "never changes anything.",
        scope={
            "crowdstrike": ["hosts:search", "hosts:get"],
            "okta": ["users:search", "users:get"],
            "jira": ["issues:search", "issues:get"],
            "splunk": ["search:query", "search:status", "search:results"],
            "sentinel": ["incidents:list", "incidents:get"],
        },
    ),
    "responder-bot": IntentManifest(
        purpose="Contain compromised hosts and release them after remediation.",
        scope={"crowdstrike": ["hosts:*"]},
    ),
}
SEED = Principal(kind=PrincipalKind.BOOTSTRAP, id="bootstrap", name="seed")


@dataclass(frozen=True, slots=True)
class Seeded:
    org_id: UUID
    agent_ids: dict[str, UUID]
    api_keys: dict[str, str]
    owner_token: str
    owner_email: str = OWNER_EMAIL

    def __repr__(self) -> str:
        return f"Seeded(org_id={self.org_id}, agents={sorted(self.agent_ids)})"

    @property
    def owner_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.owner_token}"}


async def seed_example_org(
    rt: Runtime,
    *,
    falcon_url: str,
    client_id: str,
    client_secret: str,
    slug: str = ORG_SLUG,
    owner_email: str = OWNER_EMAIL,
) -> Seeded:
    pool = rt.control_pool
    founded = await found_org(
        pool,
        Bootstrap(org_slug=slug, org_name=ORG_NAME, owner_email=owner_email),
        actor=SEED,
    )
    org_id = founded.org.id
    access = Access(principal=SEED, org_id=org_id, roles=frozenset({Role.OWNER}))
    agent_ids: dict[str, UUID] = {}
    keys: dict[str, str] = {}
    for name, intent in AGENTS.items():
        agent = await create_agent(pool, org_id, name=name, intent=intent, actor=SEED.actor)
        agent_ids[name] = agent.id
        keys[name] = (await create_key(pool, access, agent.id, name="seed")).api_key
    await store_credential(
        pool,
        rt.vault,
        rt.settings,
        org_id=org_id,
        connector="crowdstrike",
        secret={"client_id": client_id, "client_secret": client_secret},
        base_url=falcon_url,
        actor=SEED.actor,
    )
    return Seeded(
        org_id=org_id,
        agent_ids=agent_ids,
        api_keys=keys,
        owner_token=founded.owner_token.token,
        owner_email=owner_email,
    )


class SeedError(RuntimeError):
    """The API refused a seeding step (its answer says why)."""


def _ok(resp: httpx.Response) -> Any:
    if resp.status_code >= 300:
        raise SeedError(
            f"{resp.request.method} {resp.request.url.path}: {resp.status_code} {resp.text}"
        )
    return resp.json()


def publish_policy(
    base_url: str, org_id: UUID | str, token: str, source: Path, *, description: str
) -> str:
    """Push the bundle source ``source`` and activate it, as ``arx policy push``
    and ``arx policy activate`` do; return the active revision."""
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, timeout=60) as http:
        pushed = _ok(
            http.post(
                f"/v1/admin/orgs/{org_id}/policy/bundles",
                params={"description": description},
                headers={**headers, "content-type": "application/gzip"},
                content=archive.pack(source),
            )
        )
        revision = str(pushed["bundle"]["revision"])
        resp = http.post(
            f"/v1/admin/orgs/{org_id}/policy/activate",
            headers=headers,
            json={"revision": revision},
        )
        if resp.status_code != 409:  # already active: nothing to do
            _ok(resp)
    return revision


def seed_over_api(
    base_url: str,
    *,
    bootstrap_token: str,
    owner_password: str,
    falcon_url: str,
    client_id: str,
    client_secret: str,
    sandbox_url: str | None = None,
    sandbox_secret: str = "",
) -> Seeded:
    """The example org through the admin API, as an operator would build it;
    with ``sandbox_url`` (arx.sandbox.suite), credentials for Okta, Jira,
    Splunk and Sentinel pointing at their sandboxes too."""
    with httpx.Client(base_url=base_url, timeout=30) as http:
        founded = _ok(
            http.post(
                "/v1/admin/bootstrap",
                headers={"authorization": f"Bearer {bootstrap_token}"},
                json={
                    "org_slug": ORG_SLUG,
                    "org_name": ORG_NAME,
                    "owner_email": OWNER_EMAIL,
                    "owner_display_name": "Demo Owner",
                    "owner_password": owner_password,
                },
            )
        )
        org_id = founded["org"]["id"]
        owner = {"authorization": f"Bearer {founded['owner_token']['token']}"}
        # The demo's one person also reviews escalations (on the review page).
        _ok(
            http.patch(
                f"/v1/admin/orgs/{org_id}/members/{founded['owner']['user_id']}",
                headers=owner,
                json={"roles": ["owner", "reviewer"]},
            )
        )
        agent_ids: dict[str, UUID] = {}
        keys: dict[str, str] = {}
        for name, intent in AGENTS.items():
            agent = _ok(
                http.post(
                    f"/v1/admin/orgs/{org_id}/agents",
                    headers=owner,
                    json={"name": name, "intent": msgspec.to_builtins(intent)},
                )
            )
            agent_ids[name] = UUID(agent["id"])
            key = _ok(
                http.post(
                    f"/v1/admin/orgs/{org_id}/agents/{agent['id']}/keys",
                    headers=owner,
                    json={"name": "demo"},
                )
            )
            keys[name] = key["api_key"]
        _ok(
            http.put(
                f"/v1/admin/orgs/{org_id}/credentials/crowdstrike",
                headers=owner,
                json={
                    "secret": {"client_id": client_id, "client_secret": client_secret},
                    "base_url": falcon_url,
                },
            )
        )
        if sandbox_url:
            for connector, secret in sandbox_credentials(sandbox_secret).items():
                _ok(
                    http.put(
                        f"/v1/admin/orgs/{org_id}/credentials/{connector}",
                        headers=owner,
                        json={"secret": secret, "base_url": f"{sandbox_url}/{connector}"},
                    )
                )
    return Seeded(
        org_id=UUID(org_id),
        agent_ids=agent_ids,
        api_keys=keys,
        owner_token=founded["owner_token"]["token"],
    )
