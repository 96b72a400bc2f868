-- Nothing silently missing (issue 9, point 3): the client's request id beside
-- ARX's own, refused attempts recorded even when the key is bad, and what a
-- reader needs to tell a decision whose result never arrived.
--
--   arx.audit_events.client_request_id  the caller's well-formed X-Request-ID,
--                                       kept beside request_id (always ARX's
--                                       own, fresh per request), never in its
--                                       place.
--   audit_events_result_of              finds a decision's result: a read shows
--                                       a PERMIT decision without one, past
--                                       its deadline, as outcome_unknown
--                                       (arx.audit.repo; nothing is updated).
--   arx.record_decision, arx.record_result, arx.record_refusal
--                                       write client_request_id too (the only
--                                       change).
--   arx.key_owner                       a key id's org, agent and state,
--                                       whatever the state (arx_auth).
--   arx.record_key_refusal              records a refused key in the org of
--                                       the key it names.
--
-- Guarantees:
-- * request_id stays ARX's: a client cannot make two requests share one,
--   nor pass its request off as another's; its own id is a separate column
--   with the same shape rule as the header (1-64 of A-Za-z0-9._-), so an
--   id that could break a log line or a CSV export cannot be stored.
-- * A bad key's refusal lands in the org of the key id it presented (the id
--   is the public half of a key; the secret never reaches the database), and
--   only there. arx_app could already resolve a live key id to its org and
--   agent (arx.resolve_api_key); arx.key_owner adds a revoked or expired
--   key's org, agent and state, and nothing else (no hash, no name). An id
--   that names no key writes nothing (the API logs it instead).
-- * Append-only as before: every function here only INSERTs.
-- * Rolling upgrade: the new arguments default to NULL, so an API process
--   still calling the old forms keeps recording (without a client id).
SET ROLE arx_owner;

-- No default: adding the column rewrites nothing. NOT VALID: existing rows
-- are all NULL there, and validating would scan the whole trail under this
-- migration's lock; new rows are checked.
ALTER TABLE arx.audit_events
    ADD COLUMN client_request_id text,
    ADD CONSTRAINT audit_events_client_request_id
        CHECK (client_request_id ~ '^[A-Za-z0-9._-]{1,64}$') NOT VALID;

-- A decision's result (a probe per listed PERMIT decision); results only, so
-- the hot path's decision inserts do not pay for it.
CREATE INDEX audit_events_result_of ON arx.audit_events (org_id, decision_id)
    WHERE kind = 'result';

