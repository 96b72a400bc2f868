"""SQL of SCIM provisioning (module-level constants, named parameters only).

Every statement runs in ``org_transaction`` as arx_control: row-level
security limits it to the org of the route whatever its WHERE clause says,
and shows a person (``arx.users``) only through a membership of that org.
"""

from __future__ import annotations

# --- users (memberships) --------------------------------------------------------------

_USER_COLUMNS = (
    "m.user_id AS id, m.user_name, m.external_id, m.active, u.email, m.display_name,"
    " m.created_at, m.updated_at,"
    " coalesce((SELECT json_agg(json_build_object('id', g.id, 'display_name', g.display_name)"
    " ORDER BY lower(g.display_name))"
    " FROM arx.scim_group_members gm JOIN arx.scim_groups g"
    " ON g.org_id = gm.org_id AND g.id = gm.group_id"
    " WHERE gm.user_id = m.user_id), '[]'::json) AS groups"
)
_USERS_FROM = " FROM arx.memberships m JOIN arx.users u ON u.id = m.user_id"
# A stable order, so that startIndex pages through a list that is not changing.
_USER_ORDER = " ORDER BY m.created_at, m.user_id"

USERS = f"SELECT {_USER_COLUMNS}{_USERS_FROM}{_USER_ORDER}"
# Narrowed lookups for the filters IdPs send before every change; each uses an index.
USERS_BY_ID = f"SELECT {_USER_COLUMNS}{_USERS_FROM} WHERE m.user_id = %(user_id)s"
USERS_BY_USER_NAME = (
    f"SELECT {_USER_COLUMNS}{_USERS_FROM} WHERE lower(m.user_name) = lower(%(user_name)s)"
)
USERS_BY_EXTERNAL_ID = (
    f"SELECT {_USER_COLUMNS}{_USERS_FROM} WHERE m.external_id = %(external_id)s{_USER_ORDER}"
)
USERS_BY_EMAIL = f"SELECT {_USER_COLUMNS}{_USERS_FROM} WHERE lower(u.email) = lower(%(email)s)"
# The row a change starts from, locked until the transaction ends. NO KEY: a
# change never touches the key, so adding the user to a group (whose foreign
# key takes KEY SHARE) does not wait for it.
USER_FOR_UPDATE = (
    f"SELECT {_USER_COLUMNS}{_USERS_FROM} WHERE m.user_id = %(user_id)s FOR NO KEY UPDATE OF m"
)

# What a membership would collide with, to say which (the unique indexes decide).
IS_MEMBER = "SELECT EXISTS (SELECT FROM arx.memberships WHERE user_id = %(user_id)s)"
USER_NAME_TAKEN = (
    "SELECT EXISTS (SELECT FROM arx.memberships"
    " WHERE lower(user_name) = lower(%(user_name)s) AND user_id <> %(user_id)s)"
)
USER_FOR_EMAIL = "SELECT arx.user_for_email(%(email)s)"
INSERT_MEMBERSHIP = (
    "INSERT INTO arx.memberships (org_id, user_id, user_name, external_id, active, display_name)"
    " VALUES (%(org_id)s, %(user_id)s, %(user_name)s, %(external_id)s, %(active)s,"
    " %(display_name)s)"
)
UPDATE_MEMBERSHIP = (
    "UPDATE arx.memberships SET user_name = %(user_name)s, external_id = %(external_id)s,"
    " active = %(active)s, updated_at = now() WHERE user_id = %(user_id)s"
)
# What this org calls the person: theirs alone, not what other orgs see.
UPDATE_DISPLAY_NAME = (
    "UPDATE arx.memberships SET display_name = %(display_name)s WHERE user_id = %(user_id)s"
)
# Refused (false) unless the person belongs to this org alone (SECURITY DEFINER,
# the org is the transaction's).
CHANGE_EMAIL = "SELECT arx.change_email(%(user_id)s, %(email)s)"
# Group memberships go with it (ON DELETE CASCADE).
DELETE_MEMBERSHIP = "DELETE FROM arx.memberships WHERE user_id = %(user_id)s RETURNING user_name"
MEMBERS_AMONG = "SELECT user_id FROM arx.memberships WHERE user_id = ANY(%(user_ids)s)"

# --- groups -----------------------------------------------------------------------------

_GROUP_COLUMNS = (
    "g.id, g.display_name, g.external_id, g.created_at, g.updated_at,"
    " coalesce((SELECT array_agg(gm.user_id ORDER BY gm.user_id)"
    " FROM arx.scim_group_members gm WHERE gm.group_id = g.id), '{}') AS members"
)
_GROUP_ORDER = " ORDER BY g.created_at, g.id"

GROUPS = f"SELECT {_GROUP_COLUMNS} FROM arx.scim_groups g{_GROUP_ORDER}"
GROUPS_BY_ID = f"SELECT {_GROUP_COLUMNS} FROM arx.scim_groups g WHERE g.id = %(group_id)s"
GROUPS_BY_NAME = (
    f"SELECT {_GROUP_COLUMNS} FROM arx.scim_groups g"
    " WHERE lower(g.display_name) = lower(%(display_name)s)"
)
GROUPS_BY_EXTERNAL_ID = (
    f"SELECT {_GROUP_COLUMNS} FROM arx.scim_groups g"
    f" WHERE g.external_id = %(external_id)s{_GROUP_ORDER}"
)
GROUP_FOR_UPDATE = (
    f"SELECT {_GROUP_COLUMNS} FROM arx.scim_groups g WHERE g.id = %(group_id)s FOR NO KEY UPDATE"
)
INSERT_GROUP = (
    "INSERT INTO arx.scim_groups (id, org_id, display_name, external_id)"
    " VALUES (%(group_id)s, %(org_id)s, %(display_name)s, %(external_id)s)"
)
UPDATE_GROUP = (
    "UPDATE arx.scim_groups SET display_name = %(display_name)s,"
    " external_id = %(external_id)s, updated_at = now() WHERE id = %(group_id)s"
)
DELETE_GROUP = "DELETE FROM arx.scim_groups WHERE id = %(group_id)s RETURNING display_name"
ADD_GROUP_MEMBERS = (
    "INSERT INTO arx.scim_group_members (org_id, group_id, user_id)"
    " SELECT %(org_id)s, %(group_id)s, unnest(%(user_ids)s::uuid[]) ON CONFLICT DO NOTHING"
)
REMOVE_GROUP_MEMBERS = (
    "DELETE FROM arx.scim_group_members"
    " WHERE group_id = %(group_id)s AND user_id = ANY(%(user_ids)s)"
)
