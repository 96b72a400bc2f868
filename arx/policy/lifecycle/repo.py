"""SQL of the policy lifecycle (named parameters; org-scoped transactions as
arx_control, except the two bundle-service functions, which cross orgs)."""

from __future__ import annotations

ORG_SLUG = "SELECT slug FROM arx.orgs WHERE id = %(org_id)s"

BUNDLE_COLUMNS = (
    "b.revision, b.sha256, length(b.source) AS size_bytes, b.tests_passed, b.description,"
    " b.uploaded_by, b.uploaded_at"
)

INSERT_BUNDLE = (
    "INSERT INTO arx.policy_bundles"
    " (org_id, revision, sha256, source, tests_passed, description, uploaded_by)"
    " VALUES (%(org_id)s, %(revision)s, %(sha256)s, %(source)s, %(tests_passed)s,"
    " %(description)s, %(uploaded_by)s)"
    " ON CONFLICT (org_id, revision) DO NOTHING"
)

BUNDLE = f"SELECT {BUNDLE_COLUMNS} FROM arx.policy_bundles b WHERE b.revision = %(revision)s"

BUNDLE_SOURCE = "SELECT source FROM arx.policy_bundles WHERE revision = %(revision)s"

BUNDLES = f"SELECT {BUNDLE_COLUMNS} FROM arx.policy_bundles b ORDER BY b.uploaded_at DESC LIMIT 200"

ACTIVATION_COLUMNS = "seq, revision, action, activated_by, activated_at, etag"

HISTORY = (
    f"SELECT {ACTIVATION_COLUMNS} FROM arx.policy_activations ORDER BY seq DESC LIMIT %(limit)s"
)

# Serialises activations of one org (two at once would each think it follows
# the same current revision).
LOCK_ORG = "SELECT pg_advisory_xact_lock(hashtextextended('arx.policy:' || %(org_id)s::text, 0))"

INSERT_ACTIVATION = (
    "INSERT INTO arx.policy_activations"
    " (org_id, revision, action, bundle, etag, activated_by)"
    " VALUES (%(org_id)s, %(revision)s, %(action)s, %(bundle)s, %(etag)s, %(activated_by)s)"
    f" RETURNING {ACTIVATION_COLUMNS}"
)

ACTIVE_BUNDLES = "SELECT slug, revision, etag, seq FROM arx.active_policy_bundles()"

ACTIVE_BUNDLE = "SELECT revision, etag, seq, bundle FROM arx.active_policy_bundle(%(slug)s)"
