-- Policy bundles as a product: pushed, vetted, stored, activated, rolled back,
-- and served to the OPA sidecars by ARX itself.
--
--   arx.policy_bundles      one row per pushed bundle of an org: the archive
--                           as uploaded (with its tests), its sha256, the
--                           revision ARX gave it, who pushed it and when, and
--                           how many of its tests passed. A bundle is stored
--                           only once it passed every check (roots, strict
--                           compile, org document valid, tests).
--   arx.policy_activations  the history of which revision serves each org:
--                           one row per activation or rollback, holding the
--                           bundle exactly as the sidecars receive it (built
--                           and signed by ARX; the signing key never enters
--                           the database) and its sha256, the bundle
--                           service's ETag. The latest row of an org is its
--                           active bundle.
--
-- Guarantees:
-- * Both tables are append-only, for every role: a revision never changes
--   once pushed, and the activation history is never rewritten (a rollback is
--   a new row). ENABLE ALWAYS, so a replica-mode session cannot skip it.
-- * Tenancy: row-level security as everywhere (arx_control, org of the
--   route). The agent path (arx_app) has no access at all.
-- * Every activation sends NOTIFY arx_policy (payload: the org's id) at
--   commit: each API process wakes the sidecars long-polling it, so a new
--   activation is served within a round trip.
-- * Serving crosses orgs (one sidecar decides for every org), so it reads
--   through two SECURITY DEFINER functions owned by arx_bundles, a NOLOGIN
--   role that can read the active bundles and nothing else.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'arx_bundles') THEN
        CREATE ROLE arx_bundles NOLOGIN;
    END IF;
END
$$;

SET ROLE arx_owner;

CREATE TABLE arx.policy_bundles (
    org_id        uuid NOT NULL REFERENCES arx.orgs (id),
    revision      text NOT NULL CHECK (revision ~ '^[a-z0-9][a-z0-9-]{0,62}-[0-9a-f]{12}$'),
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    source        bytea NOT NULL,
    tests_passed  integer NOT NULL CHECK (tests_passed >= 0),
    description   text,
    uploaded_by   text NOT NULL,
    uploaded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, revision)
);

CREATE TABLE arx.policy_activations (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id        uuid NOT NULL,
    revision      text NOT NULL,
    action        text NOT NULL CHECK (action IN ('activate', 'rollback')),
    bundle        bytea NOT NULL,
    etag          text NOT NULL CHECK (etag ~ '^[0-9a-f]{64}$'),
    activated_by  text NOT NULL,
    activated_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, revision) REFERENCES arx.policy_bundles (org_id, revision)
);
CREATE INDEX policy_activations_latest ON arx.policy_activations (org_id, seq DESC);

-- For every append-only table after audit_events (0016 uses it too).
CREATE FUNCTION arx.reject_append_only_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'arx.% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER policy_bundles_no_update_delete
    BEFORE UPDATE OR DELETE ON arx.policy_bundles
    FOR EACH ROW EXECUTE FUNCTION arx.reject_append_only_change();
CREATE TRIGGER policy_bundles_no_truncate
    BEFORE TRUNCATE ON arx.policy_bundles
    FOR EACH STATEMENT EXECUTE FUNCTION arx.reject_append_only_change();
CREATE TRIGGER policy_activations_no_update_delete
    BEFORE UPDATE OR DELETE ON arx.policy_activations
    FOR EACH ROW EXECUTE FUNCTION arx.reject_append_only_change();
CREATE TRIGGER policy_activations_no_truncate
    BEFORE TRUNCATE ON arx.policy_activations
    FOR EACH STATEMENT EXECUTE FUNCTION arx.reject_append_only_change();

CREATE FUNCTION arx.announce_policy_activation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('arx_policy', NEW.org_id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER policy_activations_announce
    AFTER INSERT ON arx.policy_activations
    FOR EACH ROW EXECUTE FUNCTION arx.announce_policy_activation();

ALTER TABLE arx.policy_bundles
    ENABLE ALWAYS TRIGGER policy_bundles_no_update_delete,
    ENABLE ALWAYS TRIGGER policy_bundles_no_truncate;
ALTER TABLE arx.policy_activations
    ENABLE ALWAYS TRIGGER policy_activations_no_update_delete,
    ENABLE ALWAYS TRIGGER policy_activations_no_truncate,
    ENABLE ALWAYS TRIGGER policy_activations_announce;

RESET ROLE;

GRANT SELECT, INSERT ON arx.policy_bundles, arx.policy_activations TO arx_control;

ALTER TABLE arx.policy_bundles ENABLE ROW LEVEL SECURITY;
ALTER TABLE arx.policy_bundles FORCE ROW LEVEL SECURITY;
ALTER TABLE arx.policy_activations ENABLE ROW LEVEL SECURITY;
ALTER TABLE arx.policy_activations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON arx.policy_bundles TO arx_control
    USING (org_id = (SELECT NULLIF(current_setting('arx.org_id', true), '')::uuid))
    WITH CHECK (org_id = (SELECT NULLIF(current_setting('arx.org_id', true), '')::uuid));
CREATE POLICY tenant_isolation ON arx.policy_activations TO arx_control
    USING (org_id = (SELECT NULLIF(current_setting('arx.org_id', true), '')::uuid))
    WITH CHECK (org_id = (SELECT NULLIF(current_setting('arx.org_id', true), '')::uuid));

-- Serving: what is active for every org, and one org's active bundle.
GRANT USAGE ON SCHEMA arx TO arx_bundles;
GRANT SELECT ON arx.policy_activations TO arx_bundles;
GRANT SELECT (id, slug) ON arx.orgs TO arx_bundles;
CREATE POLICY bundle_service ON arx.policy_activations FOR SELECT TO arx_bundles USING (true);
CREATE POLICY bundle_service ON arx.orgs FOR SELECT TO arx_bundles USING (true);

CREATE FUNCTION arx.active_policy_bundles()
RETURNS TABLE (slug text, revision text, etag text, seq bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT ON (a.org_id) o.slug, a.revision, a.etag, a.seq
    FROM arx.policy_activations a JOIN arx.orgs o ON o.id = a.org_id
    ORDER BY a.org_id, a.seq DESC
$$;
ALTER FUNCTION arx.active_policy_bundles() OWNER TO arx_bundles;
REVOKE ALL ON FUNCTION arx.active_policy_bundles() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.active_policy_bundles() TO arx_control;

CREATE FUNCTION arx.active_policy_bundle(p_slug text)
RETURNS TABLE (revision text, etag text, seq bigint, bundle bytea)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.revision, a.etag, a.seq, a.bundle
    FROM arx.policy_activations a JOIN arx.orgs o ON o.id = a.org_id
    WHERE o.slug = p_slug
    ORDER BY a.seq DESC
    LIMIT 1
$$;
ALTER FUNCTION arx.active_policy_bundle(text) OWNER TO arx_bundles;
REVOKE ALL ON FUNCTION arx.active_policy_bundle(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.active_policy_bundle(text) TO arx_control;
