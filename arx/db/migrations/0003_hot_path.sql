-- The execute hot path: one round trip per step, a session summary that
-- PostgreSQL computes, and one agent's decisions serialised without a lock
-- held across the policy call.
--
--   arx.execute_context  reads what a decision needs: the connector's
--                        credential locator and the agent's session summary.
--   arx.record_decision  appends the decision event (and, for ESCALATE, its
--                        approval request) only if the agent's session is
--                        still the one the decision was made on.
--   arx.record_result    appends a result event (idempotent: spool replays).
--
-- Each function sets arx.org_id for its own (single-statement) transaction
-- and runs as the caller: row-level security applies exactly as before.
SET ROLE arx_owner;

-- Decision events number each agent's decisions 1, 2, 3 … (agent_seq) and
-- carry running tallies of that agent's decisions up to and including this
-- one. A count over any time window is then the difference between the
-- newest tallies and those of the last decision before the window: two index
-- probes, however busy the agent was. Decisions recorded before this
-- migration have no agent_seq and are not counted.
ALTER TABLE arx.audit_events
    ADD COLUMN agent_seq          bigint,
    ADD COLUMN targets            text[],
    ADD COLUMN tally_read         bigint,
    ADD COLUMN tally_write        bigint,
    ADD COLUMN tally_containment  bigint,
    ADD COLUMN tally_destructive  bigint,
    ADD COLUMN tally_denied       bigint,
    -- The Idempotency-Key the decision was made under (arx.idempotency).
    ADD COLUMN idempotency_key    text,
    ADD CONSTRAINT audit_events_agent_seq CHECK (
        agent_seq IS NULL OR (
            kind = 'decision' AND agent_seq > 0
            AND tally_read IS NOT NULL AND tally_write IS NOT NULL
            AND tally_containment IS NOT NULL AND tally_destructive IS NOT NULL
            AND tally_denied IS NOT NULL));

-- The same guarantee as before (order and time are the database's), without
-- a catalog lookup per row to find the sequence.
CREATE OR REPLACE FUNCTION arx.stamp_audit_event() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW.seq := nextval('arx.audit_events_seq_seq'::regclass);
    NEW.created_at := clock_timestamp();
    RETURN NEW;
END
$$;

-- Scopes the current transaction to one org, as org_transaction does in
-- Python, for the functions below (each is its caller's whole transaction on
-- the execute path). Called inside a transaction already scoped to another
-- org, it refuses rather than switch the rest of that transaction silently.
CREATE FUNCTION arx.enter_org(p_org uuid) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('arx.org_id', true), '') NOT IN ('', p_org::text) THEN
        RAISE EXCEPTION 'this transaction is scoped to another org'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('arx.org_id', p_org::text, true);
END
$$;

-- 'unknown': the request was sent to the tool and no answer came back.
ALTER TABLE arx.audit_events DROP CONSTRAINT audit_events_outcome_check;
ALTER TABLE arx.audit_events ADD CONSTRAINT audit_events_outcome_check
    CHECK (outcome IN ('success', 'error', 'unknown'));

