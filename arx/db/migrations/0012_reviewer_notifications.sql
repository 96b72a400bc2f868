-- Reviewers hear about new approval requests in Slack and Microsoft Teams,
-- from a durable queue in PostgreSQL.
--
--   arx.notification_channels  one row per org and channel (slack, teams): how
--                              to reach it, its secrets sealed by the vault
--                              (bot token, webhook URL, signing secret), and
--                              never readable by the agent path.
--   arx.notification_jobs      one row per approval request and channel: the
--                              queue the delivery worker drains, and the
--                              record of each delivery (attempts, last error,
--                              when it was delivered).
--
-- Guarantees:
-- * A committed escalation always has its notifications queued: a trigger on
--   arx.approval_requests inserts one job per configured channel in the same
--   transaction as the request. It costs the hot path one index probe and
--   nothing more when the org has no channel, one insert per channel when it
--   has, and a NOTIFY arx_notifications (sent at commit) that wakes the
--   delivery workers of every API process.
-- * Jobs survive restarts: they are rows. A worker claims due jobs with
--   FOR UPDATE SKIP LOCKED and leases them (next_attempt_at moves past the
--   delivery's whole timeout, the time to record it and a margin), so two
--   processes never deliver the same job at the same time, and a job whose
--   process died is claimed again once its lease runs out. Each claim gets a
--   random claim_token, and only its holder records the outcome: a worker
--   whose lease ran out records nothing, even when a requeue has reset the
--   attempt count since. Delivery is at least once: a process that dies after
--   Slack accepted the message but before recording it sends it again.
-- * The queueing trigger is ENABLE ALWAYS, like ARX's other triggers (0006,
--   0011): it fires under session_replication_role = replica too (a restore,
--   logical replication), so no escalation goes unannounced that way.
-- * A notification never changes an approval: the worker's functions write
--   notification_jobs only.
--
-- Roles:
--   arx_notify NOLOGIN  owns the trigger function and the worker's two
--                       functions (SECURITY DEFINER). It reads channels,
--                       approval requests and what a message shows about
--                       them (the decision's risk and reasons, the agent's
--                       name, the org's slug) across orgs, and writes jobs.
--
-- Why definer functions rather than a role granted the tables: the worker
-- drains every org's queue from one connection, so it must see across orgs.
-- Granting arx_control (or arx_app) a cross-org policy on these tables would
-- let any query of that role read every org's sealed channel secrets and
-- delivery records; through arx.claim_notification_jobs the control plane
-- gets exactly the due jobs it claims, each with what its message needs, and
-- through arx.finish_notification_job it records one outcome of a job it
-- holds. The agent path (arx_app) gets nothing new: the trigger runs as
-- arx_notify, so arx_app can neither read the channels nor touch the queue.
--
-- What that costs: arx.claim_notification_jobs hands arx_control (any of
-- its sessions) the sealed channel secrets and the params of every org's
-- due jobs, across tenants. That is accepted: the control plane holds the
-- vault's key anyway (it seals and opens those secrets for every org), and
-- what it receives is limited to due jobs, each leased to the claimer.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'arx_notify') THEN
        CREATE ROLE arx_notify NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA arx TO arx_notify;

SET ROLE arx_owner;

-- Secrets are sealed like connector credentials (envelope encryption; the
-- associated data binds org, "notify:<channel>" and version), and each
-- change seals them afresh under the next version. What may be shown about
-- them (whether each is set, a webhook's host) is kept beside them.
CREATE TABLE arx.notification_channels (
    org_id                 uuid NOT NULL REFERENCES arx.orgs (id),
    channel                text NOT NULL CHECK (channel IN ('slack', 'teams')),
    mode                   text NOT NULL,
    -- Slack's channel id (bot mode): where chat.postMessage posts.
    slack_channel          text CHECK (slack_channel ~ '^[A-Z0-9]{1,64}$'),
    -- The workspace (team) and app the bot token belongs to, as Slack's
    -- auth.test named them when the channel was set (bot mode). A click is
    -- believed only from that team (and that app, when Slack named one): the
    -- signing secret and bot token of another workspace vouch for nothing here.
    slack_team_id          text CHECK (slack_team_id ~ '^[A-Z0-9]{1,32}$'),
    slack_app_id           text CHECK (slack_app_id ~ '^[A-Z0-9]{1,32}$'),
    interactive_approvals  boolean NOT NULL DEFAULT false,
    bot_token_set          boolean NOT NULL DEFAULT false,
    webhook_url_set        boolean NOT NULL DEFAULT false,
    signing_secret_set     boolean NOT NULL DEFAULT false,
    webhook_host           text CHECK (length(webhook_host) <= 255),
    version                integer NOT NULL CHECK (version > 0),
    kek_id                 text NOT NULL,
    wrapped_dek            bytea NOT NULL,
    nonce                  bytea NOT NULL CHECK (length(nonce) = 12),
    ciphertext             bytea NOT NULL,
    updated_by             text NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, channel),
    CHECK ((channel = 'slack' AND mode IN ('bot', 'webhook'))
           OR (channel = 'teams' AND mode = 'webhook')),
    CHECK (mode <> 'bot'
           OR (bot_token_set AND slack_channel IS NOT NULL AND slack_team_id IS NOT NULL)),
    CHECK (mode = 'bot' OR (slack_team_id IS NULL AND slack_app_id IS NULL)),
    CHECK (mode <> 'webhook' OR webhook_url_set),
    -- Approving from Slack needs the bot (to learn who clicked, and its
    -- workspace) and the signing secret (to know that Slack sent the click).
    CHECK (NOT interactive_approvals OR (mode = 'bot' AND signing_secret_set))
);

