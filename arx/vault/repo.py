"""SQL for stored credentials and the hosts orgs add. Versions are inserted,
never rewritten (migration 0020's trigger); a deletion is a tombstone version.

The execute path reads the current version inside ``arx.keyed_execute_context``
(arx.audit.trail); these serve administration.
"""

from __future__ import annotations

NEXT_VERSION = (
    "SELECT coalesce(max(version), 0) + 1 FROM arx.credentials WHERE org_id = %s AND connector = %s"
)

INSERT = (
    "INSERT INTO arx.credentials"
    " (id, org_id, connector, version, base_url, kek_id, wrapped_dek, nonce, ciphertext,"
    " deleted, created_by)"
    " VALUES (%(id)s, %(org_id)s, %(connector)s, %(version)s, %(base_url)s, %(kek_id)s,"
    " %(wrapped_dek)s, %(nonce)s, %(ciphertext)s, %(deleted)s, %(created_by)s)"
    " RETURNING created_at"
)

# Each connector's latest version (row-level security keeps it to the org).
LATEST = (
    "SELECT DISTINCT ON (connector) id, connector, version, base_url, kek_id, deleted,"
    " created_by, created_at"
    " FROM arx.credentials ORDER BY connector, version DESC"
)

HOSTS = (
    "SELECT connector, host, added_by, added_at FROM arx.connector_hosts"
    " WHERE %(connector)s::text IS NULL OR connector = %(connector)s ORDER BY connector, host"
)
HOSTS_OF = "SELECT host FROM arx.connector_hosts WHERE connector = %s"
ADD_HOST = (
    "INSERT INTO arx.connector_hosts (org_id, connector, host, added_by)"
    " VALUES (%(org_id)s, %(connector)s, %(host)s, %(added_by)s)"
    " ON CONFLICT DO NOTHING RETURNING added_at"
)
REMOVE_HOST = "DELETE FROM arx.connector_hosts WHERE connector = %s AND host = %s RETURNING host"

# An org's key-encryption key, and what is sealed under which key. Sealing
# holds the org's key lock shared, setting a key or rewrapping exclusively:
# nothing is sealed under a key that is being replaced.
ORG_KEY_SHARED = "SELECT pg_advisory_xact_lock_shared(hashtextextended('arx.org_key:' || %s, 0))"
ORG_KEY_EXCLUSIVE = "SELECT pg_advisory_xact_lock(hashtextextended('arx.org_key:' || %s, 0))"
ORG_KEY = "SELECT provider, key_ref FROM arx.org_keys"
SET_ORG_KEY = (
    "INSERT INTO arx.org_keys (org_id, provider, key_ref, set_by)"
    " VALUES (%(org_id)s, %(provider)s, %(key_ref)s, %(set_by)s)"
    " ON CONFLICT (org_id) DO UPDATE SET provider = excluded.provider,"
    " key_ref = excluded.key_ref, set_by = excluded.set_by, set_at = now()"
)
# The versions in use: each connector's latest (unless deleted) and the
# channels. Superseded versions are never opened again, so they are neither
# counted nor rewrapped (an unreadable old one cannot block a rewrap).
_CURRENT = (
    "NOT deleted AND (connector, version) IN"
    " (SELECT connector, max(version) FROM arx.credentials GROUP BY connector)"
)
SEALED_UNDER = (
    "SELECT kek_id, count(*) AS versions FROM ("
    f" SELECT kek_id FROM arx.credentials WHERE {_CURRENT}"
    " UNION ALL SELECT kek_id FROM arx.notification_channels) s"
    " GROUP BY kek_id ORDER BY kek_id"
)
CREDENTIALS_TO_REWRAP = (
    "SELECT id::text AS key, id, connector AS purpose, version, base_url, kek_id,"
    " wrapped_dek, nonce, ciphertext FROM arx.credentials"
    f" WHERE {_CURRENT} AND kek_id <> %(kek_id)s ORDER BY connector FOR UPDATE"
)
CHANNELS_TO_REWRAP = (
    "SELECT channel AS key, NULL::uuid AS id, 'notify:' || channel AS purpose, version,"
    " '' AS base_url, kek_id, wrapped_dek, nonce, ciphertext FROM arx.notification_channels"
    " WHERE kek_id <> %(kek_id)s ORDER BY channel FOR UPDATE"
)
# Only these two columns: the append-only trigger allows a rewrap and nothing
# else; and only the version that was read (and locked).
REWRAP_CREDENTIAL = (
    "UPDATE arx.credentials SET kek_id = %(kek_id)s, wrapped_dek = %(wrapped_dek)s"
    " WHERE id = %(key)s::uuid AND version = %(version)s"
)
REWRAP_CHANNEL = (
    "UPDATE arx.notification_channels SET kek_id = %(kek_id)s, wrapped_dek = %(wrapped_dek)s"
    " WHERE channel = %(key)s AND version = %(version)s"
)
