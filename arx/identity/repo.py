"""SQL for orgs, agents and API keys (module-level constants, parameters only)."""

from __future__ import annotations

RESOLVE_KEY = (
    "SELECT org_id, org_slug, agent_id, agent_name, intent, secret_hash,"
    " extract(epoch FROM expires_at)::float8, agent_disabled, org_disabled, agent_allowlist"
    " FROM arx.resolve_api_key(%s)"
)
TOUCH_KEYS = "SELECT arx.touch_api_keys(%s)"
AUTH_CHANNEL = "arx_auth"

INSERT_ORG = "INSERT INTO arx.orgs (id, slug, name) VALUES (%s, %s, %s)"

SELECT_ORG_BY_ID = "SELECT id, slug, name FROM arx.orgs WHERE id = %s"

# RLS keeps it to the transaction's org.
ACTIVE_MEMBER = "SELECT 1 FROM arx.memberships WHERE user_id = %s AND active"

INSERT_AGENT = (
    "INSERT INTO arx.agents (id, org_id, name, intent, owner_user_id) VALUES (%s, %s, %s, %s, %s)"
)

SELECT_AGENT = "SELECT id, org_id, name, intent FROM arx.agents WHERE id = %s"


# --- the control plane (arx_control) ---------------------------------------------

RESOLVE_ADMIN_TOKEN = (
    "SELECT org_id, name, roles, secret_hash, admin_allowlist, expires_at, created_by_user"
    " FROM arx.resolve_admin_token(%s)"
)
OWNER_EXISTS = "SELECT arx.owner_exists()"
USER_ACCESS = "SELECT email, roles, admin_allowlist FROM arx.user_access(%s, %s)"
USER_FOR_IDENTITY = "SELECT user_id, email FROM arx.user_for_identity(%s, %s, %s, %s)"
USER_FOR_EMAIL = "SELECT arx.user_for_email(%s)"
USER_ORGS = "SELECT org_id, slug, name, roles FROM arx.user_orgs(%s)"
PASSWORD_FOR_EMAIL = "SELECT user_id, email, password_hash FROM arx.password_for_email(%s)"
SET_PASSWORD = "SELECT arx.set_password(%s, %s)"

SELECT_ORG_SETTINGS = (
    "SELECT id, slug, name, agents_disabled_at, agents_disabled_reason,"
    " agent_allowlist, admin_allowlist FROM arx.orgs WHERE id = %s"
)
