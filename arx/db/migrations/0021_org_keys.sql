-- Bring your own key (issue 10, point 2; docs/decisions/0027).
--
--   arx.org_keys   the org's key-encryption key for new data keys: ARX's own
--                  ('local', the default when an org has no row) or the
--                  org's key in AWS KMS, Azure Key Vault or Google Cloud KMS.
--                  Each wrap names its key itself (kek_id), so opening never
--                  reads this table.
--
-- A rewrap (a new key set, or an operator's ARX_KEK rotation) changes only
-- kek_id and wrapped_dek of each sealed version (the append-only trigger of
-- arx.credentials allows exactly that); the control plane gets those two
-- columns, nothing more.

SET ROLE arx_owner;

CREATE TABLE arx.org_keys (
    org_id    uuid PRIMARY KEY REFERENCES arx.orgs (id),
    provider  text NOT NULL CHECK (provider IN ('local', 'aws-kms', 'azure-key-vault', 'gcp-kms')),
    key_ref   text NOT NULL CHECK (length(key_ref) <= 512
                                   AND (provider = 'local') = (key_ref = '')),
    set_by    text NOT NULL,
    set_at    timestamptz NOT NULL DEFAULT now()
);

RESET ROLE;

GRANT SELECT, INSERT, UPDATE ON arx.org_keys TO arx_control;
ALTER TABLE arx.org_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE arx.org_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON arx.org_keys TO arx_control
    USING (org_id = (SELECT NULLIF(current_setting('arx.org_id', true), '')::uuid))
    WITH CHECK (org_id = (SELECT NULLIF(current_setting('arx.org_id', true), '')::uuid));

GRANT UPDATE (kek_id, wrapped_dek) ON arx.credentials TO arx_control;