CREATE TABLE arx.notification_jobs (
    id               uuid PRIMARY KEY,
    org_id           uuid NOT NULL,
    approval_id      uuid NOT NULL,
    channel          text NOT NULL CHECK (channel IN ('slack', 'teams')),
    -- skipped: the request was decided (or expired), or the channel removed,
    -- before the message went out.
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'failed', 'skipped')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- When the job is due; while an attempt runs, the end of its lease.
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    -- The current claim's token (random, set by each claim, cleared by a
    -- requeue): recording an outcome needs it.
    claim_token      uuid,
    last_attempt_at  timestamptz,
    -- Written by ARX from what it classified (a status code, a vendor's error
    -- code), never a vendor's free text or a URL: no secret can land here.
    last_error       text CHECK (length(last_error) <= 500),
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, approval_id, channel),
    FOREIGN KEY (org_id, approval_id) REFERENCES arx.approval_requests (org_id, id)
);
-- The claim's scan: due jobs, oldest due first.
CREATE INDEX notification_jobs_due ON arx.notification_jobs (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX notification_jobs_org ON arx.notification_jobs (org_id, created_at DESC);

-- One job per configured channel, in the transaction that creates the
-- request (whoever creates it: arx.record_decision on the agent path, or an
-- operator). Runs as arx_notify, so the inserting role needs no access to
-- either table.
CREATE FUNCTION arx.queue_approval_notifications() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO arx.notification_jobs (id, org_id, approval_id, channel)
    SELECT gen_random_uuid(), NEW.org_id, NEW.id, c.channel
      FROM arx.notification_channels c
     WHERE c.org_id = NEW.org_id;
    IF FOUND THEN
        PERFORM pg_notify('arx_notifications', NEW.org_id::text);
    END IF;
    RETURN NULL;
END
$$;

-- Created while arx_owner still owns the function (creating a trigger needs
-- EXECUTE on it, which PUBLIC loses below).
CREATE TRIGGER approval_requests_queue_notifications
    AFTER INSERT ON arx.approval_requests
    FOR EACH ROW EXECUTE FUNCTION arx.queue_approval_notifications();
ALTER TABLE arx.approval_requests ENABLE ALWAYS TRIGGER approval_requests_queue_notifications;

-- Claims up to p_limit due jobs for one delivery attempt each: attempts goes
-- up by one, the job gets a fresh claim_token and is leased for
-- p_lease_seconds (longer than a delivery and its recording can take). A
-- job found due with no attempt left was claimed by a process that stopped
-- before recording its last outcome: it fails here. Returns, per job, its
-- claim token, what its message shows and the channel's sealed secrets (NULL
-- when the org removed the channel meanwhile), for any org: see "What that
-- costs" above.
CREATE FUNCTION arx.claim_notification_jobs(p_limit integer, p_lease_seconds double precision,
    p_max_attempts integer)
RETURNS TABLE (job_id uuid, claim_token uuid, org_id uuid, org_slug text, approval_id uuid,
    channel text, attempt integer, approval_status text, agent_name text, connector text, operation text,
    params jsonb, risk_score integer, reasons jsonb, policy_id text, approvals_required integer,
    expires_at timestamptz, mode text, slack_channel text, interactive_approvals boolean,
    secret_version integer, kek_id text, wrapped_dek bytea, nonce bytea, ciphertext bytea)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    UPDATE arx.notification_jobs j
       SET status = 'failed',
           last_error = left(coalesce(j.last_error || '; ', '')
               || 'the process delivering the last attempt stopped before recording it', 500)
     WHERE j.id IN (SELECT s.id FROM arx.notification_jobs s
                     WHERE s.status = 'pending' AND s.next_attempt_at <= now()
                       AND s.attempts >= p_max_attempts
                     FOR UPDATE SKIP LOCKED);

    RETURN QUERY
    WITH due AS (
        SELECT d.id FROM arx.notification_jobs d
         WHERE d.status = 'pending' AND d.next_attempt_at <= now()
           AND d.attempts < p_max_attempts
         ORDER BY d.next_attempt_at
         LIMIT p_limit
         FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE arx.notification_jobs j
           SET attempts = j.attempts + 1, last_attempt_at = now(),
               claim_token = gen_random_uuid(),
               next_attempt_at = now() + make_interval(secs => p_lease_seconds)
          FROM due
         WHERE j.id = due.id
        RETURNING j.id, j.claim_token, j.org_id, j.approval_id, j.channel, j.attempts
    )
    SELECT c.id, c.claim_token, c.org_id, o.slug, c.approval_id, c.channel, c.attempts,
           CASE WHEN r.status = 'pending' AND r.expires_at <= now() THEN 'expired'
                ELSE r.status END,
           a.name, r.connector, r.operation, r.params, e.risk_score, e.reasons, e.policy_id,
           r.approvals_required, r.expires_at, ch.mode, ch.slack_channel,
           ch.interactive_approvals, ch.version, ch.kek_id, ch.wrapped_dek, ch.nonce,
           ch.ciphertext
      FROM claimed c
      JOIN arx.orgs o ON o.id = c.org_id
      JOIN arx.approval_requests r ON r.org_id = c.org_id AND r.id = c.approval_id
      JOIN arx.agents a ON a.org_id = r.org_id AND a.id = r.agent_id
      JOIN arx.audit_events e ON e.org_id = r.org_id AND e.id = r.event_id
      LEFT JOIN arx.notification_channels ch
             ON ch.org_id = c.org_id AND ch.channel = c.channel;
