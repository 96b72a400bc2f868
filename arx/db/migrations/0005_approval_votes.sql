-- People resolve escalations. An approval request (made with its ESCALATE
-- decision, migration 0003) collects votes from distinct reviewers; one
-- rejection rejects it, approvals_required approvals approve it, and it is
-- settled by one conditional update (status = 'pending' and not expired), so
-- two reviewers racing cannot both decide it. Each vote is its own row: a
-- person votes once per request. Agents (arx_app) can read the outcome of
-- their own requests, never vote.
SET ROLE arx_owner;

ALTER TABLE arx.approval_requests
    ADD COLUMN approvals_required  integer NOT NULL DEFAULT 1
                                   CHECK (approvals_required BETWEEN 1 AND 5),
    ADD COLUMN resolved_at         timestamptz,
    -- The comment of the vote that settled it (a rejection's reason).
    ADD COLUMN resolution_comment  text CHECK (length(resolution_comment) <= 2000),
    ADD CONSTRAINT approval_requests_org_id_id UNIQUE (org_id, id);

CREATE TABLE arx.approval_votes (
    org_id       uuid NOT NULL,
    approval_id  uuid NOT NULL,
    user_id      uuid NOT NULL REFERENCES arx.users (id),
    vote         text NOT NULL CHECK (vote IN ('approve', 'reject')),
    comment      text NOT NULL DEFAULT '' CHECK (length(comment) <= 2000),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (approval_id, user_id),
    FOREIGN KEY (org_id, approval_id) REFERENCES arx.approval_requests (org_id, id)
);
CREATE INDEX approval_requests_pending ON arx.approval_requests (org_id, created_at)
    WHERE status = 'pending';

RESET ROLE;

ALTER TABLE arx.approval_votes ENABLE ROW LEVEL SECURITY;
ALTER TABLE arx.approval_votes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON arx.approval_votes TO arx_app, arx_control
    USING (org_id = (SELECT NULLIF(current_setting('arx.org_id', true), '')::uuid))
    WITH CHECK (org_id = (SELECT NULLIF(current_setting('arx.org_id', true), '')::uuid));

-- Votes are appended, never changed; only a request's outcome moves.
GRANT SELECT, INSERT ON arx.approval_votes TO arx_control;
GRANT SELECT ON arx.approval_votes TO arx_app;
GRANT UPDATE (status, resolved_at, resolution_comment) ON arx.approval_requests TO arx_control;
