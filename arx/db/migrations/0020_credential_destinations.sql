-- Credentials bound to where they may go (issue 10, point 1; docs/decisions/0026).
--
--   arx.credentials       versioned and append-only, for every role: a
--                         rotation is a new version, a deletion a tombstone
--                         (a version with no secret), and the one change a
--                         row may take is a rewrap (a new kek_id and
--                         wrapped_dek for the same data key, when the
--                         key-encryption key rotates). Each version is sealed
--                         with its id and base_url in the associated data
--                         (arx.vault.crypto), so a base_url changed here by
--                         hand no longer opens.
--   arx.connector_hosts   the hosts (or *.domain patterns) an org admin
--                         added to a connector's own allowed hosts; every
--                         call checks its credential's URL against both.
--   arx.keyed_execute_context  also answers the org's hosts for the
--                         connector: the execute path still reads everything
--                         in one statement.

SET ROLE arx_owner;

ALTER TABLE arx.credentials
    ALTER COLUMN kek_id DROP NOT NULL,
    ALTER COLUMN wrapped_dek DROP NOT NULL,
    ALTER COLUMN nonce DROP NOT NULL,
    ALTER COLUMN ciphertext DROP NOT NULL,
    ADD COLUMN deleted boolean NOT NULL DEFAULT false,
    ADD COLUMN created_by text,
    ADD CONSTRAINT credentials_sealed_or_tombstone CHECK (
        (NOT deleted AND kek_id IS NOT NULL AND wrapped_dek IS NOT NULL AND nonce IS NOT NULL
             AND ciphertext IS NOT NULL)
        OR (deleted AND kek_id IS NULL AND wrapped_dek IS NULL AND nonce IS NULL
             AND ciphertext IS NULL AND base_url = ''));

CREATE FUNCTION arx.credentials_rewrap_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NOT OLD.deleted
       AND (NEW.id, NEW.org_id, NEW.connector, NEW.version, NEW.base_url, NEW.nonce,
            NEW.ciphertext, NEW.deleted, NEW.created_at, NEW.created_by)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.org_id, OLD.connector, OLD.version, OLD.base_url, OLD.nonce,
            OLD.ciphertext, OLD.deleted, OLD.created_at, OLD.created_by)
       AND NEW.kek_id IS NOT NULL AND NEW.wrapped_dek IS NOT NULL THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'arx.credentials is append-only: % is not allowed (a rotation is a new '
        'version, a deletion a tombstone; only a rewrap may change kek_id and wrapped_dek)',
        TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER credentials_append_only
    BEFORE UPDATE OR DELETE ON arx.credentials
    FOR EACH ROW EXECUTE FUNCTION arx.credentials_rewrap_only();
CREATE TRIGGER credentials_no_truncate
    BEFORE TRUNCATE ON arx.credentials
    FOR EACH STATEMENT EXECUTE FUNCTION arx.reject_append_only_change();
ALTER TABLE arx.credentials
    ENABLE ALWAYS TRIGGER credentials_append_only,
    ENABLE ALWAYS TRIGGER credentials_no_truncate;

CREATE TABLE arx.connector_hosts (
    org_id     uuid NOT NULL REFERENCES arx.orgs (id),
    connector  text NOT NULL,
    host       text NOT NULL
        CHECK (length(host) <= 253 AND host ~ '^(\*\.)?[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})+$'),
    added_by   text NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, connector, host)
);

RESET ROLE;

GRANT SELECT ON arx.connector_hosts TO arx_app;
GRANT SELECT, INSERT, DELETE ON arx.connector_hosts TO arx_control;
ALTER TABLE arx.connector_hosts ENABLE ROW LEVEL SECURITY;
ALTER TABLE arx.connector_hosts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON arx.connector_hosts TO arx_app, arx_control
    USING (org_id = (SELECT NULLIF(current_setting('arx.org_id', true), '')::uuid))
    WITH CHECK (org_id = (SELECT NULLIF(current_setting('arx.org_id', true), '')::uuid));

SET ROLE arx_owner;
DROP FUNCTION arx.keyed_execute_context(text, uuid, uuid, text, integer);
-- SQLSTATEs of class AX (ARX): AX401 key no longer valid, AX403 agent
-- switched off, AX423 every agent of the org switched off (arx.db.errors).
CREATE FUNCTION arx.keyed_execute_context(p_key text, p_org uuid, p_agent uuid,
    p_connector text, p_recent integer,
    OUT credential_id uuid, OUT credential_version integer, OUT base_url text,
    OUT kek_id text, OUT wrapped_dek bytea, OUT nonce bytea, OUT ciphertext bytea,
    OUT head_seq bigint, OUT head_tallies bigint[], OUT session text,
    OUT allowed_hosts text[])
LANGUAGE plpgsql AS $$
DECLARE
    state text := arx.key_state(p_key, p_org, p_agent);
BEGIN
    IF state = 'invalid' THEN
        RAISE EXCEPTION 'API key no longer valid' USING ERRCODE = 'AX401';
    ELSIF state = 'agent_disabled' THEN
        RAISE EXCEPTION 'agent disabled' USING ERRCODE = 'AX403';
    ELSIF state = 'org_disabled' THEN
        RAISE EXCEPTION 'org agents disabled' USING ERRCODE = 'AX423';
    END IF;
    -- The latest version; a tombstone's sealed columns are NULL.
    SELECT c.credential_id, c.credential_version, c.base_url, c.kek_id, c.wrapped_dek,
           c.nonce, c.ciphertext, c.head_seq, c.head_tallies, c.session
      INTO credential_id, credential_version, base_url, kek_id, wrapped_dek,
           nonce, ciphertext, head_seq, head_tallies, session
      FROM arx.execute_context(p_org, p_agent, p_connector, p_recent) c;
    -- After execute_context, which entered the org (row-level security).
    SELECT coalesce(array_agg(h.host), '{}')
      INTO allowed_hosts
      FROM arx.connector_hosts h
     WHERE h.org_id = p_org AND h.connector = p_connector;
END
$$;
RESET ROLE;
REVOKE ALL ON FUNCTION arx.keyed_execute_context(text, uuid, uuid, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.keyed_execute_context(text, uuid, uuid, text, integer) TO arx_app;
