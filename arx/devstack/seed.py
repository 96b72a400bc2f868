"""The example org the demo (and the end-to-end tests) run against.

Two agents with different declared intents, one API key each, and a
CrowdStrike credential pointing at the Falcon sandbox: enough for the
example bundle to produce PERMIT, DENY and ESCALATE.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from arx.admin.service import create_agent, create_api_key, create_org, store_credential
from arx.identity.types import IntentManifest
from arx.runtime import Runtime

ORG_SLUG = "example"
AGENTS = {
    "triage-bot": IntentManifest(
        purpose="Look up hosts named in alerts; never changes anything.",
        scope={"crowdstrike": ["hosts:search", "hosts:get"]},
    ),
    "responder-bot": IntentManifest(
        purpose="Contain compromised hosts and release them after remediation.",
        scope={"crowdstrike": ["hosts:*"]},
    ),
}


@dataclass(frozen=True, slots=True)
class Seeded:
    org_id: UUID
    agent_ids: dict[str, UUID]
    api_keys: dict[str, str]

    def __repr__(self) -> str:
        return f"Seeded(org_id={self.org_id}, agents={sorted(self.agent_ids)})"


async def seed_example_org(
    rt: Runtime, *, falcon_url: str, client_id: str, client_secret: str
) -> Seeded:
    org = await create_org(rt.pool, slug=ORG_SLUG, name="Example Security Team", actor="seed")
    agent_ids: dict[str, UUID] = {}
    keys: dict[str, str] = {}
    for name, intent in AGENTS.items():
        agent = await create_agent(rt.pool, org.id, name=name, intent=intent, actor="seed")
        agent_ids[name] = agent.id
        keys[name] = (await create_api_key(rt.pool, org.id, agent.id, actor="seed")).api_key
    await store_credential(
        rt.pool,
        rt.vault,
        org_id=org.id,
        connector="crowdstrike",
        secret={"client_id": client_id, "client_secret": client_secret},
        base_url=falcon_url,
        allow_insecure_urls=rt.settings.allow_insecure_connector_urls,
        actor="seed",
    )
    return Seeded(org_id=org.id, agent_ids=agent_ids, api_keys=keys)
