"""SQL of the control plane (module-level constants, named parameters only).

Every statement runs in an org-scoped transaction as arx_control: row-level
security limits each to the org of the route, whatever its WHERE clause says.
"""

from __future__ import annotations

ORG = (
    "SELECT id, slug, name, agents_disabled_at IS NOT NULL AS agents_disabled,"
    " agents_disabled_at, agents_disabled_reason,"
    " agent_allowlist::text[] AS agent_allowlist, admin_allowlist::text[] AS admin_allowlist,"
    " approval_ttl_seconds, owners_may_approve"
    " FROM arx.orgs WHERE id = %(org_id)s"
)

SET_APPROVAL_SETTINGS = (
    "UPDATE arx.orgs SET"
    " approval_ttl_seconds = CASE WHEN %(set_ttl)s THEN %(ttl)s::integer"
    " ELSE approval_ttl_seconds END,"
    " owners_may_approve = coalesce(%(owners_may_approve)s, owners_may_approve)"
    " WHERE id = %(org_id)s"
)

SET_ORG_SWITCH = (
    "UPDATE arx.orgs SET agents_disabled_at = CASE WHEN %(disabled)s"
    " THEN coalesce(agents_disabled_at, now()) END,"
    " agents_disabled_reason = CASE WHEN %(disabled)s THEN %(reason)s END"
    " WHERE id = %(org_id)s"
)

SET_ALLOWLISTS = (
    "UPDATE arx.orgs SET"
    " agent_allowlist = CASE WHEN %(set_agent)s THEN %(agent)s::cidr[] ELSE agent_allowlist END,"
    " admin_allowlist = CASE WHEN %(set_admin)s THEN %(admin)s::cidr[] ELSE admin_allowlist END"
    " WHERE id = %(org_id)s"
)

AGENT_COLUMNS = (
    "id, org_id, name, intent, disabled_at IS NOT NULL AS disabled, disabled_at,"
    " disabled_reason, owner_user_id"
)
AGENTS = f"SELECT {AGENT_COLUMNS} FROM arx.agents ORDER BY name"
AGENT = f"SELECT {AGENT_COLUMNS} FROM arx.agents WHERE id = %(agent_id)s"
SET_AGENT_SWITCH = (
    "UPDATE arx.agents SET disabled_at = CASE WHEN %(disabled)s"
    " THEN coalesce(disabled_at, now()) END,"
    " disabled_reason = CASE WHEN %(disabled)s THEN %(reason)s END"
    f" WHERE id = %(agent_id)s RETURNING {AGENT_COLUMNS}"
)

SET_AGENT_OWNER = (
    "UPDATE arx.agents SET owner_user_id = %(owner)s"
    f" WHERE id = %(agent_id)s RETURNING {AGENT_COLUMNS}"
)

KEY_COLUMNS = (
    "id AS key_id, agent_id, name,"
    " CASE WHEN revoked_at IS NOT NULL THEN 'revoked'"
    " WHEN expires_at IS NOT NULL AND expires_at <= now() THEN 'expired'"
    " ELSE 'active' END AS status,"
    " created_at, created_by, expires_at, last_used_at, revoked_at, replaced_by"
)
# The expiry is the earlier of the lifetime asked for and the cap (NULL: none).
INSERT_KEY = (
    "INSERT INTO arx.api_keys (id, org_id, agent_id, secret_hash, name, created_by, expires_at)"
    " VALUES (%(id)s, %(org_id)s, %(agent_id)s, %(secret_hash)s, %(name)s, %(created_by)s,"
    " least(now() + make_interval(secs => %(lifetime)s), %(cap)s::timestamptz))"
    " RETURNING expires_at"
)
KEYS_OF_AGENT = (
    f"SELECT {KEY_COLUMNS} FROM arx.api_keys WHERE agent_id = %(agent_id)s ORDER BY created_at DESC"
)
KEY = f"SELECT {KEY_COLUMNS} FROM arx.api_keys WHERE id = %(key_id)s FOR UPDATE"
REVOKE_KEY = (
    "UPDATE arx.api_keys SET revoked_at = coalesce(revoked_at, now()),"
    " revoked_by = coalesce(revoked_by, %(actor)s) WHERE id = %(key_id)s"
)
# The old key keeps working for the overlap, never longer than it would have.
RETIRE_KEY = (
    "UPDATE arx.api_keys SET replaced_by = %(new_id)s,"
    " expires_at = least(coalesce(expires_at, 'infinity'),"
    " now() + make_interval(secs => %(overlap)s))"
    " WHERE id = %(key_id)s RETURNING expires_at"
)