-- As in 0014, with client_request_id (the only change).
CREATE OR REPLACE FUNCTION arx.record_decision(p_event jsonb, p_expected_seq bigint,
    p_prior bigint[], p_approval jsonb, p_query json DEFAULT NULL, OUT agent_seq bigint,
    OUT approval_expires_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    e arx.audit_events := jsonb_populate_record(NULL::arx.audit_events, p_event);
    ttl double precision;
BEGIN
    PERFORM arx.enter_org(e.org_id);
    INSERT INTO arx.audit_events AS a (id, org_id, kind, agent_id, connector, operation,
        operation_kind, params, targets, verdict, risk_score, policy_id, reasons,
        bundle_revisions, request_id, client_request_id, idempotency_key, approval_id,
        policy_input, agent_seq, tally_read, tally_write, tally_containment, tally_destructive,
        tally_denied)
    VALUES (e.id, e.org_id, 'decision', e.agent_id, e.connector, e.operation,
        e.operation_kind, e.params, e.targets, e.verdict, e.risk_score, e.policy_id, e.reasons,
        e.bundle_revisions, e.request_id, e.client_request_id, e.idempotency_key, e.approval_id,
        p_query -> 'input',
        p_expected_seq + 1,
        p_prior[1] + (e.operation_kind = 'read')::int,
        p_prior[2] + (e.operation_kind = 'write')::int,
        p_prior[3] + (e.operation_kind = 'containment')::int,
        p_prior[4] + (e.operation_kind = 'destructive')::int,
        p_prior[5] + (e.verdict = 'DENY')::int)
    ON CONFLICT (org_id, agent_id, agent_seq) WHERE kind = 'decision' DO NOTHING
    RETURNING a.agent_seq INTO agent_seq;

    IF agent_seq IS NOT NULL AND p_approval IS NOT NULL THEN
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

-- As in 0003, with client_request_id (the only change). A spooled result
-- written before this migration has none: NULL.
CREATE OR REPLACE FUNCTION arx.record_result(p_event jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    e arx.audit_events := jsonb_populate_record(NULL::arx.audit_events, p_event);
BEGIN
    PERFORM arx.enter_org(e.org_id);
    INSERT INTO arx.audit_events (id, org_id, kind, agent_id, decision_id, connector, operation,
        outcome, result, error, request_id, client_request_id)
    VALUES (e.id, e.org_id, 'result', e.agent_id, e.decision_id, e.connector, e.operation,
        e.outcome, e.result, e.error, e.request_id, e.client_request_id)
    ON CONFLICT (org_id, id) DO NOTHING;
END
$$;

-- A new argument cannot be added in place: the old form goes (with its
-- grants), so that a seven-argument call is not ambiguous.
DROP FUNCTION arx.record_refusal(uuid, uuid, uuid, text, jsonb, text, text);
CREATE FUNCTION arx.record_refusal(p_id uuid, p_org uuid, p_agent uuid, p_action text,
    p_details jsonb, p_actor text, p_request_id text, p_client_request_id text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM arx.enter_org(p_org);
    INSERT INTO arx.audit_events (id, org_id, kind, agent_id, action, details, actor, request_id,
        client_request_id)
    VALUES (p_id, p_org, 'refusal', p_agent, p_action, p_details, p_actor, p_request_id,
        p_client_request_id);
END
$$;

-- A refused key's record: the org and agent of the key id presented, and
-- whatever the key's state (revoked and expired keys included, which
-- arx.resolve_api_key does not return). Runs as arx_auth, which reads keys
-- across orgs and writes nothing.
CREATE FUNCTION arx.key_owner(p_key text, OUT org_id uuid, OUT agent_id uuid, OUT state text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT k.org_id, k.agent_id,
           CASE WHEN k.revoked_at IS NOT NULL THEN 'revoked'
                WHEN k.expires_at IS NOT NULL AND k.expires_at <= now() THEN 'expired'
                ELSE 'active' END
      FROM arx.api_keys k WHERE k.id = p_key
$$;

-- Records a refused key (p_action: the refusal's code) in its key's org, as
-- the caller (row-level security applies: the event is written in the org
-- the key belongs to, which enter_org scopes the transaction to). Returns
-- false, writing nothing, when the id names no key. The details gain the
-- key's id and state: 'active' means the key is valid and the secret
-- presented with it was not its secret.
CREATE FUNCTION arx.record_key_refusal(p_id uuid, p_key text, p_action text, p_details jsonb,
    p_request_id text, p_client_request_id text DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    k record;
BEGIN
    SELECT o.org_id, o.agent_id, o.state INTO k FROM arx.key_owner(p_key) o;
    IF k.org_id IS NULL THEN
        RETURN false;
    END IF;
    PERFORM arx.enter_org(k.org_id);
    INSERT INTO arx.audit_events (id, org_id, kind, agent_id, action, details, actor, request_id,
        client_request_id)
    VALUES (p_id, k.org_id, 'refusal', k.agent_id, p_action,
        coalesce(p_details, '{}'::jsonb)
            || jsonb_build_object('key_id', p_key, 'key_state', k.state),
        -- Not "agent:…": whoever presented the id did not prove to be the agent.
        'key:' || p_key, p_request_id, p_client_request_id);
    RETURN true;
END
$$;

RESET ROLE;

ALTER FUNCTION arx.key_owner(text) OWNER TO arx_auth;
REVOKE ALL ON FUNCTION arx.key_owner(text),
    arx.record_refusal(uuid, uuid, uuid, text, jsonb, text, text, text),
    arx.record_key_refusal(uuid, text, text, jsonb, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.key_owner(text),
    arx.record_refusal(uuid, uuid, uuid, text, jsonb, text, text, text),
    arx.record_key_refusal(uuid, text, text, jsonb, text, text) TO arx_app;
