-- An audit trail that proves itself (issue 9): each org's events get a
-- gap-free sequence in commit order and a hash chain, sealed after the fact
-- by a sealer that follows commits, never on the execute path.
--
--   arx.audit_events.txid   the inserting transaction's id, stamped by the
--                           insert trigger (ENABLE ALWAYS): not the writer's
--                           to choose.
--   arx.audit_chain         per org: org_seq 1, 2, 3, … → event id and
--                           hash = SHA-256("arx.audit.chain.v1\0" ‖ org id ‖
--                           org_seq ‖ previous hash ‖ canonical event), see
--                           arx/audit/chain.py for the canonical encoding.
--   arx.audit_checkpoints   per org: the chain head at a moment, signed with
--                           Ed25519 by a key outside the database.
--   arx.audit_seal_cursor   how far the sealer has come: (txid, seq) of the
--                           last event it chained.
--
-- Guarantees:
-- * Gap-free, and final once handed out: the sealer takes only events whose
--   transaction is older than every transaction still running
--   (pg_snapshot_xmin of its snapshot), so every event it could ever be
--   shown below its cursor is already committed; it chains them in (txid,
--   seq) order, the order transactions began writing (not strictly the
--   order they committed). No event can later appear before an org_seq
--   already handed out: a reader that follows org_seq never skips one. Any
--   transaction left open in the cluster holds sealing back.
-- * The execute path pays one stamped column; it takes no lock another
--   org's, or the same org's, execute waits on.
-- * Chain, checkpoints and cursor are append-only for every role (the
--   cursor only moves forward, through one function); a superuser can still
--   rewrite anything, which `arx audit verify` then finds.
-- * One sealer at a time, whatever the number of API processes: the append
--   function takes an advisory lock and refuses a batch that does not start
--   where the cursor is.
-- * Tenancy: arx_control reads chain and checkpoints of its org (RLS); the
--   sealing functions are SECURITY DEFINER owned by arx_sealer (NOLOGIN),
--   which reads events across orgs and writes the chain, nothing else.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'arx_sealer') THEN
        CREATE ROLE arx_sealer NOLOGIN;
    END IF;
END
$$;

SET ROLE arx_owner;

ALTER TABLE arx.audit_events ADD COLUMN txid xid8;

CREATE OR REPLACE FUNCTION arx.stamp_audit_event() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW.seq := nextval('arx.audit_events_seq_seq'::regclass);
    NEW.created_at := clock_timestamp();
    NEW.txid := pg_current_xact_id();
    RETURN NEW;
END
$$;

CREATE INDEX audit_events_seal_order ON arx.audit_events (txid, seq);

CREATE TABLE arx.audit_chain (
    org_id     uuid NOT NULL,
    org_seq    bigint NOT NULL CHECK (org_seq >= 1),
    event_id   uuid NOT NULL,
    hash       bytea NOT NULL CHECK (length(hash) = 32),
    sealed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (org_id, org_seq),
    UNIQUE (org_id, event_id)
);

CREATE TABLE arx.audit_checkpoints (
    org_id         uuid NOT NULL,
    checkpoint_no  bigint NOT NULL CHECK (checkpoint_no >= 1),
    org_seq        bigint NOT NULL CHECK (org_seq >= 1),
    hash           bytea NOT NULL CHECK (length(hash) = 32),
    signed_at      timestamptz NOT NULL,
    key_id         text NOT NULL,
    signature      bytea NOT NULL CHECK (length(signature) = 64),
    PRIMARY KEY (org_id, checkpoint_no)
);

CREATE TABLE arx.audit_seal_cursor (
    id     integer PRIMARY KEY CHECK (id = 1),
    txid   xid8 NOT NULL,
    seq    bigint NOT NULL
);
-- Events written before the chain existed are chained too, from the start.
INSERT INTO arx.audit_seal_cursor VALUES (1, '0'::xid8, 0);

CREATE TRIGGER audit_chain_no_update_delete BEFORE UPDATE OR DELETE ON arx.audit_chain
    FOR EACH ROW EXECUTE FUNCTION arx.reject_append_only_change();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON arx.audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION arx.reject_append_only_change();
CREATE TRIGGER audit_checkpoints_no_update_delete BEFORE UPDATE OR DELETE
    ON arx.audit_checkpoints FOR EACH ROW EXECUTE FUNCTION arx.reject_append_only_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON arx.audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION arx.reject_append_only_change();
CREATE TRIGGER audit_seal_cursor_no_delete BEFORE DELETE ON arx.audit_seal_cursor
    FOR EACH ROW EXECUTE FUNCTION arx.reject_append_only_change();
CREATE TRIGGER audit_seal_cursor_no_truncate BEFORE TRUNCATE ON arx.audit_seal_cursor
    FOR EACH STATEMENT EXECUTE FUNCTION arx.reject_append_only_change();
ALTER TABLE arx.audit_chain
    ENABLE ALWAYS TRIGGER audit_chain_no_update_delete,
    ENABLE ALWAYS TRIGGER audit_chain_no_truncate;
