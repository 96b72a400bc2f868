-- The trail partitioned by month (issue 9, point 5; docs/decisions/0025).
--
--   arx.audit_events            PARTITION BY RANGE (created_at), one partition
--                               a calendar month (UTC), named
--                               audit_events_yYYYYmMM, created ahead by
--                               arx.ensure_audit_partitions (here, by
--                               `arx db migrate`, and daily by the API).
--                               No default partition: an insert for a month
--                               that has none fails (the execute path fails
--                               closed, 503), and a default partition would
--                               keep the planner from reading the months in
--                               order (an agent's newest decisions would be
--                               merged from every month instead).
--   arx.agent_heads             one row per agent: its latest decision's
--                               number and running tallies. Replaces the
--                               unique (org, agent, agent_seq) index (a unique
--                               key on a partitioned table must include
--                               created_at): record_decision moves the head
--                               only where it still is where the caller read
--                               it, the same compare-and-swap, and the
--                               session read takes the head from one row
--                               instead of probing every month's index.
--   arx.audit_event_ids         every id the trail ever held (the unique key
--                               a partitioned table cannot have without
--                               created_at), filled by the stamp trigger and
--                               kept when retention drops a month.
--   arx.drop_audit_months(date, text)
--                               retention: the only way events leave.
--                               Superuser only; refuses a month holding an
--                               event not yet sealed or not yet under a
--                               signed checkpoint; per org records an
--                               audit.retention event naming the org_seq
--                               positions removed (chained and signed like
--                               any event; no role the API uses may write
--                               one), then drops the whole partitions.
--
-- What a unique key without created_at gave before, and what stands in now:
-- * (org_id, id): arx.audit_event_ids. record_result's replay no-op finds a
--   stored result there; its foreign key to the decision becomes a probe
--   by where record_decision said the decision stands (created_at and seq,
--   carried by the result): one index, one month.
-- * Foreign keys into the trail (a result's decision, an approval's
--   event): dropped. Each pair is written by one function in one
--   transaction, and retention must be able to drop a month an approval
--   still names.
-- * The global seq: unique by its sequence, indexed per org.
-- * Upgrading: stop the API processes, migrate (as a superuser), start
--   them. The move holds the trail's lock while it copies (about a minute
--   a million events), and record_decision answers two more columns than
--   an older process reads.
--
-- The stamp trigger no longer sets created_at: rows are routed to a
-- partition by the column default before BEFORE triggers run, and a trigger
-- that moved the row to another month would fail at a month boundary. It
-- refuses a created_at from before its statement began or after the clock
-- instead, so the writer still cannot choose its time.

-- The move reads the whole trail, where row-level security is forced: a
-- role that it filters would copy nothing and drop the rest.
DO $$
BEGIN
    IF NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = session_user) THEN
        RAISE EXCEPTION 'migration 0019 moves the audit trail: run it as a superuser'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

SET ROLE arx_owner;

ALTER TABLE arx.audit_events RENAME TO audit_events_unpartitioned;

