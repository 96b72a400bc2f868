-- The read API (issue 9) filters an org's trail by agent and by time, newest
-- first, a page at a time.
--
-- By agent: over all its events (results and refusals carry the agent too;
-- audit_events_agent_seq covers decisions only). Without it, a quiet agent's
-- page walks the org's whole history back. One more B-tree entry per event,
-- measured on the execute path with bench/audit_scale.py. Not led by org_id
-- (an agent belongs to one org; row-level security adds the org anyway): an
-- index on (org_id, ...) ties, in a plan made while the table was small, with
-- the unique (org_id, id) that foreign-key checks need, and a check that
-- picked this one read the org's every event (test_intercept's flat-cost test).
--
-- By time: a BRIN index. The trail is appended in time order, so block
-- ranges map to time ranges; it costs the execute path next to nothing (a
-- summary per 128 pages, kept current by autovacuum) where a B-tree on
-- created_at would cost an entry per event. A narrow window ("that hour last
-- month") reads a few block ranges instead of walking the org's history.
CREATE INDEX audit_events_agent_events ON arx.audit_events (agent_id, seq);
CREATE INDEX audit_events_created_brin ON arx.audit_events USING brin (created_at)
    WITH (autosummarize = on);

-- One event's covering checkpoint: the first at or after its org_seq, found
-- without walking the org's checkpoints from number 1 (one a minute is half
-- a million a year).
CREATE INDEX audit_checkpoints_org_seq ON arx.audit_checkpoints (org_id, org_seq);