-- The key is (org_id, id), the pair every reference uses. Besides saving an
-- index per row, this leaves exactly one index that fits a reference check:
-- with (id) and (org_id, id) both there, a plan cached while the table was
-- still empty (the foreign key checks' plans are) chose the (org_id, seq)
-- index and read the whole org's history for every result written.
ALTER TABLE arx.audit_events DROP CONSTRAINT audit_events_org_id_decision_id_fkey;
ALTER TABLE arx.approval_requests DROP CONSTRAINT approval_requests_org_id_event_id_fkey;
ALTER TABLE arx.audit_events DROP CONSTRAINT audit_events_pkey;
ALTER TABLE arx.audit_events DROP CONSTRAINT audit_events_org_id_id_key;
ALTER TABLE arx.audit_events ADD PRIMARY KEY (org_id, id);
ALTER TABLE arx.audit_events ADD CONSTRAINT audit_events_org_id_decision_id_fkey
    FOREIGN KEY (org_id, decision_id) REFERENCES arx.audit_events (org_id, id);
ALTER TABLE arx.approval_requests ADD CONSTRAINT approval_requests_org_id_event_id_fkey
    FOREIGN KEY (org_id, event_id) REFERENCES arx.audit_events (org_id, id);

DROP INDEX arx.audit_events_agent_recent;
-- The compare-and-swap: two decisions of one agent cannot share a number, so
-- of two calls decided on the same session only the first is recorded.
CREATE UNIQUE INDEX audit_events_agent_seq ON arx.audit_events (org_id, agent_id, agent_seq)
    WHERE kind = 'decision';
-- The last decision before a window starts.
CREATE INDEX audit_events_agent_time ON arx.audit_events (org_id, agent_id, created_at)
    WHERE kind = 'decision' AND agent_seq IS NOT NULL;
-- Distinct targets of the agent's recent non-read actions.
CREATE INDEX audit_events_agent_targets ON arx.audit_events (org_id, agent_id, created_at)
    WHERE kind = 'decision' AND targets IS NOT NULL AND operation_kind <> 'read';
CREATE INDEX audit_events_idempotency ON arx.audit_events (org_id, agent_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- head_seq and head_tallies: the agent's latest decision number and its
-- tallies (read, write, containment, destructive, denied); the decision made
-- on this session passes them back to arx.record_decision.
CREATE FUNCTION arx.execute_context(p_org uuid, p_agent uuid, p_connector text, p_recent integer,
    OUT credential_id uuid, OUT credential_version integer, OUT base_url text,
    OUT kek_id text, OUT wrapped_dek bytea, OUT nonce bytea, OUT ciphertext bytea,
    OUT head_seq bigint, OUT head_tallies bigint[], OUT session text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    t_now timestamptz := now();
    head record;
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

    SELECT e.agent_seq, e.tally_read, e.tally_write, e.tally_containment,
           e.tally_destructive, e.tally_denied
      INTO head
      FROM arx.audit_events e
     WHERE e.org_id = p_org AND e.agent_id = p_agent AND e.kind = 'decision'
       AND e.agent_seq IS NOT NULL
     ORDER BY e.agent_seq DESC LIMIT 1;
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
             ORDER BY agent_seq DESC LIMIT p_recent) r;

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
        SELECT coalesce(max(e.agent_seq), 0) AS agent_seq,
               coalesce(max(e.tally_read), 0) AS tally_read,
               coalesce(max(e.tally_write), 0) AS tally_write,
               coalesce(max(e.tally_containment), 0) AS tally_containment,
               coalesce(max(e.tally_destructive), 0) AS tally_destructive,
               coalesce(max(e.tally_denied), 0) AS tally_denied
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
$$;

CREATE FUNCTION arx.empty_window() RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT '{"actions":0,"non_read":0,"denied":0,"targets":0,'
        || '"kinds":{"read":0,"write":0,"containment":0,"destructive":0}}'
$$;

-- p_event: the decision event as JSON (columns of arx.audit_events).
-- p_expected_seq, p_prior: head_seq and head_tallies of the session the
-- decision was made on (arx.execute_context).
-- p_approval: for ESCALATE, {"id", "request_hash" (hex), "ttl_seconds"}.
-- Returns the agent_seq given to the event, or NULL (and writes nothing) when
-- another decision of the agent was recorded after p_expected_seq: the caller
-- reads the session again and decides again. That compare-and-swap is the
-- unique index audit_events_agent_seq; it also makes p_prior the tallies of
-- the decision numbered p_expected_seq, so nothing is looked up here.
CREATE FUNCTION arx.record_decision(p_event jsonb, p_expected_seq bigint, p_prior bigint[],
    p_approval jsonb, OUT agent_seq bigint, OUT approval_expires_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    e arx.audit_events := jsonb_populate_record(NULL::arx.audit_events, p_event);
BEGIN
    PERFORM arx.enter_org(e.org_id);
    INSERT INTO arx.audit_events AS a (id, org_id, kind, agent_id, connector, operation,
        operation_kind, params, targets, verdict, risk_score, policy_id, reasons,
        bundle_revisions, request_id, idempotency_key, agent_seq, tally_read, tally_write,
        tally_containment, tally_destructive, tally_denied)
    VALUES (e.id, e.org_id, 'decision', e.agent_id, e.connector, e.operation,
        e.operation_kind, e.params, e.targets, e.verdict, e.risk_score, e.policy_id, e.reasons,
        e.bundle_revisions, e.request_id, e.idempotency_key, p_expected_seq + 1,
        p_prior[1] + (e.operation_kind = 'read')::int,
        p_prior[2] + (e.operation_kind = 'write')::int,
        p_prior[3] + (e.operation_kind = 'containment')::int,
        p_prior[4] + (e.operation_kind = 'destructive')::int,
        p_prior[5] + (e.verdict = 'DENY')::int)
    ON CONFLICT (org_id, agent_id, agent_seq) WHERE kind = 'decision' DO NOTHING
    RETURNING a.agent_seq INTO agent_seq;

    IF agent_seq IS NOT NULL AND p_approval IS NOT NULL THEN
        INSERT INTO arx.approval_requests (id, org_id, event_id, agent_id, connector, operation,
            params, request_hash, expires_at)
        VALUES ((p_approval ->> 'id')::uuid, e.org_id, e.id, e.agent_id, e.connector,
            e.operation, e.params, decode(p_approval ->> 'request_hash', 'hex'),
            now() + make_interval(secs => (p_approval ->> 'ttl_seconds')::double precision))
        RETURNING expires_at INTO approval_expires_at;
    END IF;
END
$$;

-- p_event: the result event as JSON. Replaying one that is already there (a
-- spooled result whose first write did land) is a no-op.
CREATE FUNCTION arx.record_result(p_event jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    e arx.audit_events := jsonb_populate_record(NULL::arx.audit_events, p_event);
BEGIN
    PERFORM arx.enter_org(e.org_id);
    INSERT INTO arx.audit_events (id, org_id, kind, agent_id, decision_id, connector, operation,
        outcome, result, error, request_id)
    VALUES (e.id, e.org_id, 'result', e.agent_id, e.decision_id, e.connector, e.operation,
        e.outcome, e.result, e.error, e.request_id)
    ON CONFLICT (org_id, id) DO NOTHING;
END
$$;

RESET ROLE;

REVOKE ALL ON FUNCTION arx.enter_org(uuid), arx.execute_context(uuid, uuid, text, integer),
    arx.empty_window(),
    arx.record_decision(jsonb, bigint, bigint[], jsonb), arx.record_result(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.enter_org(uuid), arx.execute_context(uuid, uuid, text, integer),
    arx.empty_window(),
    arx.record_decision(jsonb, bigint, bigint[], jsonb), arx.record_result(jsonb) TO arx_app;

-- Server-side bounds for every session of the app role (the API sets the same
-- per connection from its settings; these cover the CLI and anything else).
ALTER ROLE arx_app SET statement_timeout = '5s';
ALTER ROLE arx_app SET idle_in_transaction_session_timeout = '10s';

-- Idempotency keys in one round trip each (arx.idempotency).
SET ROLE arx_owner;

-- Claims the key for this request, or reports what holds it. A claim left
-- unfinished longer than p_abandoned belongs to a request that died: if it
-- never reached a decision nothing ran and the key is claimed again; if it
-- did, the tool may have acted, and the decision (and its result, if one
-- was recorded) is reported instead of running the operation a second time.
CREATE FUNCTION arx.claim_idempotency_key(p_org uuid, p_agent uuid, p_key text, p_hash bytea,
    p_ttl_seconds double precision, p_abandoned_seconds double precision,
    OUT claimed boolean, OUT request_hash bytea, OUT status_code integer, OUT media_type text,
    OUT response bytea, OUT decision_id uuid, OUT decision_outcome text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    k arx.idempotency_keys;
    first_decision uuid;
BEGIN
    PERFORM arx.enter_org(p_org);
    INSERT INTO arx.idempotency_keys (org_id, agent_id, key, request_hash)
    VALUES (p_org, p_agent, p_key, p_hash)
    ON CONFLICT (org_id, agent_id, key) DO NOTHING;
    IF FOUND THEN
        claimed := true;
        RETURN;
    END IF;
    claimed := false;
    SELECT * INTO k FROM arx.idempotency_keys
     WHERE org_id = p_org AND agent_id = p_agent AND key = p_key FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;  -- released between the two statements: the caller treats it as in flight
    END IF;
    IF k.created_at < now() - make_interval(secs => p_ttl_seconds)
       OR (k.status_code IS NULL AND k.created_at < now() - make_interval(secs => p_abandoned_seconds)
           AND NOT EXISTS (SELECT FROM arx.audit_events e
                            WHERE e.org_id = p_org AND e.agent_id = p_agent
                              AND e.idempotency_key = p_key AND e.kind = 'decision'
                              AND e.created_at >= k.created_at)) THEN
        UPDATE arx.idempotency_keys
           SET request_hash = p_hash, status_code = NULL, media_type = NULL, response = NULL,
               created_at = now(), completed_at = NULL
         WHERE org_id = p_org AND agent_id = p_agent AND key = p_key;
        claimed := true;
        RETURN;
    END IF;
    request_hash := k.request_hash;
    status_code := k.status_code;
    media_type := k.media_type;
    response := k.response;
    IF k.status_code IS NULL AND k.created_at < now() - make_interval(secs => p_abandoned_seconds) THEN
        SELECT e.id INTO first_decision FROM arx.audit_events e
         WHERE e.org_id = p_org AND e.agent_id = p_agent AND e.idempotency_key = p_key
           AND e.kind = 'decision' AND e.created_at >= k.created_at
         ORDER BY e.created_at LIMIT 1;
        SELECT r.outcome INTO decision_outcome FROM arx.audit_events r
         WHERE r.org_id = p_org AND r.decision_id = first_decision AND r.kind = 'result'
         LIMIT 1;
        decision_id := first_decision;
    END IF;
END
$$;

CREATE FUNCTION arx.complete_idempotency_key(p_org uuid, p_agent uuid, p_key text,
    p_status integer, p_media_type text, p_response bytea) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM arx.enter_org(p_org);
    UPDATE arx.idempotency_keys
       SET status_code = p_status, media_type = p_media_type, response = p_response,
           completed_at = now()
     WHERE org_id = p_org AND agent_id = p_agent AND key = p_key;
END
$$;

CREATE FUNCTION arx.release_idempotency_key(p_org uuid, p_agent uuid, p_key text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM arx.enter_org(p_org);
    DELETE FROM arx.idempotency_keys
     WHERE org_id = p_org AND agent_id = p_agent AND key = p_key;
END
$$;

RESET ROLE;

REVOKE ALL ON FUNCTION
    arx.claim_idempotency_key(uuid, uuid, text, bytea, double precision, double precision),
    arx.complete_idempotency_key(uuid, uuid, text, integer, text, bytea),
    arx.release_idempotency_key(uuid, uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    arx.claim_idempotency_key(uuid, uuid, text, bytea, double precision, double precision),
    arx.complete_idempotency_key(uuid, uuid, text, integer, text, bytea),
    arx.release_idempotency_key(uuid, uuid, text) TO arx_app;
