"""SQL for stored credentials. Versions are inserted, never rewritten."""

from __future__ import annotations

LATEST = (
    "SELECT id, version, base_url, kek_id, wrapped_dek, nonce, ciphertext"
    " FROM arx.credentials WHERE org_id = %s AND connector = %s"
    " ORDER BY version DESC LIMIT 1"
)

NEXT_VERSION = (
    "SELECT coalesce(max(version), 0) + 1 FROM arx.credentials WHERE org_id = %s AND connector = %s"
)

INSERT = (
    "INSERT INTO arx.credentials"
    " (id, org_id, connector, version, base_url, kek_id, wrapped_dek, nonce, ciphertext)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