END
$$;

-- Records the outcome of the claim p_claim of a job: delivered, failed,
-- skipped, or pending again in p_retry_seconds. Only the holder of that
-- claim can: a worker whose lease ran out (and whose job another worker
-- claimed again, or a person requeued) records nothing. The attempt number
-- cannot tell: a requeue starts it over. False when nothing was recorded.
CREATE FUNCTION arx.finish_notification_job(p_job uuid, p_claim uuid, p_status text,
    p_error text, p_retry_seconds double precision) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_status NOT IN ('delivered', 'pending', 'failed', 'skipped') THEN
        RAISE EXCEPTION 'unknown notification status' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE arx.notification_jobs
       SET status = p_status,
           last_error = CASE WHEN p_status = 'delivered' THEN last_error
                             ELSE left(p_error, 500) END,
           delivered_at = CASE WHEN p_status = 'delivered' THEN now() END,
           next_attempt_at = CASE WHEN p_status = 'pending'
                                  THEN now() + make_interval(secs => greatest(p_retry_seconds, 0))
                                  ELSE next_attempt_at END
     WHERE id = p_job AND claim_token = p_claim AND status = 'pending';
    RETURN FOUND;
END
$$;

RESET ROLE;

ALTER FUNCTION arx.queue_approval_notifications() OWNER TO arx_notify;
ALTER FUNCTION arx.claim_notification_jobs(integer, double precision, integer) OWNER TO arx_notify;
ALTER FUNCTION arx.finish_notification_job(uuid, uuid, text, text, double precision)
    OWNER TO arx_notify;
REVOKE ALL ON FUNCTION arx.queue_approval_notifications(),
    arx.claim_notification_jobs(integer, double precision, integer),
    arx.finish_notification_job(uuid, uuid, text, text, double precision) FROM PUBLIC;
-- The worker runs in the control plane (arx.approvals.notify.worker).
GRANT EXECUTE ON FUNCTION arx.claim_notification_jobs(integer, double precision, integer),
    arx.finish_notification_job(uuid, uuid, text, text, double precision) TO arx_control;

-- --- tenancy ---------------------------------------------------------------------

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['notification_channels', 'notification_jobs'] LOOP
        EXECUTE format('ALTER TABLE arx.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE arx.%I FORCE ROW LEVEL SECURITY', t);
        -- The control plane sees one org per transaction (settings, the list,
        -- a retry).
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON arx.%I TO arx_control '
            'USING (org_id = (SELECT NULLIF(current_setting(''arx.org_id'', true), '''')::uuid)) '
            'WITH CHECK (org_id = (SELECT NULLIF(current_setting(''arx.org_id'', true), '''')::uuid))',
            t);
        -- The definer functions see across orgs, and are all arx_notify does.
        EXECUTE format('CREATE POLICY notify_worker ON arx.%I TO arx_notify '
                       'USING (true) WITH CHECK (true)', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['orgs', 'agents', 'audit_events', 'approval_requests'] LOOP
        EXECUTE format('CREATE POLICY notify_worker ON arx.%I FOR SELECT TO arx_notify '
                       'USING (true)', t);
    END LOOP;
END
$$;

-- --- privileges --------------------------------------------------------------------

GRANT SELECT ON arx.notification_channels TO arx_notify;
GRANT SELECT, INSERT, UPDATE ON arx.notification_jobs TO arx_notify;
GRANT SELECT ON arx.orgs, arx.agents, arx.audit_events, arx.approval_requests TO arx_notify;

-- Owners and admins set and remove channels; a retry requeues a failed job
-- (attempts start over, the last claim's token is void), and removing a
-- channel skips its pending jobs.
GRANT SELECT, INSERT, UPDATE, DELETE ON arx.notification_channels TO arx_control;
GRANT SELECT, UPDATE (status, attempts, next_attempt_at, last_error, claim_token)
    ON arx.notification_jobs TO arx_control;
