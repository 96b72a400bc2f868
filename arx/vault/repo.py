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
