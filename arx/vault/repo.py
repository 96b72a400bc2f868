"""SQL for stored credentials. Versions are inserted, never rewritten.

The execute path reads the current version inside ``arx.execute_context``
(arx.audit.trail); these serve administration.
"""

from __future__ import annotations

NEXT_VERSION = (
    "SELECT coalesce(max(version), 0) + 1 FROM arx.credentials WHERE org_id = %s AND connector = %s"
)

INSERT = (
    "INSERT INTO arx.credentials"
    " (id, org_id, connector, version, base_url, kek_id, wrapped_dek, nonce, ciphertext)"
    " VALUES (%(id)s, %(org_id)s, %(connector)s, %(version)s, %(base_url)s, %(kek_id)s,"
    " %(wrapped_dek)s, %(nonce)s, %(ciphertext)s)"
)