ALTER TABLE arx.audit_checkpoints
    ENABLE ALWAYS TRIGGER audit_checkpoints_no_update_delete,
    ENABLE ALWAYS TRIGGER audit_checkpoints_no_truncate;
ALTER TABLE arx.audit_seal_cursor
    ENABLE ALWAYS TRIGGER audit_seal_cursor_no_delete,
    ENABLE ALWAYS TRIGGER audit_seal_cursor_no_truncate;

RESET ROLE;

-- Events written before this migration are chained first, in seq order (as
-- the superuser: row-level security binds the table's owner too).
ALTER TABLE arx.audit_events DISABLE TRIGGER audit_events_no_update_delete;
UPDATE arx.audit_events SET txid = '3'::xid8;
ALTER TABLE arx.audit_events ENABLE ALWAYS TRIGGER audit_events_no_update_delete;
ALTER TABLE arx.audit_events ALTER COLUMN txid SET NOT NULL;

ALTER TABLE arx.audit_chain ENABLE ROW LEVEL SECURITY;
ALTER TABLE arx.audit_chain FORCE ROW LEVEL SECURITY;
ALTER TABLE arx.audit_checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE arx.audit_checkpoints FORCE ROW LEVEL SECURITY;
ALTER TABLE arx.audit_seal_cursor ENABLE ROW LEVEL SECURITY;
ALTER TABLE arx.audit_seal_cursor FORCE ROW LEVEL SECURITY;

GRANT SELECT ON arx.audit_chain, arx.audit_checkpoints TO arx_control;
CREATE POLICY tenant_isolation ON arx.audit_chain FOR SELECT TO arx_control
    USING (org_id = (SELECT NULLIF(current_setting('arx.org_id', true), '')::uuid));
CREATE POLICY tenant_isolation ON arx.audit_checkpoints FOR SELECT TO arx_control
    USING (org_id = (SELECT NULLIF(current_setting('arx.org_id', true), '')::uuid));

GRANT USAGE ON SCHEMA arx TO arx_sealer;
GRANT SELECT ON arx.audit_events TO arx_sealer;
GRANT SELECT, INSERT ON arx.audit_chain, arx.audit_checkpoints TO arx_sealer;
GRANT SELECT, UPDATE ON arx.audit_seal_cursor TO arx_sealer;
CREATE POLICY sealer ON arx.audit_events FOR SELECT TO arx_sealer USING (true);
GRANT SELECT (id) ON arx.orgs TO arx_sealer;
CREATE POLICY sealer ON arx.orgs FOR SELECT TO arx_sealer USING (true);
CREATE POLICY sealer ON arx.audit_chain TO arx_sealer USING (true) WITH CHECK (true);
CREATE POLICY sealer ON arx.audit_checkpoints TO arx_sealer USING (true) WITH CHECK (true);
CREATE POLICY sealer ON arx.audit_seal_cursor TO arx_sealer USING (true) WITH CHECK (true);

-- The next events to chain, in commit order: past the cursor, and only from
-- transactions older than every one still running.
CREATE FUNCTION arx.unsealed_events(p_limit integer)
RETURNS SETOF arx.audit_events
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    from_txid xid8;
    from_seq bigint;
BEGIN
    -- The cursor as values, so the (txid, seq) index is searched from it
    -- rather than walked from the start.
    SELECT c.txid, c.seq INTO from_txid, from_seq FROM arx.audit_seal_cursor c WHERE c.id = 1;
    RETURN QUERY
        SELECT e.* FROM arx.audit_events e
        WHERE (e.txid, e.seq) > (from_txid, from_seq)
          AND e.txid < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY e.txid, e.seq
        LIMIT least(greatest(p_limit, 1), 10000);
END
$$;
ALTER FUNCTION arx.unsealed_events(integer) OWNER TO arx_sealer;
REVOKE ALL ON FUNCTION arx.unsealed_events(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.unsealed_events(integer) TO arx_control;

-- Each org's chain head (for the first hashes of a batch).
CREATE FUNCTION arx.chain_heads(p_orgs uuid[])
RETURNS TABLE (org_id uuid, org_seq bigint, hash bytea)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    -- One index probe per org (the primary key, newest first).
    SELECT o.org_id, h.org_seq, h.hash
    FROM unnest(p_orgs) AS o (org_id)
    CROSS JOIN LATERAL (
        SELECT c.org_seq, c.hash FROM arx.audit_chain c
        WHERE c.org_id = o.org_id ORDER BY c.org_seq DESC LIMIT 1
    ) h
$$;
ALTER FUNCTION arx.chain_heads(uuid[]) OWNER TO arx_sealer;
REVOKE ALL ON FUNCTION arx.chain_heads(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.chain_heads(uuid[]) TO arx_control;

-- Append a batch and move the cursor past it, if the cursor is still where
-- the batch started (else another sealer was first: false, nothing written).
-- p_links: [{"org_id", "org_seq", "event_id", "hash" (hex)}], in chain order.
CREATE FUNCTION arx.append_chain(p_from_txid xid8, p_from_seq bigint, p_to_txid xid8,
    p_to_seq bigint, p_links jsonb)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    moved integer;
BEGIN
    IF jsonb_array_length(p_links) = 0 THEN
        RAISE EXCEPTION 'an empty chain batch moves nothing';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('arx.audit.seal', 0));
    UPDATE arx.audit_seal_cursor SET txid = p_to_txid, seq = p_to_seq
    WHERE id = 1 AND txid = p_from_txid AND seq = p_from_seq
      AND (p_to_txid, p_to_seq) > (p_from_txid, p_from_seq);
    GET DIAGNOSTICS moved = ROW_COUNT;
    IF moved = 0 THEN
        RETURN false;
    END IF;
    -- Each org's part of the batch must continue its chain without a gap
    -- (the primary key refuses a repeat).
    IF EXISTS (
        SELECT FROM (
            SELECT (l ->> 'org_id')::uuid AS org_id, min((l ->> 'org_seq')::bigint) AS lo,
                   max((l ->> 'org_seq')::bigint) AS hi, count(*) AS n
            FROM jsonb_array_elements(p_links) AS l GROUP BY 1
        ) b
        WHERE b.hi - b.lo + 1 <> b.n
           OR b.lo <> coalesce((SELECT max(c.org_seq) FROM arx.audit_chain c
                                WHERE c.org_id = b.org_id), 0) + 1
    ) THEN
        RAISE EXCEPTION 'a chain batch would leave a gap in an org''s sequence';
    END IF;
    INSERT INTO arx.audit_chain (org_id, org_seq, event_id, hash)
    SELECT (l ->> 'org_id')::uuid, (l ->> 'org_seq')::bigint, (l ->> 'event_id')::uuid,
           decode(l ->> 'hash', 'hex')
    FROM jsonb_array_elements(p_links) AS l;
    RETURN true;
END
$$;
ALTER FUNCTION arx.append_chain(xid8, bigint, xid8, bigint, jsonb) OWNER TO arx_sealer;
REVOKE ALL ON FUNCTION arx.append_chain(xid8, bigint, xid8, bigint, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.append_chain(xid8, bigint, xid8, bigint, jsonb) TO arx_control;

CREATE FUNCTION arx.seal_cursor(OUT txid xid8, OUT seq bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.txid, c.seq FROM arx.audit_seal_cursor c WHERE c.id = 1
$$;
ALTER FUNCTION arx.seal_cursor() OWNER TO arx_sealer;
REVOKE ALL ON FUNCTION arx.seal_cursor() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.seal_cursor() TO arx_control;

-- Orgs whose chain moved past their last checkpoint at least p_age ago (or
-- that have none): their heads, for the sealer to sign.
CREATE FUNCTION arx.checkpoints_due(p_age_seconds double precision)
RETURNS TABLE (org_id uuid, checkpoint_no bigint, org_seq bigint, hash bytea)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    -- Per org, two index probes: its chain head and its last checkpoint.
    SELECT o.id, coalesce(l.checkpoint_no, 0) + 1, h.org_seq, h.hash
    FROM arx.orgs o
    CROSS JOIN LATERAL (
        SELECT c.org_seq, c.hash FROM arx.audit_chain c
        WHERE c.org_id = o.id ORDER BY c.org_seq DESC LIMIT 1
    ) h
    LEFT JOIN LATERAL (
        SELECT k.checkpoint_no, k.org_seq, k.signed_at FROM arx.audit_checkpoints k
        WHERE k.org_id = o.id ORDER BY k.checkpoint_no DESC LIMIT 1
    ) l ON true
    WHERE l.checkpoint_no IS NULL
       OR (h.org_seq > l.org_seq
           AND l.signed_at <= clock_timestamp() - make_interval(secs => p_age_seconds))
$$;
ALTER FUNCTION arx.checkpoints_due(double precision) OWNER TO arx_sealer;
REVOKE ALL ON FUNCTION arx.checkpoints_due(double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.checkpoints_due(double precision) TO arx_control;

CREATE FUNCTION arx.append_checkpoint(p_org uuid, p_no bigint, p_org_seq bigint, p_hash bytea,
    p_signed_at timestamptz, p_key_id text, p_signature bytea)
RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO arx.audit_checkpoints
        (org_id, checkpoint_no, org_seq, hash, signed_at, key_id, signature)
    VALUES (p_org, p_no, p_org_seq, p_hash, p_signed_at, p_key_id, p_signature)
    ON CONFLICT DO NOTHING
$$;
ALTER FUNCTION arx.append_checkpoint(uuid, bigint, bigint, bytea, timestamptz, text, bytea)
    OWNER TO arx_sealer;
REVOKE ALL ON FUNCTION arx.append_checkpoint(uuid, bigint, bigint, bytea, timestamptz, text,
    bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.append_checkpoint(uuid, bigint, bigint, bytea, timestamptz, text,
    bytea) TO arx_control;