MEMBER_COLUMNS = (
    "u.id AS user_id, u.email, m.display_name, m.roles,"
    " arx.effective_roles(m.org_id, m.user_id) AS effective_roles, m.active, m.created_at"
)
MEMBERS = (
    f"SELECT {MEMBER_COLUMNS} FROM arx.memberships m JOIN arx.users u ON u.id = m.user_id"
    " ORDER BY lower(u.email)"
)
MEMBER = (
    f"SELECT {MEMBER_COLUMNS} FROM arx.memberships m JOIN arx.users u ON u.id = m.user_id"
    " WHERE m.user_id = %(user_id)s"
)
INSERT_MEMBER = (
    "INSERT INTO arx.memberships (org_id, user_id, roles, user_name, display_name)"
    " VALUES (%(org_id)s, %(user_id)s, %(roles)s, %(user_name)s, %(display_name)s)"
)
UPDATE_MEMBER = (
    "UPDATE arx.memberships SET roles = coalesce(%(roles)s, roles),"
    " active = coalesce(%(active)s, active), updated_at = now()"
    " WHERE user_id = %(user_id)s RETURNING user_id"
)
LOCK_PEOPLE = "SELECT pg_advisory_xact_lock(hashtextextended(%(org_id)s::text, 7))"
# Owners who would remain, were this member's change applied.
OTHER_ACTIVE_OWNERS = (
    "SELECT count(*) FROM arx.memberships m"
    " WHERE m.user_id <> %(user_id)s AND m.active"
    " AND 'owner' = ANY (arx.effective_roles(m.org_id, m.user_id))"
)

TOKEN_COLUMNS = (
    "id AS token_id, name, roles,"
    " CASE WHEN revoked_at IS NOT NULL THEN 'revoked'"
    " WHEN expires_at IS NOT NULL AND expires_at <= now() THEN 'expired'"
    " ELSE 'active' END AS status,"
    " created_by, created_at, expires_at, revoked_at, replaced_by"
)
# The expiry is the earlier of the lifetime asked for and the cap (NULL: none).
INSERT_TOKEN = (
    "INSERT INTO arx.admin_tokens (id, org_id, name, roles, secret_hash, created_by,"
    " created_by_user, expires_at)"
    " VALUES (%(id)s, %(org_id)s, %(name)s, %(roles)s, %(secret_hash)s, %(created_by)s,"
    " %(created_by_user)s,"
    " least(now() + make_interval(secs => %(lifetime)s), %(cap)s::timestamptz))"
    " RETURNING expires_at"
)
TOKENS = f"SELECT {TOKEN_COLUMNS} FROM arx.admin_tokens ORDER BY created_at DESC"
TOKEN = f"SELECT {TOKEN_COLUMNS} FROM arx.admin_tokens WHERE id = %(token_id)s FOR UPDATE"
REVOKE_TOKEN = (
    "UPDATE arx.admin_tokens SET revoked_at = coalesce(revoked_at, now()),"
    " revoked_by = coalesce(revoked_by, %(actor)s) WHERE id = %(token_id)s"
)
RETIRE_TOKEN = (
    "UPDATE arx.admin_tokens SET replaced_by = %(new_id)s,"
    " expires_at = least(coalesce(expires_at, 'infinity'),"
    " now() + make_interval(secs => %(overlap)s))"
    " WHERE id = %(token_id)s RETURNING expires_at"
)
