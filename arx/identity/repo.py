"""SQL for orgs, agents and API keys (module-level constants, parameters only)."""

from __future__ import annotations

RESOLVE_KEY = (
    "SELECT org_id, org_slug, agent_id, agent_name, intent, secret_hash"
    " FROM arx.resolve_api_key(%s)"
)

INSERT_ORG = "INSERT INTO arx.orgs (id, slug, name) VALUES (%s, %s, %s)"

SELECT_ORG_BY_ID = "SELECT id, slug, name FROM arx.orgs WHERE id = %s"

INSERT_AGENT = "INSERT INTO arx.agents (id, org_id, name, intent) VALUES (%s, %s, %s, %s)"

SELECT_AGENT = "SELECT id, org_id, name, intent FROM arx.agents WHERE id = %s"

SELECT_AGENT_BY_NAME = "SELECT id, org_id, name, intent FROM arx.agents WHERE name = %s"

INSERT_API_KEY = (
    "INSERT INTO arx.api_keys (id, org_id, agent_id, secret_hash) VALUES (%s, %s, %s, %s)"
)

ORG_ID_FOR_SLUG = "SELECT arx.org_id_for_slug(%s)"
