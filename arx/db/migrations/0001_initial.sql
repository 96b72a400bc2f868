-- ARX initial schema.
--
-- Roles (cluster-wide, created idempotently):
--   arx_owner  NOLOGIN  owns every object; nobody logs in as it.
--   arx_app    LOGIN    the API's role: owns nothing, NOBYPASSRLS, sees one
--                       org per transaction (arx.org_id, set with set_config(..., true)).
--   arx_auth   NOLOGIN  owns the one SECURITY DEFINER function that resolves an
--                       API key id before the org is known; it can read keys, agents
--                       and orgs and nothing else.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'arx_owner') THEN
        CREATE ROLE arx_owner NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'arx_auth') THEN
        CREATE ROLE arx_auth NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'arx_app') THEN
        CREATE ROLE arx_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

CREATE SCHEMA arx AUTHORIZATION arx_owner;
REVOKE ALL ON SCHEMA arx FROM PUBLIC;
GRANT USAGE ON SCHEMA arx TO arx_app, arx_auth;

SET ROLE arx_owner;

CREATE TABLE arx.orgs (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE arx.agents (
    id          uuid PRIMARY KEY,
    org_id      uuid NOT NULL REFERENCES arx.orgs (id),
    name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'),
    intent      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name),
    UNIQUE (org_id, id)
);

-- A key is "arx_<id>_<secret>": id is public and indexes the row, only the
-- SHA-256 of the secret is stored (the secret has 256 bits of entropy, so a
-- slow hash would buy nothing).
CREATE TABLE arx.api_keys (
    id           text PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES arx.orgs (id),
    agent_id     uuid NOT NULL,
    secret_hash  bytea NOT NULL CHECK (length(secret_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    FOREIGN KEY (org_id, agent_id) REFERENCES arx.agents (org_id, id)
);

-- Credentials are versioned, never rewritten: rotation inserts version n+1.
-- The secret is sealed with a fresh data key (AES-256-GCM), the data key is
-- wrapped by the key-encryption key; both bind org, connector and version as
-- associated data, so a row copied to another org or connector fails to open.
CREATE TABLE arx.credentials (
    id           uuid PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES arx.orgs (id),
    connector    text NOT NULL,
    version      integer NOT NULL CHECK (version > 0),
    base_url     text NOT NULL,
    kek_id       text NOT NULL,
    wrapped_dek  bytea NOT NULL,
    nonce        bytea NOT NULL CHECK (length(nonce) = 12),
    ciphertext   bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, connector, version)
);

-- The audit trail (INV-001). Append-only: privileges allow only INSERT and
-- SELECT to the app, and triggers reject UPDATE, DELETE and TRUNCATE from
-- anyone short of a superuser disabling them.
CREATE TABLE arx.audit_events (
    id                uuid PRIMARY KEY,
    seq               bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    org_id            uuid NOT NULL REFERENCES arx.orgs (id),
    kind              text NOT NULL CHECK (kind IN ('decision', 'result', 'admin')),
    agent_id          uuid,
    decision_id       uuid,
    connector         text,
    operation         text,
    operation_kind    text,
    params            jsonb,
    verdict           text CHECK (verdict IN ('PERMIT', 'ESCALATE', 'DENY')),
    risk_score        integer CHECK (risk_score BETWEEN 0 AND 100),
    policy_id         text,
    reasons           jsonb,
    bundle_revisions  jsonb,
    outcome           text CHECK (outcome IN ('success', 'error')),
    result            jsonb,
    error             jsonb,
    action            text,
    details           jsonb,
    actor             text,
    request_id        text,
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (kind <> 'decision' OR (verdict IS NOT NULL AND risk_score IS NOT NULL)),
    CHECK (kind <> 'result' OR (decision_id IS NOT NULL AND outcome IS NOT NULL)),
    CHECK (kind <> 'admin' OR action IS NOT NULL),
    -- Every reference carries org_id: FK checks ignore RLS, so a key on id
    -- alone would let one org's row point at another org's event or agent.
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, decision_id) REFERENCES arx.audit_events (org_id, id),
    FOREIGN KEY (org_id, agent_id) REFERENCES arx.agents (org_id, id)
);
CREATE INDEX audit_events_agent_recent ON arx.audit_events (org_id, agent_id, seq DESC)
    WHERE kind = 'decision';
CREATE INDEX audit_events_org_seq ON arx.audit_events (org_id, seq);