CREATE TABLE arx.audit_events (
    id uuid NOT NULL,
    seq bigint NOT NULL,
    org_id uuid NOT NULL,
    kind text NOT NULL
        CONSTRAINT audit_events_kind_check
        CHECK (kind = ANY (ARRAY['decision', 'result', 'admin', 'refusal'])),
    agent_id uuid,
    decision_id uuid,
    connector text,
    operation text,
    operation_kind text,
    params jsonb,
    verdict text CONSTRAINT audit_events_verdict_check
        CHECK (verdict = ANY (ARRAY['PERMIT', 'ESCALATE', 'DENY'])),
    risk_score integer CONSTRAINT audit_events_risk_score_check
        CHECK (risk_score >= 0 AND risk_score <= 100),
    policy_id text,
    reasons jsonb,
    bundle_revisions jsonb,
    outcome text CONSTRAINT audit_events_outcome_check
        CHECK (outcome = ANY (ARRAY['success', 'error', 'unknown'])),
    result jsonb,
    error jsonb,
    action text,
    details jsonb,
    actor text,
    request_id text,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    agent_seq bigint,
    targets text[],
    tally_read bigint,
    tally_write bigint,
    tally_containment bigint,
    tally_destructive bigint,
    tally_denied bigint,
    idempotency_key text,
    approval_id uuid,
    policy_input json,
    client_request_id text,
    txid xid8 NOT NULL,
    CONSTRAINT audit_events_agent_seq CHECK (agent_seq IS NULL OR (kind = 'decision'
        AND agent_seq > 0 AND tally_read IS NOT NULL AND tally_write IS NOT NULL
        AND tally_containment IS NOT NULL AND tally_destructive IS NOT NULL
        AND tally_denied IS NOT NULL)),
    CONSTRAINT audit_events_check
        CHECK (kind <> 'decision' OR (verdict IS NOT NULL AND risk_score IS NOT NULL)),
    CONSTRAINT audit_events_check1
        CHECK (kind <> 'result' OR (decision_id IS NOT NULL AND outcome IS NOT NULL)),
    CONSTRAINT audit_events_check2 CHECK (kind <> 'admin' OR action IS NOT NULL),
    CONSTRAINT audit_events_refusal_action CHECK (kind <> 'refusal' OR action IS NOT NULL),
    CONSTRAINT audit_events_client_request_id
        CHECK (client_request_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    CONSTRAINT audit_events_policy_input CHECK (policy_input IS NULL OR kind = 'decision')
) PARTITION BY RANGE (created_at);

-- One month's partition. A standalone table attached afterwards, never
-- CREATE TABLE ... PARTITION OF: that takes an ACCESS EXCLUSIVE lock on the
-- trail, queued behind any long reader (a verify, an export) with every
-- execute's insert queued behind it; ATTACH takes SHARE UPDATE EXCLUSIVE,
-- which inserts and reads do not wait on. A statement-level TRUNCATE trigger
-- is not cloned to partitions: each gets its own. Partitions get no grants:
-- every role but the owner reaches rows only through the parent, where the
-- parent's row-level security policies apply.
CREATE FUNCTION arx.create_audit_partition(p_month date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s' AS $$
DECLARE
    first date := date_trunc('month', p_month)::date;
    name text := format('audit_events_y%sm%s', to_char(first, 'YYYY'), to_char(first, 'MM'));
BEGIN
    IF to_regclass(format('arx.%I', name)) IS NOT NULL THEN
        IF (SELECT c.relispartition FROM pg_class c
             WHERE c.oid = to_regclass(format('arx.%I', name))) THEN
            RETURN NULL;
        END IF;
        -- A month detached by hand goes back, rows and all (the attach
        -- checks they belong to it).
    ELSE
        EXECUTE format('CREATE TABLE arx.%I (LIKE arx.audit_events INCLUDING DEFAULTS'
            ' INCLUDING CONSTRAINTS)', name);
    END IF;
    EXECUTE format('ALTER TABLE arx.audit_events ATTACH PARTITION arx.%I'
        ' FOR VALUES FROM (%L) TO (%L)', name,
        to_char(first, 'YYYY-MM-DD') || ' 00:00:00+00',
        to_char(first + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00');
    EXECUTE format('CREATE OR REPLACE TRIGGER audit_events_no_truncate BEFORE TRUNCATE'
        ' ON arx.%I FOR EACH STATEMENT EXECUTE FUNCTION arx.reject_audit_change()', name);
    -- The row triggers are cloned from the parent's, ENABLE ALWAYS included.
    EXECUTE format('ALTER TABLE arx.%I ENABLE ALWAYS TRIGGER audit_events_no_truncate', name);
    -- Through the parent only its policies apply; a partition reached
    -- directly (a grant made by mistake) shows no row to anyone but a
    -- superuser: no policy, forced.
    EXECUTE format('ALTER TABLE arx.%I ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY',
        name);
    RETURN name;
END
$$;
REVOKE ALL ON FUNCTION arx.create_audit_partition(date) FROM PUBLIC;

-- This month and the next p_months_ahead, those missing: the names made.
CREATE FUNCTION arx.ensure_audit_partitions(p_months_ahead integer DEFAULT 3)
RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    this_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    made text;
BEGIN
    -- One at a time across processes: a second would fail on the name.
    PERFORM pg_advisory_xact_lock(hashtextextended('arx.audit.months', 0));
    -- Every month is in every plan of the execute path: no more than needed.
    FOR i IN 0..least(greatest(p_months_ahead, 1), 6) LOOP
        made := arx.create_audit_partition((this_month + make_interval(months => i))::date);
        IF made IS NOT NULL THEN
            RETURN NEXT made;
        END IF;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION arx.ensure_audit_partitions(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.ensure_audit_partitions(integer) TO arx_control;

CREATE SEQUENCE arx.audit_events_seq AS bigint;

CREATE TABLE arx.agent_heads (
    org_id            uuid NOT NULL,
    agent_id          uuid NOT NULL,
    head_seq          bigint NOT NULL CHECK (head_seq >= 1),
    tally_read        bigint NOT NULL,
    tally_write       bigint NOT NULL,
    tally_containment bigint NOT NULL,
    tally_destructive bigint NOT NULL,
    tally_denied      bigint NOT NULL,
    -- The agent's last decision that retention dropped (its number and
    -- tallies): where the session's windows start when nothing older is
    -- left in the trail.
    floor_seq         bigint NOT NULL DEFAULT 0,
    floor_tallies     bigint[] NOT NULL DEFAULT '{0,0,0,0,0}',
    PRIMARY KEY (org_id, agent_id),
    FOREIGN KEY (org_id, agent_id) REFERENCES arx.agents (org_id, id)
);
ALTER TABLE arx.agent_heads ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON arx.agent_heads TO arx_app, arx_control
    USING (org_id = (SELECT NULLIF(current_setting('arx.org_id', true), '')::uuid))
    WITH CHECK (org_id = (SELECT NULLIF(current_setting('arx.org_id', true), '')::uuid));
GRANT SELECT, INSERT, UPDATE ON arx.agent_heads TO arx_app;
GRANT SELECT ON arx.agent_heads TO arx_control;

-- Every id the trail ever held, kept when retention drops its month: the
-- unique key (org_id, id) a partitioned table cannot have. The stamp
-- trigger fills it, so no event can reuse an id, even one retention
-- dropped (its link stays in arx.audit_chain, unique by event id: a reused
-- id would stop the sealer for every org).
CREATE TABLE arx.audit_event_ids (
    org_id uuid NOT NULL,
    id     uuid NOT NULL,
    PRIMARY KEY (org_id, id)
);
ALTER TABLE arx.audit_event_ids ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY stamp ON arx.audit_event_ids FOR INSERT TO arx_owner WITH CHECK (true);
CREATE POLICY tenant_isolation ON arx.audit_event_ids FOR SELECT TO arx_app, arx_control
    USING (org_id = (SELECT NULLIF(current_setting('arx.org_id', true), '')::uuid));
GRANT SELECT ON arx.audit_event_ids TO arx_app, arx_control;
CREATE TRIGGER audit_event_ids_no_update_delete BEFORE UPDATE OR DELETE ON arx.audit_event_ids
    FOR EACH ROW EXECUTE FUNCTION arx.reject_append_only_change();
CREATE TRIGGER audit_event_ids_no_truncate BEFORE TRUNCATE ON arx.audit_event_ids
    FOR EACH STATEMENT EXECUTE FUNCTION arx.reject_append_only_change();
ALTER TABLE arx.audit_event_ids
    ENABLE ALWAYS TRIGGER audit_event_ids_no_update_delete,
    ENABLE ALWAYS TRIGGER audit_event_ids_no_truncate;

-- The move, as the superuser: row-level security is forced on the old
-- table, so its owner would read (and copy) nothing; and with it off, a
-- read that it would filter fails instead.
RESET ROLE;
SET LOCAL row_security = off;

-- Every month the existing trail spans, then the months ahead (the
-- function is the owner's: so are the months).
SELECT arx.create_audit_partition(m::date)
  FROM generate_series(
        date_trunc('month', coalesce(
            (SELECT min(created_at) FROM arx.audit_events_unpartitioned), now())
            AT TIME ZONE 'UTC'),
        date_trunc('month', now() AT TIME ZONE 'UTC'), interval '1 month') m;
SELECT arx.ensure_audit_partitions(3);

-- The copy keeps seq, created_at and txid: no trigger is on the new table yet.
INSERT INTO arx.audit_events
SELECT id, seq, org_id, kind, agent_id, decision_id, connector, operation, operation_kind,
       params, verdict, risk_score, policy_id, reasons, bundle_revisions, outcome, result,
       error, action, details, actor, request_id, created_at, agent_seq, targets,
       tally_read, tally_write, tally_containment, tally_destructive, tally_denied,
       idempotency_key, approval_id, policy_input, client_request_id, txid
  FROM arx.audit_events_unpartitioned ORDER BY seq;
DO $$
BEGIN
    IF (SELECT count(*) FROM arx.audit_events)
       <> (SELECT count(*) FROM arx.audit_events_unpartitioned) THEN
        RAISE EXCEPTION 'migration 0019: the copy of the trail is incomplete';
    END IF;
END
$$;

INSERT INTO arx.audit_event_ids SELECT org_id, id FROM arx.audit_events_unpartitioned;

SELECT setval('arx.audit_events_seq',
              coalesce((SELECT max(seq) FROM arx.audit_events_unpartitioned), 0) + 1, false);

INSERT INTO arx.agent_heads (org_id, agent_id, head_seq, tally_read, tally_write,
    tally_containment, tally_destructive, tally_denied)
SELECT DISTINCT ON (org_id, agent_id) org_id, agent_id, agent_seq, tally_read, tally_write,
       tally_containment, tally_destructive, tally_denied
  FROM arx.audit_events_unpartitioned
 WHERE kind = 'decision' AND agent_seq IS NOT NULL
 ORDER BY org_id, agent_id, agent_seq DESC;

SET LOCAL row_security = on;
ALTER TABLE arx.approval_requests DROP CONSTRAINT approval_requests_org_id_event_id_fkey;
SET ROLE arx_owner;
DROP FUNCTION arx.unsealed_events(integer);
DROP TABLE arx.audit_events_unpartitioned;

-- (org_id, id) first as before: a lookup by id matches more of it than of
-- any other index led by org_id, also in a plan made before the month's
-- partition was ever analyzed.
ALTER TABLE arx.audit_events ADD PRIMARY KEY (org_id, id, created_at);
CREATE INDEX audit_events_org_seq ON arx.audit_events (org_id, seq);
CREATE INDEX audit_events_agent_events ON arx.audit_events (agent_id, seq);
-- The session read: an agent's newest decisions by time (ordered across
-- months, newest month first), agent_seq breaking ties.
CREATE INDEX audit_events_agent_time ON arx.audit_events (org_id, agent_id, created_at, agent_seq)
    WHERE kind = 'decision' AND agent_seq IS NOT NULL;
CREATE INDEX audit_events_agent_targets ON arx.audit_events (org_id, agent_id, created_at)
    WHERE kind = 'decision' AND targets IS NOT NULL AND operation_kind <> 'read';
CREATE INDEX audit_events_created_brin ON arx.audit_events USING brin (created_at)
    WITH (autosummarize = on);
CREATE INDEX audit_events_idempotency ON arx.audit_events (org_id, agent_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX audit_events_result_of ON arx.audit_events (org_id, decision_id)
    WHERE kind = 'result';
CREATE INDEX audit_events_seal_order ON arx.audit_events (txid, seq);

ALTER TABLE arx.audit_events
    ADD CONSTRAINT audit_events_approval FOREIGN KEY (org_id, approval_id)
        REFERENCES arx.approval_requests (org_id, id),
    ADD CONSTRAINT audit_events_org_id_agent_id_fkey FOREIGN KEY (org_id, agent_id)
        REFERENCES arx.agents (org_id, id),
    ADD CONSTRAINT audit_events_org_id_fkey FOREIGN KEY (org_id) REFERENCES arx.orgs (id);

CREATE OR REPLACE FUNCTION arx.stamp_audit_event() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- The row is already in its month's partition, chosen by created_at's
    -- default: keep it, but only if it is the clock's, taken while this
    -- statement ran (a lock wait between the default and here is fine).
    IF NEW.created_at > clock_timestamp() OR NEW.created_at < statement_timestamp() THEN
        RAISE EXCEPTION 'arx.audit_events: created_at is the database''s clock, not the writer''s'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    NEW.seq := nextval('arx.audit_events_seq'::regclass);
    NEW.txid := pg_current_xact_id();
    -- A reused id fails here (unique_violation), whoever writes it.
    INSERT INTO arx.audit_event_ids (org_id, id) VALUES (NEW.org_id, NEW.id);
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON arx.audit_events
    FOR EACH ROW EXECUTE FUNCTION arx.reject_audit_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON arx.audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION arx.reject_audit_change();
CREATE TRIGGER audit_events_stamp BEFORE INSERT ON arx.audit_events
    FOR EACH ROW EXECUTE FUNCTION arx.stamp_audit_event();
ALTER TABLE arx.audit_events
    ENABLE ALWAYS TRIGGER audit_events_no_update_delete,
    ENABLE ALWAYS TRIGGER audit_events_no_truncate,
    ENABLE ALWAYS TRIGGER audit_events_stamp;

ALTER TABLE arx.audit_events ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
-- audit.retention is the owner's word that events left (verify trusts it):
-- no role the API uses may write one.
CREATE POLICY tenant_isolation ON arx.audit_events TO arx_app, arx_control
    USING (org_id = (SELECT NULLIF(current_setting('arx.org_id', true), '')::uuid))
    WITH CHECK (org_id = (SELECT NULLIF(current_setting('arx.org_id', true), '')::uuid)
                AND action IS DISTINCT FROM 'audit.retention');
CREATE POLICY expiry_record ON arx.audit_events FOR INSERT TO arx_expiry
    WITH CHECK (kind = 'admin' AND action = 'approval.expired');
CREATE POLICY notify_worker ON arx.audit_events FOR SELECT TO arx_notify USING (true);
CREATE POLICY sealer ON arx.audit_events FOR SELECT TO arx_sealer USING (true);
-- Every column but the three the stamp trigger owns (seq, created_at,
-- txid): the API's roles cannot name them, so cannot pick an event's time
-- (or month) at all; the trigger's own check guards the owner's writes.
GRANT SELECT ON arx.audit_events TO arx_app, arx_control;
GRANT INSERT (id, org_id, kind, agent_id, decision_id, connector, operation, operation_kind,
    params, verdict, risk_score, policy_id, reasons, bundle_revisions, outcome, result,
    error, action, details, actor, request_id, agent_seq, targets, tally_read, tally_write,
    tally_containment, tally_destructive, tally_denied, idempotency_key, approval_id,
    policy_input, client_request_id) ON arx.audit_events TO arx_app, arx_control, arx_expiry;
GRANT SELECT ON arx.audit_events TO arx_notify, arx_sealer;

-- The compare-and-swap on the agent's head: the row moves from
-- p_expected_seq to the next only if nobody moved it first. A concurrent
-- writer waits for the first's commit, then finds the head moved and
-- records nothing (agent_seq NULL): the caller reads the session again.
-- It also answers where the decision stands (its created_at and seq):
-- record_result finds it with them, in its one month, in one index probe.
DROP FUNCTION arx.record_decision(jsonb, bigint, bigint[], jsonb, json);
CREATE FUNCTION arx.record_decision(p_event jsonb, p_expected_seq bigint,
    p_prior bigint[], p_approval jsonb, p_query json DEFAULT NULL,
    OUT agent_seq bigint, OUT approval_expires_at timestamptz, OUT decided_at timestamptz,
    OUT decision_seq bigint)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off SET enable_bitmapscan = off AS $$
#variable_conflict use_column
DECLARE
    e arx.audit_events := jsonb_populate_record(NULL::arx.audit_events, p_event);
    t bigint[] := ARRAY[
        p_prior[1] + (e.operation_kind = 'read')::int,
        p_prior[2] + (e.operation_kind = 'write')::int,
        p_prior[3] + (e.operation_kind = 'containment')::int,
        p_prior[4] + (e.operation_kind = 'destructive')::int,
        p_prior[5] + (e.verdict = 'DENY')::int];
    ttl double precision;
BEGIN
    PERFORM arx.enter_org(e.org_id);
    IF p_expected_seq = 0 THEN
        INSERT INTO arx.agent_heads AS h (org_id, agent_id, head_seq, tally_read, tally_write,
            tally_containment, tally_destructive, tally_denied)
        VALUES (e.org_id, e.agent_id, 1, t[1], t[2], t[3], t[4], t[5])
        ON CONFLICT (org_id, agent_id) DO NOTHING;
    ELSE
        UPDATE arx.agent_heads h
           SET head_seq = p_expected_seq + 1, tally_read = t[1], tally_write = t[2],
               tally_containment = t[3], tally_destructive = t[4], tally_denied = t[5]
         WHERE h.org_id = e.org_id AND h.agent_id = e.agent_id AND h.head_seq = p_expected_seq;
    END IF;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    INSERT INTO arx.audit_events AS a (id, org_id, kind, agent_id, connector, operation,
        operation_kind, params, targets, verdict, risk_score, policy_id, reasons,
        bundle_revisions, request_id, client_request_id, idempotency_key, approval_id,
        policy_input, agent_seq, tally_read, tally_write, tally_containment, tally_destructive,
        tally_denied)
    VALUES (e.id, e.org_id, 'decision', e.agent_id, e.connector, e.operation,
        e.operation_kind, e.params, e.targets, e.verdict, e.risk_score, e.policy_id, e.reasons,
        e.bundle_revisions, e.request_id, e.client_request_id, e.idempotency_key, e.approval_id,
        p_query -> 'input', p_expected_seq + 1, t[1], t[2], t[3], t[4], t[5])
    RETURNING a.agent_seq, a.created_at, a.seq INTO agent_seq, decided_at, decision_seq;

    IF p_approval IS NOT NULL THEN
        ttl := coalesce(
            (p_approval ->> 'ttl_seconds')::double precision,
            (SELECT o.approval_ttl_seconds FROM arx.orgs o WHERE o.id = e.org_id),
            (p_approval ->> 'default_ttl_seconds')::double precision);
        INSERT INTO arx.approval_requests (id, org_id, event_id, agent_id, connector, operation,
            params, request_hash, approvals_required, expires_at)
        VALUES ((p_approval ->> 'id')::uuid, e.org_id, e.id, e.agent_id, e.connector,
            e.operation, e.params, decode(p_approval ->> 'request_hash', 'hex'),
            coalesce((p_approval ->> 'approvals_required')::integer, 1),
            now() + make_interval(secs => ttl))
        RETURNING expires_at INTO approval_expires_at;
    END IF;
END
$$;

REVOKE ALL ON FUNCTION arx.record_decision(jsonb, bigint, bigint[], jsonb, json) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.record_decision(jsonb, bigint, bigint[], jsonb, json) TO arx_app;

-- A result names its decision, which must exist (the foreign key did this),
-- and a known result id is a no-op (the spool may replay one already
-- stored). The event carries where its decision stands (decided_at, its
-- created_at, and decision_seq; an older spooled one may not): the decision
-- is then one probe in one month, whatever the planner knows of the month
-- (with every column of two indexes given, neither can walk the org's
-- events). A stored result is found by its id in arx.audit_event_ids,
-- under a lock on the id: two replays of one result do not both find it
-- absent.
--
-- Generic plans, always (here, in record_decision and execute_context):
-- the plan cache compares a generic plan (every month in it, pruned when it
-- runs) with custom ones (pruned when planned, so they look cheaper) and
-- kept planning these probes on every call, 0.11 ms a result (measured,
-- 2000 calls). A generic plan is made once a connection (again after an
-- ANALYZE), maybe while the tables are small: every statement here is an
-- exact index probe, so sequential and bitmap scans are off. A plan made
-- on a small arx.audit_event_ids read all of it, on every call, once it
-- had grown (the flat-cost test caught it: 1038 rows a result at 500).
CREATE OR REPLACE FUNCTION arx.record_result(p_event jsonb) RETURNS void
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off SET enable_bitmapscan = off AS $$
DECLARE
    e arx.audit_events := jsonb_populate_record(NULL::arx.audit_events, p_event);
    decided timestamptz := (p_event ->> 'decided_at')::timestamptz;
    decided_seq bigint := (p_event ->> 'decision_seq')::bigint;
BEGIN
    PERFORM arx.enter_org(e.org_id);
    IF decided IS NOT NULL AND decided_seq IS NOT NULL THEN
        PERFORM FROM arx.audit_events d
          WHERE d.org_id = e.org_id AND d.id = e.decision_id AND d.created_at = decided
            AND d.seq = decided_seq AND d.kind = 'decision';
    ELSE
        PERFORM FROM arx.audit_events d
          WHERE d.org_id = e.org_id AND d.id = e.decision_id AND d.kind = 'decision';
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'arx.record_result: no decision % in this org', e.decision_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    -- Stored already: a replay. Two replays at once (processes sharing a
    -- spool): the lock makes the second wait, then find the first's.
    PERFORM pg_advisory_xact_lock(hashtextextended(e.id::text, 0));
    PERFORM FROM arx.audit_event_ids i WHERE i.org_id = e.org_id AND i.id = e.id;
    IF FOUND THEN
        RETURN;
    END IF;
    INSERT INTO arx.audit_events (id, org_id, kind, agent_id, decision_id, connector, operation,
        outcome, result, error, request_id, client_request_id)
    VALUES (e.id, e.org_id, 'result', e.agent_id, e.decision_id, e.connector, e.operation,
        e.outcome, e.result, e.error, e.request_id, e.client_request_id);
END
$$;

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
RESET ROLE;
ALTER FUNCTION arx.unsealed_events(integer) OWNER TO arx_sealer;
REVOKE ALL ON FUNCTION arx.unsealed_events(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.unsealed_events(integer) TO arx_control;
SET ROLE arx_owner;

-- The head comes from agent_heads (one row); the recent decisions by time.
-- Sequential scans off too (0017 turned bitmap scans off, for the same
-- reason): a month's partition is small next to the old table, and a plan
-- made from its statistics read the whole month to find the agent's 200
-- newest targeted writes of the hour, on every call.
-- Generic plans, always (see record_result): with a million events in
-- past months the plan cache chose custom plans, planning every statement
-- over every month on every call: 0.66 ms a call, 0.21 ms with generic
-- plans (measured with bench/audit_scale.py's trail).
CREATE OR REPLACE FUNCTION arx.execute_context(p_org uuid, p_agent uuid, p_connector text, p_recent integer, OUT credential_id uuid, OUT credential_version integer, OUT base_url text, OUT kek_id text, OUT wrapped_dek bytea, OUT nonce bytea, OUT ciphertext bytea, OUT head_seq bigint, OUT head_tallies bigint[], OUT session text)
 RETURNS record
 LANGUAGE plpgsql
 SET enable_bitmapscan TO 'off'
 SET enable_seqscan TO 'off'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
#variable_conflict use_column
DECLARE
    t_now timestamptz := now();
    head record;
    base record;
    opened record;
    spread record;
    recent json;
    windows json[] := '{}';
    width interval;
BEGIN
    PERFORM arx.enter_org(p_org);

    SELECT c.id, c.version, c.base_url, c.kek_id, c.wrapped_dek, c.nonce, c.ciphertext
      INTO credential_id, credential_version, base_url, kek_id, wrapped_dek, nonce, ciphertext
      FROM arx.credentials c
     WHERE c.org_id = p_org AND c.connector = p_connector
     ORDER BY c.version DESC LIMIT 1;

    SELECT h.head_seq AS agent_seq, h.tally_read, h.tally_write, h.tally_containment,
           h.tally_destructive, h.tally_denied
      INTO head
      FROM arx.agent_heads h
     WHERE h.org_id = p_org AND h.agent_id = p_agent;
    IF NOT FOUND THEN
        head_seq := 0;
        head_tallies := '{0,0,0,0,0}';
        session := '{"recent":[],"windows":{"1m":' || arx.empty_window() || ',"5m":'
            || arx.empty_window() || ',"60m":' || arx.empty_window() || '}}';
        RETURN;
    END IF;
    head_seq := head.agent_seq;
    head_tallies := ARRAY[head.tally_read, head.tally_write, head.tally_containment,
                          head.tally_destructive, head.tally_denied];

    -- By time, not by agent_seq: time is the partition key, so the newest
    -- month is read first, and an older one only while the p_recent are not
    -- all found, instead of every month merged. The two orders agree: an
    -- agent's decision is stamped after the commit of the one it follows
    -- (the head's compare-and-swap waits for that commit).
    SELECT coalesce(json_agg(json_build_object(
               'connector', r.connector, 'operation', r.operation, 'kind', r.operation_kind,
               'verdict', r.verdict,
               'at_ns', (extract(epoch FROM r.created_at) * 1000000)::bigint * 1000)
               ORDER BY r.agent_seq DESC), '[]')
      INTO recent
      FROM (SELECT agent_seq, connector, operation, operation_kind, verdict, created_at
              FROM arx.audit_events
             WHERE org_id = p_org AND agent_id = p_agent AND kind = 'decision'
               AND agent_seq IS NOT NULL
             ORDER BY created_at DESC, agent_seq DESC LIMIT p_recent) r;

    -- The floor after the first read of the trail: a retention that was
    -- dropping months had the trail locked, and its new floor is seen now.
    SELECT h.floor_seq, h.floor_tallies INTO base
      FROM arx.agent_heads h WHERE h.org_id = p_org AND h.agent_id = p_agent;

    -- Distinct targets of non-read actions, over at most the 200 newest such
    -- actions of the hour: the cost of a call stays bounded however busy the
    -- agent, and an agent past that many writes is past any sane threshold.
    SELECT count(DISTINCT t) FILTER (WHERE a.created_at >= t_now - interval '1 minute') AS m1,
           count(DISTINCT t) FILTER (WHERE a.created_at >= t_now - interval '5 minutes') AS m5,
           count(DISTINCT t) AS m60
      INTO spread
      FROM (SELECT e.targets, e.created_at FROM arx.audit_events e
             WHERE e.org_id = p_org AND e.agent_id = p_agent AND e.kind = 'decision'
               AND e.targets IS NOT NULL AND e.operation_kind <> 'read'
               AND e.created_at >= t_now - interval '60 minutes'
             ORDER BY e.created_at DESC LIMIT 200) a,
           unnest(a.targets) t;

    -- Each window's counts: the newest tallies minus those of the agent's last
    -- decision stamped before the window opened (zeros when there is none).
    FOREACH width IN ARRAY ARRAY[interval '1 minute', interval '5 minutes',
                                 interval '60 minutes'] LOOP
        -- None before the window: the agent began in it, or retention
        -- dropped what came before (the head's floor says how far).
        SELECT coalesce(max(e.agent_seq), base.floor_seq) AS agent_seq,
               coalesce(max(e.tally_read), base.floor_tallies[1]) AS tally_read,
               coalesce(max(e.tally_write), base.floor_tallies[2]) AS tally_write,
               coalesce(max(e.tally_containment), base.floor_tallies[3]) AS tally_containment,
               coalesce(max(e.tally_destructive), base.floor_tallies[4]) AS tally_destructive,
               coalesce(max(e.tally_denied), base.floor_tallies[5]) AS tally_denied
          INTO opened
          FROM (SELECT agent_seq, tally_read, tally_write, tally_containment,
                       tally_destructive, tally_denied
                  FROM arx.audit_events
                 WHERE org_id = p_org AND agent_id = p_agent AND kind = 'decision'
                   AND created_at < t_now - width AND agent_seq IS NOT NULL
                 ORDER BY created_at DESC LIMIT 1) e;
        windows := windows || json_build_object(
            'actions', head.agent_seq - opened.agent_seq,
            'non_read', (head.agent_seq - opened.agent_seq) - (head.tally_read - opened.tally_read),
            'denied', head.tally_denied - opened.tally_denied,
            'targets', CASE width WHEN interval '1 minute' THEN spread.m1
                                  WHEN interval '5 minutes' THEN spread.m5
                                  ELSE spread.m60 END,
            'kinds', json_build_object(
                'read', head.tally_read - opened.tally_read,
                'write', head.tally_write - opened.tally_write,
                'containment', head.tally_containment - opened.tally_containment,
                'destructive', head.tally_destructive - opened.tally_destructive));
    END LOOP;

    -- rego/arx/validation checks this exact shape (windows_pattern): change
    -- both together, and rego/schema/input.json.
    session := json_build_object(
        'recent', recent,
        'windows', json_build_object('1m', windows[1], '5m', windows[2], '60m', windows[3]))::text;
END
$function$
;

-- Retention: drop every month that ends on or before p_before (a first of
-- a month, not after this month's). The only way events leave the trail.
--
-- Superuser only, in effect: no role ARX logs in as may execute it, and
-- row_security = off makes a caller whom row-level security would filter
-- (even the tables' owner: it is forced) fail instead of judging a part of
-- the month. Refuses, dropping nothing, while any event of
-- such a month is not chained, or is chained past the org's last signed
-- checkpoint: what leaves must already be signed for. Per org it appends an
-- admin event, action audit.retention, naming the month and the org_seq
-- positions removed (as ranges: commits overtake each other at a month's
-- edges, so a month is not one range); the sealer chains it and the next
-- checkpoint signs it. The links of the removed events stay in
-- arx.audit_chain, so `arx audit verify` walks across the gap with their
-- stored hashes, and accepts a missing event only at a position a chained
-- retention event names.
CREATE FUNCTION arx.drop_audit_months(p_before date, p_actor text)
RETURNS TABLE (partition text, org_id uuid, events bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET row_security = off
SET lock_timeout = '2s' AS $$
#variable_conflict use_column
DECLARE
    month record;
    org record;
    unsealed bigint;
    carried jsonb;
    doomed text[] := '{}';
BEGIN
    IF p_before IS NULL OR p_before <> date_trunc('month', p_before)::date THEN
        RAISE EXCEPTION 'retention: % is not the first day of a month', p_before
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_before > date_trunc('month', now() AT TIME ZONE 'UTC')::date THEN
        RAISE EXCEPTION 'retention: the current month and later stay'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR month IN
        SELECT c.relname AS name, to_date(substr(c.relname, 15), 'YYYY"m"MM') AS first
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'arx.audit_events'::regclass
           AND c.relname ~ '^audit_events_y[0-9]{4}m[0-9]{2}$'
           AND to_date(substr(c.relname, 15), 'YYYY"m"MM') < p_before
         ORDER BY c.relname
    LOOP
        -- Nothing is written to a past month; the lock makes sure of it.
        EXECUTE format('LOCK TABLE arx.%I IN SHARE MODE', month.name);
        EXECUTE format('SELECT count(*) FROM arx.%I e WHERE NOT EXISTS (SELECT FROM'
            ' arx.audit_chain c WHERE c.org_id = e.org_id AND c.event_id = e.id)', month.name)
            INTO unsealed;
        IF unsealed > 0 THEN
            RAISE EXCEPTION 'retention: % holds % events not yet sealed', month.name, unsealed
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'wait for the sealer (is the API running?)';
        END IF;
        FOR org IN EXECUTE format(
            'SELECT s.org_id, sum(s.hi - s.lo + 1) AS events, max(s.hi) AS last,'
            '  jsonb_agg(jsonb_build_array(s.lo, s.hi) ORDER BY s.lo) AS ranges'
            '  FROM (SELECT r.org_id, min(r.org_seq) AS lo, max(r.org_seq) AS hi'
            '          FROM (SELECT c.org_id, c.org_seq, c.org_seq - row_number() OVER'
            '                  (PARTITION BY c.org_id ORDER BY c.org_seq) AS island'
            '                  FROM arx.%I e JOIN arx.audit_chain c'
            '                    ON c.org_id = e.org_id AND c.event_id = e.id) r'
            '         GROUP BY r.org_id, r.island) s'
            ' GROUP BY s.org_id ORDER BY s.org_id', month.name)
        LOOP
            IF org.last > coalesce((SELECT max(k.org_seq) FROM arx.audit_checkpoints k
                                     WHERE k.org_id = org.org_id), 0) THEN
                RAISE EXCEPTION 'retention: % holds events of org % past its last signed checkpoint',
                    month.name, org.org_id
                    USING ERRCODE = 'object_not_in_prerequisite_state',
                          HINT = 'wait for the next checkpoint';
            END IF;
            -- Row-level security back on for the insert: the stamp trigger
            -- records the id as the tables' owner, through its policy.
            PERFORM set_config('row_security', 'on', true);
            -- A retention event of this month leaves with it: what it said
            -- was removed is said again, or verify would lose it.
            EXECUTE format('SELECT coalesce(jsonb_agg(r ORDER BY (r ->> 0)::bigint), ''[]'')'
                ' FROM arx.%I e, jsonb_array_elements(e.details -> ''org_seq'') r'
                ' WHERE e.org_id = $1 AND e.kind = ''admin'' AND e.action = ''audit.retention''',
                month.name) INTO carried USING org.org_id;
            INSERT INTO arx.audit_events (id, org_id, kind, action, actor, details)
            VALUES (gen_random_uuid(), org.org_id, 'admin', 'audit.retention', p_actor,
                    jsonb_build_object(
                        'partition', month.name,
                        'month', to_char(month.first, 'YYYY-MM'),
                        'events', org.events,
                        'org_seq', carried || org.ranges));
            PERFORM set_config('row_security', 'off', true);
            partition := month.name;
            org_id := org.org_id;
            events := org.events;
            RETURN NEXT;
        END LOOP;
        -- Each agent's last decision of the month becomes its floor (months
        -- go oldest first): its session windows keep counting from there.
        EXECUTE format(
            'UPDATE arx.agent_heads h SET floor_seq = d.agent_seq, floor_tallies = ARRAY['
            '  d.tally_read, d.tally_write, d.tally_containment, d.tally_destructive,'
            '  d.tally_denied]'
            '  FROM (SELECT DISTINCT ON (org_id, agent_id) org_id, agent_id, agent_seq,'
            '          tally_read, tally_write, tally_containment, tally_destructive, tally_denied'
            '          FROM arx.%I WHERE kind = ''decision'' AND agent_seq IS NOT NULL'
            '         ORDER BY org_id, agent_id, agent_seq DESC) d'
            ' WHERE h.org_id = d.org_id AND h.agent_id = d.agent_id AND d.agent_seq > h.floor_seq',
            month.name);
        doomed := doomed || month.name;
    END LOOP;
    -- Last: dropping a partition locks the whole trail until commit. A long
    -- reader (an export, a verify) holds that lock off, and every execute
    -- would queue behind the waiting drop: it gives up after lock_timeout
    -- instead (SQLSTATE 55P03, nothing dropped), for the operator to retry.
    FOR i IN 1..coalesce(array_length(doomed, 1), 0) LOOP
        EXECUTE format('DROP TABLE arx.%I', doomed[i]);
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION arx.drop_audit_months(date, text) FROM PUBLIC;

RESET ROLE;