CREATE TABLE arx.approval_requests (
    id            uuid PRIMARY KEY,
    org_id        uuid NOT NULL REFERENCES arx.orgs (id),
    event_id      uuid NOT NULL UNIQUE,
    agent_id      uuid NOT NULL,
    connector     text NOT NULL,
    operation     text NOT NULL,
    params        jsonb NOT NULL,
    -- SHA-256 of the canonical request: an approval is bound to exactly it.
    request_hash  bytea NOT NULL CHECK (length(request_hash) = 32),
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    FOREIGN KEY (org_id, agent_id) REFERENCES arx.agents (org_id, id),
    FOREIGN KEY (org_id, event_id) REFERENCES arx.audit_events (org_id, id)
);

CREATE FUNCTION arx.reject_audit_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'arx.audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- Order and time are the database's, never the writer's: without this an
-- INSERT ... OVERRIDING SYSTEM VALUE could pick its own seq and created_at.
CREATE FUNCTION arx.stamp_audit_event() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW.seq := nextval(pg_get_serial_sequence('arx.audit_events', 'seq'));
    NEW.created_at := clock_timestamp();
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_events_stamp
    BEFORE INSERT ON arx.audit_events
    FOR EACH ROW EXECUTE FUNCTION arx.stamp_audit_event();

CREATE TRIGGER audit_events_no_update_delete
    BEFORE UPDATE OR DELETE ON arx.audit_events
    FOR EACH ROW EXECUTE FUNCTION arx.reject_audit_change();
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON arx.audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION arx.reject_audit_change();
-- ALWAYS: still fires under session_replication_role = replica.
ALTER TABLE arx.audit_events
    ENABLE ALWAYS TRIGGER audit_events_stamp,
    ENABLE ALWAYS TRIGGER audit_events_no_update_delete,
    ENABLE ALWAYS TRIGGER audit_events_no_truncate;

RESET ROLE;

-- Privileges: the app may read and append; it may never rewrite history.
GRANT SELECT, INSERT ON arx.orgs, arx.agents, arx.api_keys, arx.credentials,
    arx.audit_events, arx.approval_requests TO arx_app;
GRANT SELECT ON arx.orgs, arx.agents, arx.api_keys TO arx_auth;

-- Tenancy: every table is FORCE'd under row-level security. An unset org
-- (NULL after NULLIF) matches no row and fails every WITH CHECK.
DO $$
DECLARE
    t text;
    col text;
BEGIN
    FOREACH t IN ARRAY ARRAY['orgs', 'agents', 'api_keys', 'credentials',
                             'audit_events', 'approval_requests'] LOOP
        col := CASE WHEN t = 'orgs' THEN 'id' ELSE 'org_id' END;
        EXECUTE format('ALTER TABLE arx.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE arx.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON arx.%I TO arx_app '
            'USING (%I = (SELECT NULLIF(current_setting(''arx.org_id'', true), '''')::uuid)) '
            'WITH CHECK (%I = (SELECT NULLIF(current_setting(''arx.org_id'', true), '''')::uuid))',
            t, col, col);
    END LOOP;
END
$$;

CREATE POLICY key_lookup ON arx.api_keys FOR SELECT TO arx_auth USING (true);
CREATE POLICY key_lookup ON arx.agents FOR SELECT TO arx_auth USING (true);
CREATE POLICY key_lookup ON arx.orgs FOR SELECT TO arx_auth USING (true);

-- Resolves an API key id to its org and agent before any org is set. The
-- caller compares the returned hash in constant time.
CREATE FUNCTION arx.resolve_api_key(p_key_id text)
RETURNS TABLE (org_id uuid, org_slug text, agent_id uuid, agent_name text,
               intent jsonb, secret_hash bytea)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT k.org_id, o.slug, k.agent_id, a.name, a.intent, k.secret_hash
    FROM arx.api_keys k
    JOIN arx.agents a ON a.id = k.agent_id
    JOIN arx.orgs o ON o.id = k.org_id
    WHERE k.id = p_key_id AND k.revoked_at IS NULL
$$;
ALTER FUNCTION arx.resolve_api_key(text) OWNER TO arx_auth;
REVOKE ALL ON FUNCTION arx.resolve_api_key(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.resolve_api_key(text) TO arx_app;

-- Lets operators name an org by slug (the CLI) before its id is known.
CREATE FUNCTION arx.org_id_for_slug(p_slug text) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT id FROM arx.orgs WHERE slug = p_slug $$;
ALTER FUNCTION arx.org_id_for_slug(text) OWNER TO arx_auth;
REVOKE ALL ON FUNCTION arx.org_id_for_slug(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.org_id_for_slug(text) TO arx_app;
